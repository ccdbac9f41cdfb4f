"""Closed-loop check of a trained critic: the spiral search with the learned reflex in the loop.

    python bench/reflex_check.py --models-dir models --episodes 6 --json results/reflex_check.json

A well-calibrated critic leaves a safe controller alone: few reflexes, the same success as
without it. Prints per-episode success, reflexes fired, ticks under the reflex, peak force, and
the critic's mean risk in free space (tip more than 1 cm above the estimated top face) and in
contact; writes the same as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from bresa_control.common.config import load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.policies.scripted import SpiralSearch
from bresa_control.safety.models import load_reflex_models
from bresa_control.simulation.env import TaskEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eps-safe", type=float, help="override reflex.eps_safe")
    parser.add_argument("--json", default="results/reflex_check.json")
    args = parser.parse_args()

    config = load_config()
    reflex = dataclasses.replace(config.reflex, mode="control-rate",
                                 eps_safe=args.eps_safe if args.eps_safe is not None else config.reflex.eps_safe)
    config = dataclasses.replace(config, reflex=reflex)
    critic, recovery, _ = load_reflex_models(config, args.models_dir)
    env = TaskEnv(config, critic, recovery)
    policy = SpiralSearch(config)
    free, contact = [], []

    def record(features: np.ndarray, _cost: float) -> None:
        (free if features[9] > 1.0 else contact).append(critic.risk(features))

    env.tick_recorder = record
    episodes = []
    for i in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + i)
        policy.reset()
        fired = ticks = 0
        peak = 0.0
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            fired += info["reflex_fired"]
            ticks += info["reflex_ticks"]
            peak = max(peak, info["peak_force_n"])
            if terminated or truncated:
                break
        episodes.append({"seed": args.seed + i, "inserted": bool(info["inserted"]), "reflexes": fired,
                         "reflex_ticks": ticks, "ticks": int(round(info["time_s"] * 1000)),
                         "peak_force_n": peak})
        print(episodes[-1])
    result = {
        "eps_safe": config.reflex.eps_safe,
        "success_rate": float(np.mean([e["inserted"] for e in episodes])),
        "reflex_share_of_ticks": float(sum(e["reflex_ticks"] for e in episodes) / sum(e["ticks"] for e in episodes)),
        "mean_risk_free_space": float(np.mean(free)) if free else None,
        "mean_risk_near_or_in_contact": float(np.mean(contact)) if contact else None,
        "episodes": episodes,
    }
    print({k: v for k, v in result.items() if k != "episodes"})
    write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
