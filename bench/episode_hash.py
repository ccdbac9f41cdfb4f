"""A fingerprint of what the simulation does, to check that a refactoring changed nothing: run it
on two commits and compare the printed hashes.

    python bench/episode_hash.py                      # peg insertion, the spiral search
    python bench/episode_hash.py --data A.npz B.npz   # do two bresa collect files hold the same rows?

Episodes: seeds 3 and 11, 40 decisions at most, in nominal, hole-moves, block-rises and push-down,
with the reflex off and with the shipped critic and recovery at every tick; the hash covers every
observation, reward and info value. ``--data``: every array the first file holds (but ``meta``)
must be in the second, equal; arrays only the second holds (a newer format's) are listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib

import numpy as np

from bresa_control.common.config import load_config
from bresa_control.safety.models import load_reflex_models
from bresa_control.simulation.env import TaskEnv
from bresa_control.tasks import DEFAULT_TASK, TASKS

SCENARIOS = ("nominal", "hole-moves", "block-rises", "push-down")


def episode_hash(task: str, models_dir: str | None) -> str:
    """SHA-256 of the episodes above, for ``task``'s scripted controller."""
    config = load_config()
    digest = hashlib.sha256()
    for scenario in SCENARIOS:
        for mode in ("off", "control-rate"):
            cfg = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode=mode))
            models = load_reflex_models(cfg, models_dir, task)[:2] if mode != "off" else (None, None)
            env = TaskEnv(cfg, *models, scenario=scenario, task=task)
            policy = env.task.scripted()
            for seed in (3, 11):
                obs, _ = env.reset(seed=seed)
                policy.reset()
                digest.update(obs.tobytes())
                for _ in range(40):
                    obs, reward, terminated, truncated, info = env.step(policy.act(obs))
                    digest.update(obs.tobytes())
                    digest.update(np.float64(reward).tobytes())
                    digest.update(repr(sorted(info.items())).encode())
                    if terminated or truncated:
                        break
    return digest.hexdigest()


def same_rows(first: str, second: str) -> bool:
    """Print whether ``second`` holds every array of ``first`` unchanged; return it."""
    with np.load(first) as a, np.load(second) as b:
        same = all(name in b.files and np.array_equal(a[name], b[name]) for name in a.files if name != "meta")
        print(f"{second} holds every array of {first} unchanged: {same}; only in {second}: "
              f"{sorted(set(b.files) - set(a.files))}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK)
    parser.add_argument("--models-dir", help="the critic and recovery (default: the shipped models/)")
    parser.add_argument("--data", nargs=2, metavar=("A", "B"), help="compare two bresa collect files instead")
    args = parser.parse_args()
    if args.data:
        return 0 if same_rows(*args.data) else 1
    print(episode_hash(args.task, args.models_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
