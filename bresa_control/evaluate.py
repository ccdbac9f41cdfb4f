"""Run a controller for N seeded episodes and summarise success, safety and speed.

Episode ``i`` of a run with seed ``S`` is reset with seed ``S + i``, so two controllers evaluated
with the same seed meet the same holes, perception errors and start poses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from tqdm import tqdm

from bresa_control.config import BresaConfig
from bresa_control.env import PegInsertion
from bresa_control.scenarios import SCENARIOS
from bresa_control.scripted import SpiralSearch


class Controller(Protocol):
    """Anything that maps observations to actions, episode by episode."""

    def reset(self) -> None:
        """Called at the start of every episode."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Normalised action for one decision step."""


CONTROLLERS: dict[str, Callable[[BresaConfig], Controller]] = {
    "scripted": SpiralSearch,
}


@dataclass(frozen=True)
class EpisodeResult:
    """One episode: did it insert, did it violate a constraint, how hard and how fast."""

    seed: int
    inserted: bool
    violation: bool
    fault: bool
    peak_force_n: float
    insertion_time_s: float | None
    steps: int


def run_episode(env: PegInsertion, controller: Controller, seed: int) -> EpisodeResult:
    """Roll out one episode to termination or truncation."""
    observation, _ = env.reset(seed=seed)
    controller.reset()
    violation = fault = inserted = False
    peak_force_n = 0.0
    steps = 0
    info: dict[str, Any] = {}
    while True:
        observation, _, terminated, truncated, info = env.step(controller.act(observation))
        steps += 1
        violation |= info["cost"] > 0.0
        fault |= info["fault"]
        peak_force_n = max(peak_force_n, info["peak_force_n"])
        if terminated or truncated:
            break
    inserted = bool(info["inserted"])
    return EpisodeResult(
        seed=seed,
        inserted=inserted,
        violation=violation,
        fault=fault,
        peak_force_n=peak_force_n,
        insertion_time_s=info["time_s"] if inserted else None,
        steps=steps,
    )


def summarise(controller: str, scenario: str, results: list[EpisodeResult]) -> dict[str, Any]:
    """Aggregate figures of one controller on one scenario (the JSON fields of the README)."""
    forces = [r.peak_force_n for r in results]
    times = [r.insertion_time_s for r in results if r.insertion_time_s is not None]
    n = len(results)
    return {
        "controller": controller,
        "scenario": scenario,
        "episodes": n,
        "success_rate": sum(r.inserted for r in results) / n if n else math.nan,
        "violation_rate": sum(r.violation for r in results) / n if n else math.nan,
        "fault_rate": sum(r.fault for r in results) / n if n else math.nan,
        "peak_force_n_mean": float(np.mean(forces)) if n else math.nan,
        "peak_force_n_max": float(np.max(forces)) if n else math.nan,
        "insertion_time_s_mean": float(np.mean(times)) if times else math.nan,
    }


def evaluate(
    controller_name: str,
    config: BresaConfig,
    episodes: int,
    seed: int,
    scenario: str = "nominal",
    progress: bool = True,
    results: list[EpisodeResult] | None = None,
) -> list[EpisodeResult]:
    """Run ``episodes`` seeded episodes.

    Results are appended to ``results`` (a new list if None) as episodes finish, so a caller that
    is interrupted still holds every finished episode.
    """
    if controller_name not in CONTROLLERS:
        raise ValueError(f"unknown controller '{controller_name}'; choose from {sorted(CONTROLLERS)}")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario '{scenario}'; choose from {list(SCENARIOS)}")
    env = PegInsertion(config, scenario=scenario)
    controller = CONTROLLERS[controller_name](config)
    results = [] if results is None else results
    bar = tqdm(total=episodes, desc=f"{controller_name}/{scenario}", unit="ep", disable=not progress)
    with bar:
        for i in range(episodes):
            results.append(run_episode(env, controller, seed + i))
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([r.inserted for r in results]):.2f}")
    return results


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
    summary: dict[str, Any], results: list[EpisodeResult], seed: int, complete: bool
) -> dict[str, Any]:
    """The JSON document of one evaluation: summary fields plus every episode."""
    return {**summary, "seed": seed, "complete": complete, "per_episode": [asdict(r) for r in results]}
