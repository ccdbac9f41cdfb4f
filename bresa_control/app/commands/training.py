"""The training commands: ``bresa collect``, ``train-critic``, ``train-feasibility``, one
``train-<method>`` per method of the registry, and ``train-seeds``."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bresa_control.app.commands.common import add_ray, add_settings, flag_type, positive_int, settings_from
from bresa_control.common.cards import POLICY_FILE, ModelError, check_task, read_card
from bresa_control.common.config import load_config
from bresa_control.learning.registry import METHODS
from bresa_control.learning.settings import CriticTraining, FeasibilityTraining
from bresa_control.policies.by_name import load_policy
from bresa_control.tasks import DEFAULT_TASK, TASKS, make_task

T = TypeVar("T")


def add_commands(commands: Any) -> None:
    """The training commands, on the ``bresa`` parser's sub-commands."""
    co = commands.add_parser("collect", help="record offline risk data (scripted + random actions)")
    co.add_argument("--episodes", type=positive_int, default=160)
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--max-steps", type=positive_int, default=60, help="decisions per episode")
    co.add_argument("--random-fraction", type=float, default=0.35, help="share of random episodes")
    co.add_argument("--nominal-fraction", type=float, default=0.3,
                    help="share of unmodified spiral-search episodes")
    co.add_argument("--policy-dir", help="a models folder whose SAC task policy (task_policy.zip) drives the "
                                         "'policy' episodes")
    co.add_argument("--policy-fraction", type=float, default=0.0,
                    help="share of episodes driven by --policy-dir's task policy with noise (default 0: none)")
    co.add_argument("--policy-noise", type=float, default=0.2,
                    help="standard deviation of the Gaussian noise on each of its action values (default 0.2)")
    co.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK,
                    help="the task whose scene and scripted behaviours run (docs/adding-a-task.md)")
    co.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    co.add_argument("--out", default="data/risk_data.npz")
    co.add_argument("--no-progress", action="store_true")
    co.set_defaults(func=_collect)

    offline = (  # the reflex's models trained offline on the ticks: command, help, settings, trainer, out
        ("train-critic", "train the risk critic and recovery policy offline", CriticTraining,
         "bresa_control.learning.critic_training", "where the .pt files and cards go"),
        ("train-feasibility", "train the feasibility gate's reachability critic offline (reflex.gate: feasibility)",
         FeasibilityTraining, "bresa_control.learning.feasibility",
         "where feasibility_critic.pt and its card go (beside the recovery it runs with)"),
    )
    for command, help_text, settings, trainer, out_help in offline:
        to = commands.add_parser(command, help=help_text)
        to.add_argument("--data", default="data/risk_data.npz", help="file written by 'bresa collect'")
        to.add_argument("--seed", type=int, default=0)
        add_settings(to, settings, skip=("gamma_risk",))  # gamma_risk is reflex.gamma_risk of the config
        to.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
        to.add_argument("--out-dir", default="models", help=out_help)
        to.add_argument("--no-progress", action="store_true")
        to.set_defaults(func=_train_offline, trainer=trainer, settings=settings)

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
    add_ray(ts)
    ts.add_argument("--no-progress", action="store_true")
    ts.set_defaults(func=_train_seeds)


def _collect(args: argparse.Namespace) -> int:
    from bresa_control.learning import collect

    config = load_config(args.config)
    task = make_task(args.task, config)
    policy = None
    if args.policy_dir:
        check_task(read_card(Path(args.policy_dir) / POLICY_FILE), Path(args.policy_dir) / POLICY_FILE, task.name)
        policy = load_policy("sac", config, args.policy_dir, task.scripted)
    data = collect.RiskData()
    complete = True
    try:
        collect.collect(config, args.episodes, args.seed, args.max_steps, args.random_fraction,
                        args.nominal_fraction, progress=not args.no_progress, data=data, policy=policy,
                        policy_fraction=args.policy_fraction, policy_noise=args.policy_noise, task=task.name)
    except ValueError as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        complete = False
        print(f"\ninterrupted after {len(data.behaviours)} episodes", file=sys.stderr)
    if not data.cost:
        return 130
    meta = collect.metadata(config, data, args.seed, args.command_line, complete, task.name)
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
        kind = flag_type(next((d for d in defaults if isinstance(d, tuple)), defaults[0]))
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
