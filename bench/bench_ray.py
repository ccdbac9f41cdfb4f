"""Benchmark of sweeps on Ray: episodes per second in one process and on local Ray, and what
starting Ray costs, so its overhead shows.

    python bench/bench_ray.py --episodes 40 --json results/bench_ray.json

Runs ``--episodes`` seeded episodes of ``--controller`` (default ``bresa``, nominal) three ways:
  * ``single_process_episodes_per_s``: ``bresa evaluate`` without ``--ray`` (environment built once);
  * ``ray_episodes_per_s``: with ``--ray`` on this machine's cores, from submitting the tasks to the
    last result (``ray_sweep_s``), workers building their environments included;
  * ``ray_start_s`` and ``ray_stop_s``: starting and stopping local Ray around it;
and checks that both gave the same episodes. Ray runs inside a network namespace of its own (the
script re-runs itself under ``unshare -n``, as root), so it talks over 127.0.0.1 only. Timing
only: nothing here asserts a speed; the JSON records the CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

INSIDE = "BRESA_BENCH_RAY_NAMESPACE"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--controller", default="bresa")
    parser.add_argument("--json", default="results/bench_ray.json")
    args = parser.parse_args()
    if os.environ.get(INSIDE) != "1":  # Ray on loopback only: run again in a network namespace of our own
        script = f"ip link set lo up && exec {sys.executable} {' '.join(map(str, sys.argv))}"
        return subprocess.run(["unshare", "-n", "bash", "-c", script], env={**os.environ, INSIDE: "1"}).returncode

    from bresa_control.app.evaluate import evaluate
    from bresa_control.app.sweep import LOCAL, EpisodeJob, RaySession, run_episodes
    from bresa_control.common.cards import models_folder
    from bresa_control.common.config import load_config
    from bresa_control.common.files import write_json_atomic
    from bresa_control.runtime.timing import machine_info

    config = load_config()
    seeds = list(range(args.episodes))
    started = time.perf_counter()
    single = evaluate(args.controller, config, args.episodes, 0, progress=False)
    single_s = time.perf_counter() - started

    started = time.perf_counter()
    with RaySession(LOCAL) as session:
        ready = time.perf_counter()
        job = EpisodeJob(args.controller, args.controller, "nominal", models_folder(None))
        on_ray = sorted((r for part in run_episodes(session, [job], config, seeds) for r in part.results),
                        key=lambda r: r.seed)
        swept = time.perf_counter()
        cpus, nodes = session.cpus(), session.describe()["nodes"]
    stopped = time.perf_counter()

    figures = {
        "controller": args.controller, "episodes": args.episodes, "ray_cpus": cpus,
        "single_process_s": round(single_s, 2),
        "single_process_episodes_per_s": round(args.episodes / single_s, 3),
        "ray_start_s": round(ready - started, 2),
        "ray_sweep_s": round(swept - ready, 2),
        "ray_episodes_per_s": round(args.episodes / (swept - ready), 3),
        "ray_episodes_per_s_with_start_and_stop": round(args.episodes / (stopped - started), 3),
        "ray_stop_s": round(stopped - swept, 2),
        "ray_node_addresses": sorted({n["address"] for n in nodes.values()}),
        "same_episodes": [asdict(r) for r in single] == [asdict(r) for r in on_ray],
        "machine": machine_info(),
    }
    for key, value in figures.items():
        if key != "machine":
            print(f"{key:42s} {value}")
    print(f"machine: {figures['machine']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.json, figures)
    print(f"wrote {args.json}")
    return 0 if figures["same_episodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
