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
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

if sys.argv[1:2] == ["render"]:  # MuJoCo picks its OpenGL backend when first imported
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # CPU offscreen rendering (Debian: libosmesa6)
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from bresa_control.app.controllers import policy_folder
from bresa_control.app.evaluate import evaluate, format_table, plot_episode, report
from bresa_control.app.sweep import RayUnavailable
from bresa_control.common.cards import ModelError, record_evaluation
from bresa_control.common.config import ConfigError, load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.common.paths import portable_command
from bresa_control.learning.registry import CONTROLLERS, METHODS
from bresa_control.learning.settings import CriticTraining, FeasibilityTraining
from bresa_control.policies.by_name import POLICIES
from bresa_control.ros.bringup import DEMO_SEED
from bresa_control.runtime import doctor
from bresa_control.simulation.rollout import EpisodeResult, summarise
from bresa_control.simulation.scenarios import SCENARIOS

T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="bresa", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ev = commands.add_parser("evaluate", help="run a controller for N seeded episodes")
    ev.add_argument("--controller", choices=list(CONTROLLERS), required=True)
    ev.add_argument("--episodes", type=_positive_int, default=50)
    ev.add_argument("--seed", type=int, default=0, help="episode i uses seed + i (default 0)")
    ev.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    ev.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    ev.add_argument("--json", help="write the summary and every episode here")
    ev.add_argument("--models-dir", help="trained models (default: the shipped models/)")
    _add_ray(ev)
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--record-in-card", action="store_true",
                    help="also write the figures into the task policy's model card (key evaluation)")
    ev.add_argument("--plot", metavar="PNG",
                    help="plot the first episode (force, risk, stiffness, reflex) here; default with --json: "
                         "beside it, same name, .png")
    ev.set_defaults(func=_evaluate)

    co = commands.add_parser("collect", help="record offline risk data (scripted + random actions)")
    co.add_argument("--episodes", type=_positive_int, default=160)
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--max-steps", type=_positive_int, default=60, help="decisions per episode")
    co.add_argument("--random-fraction", type=float, default=0.35, help="share of random episodes")
    co.add_argument("--nominal-fraction", type=float, default=0.3,
                    help="share of unmodified spiral-search episodes")
    co.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    co.add_argument("--out", default="data/risk_data.npz")
    co.add_argument("--no-progress", action="store_true")
    co.set_defaults(func=_collect)

    tc = commands.add_parser("train-critic", help="train the risk critic and recovery policy offline")
    tc.add_argument("--data", default="data/risk_data.npz", help="file written by 'bresa collect'")
    tc.add_argument("--seed", type=int, default=0)
    add_settings(tc, CriticTraining, skip=("gamma_risk",))  # gamma_risk is reflex.gamma_risk of the config
    tc.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    tc.add_argument("--out-dir", default="models", help="where the .pt files and cards go")
    tc.add_argument("--no-progress", action="store_true")
    tc.set_defaults(func=_train_offline, trainer="bresa_control.learning.critic_training", settings=CriticTraining)

    tf = commands.add_parser("train-feasibility", help="train the feasibility gate's reachability critic offline "
                                                       "(reflex.gate: feasibility)")
    tf.add_argument("--data", default="data/risk_data.npz", help="file written by 'bresa collect'")
    tf.add_argument("--seed", type=int, default=0)
    add_settings(tf, FeasibilityTraining, skip=("gamma_risk",))  # gamma_risk is reflex.gamma_risk of the config
    tf.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    tf.add_argument("--out-dir", default="models", help="where feasibility_critic.pt and its card go (beside the "
                                                        "recovery it runs with)")
    tf.add_argument("--no-progress", action="store_true")
    tf.set_defaults(func=_train_offline, trainer="bresa_control.learning.feasibility", settings=FeasibilityTraining)

    for method in METHODS.values():  # bresa train-policy, train-recovery-rl, train-sac-lagrangian, train-fisor
        tm = commands.add_parser(method.command, help=method.help)
        add_settings(tm, method.settings)
        if method.uses_data:
            tm.add_argument("--data", default="data/risk_data.npz", help="offline data written by 'bresa collect'")
        tm.add_argument("--models-dir", default="models", help=method.models_dir_help)
        tm.add_argument("--tensorboard", default="runs", help="TensorBoard log folder")
        tm.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
        tm.add_argument("--no-progress", action="store_true")
        tm.set_defaults(func=_train_method, method=method.name)

    ts = commands.add_parser("train-seeds", help="train one learned method once per seed")
    ts.add_argument("--method", choices=list(METHODS), required=True)
    ts.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds (0: the shipped models)")
    add_method_settings(ts)
    ts.add_argument("--out", default="models/seeds", help="seed N of method M goes to OUT/M/seedN/")
    ts.add_argument("--data", default="data/risk_data.npz", help="offline risk data (methods that train on it)")
    ts.add_argument("--models-dir", help="bresa: the critic and recovery to train with (default: the shipped)")
    ts.add_argument("--tensorboard", default="runs", help="TensorBoard log folder")
    ts.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    _add_ray(ts)
    ts.add_argument("--no-progress", action="store_true")
    ts.set_defaults(func=_train_seeds)

    cp = commands.add_parser("compare", help="every controller x training seed x scenario: table, plot, JSON")
    cp.add_argument("--controllers", nargs="+", choices=list(CONTROLLERS), default=list(CONTROLLERS))
    cp.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    cp.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="seeds of the learned methods (0: the shipped models; N: SEEDS_DIR/<method>/seedN)")
    cp.add_argument("--episodes", type=_positive_int, default=100, help="episodes per controller, seed and scenario")
    cp.add_argument("--seed", type=int, default=0, help="episode i uses seed + i, for every cell (default 0)")
    cp.add_argument("--models-dir", help="the shipped models (training seed 0)")
    cp.add_argument("--seeds-dir", default="models/seeds", help="the other training seeds (bresa train-seeds)")
    cp.add_argument("--out", default="results/compare", help="cells/, summary.json, table.md, comparison.png")
    cp.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    _add_ray(cp)
    cp.add_argument("--no-progress", action="store_true")
    cp.set_defaults(func=_compare)

    de = commands.add_parser("demo", help="run the ROS 2 stack for one insertion (the arm with the critic in its loop, "
                                          "and the task policy)")
    de.add_argument("--seed", type=int, default=DEMO_SEED,
                    help=f"episode seed (hole, perception error, start); default {DEMO_SEED}, a typical episode")
    de.add_argument("--duration", type=_positive_float, metavar="S",
                    help="keep the stack running (holding after the insertion) until the arm's simulated clock "
                         "reaches S seconds")
    de.add_argument("--policy", choices=POLICIES, default="sac", help="the task policy (default sac)")
    de.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    de.add_argument("--models-dir", default="", help="trained models (default: the shipped models/)")
    de.add_argument("--run-dir", help="node logs and summaries (default: results/demo-<time>)")
    de.add_argument("--json", help="write the result here")
    de.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    de.add_argument("--no-bag", action="store_true", help="do not record the MCAP bag (nor plot it)")
    de.add_argument("--arm", choices=("mujoco", "franky-sim"), default="mujoco",
                    help="mujoco: the simulated Panda (mujoco_sim); franky-sim: franka_arm driving a simulated "
                         "FR3 over libfranka's network protocol on 127.0.0.1")
    de.add_argument("--separate", action="store_true",
                    help="run the safety critic as a process of its own (three processes; the critic's command then "
                         "reaches the arm a tick or more after its state) instead of in the arm's loop")
    de.set_defaults(func=_demo)

    pl = commands.add_parser("plot", help="plot force, risk, stiffness and reflex of a recorded bag")
    pl.add_argument("bag", help="bag folder written by bresa demo (run folder/bag)")
    pl.add_argument("--out", help="PNG path (default: next to the bag, plot.png)")
    pl.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml (F_max, eps_safe)")
    pl.set_defaults(func=_plot)

    re_ = commands.add_parser("render", help="render one insertion to a GIF, offscreen on the CPU")
    re_.add_argument("--controller", choices=list(CONTROLLERS), default="bresa")
    re_.add_argument("--seed", type=int, default=0)
    re_.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    re_.add_argument("--camera", choices=("close", "side"), default="close")
    re_.add_argument("--out", default="results/insertion.gif")
    re_.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    re_.add_argument("--models-dir", help="trained models (default: the shipped models/)")
    re_.set_defaults(func=_render)

    dr = commands.add_parser("doctor", help="check this robot PC (and the robot) for the arm's 1 kHz loop")
    doctor.add_arguments(dr)
    dr.set_defaults(func=_doctor)
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


