"""The evaluation commands: ``bresa evaluate``, ``compare``, ``render`` and ``plot``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from bresa_control.app.commands.common import add_ray, models_for, positive_int, seeds_for
from bresa_control.app.controllers import policy_folder
from bresa_control.app.evaluate import evaluate, format_table, plot_episode, report
from bresa_control.common.cards import record_evaluation
from bresa_control.common.config import load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.learning.registry import CONTROLLERS
from bresa_control.simulation.rollout import EpisodeResult, summarise
from bresa_control.simulation.scenarios import SCENARIOS
from bresa_control.tasks import DEFAULT_TASK, TASKS


def add_commands(commands: Any) -> None:
    """The evaluation commands, on the ``bresa`` parser's sub-commands."""
    ev = commands.add_parser("evaluate", help="run a controller for N seeded episodes")
    ev.add_argument("--controller", choices=list(CONTROLLERS), required=True)
    ev.add_argument("--episodes", type=positive_int, default=50)
    ev.add_argument("--seed", type=int, default=0, help="episode i uses seed + i (default 0)")
    ev.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    ev.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK,
                    help="the task (docs/adding-a-task.md); trained controllers need models trained for it")
    ev.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    ev.add_argument("--json", help="write the summary and every episode here")
    ev.add_argument("--models-dir", help="trained models (default: the task's shipped models: models/, models/maze/)")
    add_ray(ev)
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--record-in-card", action="store_true",
                    help="also write the figures into the task policy's model card (key evaluation)")
    ev.add_argument("--plot", metavar="PNG",
                    help="plot the first episode (force, risk, stiffness, reflex) here; default with --json: "
                         "beside it, same name, .png")
    ev.set_defaults(func=_evaluate)

    cp = commands.add_parser("compare", help="every controller x training seed x scenario: table, plot, JSON")
    cp.add_argument("--controllers", nargs="+", choices=list(CONTROLLERS), default=list(CONTROLLERS))
    cp.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    cp.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="seeds of the learned methods (0: the shipped models; N: SEEDS_DIR/<method>/seedN)")
    cp.add_argument("--episodes", type=positive_int, default=100, help="episodes per controller, seed and scenario")
    cp.add_argument("--seed", type=int, default=0, help="episode i uses seed + i, for every cell (default 0)")
    cp.add_argument("--models-dir", help="training seed 0 (default: the task's shipped models: models/, models/maze/)")
    cp.add_argument("--seeds-dir", help="the other training seeds, as bresa train-seeds writes them (default: the "
                                        "models folder's seeds/: models/seeds/, models/maze/seeds/)")
    cp.add_argument("--out", default="results/compare", help="cells/, summary.json, table.md, comparison.png")
    cp.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK,
                    help="the task (docs/adding-a-task.md); the models must be trained for it")
    cp.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    add_ray(cp)
    cp.add_argument("--no-progress", action="store_true")
    cp.add_argument("--plan-only", action="store_true",
                    help="run nothing: say which cells in OUT are finished with today's models and config "
                         "(a run would reuse them) and which would run")
    cp.add_argument("--summary-only", action="store_true",
                    help="run nothing: write the summary, table, target check and plot of the cells in OUT "
                         "finished with today's models and config (a comparison still running or cut short; "
                         "the summary says it is not complete while cells are left to run)")
    cp.set_defaults(func=_compare)

    re_ = commands.add_parser("render", help="render one insertion to a GIF, offscreen on the CPU")
    re_.add_argument("--controller", choices=list(CONTROLLERS), default="bresa")
    re_.add_argument("--seed", type=int, default=0)
    re_.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    re_.add_argument("--camera", choices=("close", "side"), default="close")
    re_.add_argument("--out", default="results/insertion.gif")
    re_.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    re_.add_argument("--models-dir", help="trained models (default: the shipped models/)")
    re_.set_defaults(func=_render)

    pl = commands.add_parser("plot", help="plot force, risk, stiffness and reflex of a recorded bag")
    pl.add_argument("bag", help="bag folder written by bresa demo (run folder/bag)")
    pl.add_argument("--out", help="PNG path (default: next to the bag, plot.png)")
    pl.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml (F_max, eps_safe)")
    pl.set_defaults(func=_plot)


def _evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    args.models_dir = models_for(args.task, args.models_dir)
    if args.record_in_card and policy_folder(args.controller) is None:
        print(f"bresa: --record-in-card: the {args.controller} controller runs no trained task policy, "
              "so there is no model card to record in", file=sys.stderr)
        return 2
    results: list[EpisodeResult] = []
    failures: dict[int, str] = {}
    ray_report: dict[str, Any] = {}
    try:
        evaluate(args.controller, config, args.episodes, args.seed, scenario=args.scenario,
                 progress=not args.no_progress, results=results, models_dir=args.models_dir, ray_address=args.ray,
                 failures=failures, ray_report=ray_report, task=args.task)
    except KeyboardInterrupt:
        print(f"\ninterrupted after {len(results)} of {args.episodes} episodes", file=sys.stderr)
        if results and args.json:
            summary = summarise(args.controller, args.scenario, results)
            document = report(summary, results, args.seed, complete=False, command=args.command_line)
            write_json_atomic(args.json, {**document, "task": args.task, "ray": ray_report or None})
            print(f"partial results written to {args.json} (complete: false)", file=sys.stderr)
        return 130
    summary = summarise(args.controller, args.scenario, results)
    print(format_table([summary], args.task))
    if ray_report:
        print(f"ran on Ray ({ray_report['address']}): tasks per node "
              f"{ {n['address'] + ' ' + i[:8]: n['tasks'] for i, n in ray_report['nodes'].items()} }")
    if failures:
        print(f"bresa: {len(failures)} episodes failed (seeds {sorted(failures)}): "
              f"{next(iter(failures.values()))}", file=sys.stderr)
    if args.json:
        document = report(summary, results, args.seed, complete=not failures, command=args.command_line)
        write_json_atomic(args.json, {**document, "task": args.task,
                                      "failed_seeds": {str(k): v for k, v in sorted(failures.items())},
                                      "ray": ray_report or None})
        print(f"wrote {args.json}")
    if failures:
        return 1
    if args.record_in_card:
        folder = policy_folder(args.controller, args.models_dir)
        assert folder is not None  # checked above: the controller runs a trained task policy
        print(f"recorded in {record_evaluation(folder, summary, args.command_line)}")
    plot = args.plot or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if plot:
        png = plot_episode(args.controller, config, args.scenario, args.seed, plot, args.models_dir, args.task)
        print(f"wrote {png}")
    return 0


