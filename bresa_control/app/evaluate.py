"""Run a controller for N seeded episodes and summarise success, safety and speed.

Episode ``i`` of a run with seed ``S`` is reset with seed ``S + i``, so two controllers evaluated
with the same seed meet the same holes, perception errors and start poses.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bresa_control.common.cards import RECOVERY_RL_DIR, SAC_LAGRANGIAN_DIR, models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller
from bresa_control.policies.residual import ResidualController, load_task_policy
from bresa_control.policies.scripted import SpiralSearch
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.recovery_rl import RecoveryRLController, load_recovery_rl
from bresa_control.safety.reflex import ForceGuardRisk, RecoveryModel, RiskModel, SoftenGains
from bresa_control.simulation.env import PegInsertion
from bresa_control.simulation.rollout import EpisodeResult, run_episode
from bresa_control.simulation.scenarios import SCENARIOS

# name -> (policy, reflex mode, where the reflex models come from)
CONTROLLERS = {
    "scripted": ("scripted", "off", None),  # spiral search, the classical baseline
    "sac": ("sac", "off", None),  # the SAC task policy alone
    "force-guard": ("sac", "control-rate", "rule"),  # + soften gains past 80 % of F_max
    "recovery-rl": ("recovery-rl", "off", None),  # its own policy, critic and recovery, once per decision
    "bresa": ("sac", "control-rate", "learned"),  # + critic at every control tick
    "sac-lagrangian": ("sac-lagrangian", "off", None),  # SAC trained with a learned cost multiplier
}


@dataclass
class ControllerSetup:
    """A policy plus the reflex it runs with."""

    policy: Controller
    config: BresaConfig
    critic: RiskModel | None
    recovery: RecoveryModel | None


def make_controller(name: str, config: BresaConfig, models_dir: str | Path | None = None) -> ControllerSetup:
    """Build a named controller from the shipped (or given) models; nothing is trained here."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller '{name}'; choose from {', '.join(CONTROLLERS)}")
    policy_kind, mode, reflex = CONTROLLERS[name]
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode=mode))
    folder = models_folder(models_dir)
    policy_dir = policy_folder(name, models_dir)
    policy: Controller = (SpiralSearch(config) if policy_dir is None
                          else ResidualController(load_task_policy(policy_dir), config))
    if policy_kind == "recovery-rl":
        policy = RecoveryRLController(policy, load_recovery_rl(config, models_dir))
    critic: RiskModel | None = None
    recovery: RecoveryModel | None = None
    if reflex == "rule":
        critic, recovery = ForceGuardRisk(config.reflex.force_guard_fraction), SoftenGains()
    elif reflex == "learned":
        critic, recovery, _ = load_reflex_models(config, folder)
    return ControllerSetup(policy, config, critic, recovery)


def policy_folder(name: str, models_dir: str | Path | None = None) -> Path | None:
    """Where a controller's trained task policy and its card are (None: it runs the spiral search).
    ``sac-lagrangian`` and ``recovery-rl`` have their own (``bresa train-sac-lagrangian``, ``bresa
    train-recovery-rl``); the others share Bresa's."""
    policy_kind = CONTROLLERS[name][0]
    if policy_kind == "scripted":
        return None
    folder = models_folder(models_dir)
    return folder / {"sac-lagrangian": SAC_LAGRANGIAN_DIR, "recovery-rl": RECOVERY_RL_DIR}.get(policy_kind, "")


