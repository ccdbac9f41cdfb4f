"""The benchmark scripts run and write the figures the README quotes (no speed is asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bresa_control.app.evaluate import make_controller
from bresa_control.common.config import BresaConfig

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("peak_trace", REPO / "bench" / "peak_trace.py")
peak_trace = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peak_trace)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_bench_sim_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = _run("bench_sim.py", "--ticks", "200", "--env-steps", "5", "--repeats", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    for key in ("mj_step_per_s", "control_tick_per_s", "control_real_time_factor",
                "controller_overhead_ratio", "env_steps_per_s", "env_steps_per_s_bresa"):
        assert figures[key] > 0, key
    assert "controller overhead" in result.stdout
    assert 0 < figures["arm_tick_us"]["p50"] <= figures["arm_tick_us"]["p99"]
    assert figures["machine"]["cpu_model"]


def test_reflex_check_runs_the_shipped_models_in_closed_loop(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    result = _run("reflex_check.py", "--episodes", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    check = json.loads(out.read_text())
    assert len(check["episodes"]) == 1 and 0.0 <= check["reflex_share_of_ticks"] <= 1.0


def test_peak_trace_prints_the_ticks_around_the_peak_and_one_line_per_seed() -> None:
    result = _run("peak_trace.py", "--controller", "scripted", "--seed", "0", "--ticks", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("scripted, nominal, seed 0: peak") and len(lines) == 2 + 5
    result = _run("peak_trace.py", "--controller", "scripted", "--seeds", "0,1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["seed 0", "seed 1"]
    assert all("reflex at the peak: False" in line and "last held: not in the window" in line for line in lines)


def test_peak_trace_holds_the_tick_that_ended_an_episode_in_a_fault(config: BresaConfig) -> None:
    # recovery-rl, nominal, seed 30 (shipped models): the peg hits the fixture's face at 41 N, past
    # the arm's fault force, and the episode ends on that tick.
    table, info = peak_trace.trace(make_controller("recovery-rl", config), "nominal", 30)
    assert info["fault"] and info["peak_force_n"] >= config.safety.arm_fault_force_n
    assert table[:, 1].max() == pytest.approx(info["peak_force_n"])
    assert table[-1, 0] == pytest.approx(info["time_s"])
