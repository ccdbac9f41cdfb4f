"""Helpers shared by the tests that drive the simulator directly."""

from __future__ import annotations

import numpy as np

from bresa_control.simulation.layout import HOME_Q
from bresa_control.simulation.simulator import ArmSim


def place_tip(sim: ArmSim, tip_position_m: np.ndarray) -> np.ndarray:
    """Put the arm at rest with the peg tip at a position, pointing down; returns q."""
    q = sim.robot.inverse_kinematics(np.asarray(tip_position_m), sim.target_rotation, HOME_Q)
    sim.set_arm_state(q)
    return q


class FixedRisk:
    """A critic that answers one value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def risk(self, features: np.ndarray) -> float:
        return self.value
