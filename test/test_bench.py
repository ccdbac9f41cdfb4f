"""The benchmark scripts run and write the figures the README quotes (no speed is asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bresa_control.app.controllers import build, make_controller
from bresa_control.common.config import load_config
from bresa_control.common.files import write_json_atomic

REPO = Path(__file__).resolve().parent.parent


def _bench_module(name: str) -> ModuleType:
    """A script of bench/ as a module (registered, so that its dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


peak_trace = _bench_module("peak_trace")
fisor_trace = _bench_module("fisor_trace")


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
    assert [line.split(":")[0] for line in lines[:2]] == ["seed 0", "seed 1"]
    assert all("reflex at the peak: False" in line and "last held: not in the window" in line for line in lines[:2])
    # The spiral search presses gently, and has no reflex or critic.
    assert lines[2].startswith("2 episodes: peak above F_max (30 N) in 0, median ")
    assert ("reflex holding at the peak in 0; the critic's risk stayed below eps_safe (0.5) in the window before in 2"
            in lines[2])


def test_peak_trace_holds_the_tick_that_ended_an_episode_in_a_fault() -> None:
    # The spiral search presses with ~6 N and peaks above it: with the arm's fault force at 6 N
    # the episode ends on the tick the force reaches it.
    config = load_config(overrides={"safety": {"max_force_n": 5.0, "arm_fault_force_n": 6.0}})
    table, info = peak_trace.trace(make_controller("scripted", config), "nominal", 0)
    assert info["fault"] and info["peak_force_n"] >= config.safety.arm_fault_force_n
    assert table[:, 1].max() == pytest.approx(info["peak_force_n"])
    assert table[-1, 0] == pytest.approx(info["time_s"])


def test_peak_trace_says_when_the_peak_came_after_the_push() -> None:
    result = _run("peak_trace.py", "--controller", "scripted", "--scenario", "push", "--seeds", "0")
    assert result.returncode == 0, result.stderr
    assert "ms after the event)" in result.stdout


def test_time_split_splits_each_insertion_into_its_phases(tmp_path: Path) -> None:
    time_split = _bench_module("time_split")
    config = load_config()
    env, policy = build("scripted", config, "push", None)
    split = time_split.split_episode(env, policy, "scripted", 0, 0, 0.0005, 0.001)
    assert split.inserted and all(s is not None and s > 0 for s in split.phase_s)
    # The phases tile the episode: they add up to its insertion time, within a tick or two.
    assert sum(split.phase_s) == pytest.approx(split.insertion_time_s, abs=0.003)
    assert split.reflex_share == [0.0, 0.0, 0.0]  # the spiral search runs without a reflex
    assert split.phase_at_event in time_split.PHASES and split.event_time_s is not None
    # The search presses down softer than it holds sideways (config scripted.stiffness_n_per_m).
    assert split.mean_stiffness_n_per_m[1] == pytest.approx(list(config.scripted.stiffness_n_per_m))

    out = tmp_path / "split.json"
    result = _run("time_split.py", "--controllers", "scripted", "--episodes", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "approach  search  descent" in result.stdout and "violations by the phase" not in result.stdout
    assert json.loads(out.read_text())["episodes"][0]["controller"] == "scripted"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_arm_figures_count_missed_robot_ticks_and_reflex_latency_in_ticks() -> None:
    from bresa_control.ros.runner import command_success_rate_min, reflex_latencies_ticks

    robot_ms = np.arange(1000.0, 1300.0)
    assert command_success_rate_min(robot_ms) == 1.0
    gappy = np.delete(robot_ms, [150, 151, 152, 200])  # all 4 missed within one 100-tick window
    assert command_success_rate_min(gappy) == pytest.approx(0.96)
    stamps = 5000.0 + (robot_ms - 1000.0) * 1e-3
    arm = {"tick_trace": [[s, ms] for s, ms in zip(stamps, robot_ms)],
           "applied_trace": [[11, robot_ms[12]], [22, robot_ms[50]], [33, robot_ms[51]], [44, robot_ms[60]],
                             [55, robot_ms[70]]]}
    # fired on the sample of tick 10 (answered at 12: two ticks later, and its own period: 3), on 48
    # (its second command answered at 50, the first never applied), on 60 (answered in that very
    # tick, as the critic in the arm's loop does: 1), and on a sample the arm never published
    # (unmatched); a command applied before its sample (55 at tick 70, fired on 80) is no answer
    critic = {"fired_trace": [[stamps[10], [11]], [stamps[48], [99, 22]], [stamps[60], [44]], [1.0, [33]],
                              [stamps[80], [55]]]}
    latencies, unmatched = reflex_latencies_ticks(arm, critic)
    assert latencies == [3, 3, 1] and unmatched == 2


def test_transfer_summarises_success_violations_and_faults_per_arm() -> None:
    transfer = _bench_module("transfer")
    rows = [{"inserted": True, "insertion_time_s": 6.0, "peak_force_n": 10.0},
            {"inserted": True, "insertion_time_s": 8.0, "peak_force_n": 31.0},
            {"inserted": False, "insertion_time_s": None, "peak_force_n": 45.0},
            {"inserted": False, "insertion_time_s": None, "peak_force_n": 5.0}]
    summary = transfer.summarise(rows, max_force_n=30.0, fault_force_n=40.0)
    assert summary == {"episodes": 4, "success_rate": 0.5, "violation_rate": 0.5, "fault_force_episodes": 1,
                       "peak_force_n_mean": pytest.approx(22.75), "peak_force_n_max": 45.0,
                       "insertion_time_s_mean": 7.0}


def test_fisor_trace_reports_what_fisors_critics_said_before_a_violation(tmp_path: Path) -> None:
    # The shipped FISOR presses with ~10 N in episode 0: with F_max at 5 N that episode violates.
    config = load_config(overrides={"safety": {"max_force_n": 5.0, "arm_fault_force_n": 60.0}})
    setup = make_controller("fisor", config)
    from bresa_control.simulation.env import TaskEnv

    found = fisor_trace.trace(setup.policy, TaskEnv(setup.config), 0, window=5)
    assert found is not None and found.peak_force_n > 5.0 and 0 <= found.feasible_samples_before <= found.samples
    assert 0.0 <= found.infeasible_share <= 1.0 and np.isfinite([found.max_v_h_before, found.q_h_before]).all()
    assert fisor_trace.line(found, 5).startswith(f"seed 0: first violating decision {found.decision} ")
    assert fisor_trace.totals([found], 5).startswith("1 violating episodes: V_h > 0 ")
    # a cell of another controller is refused by name
    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps({"controller": "bresa", "scenario": "nominal", "per_episode": []}))
    result = _run("fisor_trace.py", "--cell", str(cell))
    assert result.returncode == 2 and "is a cell of 'bresa', expected one of fisor" in result.stderr
    # several cells: each under its header, then the totals by scenario and over all (none violated here)
    for name, scenario in (("fisor_push_seed0", "push"), ("fisor_payload_seed0", "payload")):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "controller": "fisor", "scenario": scenario, "models_dir": None,
            "per_episode": [{"seed": 0, "violation": False}]}))
    for jobs in ("1", "2"):  # in one process or two, the same lines in the same order
        result = _run("fisor_trace.py", "--cell", str(tmp_path / "fisor_push_seed0.json"),
                      str(tmp_path / "fisor_payload_seed0.json"), "--jobs", jobs)
        assert result.returncode == 0, result.stderr
        assert [line for line in result.stdout.splitlines() if not line.startswith("Warning")] == [
            "== fisor_push_seed0", "no violating episode", "== fisor_payload_seed0", "no violating episode",
            "== by scenario", "push: no violating episode", "payload: no violating episode",
            "all: no violating episode"]


