"""Spiral search with fixed compliant gains: the classical industrial peg insertion.

Descend over the estimated hole until the wrist feels contact, then press down gently while
tracing an Archimedean spiral (radius grows by ``spiral_pitch_m`` per turn) around the estimate;
when the tip drops below the contact height the peg has found the hole: push straight in.
It sees only what a policy sees (the observation), and acts through the same action map.
"""

from __future__ import annotations

import enum

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.actions import ActionMap


class Phase(enum.Enum):
    """Where the search is."""

    APPROACH = "approach"
    SEARCH = "search"
    INSERT = "insert"


class SpiralSearch:
    """Scripted controller: ``act(observation) -> action`` like a learned policy."""

    def __init__(self, config: BresaConfig) -> None:
        self.cfg = config.scripted
        self.dt_s = config.env.decision_period_s
        self.actions = ActionMap(config)
        self.stiffness = np.array(self.cfg.stiffness_n_per_m)
        self.reset()

    def reset(self) -> None:
        """Forget the last episode."""
        self.phase = Phase.APPROACH
        self.target_z_m: float | None = None  # commanded tip height above the estimated top face
        self.contact_z_m = 0.0
        self.angle_rad = 0.0

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Normalised action for this decision step."""
        rel = observation[0:3].astype(float)  # tip relative to the hole estimate (m)
        force_z = float(observation[11])  # upward push of the environment on the peg (N)
        if self.target_z_m is None:
            self.target_z_m = rel[2]

        if self.phase is Phase.APPROACH and force_z > self.cfg.contact_force_n:
            self.phase = Phase.SEARCH
            self.contact_z_m = rel[2]
        if self.phase is Phase.SEARCH and rel[2] < self.contact_z_m - self.cfg.drop_detect_m:
            self.phase = Phase.INSERT

        goal_xy = np.zeros(2)  # straight over the estimate
        if self.phase is Phase.APPROACH:
            # Move the target down at a steady speed; blocked by the surface, the spring force
            # builds until it reads as contact.
            near = self.target_z_m < self.cfg.slow_down_height_m
            speed = self.cfg.contact_speed_m_per_s if near else self.cfg.approach_speed_m_per_s
            self.target_z_m -= speed * self.dt_s
        elif self.phase is Phase.SEARCH:
            goal_xy = self._next_spiral_point()
            self.target_z_m = self.contact_z_m - self.cfg.push_force_n / self.stiffness[2]
        else:  # INSERT: push straight in; lateral compliance lets the walls centre the peg.
            goal_xy = rel[:2]
            self.target_z_m = rel[2] - self.cfg.push_force_n / self.stiffness[2]
        return self._action(np.array([*(goal_xy - rel[:2]), self.target_z_m - rel[2]]))

    def _next_spiral_point(self) -> np.ndarray:
        """Advance along r = pitch * angle / 2 pi at the configured speed; restart when too wide."""
        radius = self.cfg.spiral_pitch_m * self.angle_rad / (2.0 * np.pi)
        self.angle_rad += self.cfg.spiral_speed_m_per_s * self.dt_s / max(radius, self.cfg.spiral_pitch_m)
        radius = self.cfg.spiral_pitch_m * self.angle_rad / (2.0 * np.pi)
        if radius > self.cfg.spiral_max_radius_m:
            self.angle_rad = 0.0
        return radius * np.array([np.cos(self.angle_rad), np.sin(self.angle_rad)])

    def _action(self, displacement_m: np.ndarray) -> np.ndarray:
        return self.actions.to_action(displacement_m, self.stiffness, self.cfg.damping_ratio)
