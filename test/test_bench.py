"""The benchmark scripts run and write the figures the README quotes (no speed is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_bench_sim_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = _run("bench_sim.py", "--ticks", "200", "--env-steps", "5", "--repeats", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    for key in ("mj_step_per_s", "control_tick_per_s", "control_real_time_factor",
                "controller_overhead_ratio", "env_steps_per_s"):
        assert figures[key] > 0, key
    assert "controller overhead" in result.stdout


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