def test_restamp_cells_keeps_what_an_added_reflex_key_left_valid_and_nothing_else(tmp_path: Path) -> None:
    """A reflex key added since the cells were made: the spiral search's cell (no reflex), made
    with today's values of every other key, gets today's fingerprint; force-guard's (it reads the
    reflex) and a cell made under another config are left to run again."""
    import dataclasses

    from bresa_control.app import compare
    from bresa_control.common.config import config_to_dict

    restamp = _bench_module("restamp_cells")
    config = load_config()
    added = ["reflex.brake_max_s"]
    made_with = restamp.without(config_to_dict(config), added)
    other = dataclasses.replace(config, env=dataclasses.replace(config.env, max_episode_steps=7))
    cells = tmp_path / "cells"
    seeds = str(tmp_path / "seeds")
    for controller, training_seed, settings in (("scripted", None, made_with), ("force-guard", 0, made_with),
                                                ("sac", 0, restamp.without(config_to_dict(other), added))):
        cell = compare.Cell(controller, "nominal", training_seed)
        legacy = compare.fingerprint_of_settings(cell, settings, 2, 0, None, seeds, "peg-insertion", config)
        assert legacy != compare.fingerprint(cell, config, 2, 0, None, seeds)
        write_json_atomic(cells / cell.name, {"controller": controller, "scenario": "nominal", "complete": True,
                                              "training_seed": training_seed, "seed": 0, "per_episode": [{}, {}],
                                              "fingerprint": legacy})
    result = _run("restamp_cells.py", "--cells", str(cells), "--seeds-dir", seeds, "--added", *added)
    assert result.returncode == 0, result.stderr
    assert "1 re-stamped, 0 current, 2 left" in result.stdout
    scripted = json.loads((cells / "scripted_nominal_untrained.json").read_text())
    assert scripted["fingerprint"] == compare.fingerprint(compare.Cell("scripted", "nominal", None), config, 2, 0,
                                                          None, seeds)
    bad = _run("restamp_cells.py", "--cells", str(cells), "--added", "reflex.no_such_key")
    assert bad.returncode != 0 and "--added reflex.no_such_key: no such key in today's config" in bad.stderr


