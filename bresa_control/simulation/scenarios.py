"""Perturbations the policies never trained on, selected with ``--scenario``.

=============  ================================================================================
nominal        the training distribution
hole-moves     the hole block slides ``hole_shift_m`` (3 mm) in a random horizontal direction,
               over ``event_duration_s``, at a random time in ``event_window_s``
push           an external horizontal force of ``push_force_n`` on the peg for
               ``event_duration_s``, at a random time in ``event_window_s``
friction       sliding friction of peg, block and table multiplied by ``friction_scale`` (2x)
=============  ================================================================================

Each draws its randomness from the episode's seed, so every controller meets the same events.
"""

from __future__ import annotations

import numpy as np

from bresa_control.common.config import ScenarioConfig
from bresa_control.simulation.simulator import PegInsertionSim

SCENARIOS = ("nominal", "hole-moves", "push", "friction")


class Scenario:
    """Applies one named perturbation to a :class:`PegInsertionSim`, tick by tick."""

    def __init__(self, name: str, config: ScenarioConfig) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario '{name}'; choose from {', '.join(SCENARIOS)}")
        self.name = name
        self.config = config
        self._start_s = np.inf
        self._direction = np.zeros(2)
        self._hole_xy = np.zeros(2)
        self._done = False
        self._nominal_friction: np.ndarray | None = None

    def reset(self, sim: PegInsertionSim, rng: np.random.Generator) -> None:
        """Draw this episode's event and restore anything the last episode changed."""
        if self._nominal_friction is None:
            self._nominal_friction = sim.model.geom_friction[:, 0].copy()
        sim.model.geom_friction[:, 0] = self._nominal_friction
        if self.name == "friction":
            sim.model.geom_friction[:, 0] = self._nominal_friction * self.config.friction_scale
        self._start_s = float(rng.uniform(*self.config.event_window_s))
        angle = rng.uniform(0.0, 2.0 * np.pi)
        self._direction = np.array([np.cos(angle), np.sin(angle)])
        self._hole_xy = sim.layout.hole_top_m[:2].copy()
        self._done = False
        sim.data.xfrc_applied[:] = 0.0

    def tick(self, sim: PegInsertionSim) -> None:
        """Apply the perturbation for the current simulated time (call before each physics tick)."""
        if self.name in ("nominal", "friction"):
            return
        progress = (sim.time_s - self._start_s) / self.config.event_duration_s
        if self.name == "hole-moves":
            if progress >= 0.0 and not self._done:  # nothing to do before or after the slide
                shift = min(progress, 1.0) * self.config.hole_shift_m
                sim.move_hole_xy(self._hole_xy + shift * self._direction)
                self._done = progress >= 1.0
        elif self.name == "push":
            pushing = 0.0 <= progress < 1.0
            force = self.config.push_force_n * self._direction if pushing else np.zeros(2)
            sim.push_peg(np.array([force[0], force[1], 0.0]))

    @property
    def direction(self) -> np.ndarray:
        """Unit horizontal direction of this episode's hole move or push."""
        return self._direction.copy()

    @property
    def event_time_s(self) -> float:
        """When this episode's event starts (s of simulated time); inf for none."""
        return self._start_s if self.name in ("hole-moves", "push") else float("inf")
