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


class PolicyLoop:
    """Arm reports in, one impedance target per decision out."""

    def __init__(self, config: BresaConfig, controller: Controller, hole_estimate_m: np.ndarray) -> None:
        self.config = config
        self.controller = controller
        self.controller.reset()
        self.hole_estimate_m = np.asarray(hole_estimate_m, dtype=float)
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
        if self.done or pose.position_m[2] <= self.hole_estimate_m[2] - self.config.env.success_depth_m:
            self.done = True
            return self.hold.command(self.q)
        twist = self.robot.frame_jacobian(self.q) @ self.dq
        obs = observation(pose.position_m, pose.rotation, twist, self._rotation, self.hole_estimate_m,
                          self.force_n, self.torque_nm, self._prev_action)
        action = np.clip(np.asarray(self.controller.act(obs), dtype=np.float32), -1.0, 1.0)
        self._prev_action = action
        self.decisions += 1
        return self.actions.to_command(action, pose.position_m, self.robot.cartesian_inertia(self.q))