def _evaluate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
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
                 failures=failures, ray_report=ray_report)
    except KeyboardInterrupt:
        print(f"\ninterrupted after {len(results)} of {args.episodes} episodes", file=sys.stderr)
        if results and args.json:
            summary = summarise(args.controller, args.scenario, results)
            document = report(summary, results, args.seed, complete=False, command=args.command_line)
            write_json_atomic(args.json, {**document, "ray": ray_report or None})
            print(f"partial results written to {args.json} (complete: false)", file=sys.stderr)
        return 130
    summary = summarise(args.controller, args.scenario, results)
    print(format_table([summary]))
    if ray_report:
        print(f"ran on Ray ({ray_report['address']}): tasks per node "
              f"{ {n['address'] + ' ' + i[:8]: n['tasks'] for i, n in ray_report['nodes'].items()} }")
    if failures:
        print(f"bresa: {len(failures)} episodes failed (seeds {sorted(failures)}): "
              f"{next(iter(failures.values()))}", file=sys.stderr)
    if args.json:
        document = report(summary, results, args.seed, complete=not failures, command=args.command_line)
        write_json_atomic(args.json, {**document, "failed_seeds": {str(k): v for k, v in sorted(failures.items())},
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
        print(f"wrote {plot_episode(args.controller, config, args.scenario, args.seed, plot, args.models_dir)}")
    return 0


def _add_ray(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run on Ray: alone, on this machine's cores; with an ADDRESS (auto, HOST:PORT, "
                             "ray://HOST:PORT), on that cluster. Same results as without")


def _collect(args: argparse.Namespace) -> int:
    from bresa_control.learning import collect

    config = load_config(args.config)
    data = collect.RiskData()
    complete = True
    try:
        collect.collect(config, args.episodes, args.seed, args.max_steps, args.random_fraction,
                        args.nominal_fraction, progress=not args.no_progress, data=data)
    except KeyboardInterrupt:
        complete = False
        print(f"\ninterrupted after {len(data.behaviours)} episodes", file=sys.stderr)
    if not data.cost:
        return 130
    meta = collect.metadata(config, data, args.seed, args.command_line, complete)
    collect.save(args.out, data, meta)
    share = meta["violating_episodes"] / max(meta["episodes"], 1)
    print(f"wrote {args.out}: {meta['episodes']} episodes, {meta['ticks']} ticks, "
          f"{meta['violating_episodes']} episodes with a violation ({share:.0%}), "
          f"{meta['violating_ticks']} violating ticks, complete: {str(complete).lower()}")
    return 0 if complete else 130


def _train_offline(args: argparse.Namespace) -> int:
    """``bresa train-critic`` / ``train-feasibility``: a reflex model trained offline on the ticks."""
    import importlib

    config = load_config(args.config)
    settings = settings_from(args, args.settings, gamma_risk=config.reflex.gamma_risk)
    trainer = importlib.import_module(args.trainer).train_and_export
    return _print_summary(_training(lambda: trainer(config, args.data, args.out_dir, args.seed, settings,
                                                    progress=not args.no_progress, command=args.command_line)))


def _print_summary(outcome: str | int) -> int:
    """An offline training's summary printed (0), or its exit status as is."""
    if isinstance(outcome, int):
        return outcome
    print(outcome)
    return 0


def _training(run: Callable[[], T]) -> T | int:
    """Run one training command's work: its result, or the exit status (Ctrl-C: nothing is written,
    130; a bad setting, file or model: one line, 2)."""
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted: no model written", file=sys.stderr)
        return 130
    except (ModelError, ValueError) as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        return 2


def _train_method(args: argparse.Namespace) -> int:
    """``bresa train-<method>``: one model of a registered method into ``--models-dir``."""
    method = METHODS[args.method]
    config = load_config(args.config)
    settings = settings_from(args, method.settings)
    card = _training(lambda: method.train(config, args.models_dir, settings, getattr(args, "data", ""),
                                          args.tensorboard, not args.no_progress, args.command_line))
    if isinstance(card, int):
        return card
    print(f"wrote {Path(args.models_dir) / method.policy_dir} ({args.method}, seed {card['seed']}): "
          f"{method.describe(card)}")
    return 0


def _train_seeds(args: argparse.Namespace) -> int:
    from bresa_control.learning.seeds import seed_folder, train_seed

    config = load_config(args.config)
    settings = {seed: method_settings(args, METHODS[args.method].settings, seed) for seed in args.seeds}
    if args.ray is not None:
        return _train_seeds_on_ray(args, config, settings)
    done: list[int] = []
    for seed in args.seeds:
        print(f"train-seeds: {args.method} seed {seed} -> {seed_folder(args.out, args.method, seed)}", flush=True)
        try:
            card = train_seed(args.method, seed, config, args.out, settings[seed], args.data, args.models_dir,
                              args.tensorboard, not args.no_progress, args.command_line)
        except KeyboardInterrupt:
            print(f"\ninterrupted during seed {seed}: seeds {done or 'none'} are written, {seed} is not",
                  file=sys.stderr)
            return 130
        except (ModelError, ValueError) as exc:
            print(f"bresa: {exc}", file=sys.stderr)
            return 2
        done.append(seed)
        _seed_done(args.method, seed, card)
    return 0


def _seed_done(method: str, seed: int, card: dict[str, Any]) -> None:
    print(f"train-seeds: {method} seed {seed} done in {card['training_wall_time_s']:.0f} s: "
          f"{METHODS[method].describe(card)}", flush=True)


def _train_seeds_on_ray(args: argparse.Namespace, config: Any, settings: dict[int, Any]) -> int:
    """Every seed as one Ray task; the data and models go through the object store, each seed's
    files come back and are written here."""
    from bresa_control.app.sweep import RaySession, pack, training_task, unpack
    from bresa_control.common.cards import models_folder
    from bresa_control.learning.seeds import reflex_model_files, seed_folder

    data = Path(args.data)
    uses_data, reflex_files = METHODS[args.method].uses_data, METHODS[args.method].reflex_files
    if uses_data and not data.is_file():
        print(f"bresa: {data} does not exist; make it with 'bresa collect'", file=sys.stderr)
        return 2
    failed: dict[int, str] = {}
    done: list[int] = []
    try:
        with RaySession(args.ray) as session:
            data_ref = session.put(data.read_bytes() if uses_data else b"")
            models = session.put(pack(models_folder(args.models_dir), reflex_model_files(reflex_files)))
            for seed in args.seeds:
                session.submit(seed, training_task, args.method, seed, config, settings[seed], data_ref, models,
                               args.command_line)
            print(f"train-seeds: {args.method} seeds {args.seeds} submitted to Ray", flush=True)
            for outcome in session.as_completed():
                if outcome.error is not None:
                    failed[outcome.key] = outcome.error
                    print(f"train-seeds: {args.method} seed {outcome.key} failed: {outcome.error}", file=sys.stderr)
                    continue
                files, card = outcome.result
                folder = seed_folder(args.out, args.method, outcome.key)
                incoming = unpack(files, folder.with_name(folder.name + ".incoming"))
                if folder.exists():
                    shutil.rmtree(folder)
                incoming.rename(folder)
                done.append(outcome.key)
                _seed_done(args.method, outcome.key, card)
    except KeyboardInterrupt:
        print(f"\ninterrupted: seeds {sorted(done) or 'none'} are written, the others are not", file=sys.stderr)
        return 130
    if failed:
        print(f"bresa: seeds {sorted(failed)} failed on Ray (after a retry)", file=sys.stderr)
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    from bresa_control.app import compare

    config = load_config(args.config)
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
    status = 0
    try:
        documents = compare.run_cells(cells, config, args.episodes, args.seed, out, args.models_dir, args.seeds_dir,
                                      not args.no_progress, args.command_line, args.ray)
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
    rows = compare.aggregate(partial)
    table = compare.markdown(rows)
    write_json_atomic(out / "summary.json", {"complete": status == 0 and all(r["complete"] for r in rows),
                                             "command": args.command_line, "episodes": args.episodes,
                                             "seed": args.seed, "interval": compare.INTERVAL, "rows": rows})
    (out / "table.md").write_text(table + "\n")
    print(table)
    target = compare.target_check(rows)
    if target:
        (out / "target.md").write_text(target + "\n")
        print(f"\n{target}")
    print(f"wrote {out / 'summary.json'}, {out / 'table.md'}, {str(out / 'target.md') + ', ' if target else ''}"
          f"{compare.plot(rows, out / 'comparison.png')}")
    return status


def add_settings(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of a settings dataclass, with its default and help text: the
    dataclass (``learning/settings.py``) is the one place the defaults live."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default {f.default})"
        parser.add_argument(flag, default=list(f.default) if isinstance(f.default, tuple) else f.default,
                            help=help_text, **_flag_type(f.default))


def _fit(value: Any, default: Any, name: str) -> Any:
    """A flag's value in the shape of the setting's default (a tuple, or one value)."""
    if not isinstance(value, list):
        return value
    if isinstance(default, tuple):
        return tuple(value)
    if len(value) != 1:
        print(f"bresa: --{name.replace('_', '-')} takes one value for this method, got {value}", file=sys.stderr)
        raise SystemExit(2)
    return value[0]


def _flag_type(default: Any) -> dict[str, Any]:
    """argparse's type (and nargs) for a setting with this default."""
    if isinstance(default, bool):
        return {"type": _boolean, "metavar": "{true,false}"}
    if isinstance(default, tuple):
        return {"type": int, "nargs": "+"}
    return {"type": type(default)}


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def add_method_settings(parser: argparse.ArgumentParser) -> None:
    """``train-seeds``: a flag for every setting of any registered method but the seed, with no
    default: a method keeps its own defaults unless a flag is given (:func:`method_settings`)."""
    owners: dict[str, list[tuple[str, dataclasses.Field[Any]]]] = {}
    for method in METHODS.values():
        for f in dataclasses.fields(method.settings):
            if f.name != "seed":
                owners.setdefault(f.name, []).append((method.name, f))
    for name, fields in owners.items():
        defaults = [f.default for _, f in fields]
        # one method's list is another's single value (critic_hidden): take a list, method_settings fits it
        kind = _flag_type(next((d for d in defaults if isinstance(d, tuple)), defaults[0]))
        parser.add_argument("--" + name.replace("_", "-"), default=argparse.SUPPRESS, **kind,
                            help=f"{fields[0][1].metadata.get('help', '')} ({', '.join(m for m, _ in fields)}; "
                                 "default: the method's)")


def method_settings(args: argparse.Namespace, cls: type, seed: int) -> Any:
    """A method's settings for one seed: its defaults, the flags given, and ``seed``; a flag the
    method has no setting for exits with status 2 naming it."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {f.name for m in METHODS.values() for f in dataclasses.fields(m.settings) if hasattr(args, f.name)}
    foreign = sorted(given - names)
    if foreign:
        print(f"bresa: {args.method} has no setting {', '.join('--' + n.replace('_', '-') for n in foreign)}; "
              f"its settings: {', '.join(sorted(names - {'seed'}))}", file=sys.stderr)
        raise SystemExit(2)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    values = {n: _fit(getattr(args, n), defaults[n], n) for n in given}
    try:
        return cls(**values, seed=seed)
    except ValueError as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def settings_from(args: argparse.Namespace, cls: type, **fixed: Any) -> Any:
    """The settings dataclass filled from parsed flags (see :func:`add_settings`) and ``fixed``;
    an invalid combination exits with status 2 naming the setting."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in fixed}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**values, **fixed)
    except ValueError as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _demo(args: argparse.Namespace) -> int:
    from bresa_control.ros.runner import run_demo  # imports rclpy: only this command needs ROS

    load_config(args.config)  # a bad file fails here, before any node starts
    try:
        result = run_demo(args.config, args.seed, args.duration, args.run_dir, args.policy, args.models_dir,
                          args.log_level, record=not args.no_bag, arm=args.arm, separate=args.separate)
    except RuntimeError as exc:
        print(f"bresa demo: {exc}", file=sys.stderr)
        return 1
    result["plot"] = None
    if result["bag"]:
        print(f"bag: {result['bag']} ({sum(result['bag_counts'].values())} messages)")
        missing = {topic: n for topic, n in result["bag_missing"].items() if n}
        if missing:
            print("bag: the nodes published messages the recorder never received: "
                  + ", ".join(f"{topic} {n}" for topic, n in missing.items())
                  + " (the recorder fell more than a second behind, or a node could not hand over its last"
                  " messages at shutdown: see the node logs)", file=sys.stderr)
        result["plot"] = str(_plot_bag(result["bag"], Path(result["run_dir"]) / "plot.png", args.config))
        print(f"plot: {result['plot']}")
    rate = result["critic_rate_hz"]
    where = "in the arm's loop" if result["composed"] else "its own process"
    timing = (f"critic ({where}) {rate:.0f} Hz with period p99 {result['critic_period_p99_ms']:.2f} ms" if rate
              else "the critic never received a task action")
    print(
        f"inserted: {result['inserted']}, peak force {result['peak_force_n']:.1f} N (F_max "
        f"{result['max_force_n']:g} N), reflexes: {result['reflex_count']}, {timing}; "
        f"logs in {result['run_dir']}"
    )
    if result["arm"] == "franky-sim":
        print(_arm_line(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0 if result["inserted"] else 1


def _arm_line(result: dict[str, Any]) -> str:
    """The franka_arm loop over the protocol, in one line."""
    if result["arm_rate_hz"] is None:
        return "franka_arm: the motion never started"
    latency = result["reflex_latency_ticks"]
    reflexes = (f"reflex latency median {np.median(latency):g} / max {max(latency)} robot ticks" if latency
                else "no reflex to time")
    line = (f"franka_arm: {result['arm_rate_hz']:.0f} Hz, period p50 {result['arm_period_p50_ms']:.2f} / p99 "
            f"{result['arm_period_p99_ms']:.2f} ms, robot ticks answered: worst 100-tick window "
            f"{result['arm_command_success_rate_min']:.2f}, {result['arm_missed_robot_ticks']} of "
            f"{result['arm_robot_ticks']} missed; {reflexes}; torques over Franka's rate / torque limits: "
            f"{result['torque_rate_violations']} / {result['torque_limit_violations']}")
    if result["arm_error"]:
        line += f"; stopped: {result['arm_error']}"
    return line


def _render(args: argparse.Namespace) -> int:
    from bresa_control.app.render import render_episode

    path, frames, inserted = render_episode(args.controller, load_config(args.config), args.out, args.seed,
                                            args.scenario, args.camera, models_dir=args.models_dir)
    print(f"wrote {path}: {frames} frames, {'inserted' if inserted else 'not inserted'}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    return doctor.run(args)  # prints every check; 1 when one blocks a run


def _plot(args: argparse.Namespace) -> int:
    try:
        out = _plot_bag(args.bag, args.out or Path(args.bag).parent / "plot.png", args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"bresa plot: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def _plot_bag(bag: str | Path, out: str | Path, config_path: str | None) -> Path:
    from bresa_control.app.plots import plot_run, series_from_bag
    from bresa_control.safety.reflex import gate_thresholds

    if not Path(bag).is_dir():
        raise FileNotFoundError(f"bag folder {bag} does not exist")
    config = load_config(config_path)
    return plot_run(series_from_bag(bag), out, config.safety.max_force_n, gate_thresholds(config.reflex)[0],
                    f"bresa demo: {Path(bag).parent.name}")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
