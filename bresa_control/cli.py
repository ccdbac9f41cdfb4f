"""``bresa``: the command line of bresa_control.

    bresa evaluate --controller scripted --episodes 50 --seed 0 --json results/scripted.json

Errors in what the user gave (a bad config, an unknown controller) print one clear line and exit
with status 2; Ctrl-C stops cleanly with what was finished written to disk.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from bresa_control.config import ConfigError, load_config
from bresa_control.evaluate import (
    CONTROLLERS,
    SCENARIOS,
    EpisodeResult,
    evaluate,
    format_table,
    report,
    summarise,
    write_json_atomic,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="bresa", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ev = commands.add_parser("evaluate", help="run a controller for N seeded episodes")
    ev.add_argument("--controller", choices=sorted(CONTROLLERS), required=True)
    ev.add_argument("--episodes", type=_positive_int, default=50)
    ev.add_argument("--seed", type=int, default=0, help="episode i uses seed + i (default 0)")
    ev.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    ev.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    ev.add_argument("--json", help="write the summary and every episode here")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bresa`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"bresa: config error: {exc}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    results: list[EpisodeResult] = []
    try:
        evaluate(
            args.controller,
            config,
            args.episodes,
            args.seed,
            scenario=args.scenario,
            progress=not args.no_progress,
            results=results,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted after {len(results)} of {args.episodes} episodes", file=sys.stderr)
        if results and args.json:
            summary = summarise(args.controller, args.scenario, results)
            write_json_atomic(args.json, report(summary, results, args.seed, complete=False))
            print(f"partial results written to {args.json} (complete: false)", file=sys.stderr)
        return 130
    summary = summarise(args.controller, args.scenario, results)
    print(format_table([summary]))
    if args.json:
        write_json_atomic(args.json, report(summary, results, args.seed, complete=True))
        print(f"wrote {args.json}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
