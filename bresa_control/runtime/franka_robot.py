"""A Franka arm through pylibfranka (Franka's Python bindings of libfranka, robot server version 10).

The one module that imports pylibfranka. :func:`connect` turns every way of not getting a robot
into one :class:`RobotUnavailable` line naming the address and the cause; :class:`TorqueMotion`
is one torque-control motion (``read`` blocks until the robot's next 1 ms state, ``write`` sends
the joint torques) and turns libfranka's errors into :class:`RobotFault` with the robot's error
names (``cartesian_reflex``, ``communication_constraints_violation``, ...).

pylibfranka keeps Python's GIL while it waits for the robot: nothing else in the process runs
then, so the loop around it must be single-threaded (see ``ros/franka_arm_node.py``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pylibfranka

ROBOT_PORT = 1337  # libfranka's command port (TCP)
# What libfranka raises: its specific exceptions derive from RuntimeError, the generic one (an
# incompatible version, among others) from Exception only.
FRANKA_ERRORS = (RuntimeError, pylibfranka.FrankaException)


class RobotUnavailable(RuntimeError):
    """No robot to control at the address; the message says why."""


class RobotFault(RuntimeError):
    """libfranka stopped the motion (a reflex, a discontinuity, lost packets, a preemption)."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message + (f" (robot errors: {', '.join(errors)})" if errors else ""))
        self.errors = errors


def connect(robot_ip: str, realtime: bool, wait_s: float = 0.0, timeout_s: float = 3.0) -> pylibfranka.Robot:
    """Connect to the robot at ``robot_ip``; ``realtime`` asks libfranka to enforce real-time
    scheduling (a PREEMPT_RT kernel), as a robot PC should.

    Raises :class:`RobotUnavailable` when nothing answers on the robot's port (each try waits at most
    ``timeout_s``; tries go on for ``wait_s``, for a robot that is still starting) or libfranka
    refuses the robot (another protocol version, a robot in use).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with socket.create_connection((robot_ip, ROBOT_PORT), timeout=timeout_s):
                break
        except OSError as exc:
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            cause = exc.strerror or type(exc).__name__
            if isinstance(exc, TimeoutError):
                cause = f"no answer within {timeout_s:g} s"
            waited = f" (tried for {wait_s:g} s)" if wait_s > 0 else ""
            raise RobotUnavailable(f"cannot reach the robot at {robot_ip}:{ROBOT_PORT}: {cause}{waited}") from None
    config = pylibfranka.RealtimeConfig.kEnforce if realtime else pylibfranka.RealtimeConfig.kIgnore
    try:
        return pylibfranka.Robot(robot_ip, config)
    except FRANKA_ERRORS as exc:
        raise RobotUnavailable(f"the robot at {robot_ip} refused the connection: {exc}") from None


def error_names(errors: Any) -> list[str]:
    """The names of the errors set in a libfranka ``Errors`` value."""
    return sorted(name for name in dir(errors) if not name.startswith("_") and getattr(errors, name) is True)


def set_tool_load(robot: pylibfranka.Robot, mass_kg: float, center_m: Sequence[float],
                  inertia_kg_m2: np.ndarray) -> None:
    """Tell the robot about the tool (kg, m in the flange frame, kg m^2), so that its gravity
    compensation and wrench estimate include it."""
    inertia = [float(v) for v in np.ravel(inertia_kg_m2, order="F")]
    robot.set_load(float(mass_kg), [float(v) for v in center_m], inertia)


# The robot's collision thresholds (libfranka's setCollisionBehavior), set once at start by
# :func:`set_collision_thresholds`. The Cartesian force thresholds on x, y and z are
# ``safety.arm_fault_force_n`` (40 N): the stop the evaluation assumes (an episode ends there) and
# franky-sim's fixture applies. The others are set high enough that the force threshold is what
# stops the arm in a contact: 25 Nm about each axis (franka_ros's default), and Franka's joint
# torque limits for the external joint torques (a 40 N push at the peg tip, 0.5-0.8 m out, puts
# 20-32 Nm on the shoulder joints, past franka_ros's 20 Nm defaults there).
COLLISION_TORQUE_THRESHOLD_NM = 25.0
COLLISION_JOINT_THRESHOLDS_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)


def set_collision_thresholds(robot: pylibfranka.Robot, force_n: float) -> None:
    """Stop the robot's motion (``cartesian_reflex``) once the external force on the end effector
    reaches ``force_n`` (N) along x, y or z. The contact thresholds (libfranka's lower ones, which
    only flag a contact) are the same, so the robot's contact flags mark where it would stop."""
    cartesian = [float(force_n)] * 3 + [COLLISION_TORQUE_THRESHOLD_NM] * 3
    joints = [float(v) for v in COLLISION_JOINT_THRESHOLDS_NM]
    robot.set_collision_behavior(joints, joints, cartesian, cartesian)


class TorqueMotion:
    """One torque-control motion of the robot."""

    def __init__(self, robot: pylibfranka.Robot) -> None:
        self._robot = robot
        try:
            self._control: Any = robot.start_torque_control()
        except FRANKA_ERRORS as exc:
            raise self._fault(exc) from None

    def read(self) -> tuple[Any, float]:
        """Block until the robot's next state; returns it and the time since the last (s)."""
        try:
            state, duration = self._control.readOnce()
        except FRANKA_ERRORS as exc:
            raise self._fault(exc) from None
        return state, duration.to_sec()

    def write(self, tau_nm: np.ndarray) -> None:
        """Send joint torques (Nm, gravity excluded) for this tick."""
        try:
            self._control.writeOnce(pylibfranka.Torques(tau_nm.tolist()))
        except FRANKA_ERRORS as exc:
            raise self._fault(exc) from None

    def finish(self) -> None:
        """End the motion cleanly (zero torque, ``motion_finished``), releasing the control."""
        if self._control is None:
            return
        try:
            final = pylibfranka.Torques([0.0] * 7)
            final.motion_finished = True
            self._control.writeOnce(final)
        except FRANKA_ERRORS:
            pass  # the motion has already ended (a fault)
        finally:
            self._control = None

    def _fault(self, exc: Exception) -> RobotFault:
        self._control = None
        try:
            errors = error_names(self._robot.read_once().last_motion_errors)
        except FRANKA_ERRORS:
            errors = []
        return RobotFault(f"libfranka stopped the motion: {exc}", errors)
