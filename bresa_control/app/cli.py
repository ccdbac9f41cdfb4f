"""bresa: the command line of bresa_control.

    bresa evaluate --controller scripted --episodes 50 --seed 0 --json results/scripted.json
    bresa collect --episodes 200 --max-steps 120 --seed 0 --out data/risk_data.npz
    bresa train-critic --data data/risk_data.npz --seed 0 --out-dir models
    bresa train-policy --timesteps 50000 --seed 0 --models-dir models
    bresa train-recovery-rl --timesteps 25000 --seed 0 --models-dir models
    bresa train-fisor --steps 20000 --seed 0 --models-dir models
    bresa train-seeds --method sac-lagrangian --seeds 1 2 --timesteps 25000 --out models/seeds
    bresa demo --json results/demo.json
    bresa plot results/demo-<time>/bag
    bresa render --controller bresa --seed 0 --out results/insertion.gif
    bresa doctor --robot-ip 172.16.0.2

Errors in what the user gave (a bad config, an unknown controller) print one clear line and exit
with status 2; Ctrl-C stops cleanly with what was finished written to disk.
"""

from __future__ import annotations

import argparse
import os
import sys

if sys.argv[1:2] == ["render"]:  # MuJoCo picks its OpenGL backend when first imported
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # CPU offscreen rendering (Debian: libosmesa6)
from collections.abc import Sequence

from bresa_control.app.commands import evaluation, stack, training
from bresa_control.app.sweep import RayUnavailable
from bresa_control.common.cards import ModelError
from bresa_control.common.config import ConfigError
from bresa_control.common.paths import portable_command


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per job; each group in ``app/commands/``)."""
    parser = argparse.ArgumentParser(prog="bresa", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    evaluation.add_commands(commands)
    training.add_commands(commands)
    stack.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bresa`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command_line = ["bresa", *portable_command(argv)]  # recorded in data files and model cards
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"bresa: config error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"bresa: model error: {exc}", file=sys.stderr)
        return 2
    except RayUnavailable as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
