"""Sim-to-sim transfer: the shipped critic and policy (made on the simulated Panda) driving an FR3
over libfranka's protocol, beside the same stack on the simulated Panda.

    python bench/transfer.py --episodes 20 --seed 0 --json results/transfer.json

Episode ``seed + i`` runs the whole ROS stack (``bresa demo``, no bag) once per arm:
``mujoco`` (mujoco_sim, the Panda the models were trained on) and ``franky-sim`` (franka_arm
driving franky-sim's FR3 through pylibfranka on 127.0.0.1, same fixture, same episode draw). An
episode ends at the insertion or after the environment's episode length (``env.max_episode_steps``
decisions: 20 s of the arm's clock). Per arm: success rate, violation rate (true contact force at
or above ``safety.max_force_n``), episodes reaching the arm's fault force
(``safety.arm_fault_force_n``), peak force and insertion time. The figures are the simulator's
(true contact force), not the arm's wrench estimate.

One line per episode as it finishes; the JSON is rewritten after every episode (``complete``
false until the last), so Ctrl-C keeps what finished.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.common.config import load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.ros.runner import run_demo
from bresa_control.runtime.timing import machine_info

ARMS = ("mujoco", "franky-sim")


def episode(arm: str, seed: int, config_path: str, run_dir: Path) -> dict[str, Any]:
    """One episode of the stack on one arm: what the simulator saw."""
    shutil.rmtree(run_dir, ignore_errors=True)  # this script's own scratch folder
    result = run_demo(config_path, seed=seed, run_dir=run_dir, log_level="warn", record=False, arm=arm)
    world = result["nodes"]["mujoco_sim" if arm == "mujoco" else "franky_sim"]
    return {"arm": arm, "seed": seed, "inserted": bool(world["inserted"]),
            "insertion_time_s": world["insertion_time_s"] if world["inserted"] else None,
            "peak_force_n": world["peak_force_n"], "faults": world.get("faults", []),
            "arm_error": result.get("arm_error", ""), "reflexes": result["reflex_count"],
            "missed_robot_ticks": result.get("arm_missed_robot_ticks")}


def summarise(rows: list[dict[str, Any]], max_force_n: float, fault_force_n: float) -> dict[str, Any]:
    """Success, violations, faults, peak force and insertion time over one arm's episodes."""
    times = [r["insertion_time_s"] for r in rows if r["inserted"]]
    peaks = np.array([r["peak_force_n"] for r in rows])
    return {"episodes": len(rows), "success_rate": float(np.mean([r["inserted"] for r in rows])),
            "violation_rate": float(np.mean(peaks >= max_force_n)),
            "fault_force_episodes": int(np.sum(peaks >= fault_force_n)),
            "peak_force_n_mean": float(peaks.mean()), "peak_force_n_max": float(peaks.max()),
            "insertion_time_s_mean": float(np.mean(times)) if times else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="episode i has seed seed + i (same for both arms)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--json", default="results/transfer.json")
    args = parser.parse_args()
    config = load_config()
    episode_s = config.env.max_episode_steps * config.env.decision_period_s
    with tempfile.TemporaryDirectory() as tmp:
        limits = Path(tmp) / "episode_length.yaml"  # the stack gives up where the environment's episode ends
        limits.write_text(f"/**:\n  ros__parameters:\n    runtime:\n      demo_timeout_s: {episode_s}\n")
        rows: list[dict[str, Any]] = []
        started = time.monotonic()
        complete = False
        try:
            for i in range(args.episodes):
                for arm in args.arms:
                    row = episode(arm, args.seed + i, str(limits), Path("results") / f"transfer-{arm}")
                    rows.append(row)
                    outcome = f"inserted at {row['insertion_time_s']:.1f} s" if row["inserted"] else "not inserted"
                    print(f"[{len(rows)}/{args.episodes * len(args.arms)}] {arm} seed {row['seed']}: {outcome}, "
                          f"peak force {row['peak_force_n']:.1f} N, reflexes {row['reflexes']}"
                          + (f", FAULT {row['faults']}" if row["faults"] else "")
                          + (f", arm error: {row['arm_error']}" if row["arm_error"] else ""), flush=True)
                    _write(args, rows, config, started, complete=False)
            complete = True
        except KeyboardInterrupt:
            print("interrupted: writing what finished", file=sys.stderr)
        except RuntimeError as exc:  # a stack that did not start: the figures would be wrong
            print(f"stopping: {exc}", file=sys.stderr)
        summary = _write(args, rows, config, started, complete)
    for arm, figures in summary.items():
        time_s = figures["insertion_time_s_mean"]
        print(f"{arm}: {figures['episodes']} episodes, success {figures['success_rate']:.0%}, violations "
              f"{figures['violation_rate']:.0%}, at the fault force {figures['fault_force_episodes']}, peak force "
              f"mean {figures['peak_force_n_mean']:.1f} / max {figures['peak_force_n_max']:.1f} N, insertion time "
              f"{'-' if time_s is None else f'{time_s:.2f} s'}")
    print(f"wrote {args.json}" + ("" if complete else " (incomplete)"))
    return 0 if complete else 130


def _write(args: argparse.Namespace, rows: list[dict[str, Any]], config: Any, started: float,
           complete: bool) -> dict[str, Any]:
    summary = {arm: summarise([r for r in rows if r["arm"] == arm], config.safety.max_force_n,
                              config.safety.arm_fault_force_n)
               for arm in args.arms if any(r["arm"] == arm for r in rows)}
    write_json_atomic(args.json, {"machine": machine_info(), "command": sys.argv, "complete": complete,
                                  "wall_s": time.monotonic() - started, "summary": summary, "episodes": rows})
    return summary


if __name__ == "__main__":
    sys.exit(main())
