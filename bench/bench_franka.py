"""Benchmark of the franka_arm loop over libfranka's protocol, on this machine.

    python bench/bench_franka.py --runs 5 --duration 20 --json results/bench_franka.json
    python bench/bench_franka.py --separate ...     # the critic as a process of its own

Each run is ``bresa demo --arm franky-sim --duration S --no-bag`` with tracing on (seeds 63, 64, ...):
``franky_sim`` (an FR3 in MuJoCo serving libfranka's protocol on 127.0.0.1, paced to the wall
clock), ``franka_arm`` (pylibfranka torque control) with the safety critic in its loop by default
(``--separate``: ``safety_critic`` as a process of its own) and ``task_policy``, each its own
process. Prints and writes:

  * the arm loop's rate (Hz) and period p50 / p99 / max (ms), between the states it acted on;
  * the whole arm tick's compute p50 / p99 (ms): composed, the critic, the controller and the
    torque write together; separate, the arm's plus the critic process's tick (sums of the two
    processes' percentiles: an upper bound for p99);
  * the command success rate: the share of the robot's 1 ms ticks the loop answered, worst
    100-tick window (what libfranka's ``control_command_success_rate`` measures on a real arm; the
    protocol simulator always reports 1.0 there, so it is measured here from the robot's clock), and
    the robot ticks missed in all, per 20,000;
  * reflex latency in robot ticks (:func:`~bresa_control.ros.runner.reflex_latencies_ticks`): from
    the tick whose state sample made the risk cross ``eps_safe`` to the tick whose torque answers
    it, that tick's period included (1 is the least possible; composed it is 1 by construction,
    measured the same way as separate), over every firing of every run;
  * the targets (success rate >= 0.99, at most 1 missed robot tick per 20,000, latency p99 <= 1
    tick) and whether each was met; whether every run inserted, stayed under F_max, without a
    fault and within Franka's torque limits; the CPU (model, MHz) in the JSON.

``--busy`` keeps one core busy with another process (``yes > /dev/null``). Timing only: nothing
here is a test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import busy_core, meets, stack_arguments, tick_compute_ms

from bresa_control.common.files import write_json_atomic
from bresa_control.ros.runner import command_success_rate_min, reflex_latencies_ticks, run_demo
from bresa_control.runtime.timing import machine_info

TARGETS = {"command_success_rate_min": (">=", 0.99), "missed_per_20000_ticks": ("<=", 1.0),
           "latency_p99_ticks": ("<=", 1.0)}


def main() -> int:
    parser = stack_arguments(__doc__.split("\n")[0], "results/bench_franka.json", "the robot's clock")
    args = parser.parse_args()
    with busy_core(args.busy):
        return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    runs, latencies, unmatched = [], [], 0
    mode = "separate" if args.separate else "composed"
    for seed in range(args.seed, args.seed + args.runs):
        started = time.monotonic()
        run_dir = Path("results") / f"bench_franka-{mode}-{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)  # this benchmark's own scratch folder
        result = run_demo(config_path=args.config, seed=seed, duration_s=args.duration, run_dir=run_dir, trace=True,
                          log_level="warn", record=False, arm="franky-sim", separate=args.separate)
        arm, world = result["nodes"]["franka_arm"], result["nodes"]["franky_sim"]
        if arm.get("rate_hz") is None:
            print(f"run {seed}: the arm's motion never started (see {run_dir})", flush=True)
            continue
        critic = result["nodes"]["safety_critic"] if args.separate else arm.get("critic", {})
        run_latencies, run_unmatched = reflex_latencies_ticks(arm, critic)
        latencies += run_latencies
        unmatched += run_unmatched
        robot_ms = np.array(arm.get("tick_trace", []), dtype=float).reshape(-1, 2)[:, 1]
        row = {
            "seed": seed, "inserted": result["inserted"], "peak_force_n": world["peak_force_n"],
            "faults": world["faults"], "arm_error": arm["error"],
            "torque_rate_violations": world["torque_rate_violations"],
            "torque_limit_violations": world["torque_limit_violations"],
            **{k: arm.get(k) for k in ("rate_hz", "period_p50_ms", "period_p99_ms", "period_max_ms",
                                       "missed_robot_ticks", "robot_ticks", "control_command_success_rate_min")},
            "tick_compute_p50_ms": tick_compute_ms(result, "franka_arm", "p50"),
            "tick_compute_p99_ms": tick_compute_ms(result, "franka_arm", "p99"),
            "command_success_rate_min": command_success_rate_min(robot_ms),
            "critic_rate_hz": result["critic_rate_hz"], "critic_overruns": critic.get("critic_overruns"),
            "collision_force_thresholds_n": world.get("collision_force_thresholds_n"),
            "realtime": result["realtime"], "reflexes": result["reflex_count"],
            "latencies_ticks": run_latencies, "wall_s": time.monotonic() - started,
        }
        runs.append(row)
        compute = row["tick_compute_p99_ms"]
        print(f"run {seed}: arm {row['rate_hz']:.1f} Hz, period p50 {row['period_p50_ms']:.3f} / p99 "
              f"{row['period_p99_ms']:.3f} / max {row['period_max_ms']:.2f} ms, tick compute p99 "
              f"{'-' if compute is None else f'{compute:.3f}'} ms, success rate min "
              f"{row['command_success_rate_min']:.3f} "
              f"({row['missed_robot_ticks']} of "
              f"{row['robot_ticks']} robot ticks missed), {len(run_latencies)} reflexes timed, inserted "
              f"{row['inserted']}", flush=True)
    if not runs:
        print("no run got going: nothing to report", file=sys.stderr)
        return 1
    figures = {
        "arm_rate_hz": min(r["rate_hz"] for r in runs),
        "period_p50_ms": max(r["period_p50_ms"] for r in runs),
        "period_p99_ms": max(r["period_p99_ms"] for r in runs),
        "period_max_ms": max(r["period_max_ms"] for r in runs),
        "command_success_rate_min": min(r["command_success_rate_min"] for r in runs),
        "missed_robot_ticks": sum(r["missed_robot_ticks"] for r in runs),
        "robot_ticks": sum(r["robot_ticks"] for r in runs),
        "missed_per_20000_ticks": 20000 * sum(r["missed_robot_ticks"] for r in runs)
        / max(sum(r["robot_ticks"] for r in runs), 1),
        "tick_compute_p50_ms": max((r["tick_compute_p50_ms"] for r in runs if r["tick_compute_p50_ms"] is not None),
                                   default=None),
        "tick_compute_p99_ms": max((r["tick_compute_p99_ms"] for r in runs if r["tick_compute_p99_ms"] is not None),
                                   default=None),
        "libfranka_success_rate_min": min(r["control_command_success_rate_min"] for r in runs),
        "latency_p50_ticks": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_p99_ticks": float(np.percentile(latencies, 99)) if latencies else None,
        "latency_max_ticks": max(latencies) if latencies else None,
        "reflexes_timed": len(latencies), "reflexes_unmatched": unmatched,
    }
    met = {name: meets(figures[name], op, bound) for name, (op, bound) in TARGETS.items()}
    safe = all(r["peak_force_n"] < 30.0 and not r["faults"] and not r["arm_error"]
               and r["torque_rate_violations"] == 0 and r["torque_limit_violations"] == 0 for r in runs)
    machine = machine_info()
    print(f"{mode}, worst run: arm {figures['arm_rate_hz']:.1f} Hz, period p50 {figures['period_p50_ms']:.3f} / p99 "
          f"{figures['period_p99_ms']:.3f} ms; command success rate (worst 100-tick window) "
          f"{figures['command_success_rate_min']:.3f}, {figures['missed_robot_ticks']} of {figures['robot_ticks']} "
          f"robot ticks missed; reflex latency p50 / p99 / max "
          f"{_ticks(figures['latency_p50_ticks'])} / {_ticks(figures['latency_p99_ticks'])} / "
          f"{_ticks(figures['latency_max_ticks'])} ticks over {len(latencies)} firings ({unmatched} unmatched)")
    for name, ok in met.items():
        op, bound = TARGETS[name]
        print(f"target {name} {op} {bound:g}: {'met' if ok else 'NOT met'}")
    print(f"all runs inserted: {all(r['inserted'] for r in runs)}; under F_max, no fault, within Franka's torque "
          f"limits: {safe}")
    compute = figures["tick_compute_p99_ms"]
    print(f"tick compute p50 / p99: {_ms(figures['tick_compute_p50_ms'])} / {_ms(compute)} ms; "
          f"CPU: {machine['cpu_model']}, {machine['cpu_mhz']} MHz, {machine['cpu_count']} cores")
    out = {"mode": mode, "machine": machine, "command": sys.argv, "runs": runs, "figures": figures,
           "every_run_inserted": all(r["inserted"] for r in runs), "every_run_safe": safe,
           "targets": {k: {"bound": list(v), "met": met[k]} for k, v in TARGETS.items()}}
    write_json_atomic(args.json, out)
    print(f"wrote {args.json}")
    return 0


def _ticks(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