def test_restamp_cells_follows_a_section_the_fingerprint_no_longer_reads(tmp_path: Path) -> None:
    """Cells made while the fingerprint held the training disturbances whole (``randomisation``),
    with today's values, are re-stamped; one made under other disturbance values is left to run
    again (the script cannot tell that those values changed nothing)."""
    import dataclasses

    from bresa_control.app import compare
    from bresa_control.common.config import config_to_dict

    config = load_config()
    other = dataclasses.replace(config, randomisation=dataclasses.replace(config.randomisation,
                                                                          pulse_force_max_n=5.0))
    cells = tmp_path / "cells"
    seeds = str(tmp_path / "seeds")
    for controller, training_seed, made_under in (("scripted", None, config), ("bresa", 0, config),
                                                  ("sac", 0, other)):
        cell = compare.Cell(controller, "nominal", training_seed)
        settings = {**compare.config_read_by(controller, config),
                    "randomisation": config_to_dict(made_under)["randomisation"]}
        legacy = compare.fingerprint_of_settings(cell, settings, 2, 0, None, seeds, "peg-insertion", config)
        assert legacy != compare.fingerprint(cell, config, 2, 0, None, seeds)
        write_json_atomic(cells / cell.name, {"controller": controller, "scenario": "nominal", "complete": True,
                                              "training_seed": training_seed, "seed": 0, "per_episode": [{}, {}],
                                              "fingerprint": legacy})
    result = _run("restamp_cells.py", "--cells", str(cells), "--seeds-dir", seeds, "--was-read", "randomisation")
    assert result.returncode == 0, result.stderr
    assert "2 re-stamped, 0 current, 1 left" in result.stdout
    assert "sac_nominal_seed0.json: left" in result.stdout
    bresa = json.loads((cells / "bresa_nominal_seed0.json").read_text())
    assert bresa["fingerprint"] == compare.fingerprint(compare.Cell("bresa", "nominal", 0), config, 2, 0, None, seeds)
    bad = _run("restamp_cells.py", "--cells", str(cells), "--was-read", "no_such_section")
    assert bad.returncode != 0 and "--was-read no_such_section: no such section in today's config" in bad.stderr
