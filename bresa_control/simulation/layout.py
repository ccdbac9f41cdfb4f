"""Where things are in one episode of the simulated arm, and the posture every episode starts near.

What a task draws per episode (:meth:`~bresa_control.tasks.base.Task.draw_episode`) plus the arm's
start joint angles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A comfortable elbow-up posture with the peg pointing down; IK starts every episode from it.
HOME_Q = np.array([0.0, 0.1, 0.0, -2.2, 0.0, 2.3, 0.0])


@dataclass(frozen=True)
class Layout:
    """Where things are in one episode (m, base frame).

    fixture_m: where the task's fixture reference point truly is (peg insertion: the hole's top
    centre); fixture_estimate_m: where the robot believes it is (off by up to the task's perception
    error); start_q: initial joint angles (rad); variant: which of the task's fixture variants
    stands there (a maze's layout; the robot knows it).
    """

    fixture_m: np.ndarray
    fixture_estimate_m: np.ndarray
    start_q: np.ndarray
    variant: int = 0