def _print_plan(pending: list[Any], total: int, out: Path) -> int:
    """``bresa compare --plan-only``: what a run would reuse and what it would run."""
    print(f"{total} cells: {total - len(pending)} finished in {out / 'cells'} with these models, config and "
          f"episodes (a run reuses them), {len(pending)} to run")
    for cell in pending:
        print(f"  to run: {cell.name}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from bresa_control.app import compare

    config = load_config(args.config)
    args.models_dir, args.seeds_dir = models_for(args.task, args.models_dir), seeds_for(args.task, args.seeds_dir)
    out = Path(args.out)
    try:
        cells = compare.plan(args.controllers, args.scenarios, args.training_seeds)
    except ValueError as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        return 2
    missing = compare.missing_models(cells, args.models_dir, args.seeds_dir)
    if missing:
        print("bresa: models missing, nothing run (train them with 'bresa train-seeds', or leave those controllers "
              "out with --controllers):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    if args.plan_only or args.summary_only:
        finished, pending = compare.split_finished(cells, config, args.episodes, args.seed, out, args.models_dir,
                                                   args.seeds_dir, args.task)
        if args.plan_only:
            return _print_plan(pending, len(cells), out)
        if not finished:
            print(f"bresa: no cell in {out / 'cells'} is finished with today's models, config and episodes: "
                  "nothing to summarise", file=sys.stderr)
            return 2
        print(f"{len(finished)} of {len(cells)} cells finished; {len(pending)} left to run")
        _summarise(args, out, finished, left_to_run={(c.controller, c.scenario) for c in pending})
        return 0
    status = 0
    try:
        documents = compare.run_cells(cells, config, args.episodes, args.seed, out, args.models_dir, args.seeds_dir,
                                      not args.no_progress, args.command_line, args.ray, args.task)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are in {out / 'cells'}; run the same command again to go on",
              file=sys.stderr)
        status = 130
    partial = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))
               if p.name in {c.name for c in cells}] if status else documents
    if not partial:
        return status
    failed = {d["controller"] + "/" + d["scenario"]: sorted(map(int, d["failed_seeds"]))
              for d in partial if d.get("failed_seeds")}
    if failed:
        print(f"bresa: episodes failed on Ray (after a retry), by cell and seed: {failed}", file=sys.stderr)
        status = status or 1
    _summarise(args, out, partial, cut_short=status != 0)
    return status


def _summarise(args: argparse.Namespace, out: Path, documents: list[dict[str, Any]],
               left_to_run: AbstractSet[tuple[str, str]] = frozenset(), cut_short: bool = False) -> None:
    """Write and print the comparison of ``documents`` (summary.json, table.md, target.md, plot).
    Rows with cells ``left_to_run`` (controller, scenario) say they are incomplete; ``cut_short``:
    the run did not finish (the summary is not complete)."""
    from bresa_control.app import compare

    rows = compare.aggregate(documents)
    for row in rows:
        row["complete"] = row["complete"] and (row["controller"], row["scenario"]) not in left_to_run
    table = compare.markdown(rows, args.task)
    complete = not cut_short and not left_to_run and all(r["complete"] for r in rows)
    write_json_atomic(out / "summary.json", {"complete": complete,
                                             "command": args.command_line, "episodes": args.episodes,
                                             "seed": args.seed, "interval": compare.INTERVAL, "rows": rows})
    (out / "table.md").write_text(table + "\n")
    print(table)
    target = compare.target_check(rows, TASKS[args.task].comparison_targets)
    if target:
        (out / "target.md").write_text(target + "\n")
        print(f"\n{target}")
    print(f"wrote {out / 'summary.json'}, {out / 'table.md'}, {str(out / 'target.md') + ', ' if target else ''}"
          f"{compare.plot(rows, out / 'comparison.png')}")


def _render(args: argparse.Namespace) -> int:
    from bresa_control.app.render import render_episode

    path, frames, inserted = render_episode(args.controller, load_config(args.config), args.out, args.seed,
                                            args.scenario, args.camera, models_dir=args.models_dir)
    print(f"wrote {path}: {frames} frames, {'inserted' if inserted else 'not inserted'}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    try:
        out = plot_bag(args.bag, args.out or Path(args.bag).parent / "plot.png", args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"bresa plot: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def plot_bag(bag: str | Path, out: str | Path, config_path: str | None) -> Path:
    from bresa_control.app.plots import plot_run, series_from_bag
    from bresa_control.safety.reflex import gate_thresholds

    if not Path(bag).is_dir():
        raise FileNotFoundError(f"bag folder {bag} does not exist")
    config = load_config(config_path)
    return plot_run(series_from_bag(bag), out, config.safety.max_force_n, gate_thresholds(config.reflex)[0],
                    f"bresa demo: {Path(bag).parent.name}")
