"""The task policy's 10 Hz loop, without ROS: what the ``task_policy`` node runs every decision.

It builds the policy's observation from the latest arm report exactly as the gymnasium
environment does (:func:`bresa_control.contract.observation`), asks the controller for an action and
turns it into the 19-value impedance target with the environment's :class:`ActionMap`. Once the
tip is ``env.success_depth_m`` below the *estimated* top face (what a robot without the true hole
position can tell), the task is done and it asks for a :class:`~bresa_control.control.guard.Hold`.
"""

from __future__ import annotations

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller, observation, target_rotation
from bresa_control.control.actions import ACTION_SIZE, ActionMap
from bresa_control.control.guard import Hold
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.control.robot import RobotModel
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import Task


class PolicyLoop:
    """Arm reports in, one impedance target per decision out."""

    def __init__(self, config: BresaConfig, controller: Controller, fixture_estimate_m: np.ndarray,
                 task: Task | None = None, variant: int = 0) -> None:
        """``fixture_estimate_m``: where the robot believes the task's fixture is (peg insertion: the
        hole's top centre, m, base frame), ``variant`` which of its variants; ``task`` (default peg
        insertion) says what the observation is measured from and when to stop."""
        self.variant = variant
        self.config = config
        self.task = task if task is not None else make_task(DEFAULT_TASK, config)
        self.controller = controller
        self.controller.reset()
        self.fixture_estimate_m = np.asarray(fixture_estimate_m, dtype=float)
        self.robot = RobotModel.from_config(config)
        self.actions = ActionMap(config)
        self.hold = Hold(config, self.robot)
        self._rotation = target_rotation(config.env.target_orientation_xyzw)
        self._prev_action = np.zeros(ACTION_SIZE, dtype=np.float32)
        self.q: np.ndarray | None = None
        self.dq: np.ndarray | None = None
        self.force_n: np.ndarray | None = None
        self.torque_nm: np.ndarray | None = None
        self.done = False
        self.decisions = 0

    def decide(self) -> ImpedanceCommand | None:
        """The next target, or None until joints and wrench have both arrived."""
        if self.q is None or self.dq is None or self.force_n is None or self.torque_nm is None:
            return None
        pose = self.robot.frame_pose(self.q)
        if self.done or self.task.believed_done(pose.position_m, self.fixture_estimate_m, self.variant):
            self.done = True
            return self.hold.command(self.q)
        twist = self.robot.frame_jacobian(self.q) @ self.dq
        origin = self.task.observation_origin_m(self.fixture_estimate_m, pose.position_m, self.variant)
        obs = observation(pose.position_m, pose.rotation, twist, self._rotation, origin, self.force_n, self.torque_nm,
                          self._prev_action)
        action = np.clip(np.asarray(self.controller.act(obs), dtype=np.float32), -1.0, 1.0)
        self._prev_action = action
        self.decisions += 1
        return self.actions.to_command(action, pose.position_m, self.robot.cartesian_inertia(self.q))
