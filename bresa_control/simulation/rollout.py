"""One episode in the environment, start to end, and the figures of many: what evaluation and
checkpoint selection both report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bresa_control.contract import Controller
from bresa_control.simulation.env import TaskEnv


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
    episode_return: float = 0.0  # the environment's reward summed over the episode


def run_episode(env: TaskEnv, controller: Controller, seed: int) -> EpisodeResult:
    """Roll out one episode to termination or truncation."""
    observation, _ = env.reset(seed=seed)
    controller.reset()
    violation = fault = inserted = False
    peak_force_n = 0.0
    steps = 0
    episode_return = 0.0
    info: dict[str, Any] = {}
    while True:
        observation, reward, terminated, truncated, info = env.step(controller.act(observation))
        steps += 1
        episode_return += float(reward)
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
        episode_return=episode_return,
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
