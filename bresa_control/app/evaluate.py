"""Run a controller for N seeded episodes and summarise success, safety and speed.

Episode ``i`` of a run with seed ``S`` is reset with seed ``S + i``, so two controllers evaluated
with the same seed meet the same holes, perception errors and start poses.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bresa_control.app.controllers import build
from bresa_control.app.sweep import EpisodeJob, RaySession, run_episodes
from bresa_control.common.cards import models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.safety.reflex import gate_thresholds
from bresa_control.simulation.rollout import EpisodeResult, run_episode
from bresa_control.simulation.scenarios import SCENARIOS
from bresa_control.tasks import DEFAULT_TASK, TASKS


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
    task: str = DEFAULT_TASK,
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
            env, policy = build(controller_name, config, scenario, models_dir, task)
            for episode_seed in seeds:
                results.append(run_episode(env, policy, episode_seed))
                _advance(bar, results, 1)
            return results
        with RaySession(ray_address) as session:
            job = EpisodeJob(controller_name, controller_name, scenario, models_folder(models_dir), task)
            try:
                for part in run_episodes(session, [job], config, seeds):
                    if part.error is not None:
                        failures.update({s: part.error for s in part.seeds})
                    else:
                        results.extend(part.results)
                        results.sort(key=lambda r: r.seed)
                    _advance(bar, results, len(part.seeds))
            finally:
                if ray_report is not None:
                    ray_report.update(session.describe())
    return results


def _advance(bar: tqdm, results: list[EpisodeResult], episodes: int) -> None:
    bar.update(episodes)
    if results:
        bar.set_postfix(success=f"{np.mean([r.inserted for r in results]):.2f}")


def format_table(summaries: list[dict[str, Any]], task: str = DEFAULT_TASK) -> str:
    """A Markdown table of summaries (one row per controller and scenario) of ``task``'s episodes."""
    header = (
        "| controller | scenario | episodes | success | violations | peak force mean (N) "
        f"| peak force max (N) | {TASKS[task].time_label} (s) |"
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
    name: str, config: BresaConfig, scenario: str, seed: int, out: str | Path, models_dir: str | Path | None = None,
    task: str = DEFAULT_TASK,
) -> Path:
    """Run episode ``seed`` of a controller on ``task`` again, tick by tick, and plot force, risk,
    stiffness and reflex (:func:`bresa_control.app.plots.plot_run`)."""
    from bresa_control.app.plots import TickTrace, plot_run

    env, policy = build(name, config, scenario, models_dir, task)
    trace = TickTrace()
    env.tick_observer = trace
    result = run_episode(env, policy, seed)
    word = env.task.success_word
    outcome = word if result.inserted else f"not {word}"
    title = f"{name}, {scenario}, seed {seed}: {outcome}, peak force {result.peak_force_n:.1f} N"
    return plot_run(trace.series(), out, config.safety.max_force_n, gate_thresholds(env.config.reflex)[0], title)
