"""Run a controller for N seeded episodes and summarise success, safety and speed.

Episode ``i`` of a run with seed ``S`` is reset with seed ``S + i``, so two controllers evaluated
with the same seed meet the same holes, perception errors and start poses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bresa_control.common.cards import models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller
from bresa_control.learning.registry import CONTROLLERS, controller
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.reflex import ForceGuardRisk, RecoveryModel, RiskModel, SoftenGains, gate_thresholds
from bresa_control.simulation.env import PegInsertion
from bresa_control.simulation.rollout import EpisodeResult, run_episode
from bresa_control.simulation.scenarios import SCENARIOS

__all__ = ["CONTROLLERS", "ControllerSetup", "build", "evaluate", "make_controller", "model_files", "policy_folder"]


@dataclass
class ControllerSetup:
    """A policy plus the reflex it runs with."""

    policy: Controller
    config: BresaConfig
    critic: RiskModel | None
    recovery: RecoveryModel | None


def make_controller(name: str, config: BresaConfig, models_dir: str | Path | None = None) -> ControllerSetup:
    """Build a named controller (:data:`~bresa_control.learning.registry.CONTROLLERS`) from the
    shipped (or given) models; nothing is trained here."""
    spec = controller(name)
    mode = "control-rate" if spec.reflex != "off" else "off"
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode=mode, gate=spec.gate))
    policy = spec.load_policy(config, models_dir)
    critic: RiskModel | None = None
    recovery: RecoveryModel | None = None
    if spec.reflex == "rule":
        critic, recovery = ForceGuardRisk(config.reflex.force_guard_fraction), SoftenGains()
    elif spec.reflex == "learned":
        critic, recovery, _ = load_reflex_models(config, models_folder(models_dir))
    return ControllerSetup(policy, config, critic, recovery)


def policy_folder(name: str, models_dir: str | Path | None = None) -> Path | None:
    """Where a controller's trained task policy and its card are (None: it runs the spiral search)."""
    return controller(name).policy_folder(models_dir)


def model_files(controller_name: str) -> list[str]:
    """The files (relative to the models folder) a controller loads: what a Ray worker is sent."""
    return controller(controller_name).model_files()


def evaluate(
    controller_name: str,
    config: BresaConfig,
    episodes: int,
    seed: int,
    scenario: str = "nominal",
    progress: bool = True,
    results: list[EpisodeResult] | None = None,
    models_dir: str | Path | None = None,
    ray_address: str | None = None,
    failures: dict[int, str] | None = None,
    ray_report: dict[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Run ``episodes`` seeded episodes here, or on Ray with ``ray_address`` (:mod:`bresa_control.app.sweep`);
    the results are the same either way, in seed order.

    Results are added to ``results`` (a new list if None) as episodes finish, so a caller that is
    interrupted still holds every finished episode; the seeds of episodes that failed on Ray
    (after a retry) go to ``failures`` with the reason, and where the work ran to ``ray_report``.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario '{scenario}'; choose from {list(SCENARIOS)}")
    results = [] if results is None else results
    failures = {} if failures is None else failures
    seeds = [seed + i for i in range(episodes)]
    bar = tqdm(total=episodes, desc=f"{controller_name}/{scenario}", unit="ep", disable=not progress)
    with bar:
        if ray_address is None:
            env, policy = build(controller_name, config, scenario, models_dir)
            for episode_seed in seeds:
                results.append(run_episode(env, policy, episode_seed))
                _advance(bar, results, 1)
            return results
        from bresa_control.app.sweep import RaySession, chunks, episode_task, pack

        with RaySession(ray_address) as session:
            models = session.put(pack(models_folder(models_dir), model_files(controller_name)))
            for part in chunks(seeds, session.cpus()):
                session.submit(part, episode_task, controller_name, config, scenario, models, part)
            try:
                for outcome in session.as_completed():
                    if outcome.error is not None:
                        failures.update({s: outcome.error for s in outcome.key})
                    else:
                        results.extend(outcome.result)
                        results.sort(key=lambda r: r.seed)
                    _advance(bar, results, len(outcome.key))
            finally:
                if ray_report is not None:
                    ray_report.update(session.describe())
    return results


def _advance(bar: tqdm, results: list[EpisodeResult], episodes: int) -> None:
    bar.update(episodes)
    if results:
        bar.set_postfix(success=f"{np.mean([r.inserted for r in results]):.2f}")


def build(
    controller_name: str, config: BresaConfig, scenario: str, models_dir: str | Path | None
) -> tuple[PegInsertion, Controller]:
    """The environment (with the controller's safety layer) and the policy of one controller. Torch
    runs one thread, wherever this runs, so that a result does not depend on where it ran."""
    torch.set_num_threads(1)
    setup = make_controller(controller_name, config, models_dir)
    return PegInsertion(setup.config, setup.critic, setup.recovery, scenario=scenario), setup.policy


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

    env, policy = build(name, config, scenario, models_dir)
    trace = TickTrace()
    env.tick_observer = trace
    result = run_episode(env, policy, seed)
    outcome = "inserted" if result.inserted else "not inserted"
    title = f"{name}, {scenario}, seed {seed}: {outcome}, peak force {result.peak_force_n:.1f} N"
    return plot_run(trace.series(), out, config.safety.max_force_n, gate_thresholds(env.config.reflex)[0], title)
