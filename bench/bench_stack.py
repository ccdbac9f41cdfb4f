"""Benchmark of the reflex in the running stack on MuJoCo: the node processes on real rclpy, this machine.

    python bench/bench_stack.py --runs 5 --duration 20 --json results/bench_stack.json
    python bench/bench_stack.py --separate ...     # the critic as a process of its own

Each run is ``bresa demo --duration S --no-bag`` with tracing on (seeds 63, 64, ...: the demo's
first): by default composed, ``mujoco_sim`` with the safety critic in its loop and ``task_policy``
(two processes); with ``--separate`` the three processes of ``compose:=false``; ``--bag`` adds the
demo's MCAP recorder. Prints and writes:

  * the arm's achieved rate (Hz) and tick period p50 / p99 / max (ms);
  * the whole arm tick's compute p50 / p99 (ms): composed, the arm node's tick (critic, controller
    and physics together); separate, the arm's tick plus the critic process's tick (sums of the
    two processes' percentiles: an upper bound for p99);
  * reflex latency p50 / p99 / max in control ticks (:func:`~bresa_control.ros.runner.reflex_latencies_ticks`):
    from the tick that read the state sample on which the risk crossed ``eps_safe`` to the tick
    whose torque answers it, that tick's period included, so 1 is the least possible. Composed it
    is 1 by construction, and measured the same way as separate (the same traces, matched by a
    CRC of the 19 values), over every firing of every run;
  * the targets (worst run: rate >= 999 Hz, period p99 <= 1.2 ms, latency p99 <= 1 tick, tick
    compute p99 <= 0.5 ms; the same with ``--bag``) and whether each was met;
  * whether every run inserted the peg and stayed under ``F_max``; the CPU (model, MHz) in the JSON.

``--busy`` keeps one core busy with another process (``yes > /dev/null``) during the runs, as a
robot PC's drivers and visualisation would. Timing only: nothing here is a test.
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
from bresa_control.ros.runner import reflex_latencies_ticks, run_demo
from bresa_control.runtime.timing import machine_info

TARGETS = {"arm_rate_hz": (">=", 999.0), "period_p99_ms": ("<=", 1.2), "latency_p99_ticks": ("<=", 1.0),
           "tick_compute_p99_ms": ("<=", 0.5)}


def main() -> int:
    parser = stack_arguments(__doc__.split("\n")[0], "results/bench_stack.json", "the arm's clock")
    parser.add_argument("--bag", action="store_true",
                        help="also run bresa demo's bag recorder (another process' worth of work)")
    args = parser.parse_args()
    with busy_core(args.busy):
        return _bench(args, TARGETS)


def _bench(args: argparse.Namespace, targets: dict[str, tuple[str, float]]) -> int:
    runs = []
    latencies: list[int] = []
    unmatched = 0
    mode = "separate" if args.separate else "composed"
    for seed in range(args.seed, args.seed + args.runs):
        started = time.monotonic()
        run_dir = Path("results") / f"bench_stack-{mode}-{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)  # this benchmark's own scratch folder
        result = run_demo(config_path=args.config, seed=seed, duration_s=args.duration, run_dir=run_dir, trace=True,
                          log_level="warn", record=args.bag, separate=args.separate)
        arm = result["nodes"]["mujoco_sim"]
        critic = result["nodes"]["safety_critic"] if args.separate else arm.get("critic", {})
        run_latencies, run_unmatched = reflex_latencies_ticks(arm, critic)
        unmatched += run_unmatched
        latencies += run_latencies
        row = {
            "seed": seed, "inserted": result["inserted"], "peak_force_n": result["peak_force_n"],
            "max_force_n": result["max_force_n"], "reflexes": result["reflex_count"],
            "arm_rate_hz": arm.get("rate_hz"),
            **{k: arm.get(k) for k in ("period_p50_ms", "period_p99_ms", "period_max_ms", "skipped_ticks")},
            "tick_compute_p50_ms": tick_compute_ms(result, "mujoco_sim", "p50"),
            "tick_compute_p99_ms": tick_compute_ms(result, "mujoco_sim", "p99"),
            "critic_rate_hz": critic.get("rate_hz"), "critic_compute_p50_ms": critic.get("compute_p50_ms"),
            "critic_compute_p99_ms": critic.get("compute_p99_ms"),
            "critic_overruns": critic.get("critic_overruns"), "realtime": result["realtime"],
            "latencies_ticks": run_latencies, "wall_s": time.monotonic() - started,
        }
        if row["arm_rate_hz"] is None or row["tick_compute_p99_ms"] is None:
            print(f"run {seed}: the arm or the critic never ran (see {result['run_dir']}); was the machine busy?",
                  flush=True)
            continue
        runs.append(row)
        print(f"run {seed}: arm {row['arm_rate_hz']:.1f} Hz, period p50 {row['period_p50_ms']:.3f} / p99 "
              f"{row['period_p99_ms']:.3f} / max {row['period_max_ms']:.2f} ms, tick compute p50 "
              f"{row['tick_compute_p50_ms']:.3f} / p99 {row['tick_compute_p99_ms']:.3f} ms, {len(run_latencies)} "
              f"reflexes timed, inserted {row['inserted']}", flush=True)

    if not runs:
        print("no run got going: nothing to report", file=sys.stderr)
        return 1
    figures = {
        "arm_rate_hz": min(r["arm_rate_hz"] for r in runs),  # the worst run
        "period_p50_ms": max(r["period_p50_ms"] for r in runs),
        "period_p99_ms": max(r["period_p99_ms"] for r in runs),
        "period_max_ms": max(r["period_max_ms"] for r in runs),
        "tick_compute_p50_ms": max(r["tick_compute_p50_ms"] for r in runs),
        "tick_compute_p99_ms": max(r["tick_compute_p99_ms"] for r in runs),
        "latency_p50_ticks": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_p99_ticks": float(np.percentile(latencies, 99)) if latencies else None,
        "latency_max_ticks": max(latencies) if latencies else None,
        "reflexes_timed": len(latencies),
        "reflexes_unmatched": unmatched,
    }
    met = {key: meets(figures[key], op, bound) for key, (op, bound) in targets.items()}
    machine = machine_info()
    print(f"{mode}, worst run: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in figures.items()))
    print("targets: " + ", ".join(f"{k} {targets[k][0]} {targets[k][1]}: {'met' if ok else 'NOT met'}"
                                  for k, ok in met.items()))
    safe = all(r["inserted"] and r["peak_force_n"] < r["max_force_n"] for r in runs)
    print(f"every run inserted and stayed under F_max: {safe}")
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_mhz']} MHz, {machine['cpu_count']} cores")
    write_json_atomic(args.json, {
        "mode": mode, "figures": figures, "targets": {k: f"{op} {b}" for k, (op, b) in targets.items()}, "met": met,
        "every_run_inserted_under_f_max": safe, "bag": args.bag, "busy_core": args.busy, "runs": runs,
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine,
    })
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