def evaluate(
    controller_name: str,
    config: BresaConfig,
    episodes: int,
    seed: int,
    scenario: str = "nominal",
    progress: bool = True,
    results: list[EpisodeResult] | None = None,
    models_dir: str | Path | None = None,
    workers: int = 1,
) -> list[EpisodeResult]:
    """Run ``episodes`` seeded episodes, in ``workers`` processes (results keep seed order).

    Results are appended to ``results`` (a new list if None) as episodes finish, so a caller that
    is interrupted still holds every finished episode.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario '{scenario}'; choose from {list(SCENARIOS)}")
    results = [] if results is None else results
    seeds = [seed + i for i in range(episodes)]
    bar = tqdm(total=episodes, desc=f"{controller_name}/{scenario}", unit="ep", disable=not progress)
    with bar:
        for result in _episodes(controller_name, config, scenario, models_dir, seeds, workers):
            results.append(result)
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([r.inserted for r in results]):.2f}")
    return results


def _episodes(
    controller_name: str, config: BresaConfig, scenario: str, models_dir: str | Path | None,
    seeds: list[int], workers: int,
) -> Iterator[EpisodeResult]:
    """Episode results in seed order, from this process or a pool of worker processes."""
    if workers <= 1:
        env, policy = _build(controller_name, config, scenario, models_dir)
        for episode_seed in seeds:
            yield run_episode(env, policy, episode_seed)
        return
    context = multiprocessing.get_context("spawn")  # no forked torch/MuJoCo state
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                             initargs=(controller_name, config, scenario, models_dir)) as pool:
        try:
            yield from pool.map(_worker_episode, seeds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _build(
    controller_name: str, config: BresaConfig, scenario: str, models_dir: str | Path | None
) -> tuple[PegInsertion, Controller]:
    setup = make_controller(controller_name, config, models_dir)
    return PegInsertion(setup.config, setup.critic, setup.recovery, scenario=scenario), setup.policy


_WORKER: dict[str, Any] = {}


def _worker_init(controller_name: str, config: BresaConfig, scenario: str, models_dir: Any) -> None:
    _WORKER["env"], _WORKER["policy"] = _build(controller_name, config, scenario, models_dir)


def _worker_episode(episode_seed: int) -> EpisodeResult:
    return run_episode(_WORKER["env"], _WORKER["policy"], episode_seed)


def format_table(summaries: list[dict[str, Any]]) -> str:
    """A Markdown table of summaries (one row per controller and scenario)."""
    header = (
        "| controller | scenario | episodes | success | violations | peak force mean (N) "
        "| peak force max (N) | insertion time (s) |"
    )
    lines = [header, "|" + "---|" * 8]
    for s in summaries:
        lines.append(
            f"| {s['controller']} | {s['scenario']} | {s['episodes']} | {s['success_rate']:.0%} "
            f"| {s['violation_rate']:.0%} | {s['peak_force_n_mean']:.1f} | {s['peak_force_n_max']:.1f} "
            f"| {s['insertion_time_s_mean']:.2f} |"
        )
    return "\n".join(lines)


def report(
    summary: dict[str, Any], results: list[EpisodeResult], seed: int, complete: bool, command: list[str] | None = None
) -> dict[str, Any]:
    """The JSON document of one evaluation: summary fields, the command line (config file
    included) and every episode."""
    return {**summary, "seed": seed, "complete": complete, "command": command,
            "per_episode": [asdict(r) for r in results]}


def plot_episode(
    name: str, config: BresaConfig, scenario: str, seed: int, out: str | Path, models_dir: str | Path | None = None
) -> Path:
    """Run episode ``seed`` of a controller again, tick by tick, and plot force, risk, stiffness and
    reflex (:func:`bresa_control.app.plots.plot_run`)."""
    from bresa_control.app.plots import TickTrace, plot_run

    setup = make_controller(name, config, models_dir)
    env = PegInsertion(setup.config, setup.critic, setup.recovery, scenario=scenario)
    trace = TickTrace()
    env.tick_observer = trace
    result = run_episode(env, setup.policy, seed)
    outcome = "inserted" if result.inserted else "not inserted"
    title = f"{name}, {scenario}, seed {seed}: {outcome}, peak force {result.peak_force_n:.1f} N"
    return plot_run(trace.series(), out, config.safety.max_force_n, setup.config.reflex.eps_safe, title)
