"""The real arm's 1 kHz loop, without ROS: what the ``franka_arm`` node runs at every tick of
libfranka's torque control.

Each tick the robot's state comes in (joint angles and velocities, and the wrist wrench: the robot's
estimate or a relayed F/T sensor's reading), the controller observes it (one kinematics and
dynamics pass), the command for it is chosen, and joint torques go out. The command is

* **composed** (an :class:`~bresa_control.runtime.safety_loop.InLoopCritic` given): the critic's
  answer to this very state, computed in this tick, or its fail-closed hold;
* **separate**: the newest ``bresa/impedance_command`` through the same
  :class:`~bresa_control.control.guard.CommandFollower` the simulated arm runs (a compliant hold
  when it is older than ``runtime.command_timeout_s``).

Gravity is left out (``controller.gravity_compensation`` is forced off): the robot adds gravity
and friction compensation itself. The controller clips the torques to Franka's limits (1 Nm per
tick, 87/12 Nm), and a non-finite torque stops the loop instead of reaching the arm. Talking to
the robot is :mod:`bresa_control.runtime.franka_robot`'s job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandFollower, values_crc
from bresa_control.control.impedance import CartesianImpedanceController
from bresa_control.control.robot import RobotModel
from bresa_control.runtime.safety_loop import HOLDING, InLoopCritic, SafetyTick
from bresa_control.runtime.timing import TraceRing


class ModelMismatch(ValueError):
    """The configured robot model does not describe the arm that is connected."""


class UnsafeTorque(RuntimeError):
    """The controller produced a torque that must not be sent (not finite)."""


class WrenchSample(NamedTuple):
    """One wrist wrench reading: force (N) and torque (Nm) on the tool at the flange, sampled at
    ``stamp_s`` (s, wall clock), in base-frame axes or, with ``flange_axes``, in the flange's (a
    wrist F/T sensor's own axes: the loop turns them with the rotation its controller has just
    computed)."""

    force_n: np.ndarray
    torque_nm: np.ndarray
    stamp_s: float
    flange_axes: bool = False


class FrankaArmLoop:
    """Impedance commands in (or a critic inside), joint torques (without gravity) out, one call
    per 1 ms tick."""

    def __init__(self, config: BresaConfig, robot: RobotModel, trace: bool = False,
                 critic: InLoopCritic | None = None) -> None:
        """``critic``: run composed, the critic deciding every tick's command; None: follow
        ``on_command``. ``trace``: record, per command, the tick that first applied it."""
        controller = dataclasses.replace(config.controller, gravity_compensation=False)
        self.robot = robot
        self.controller = CartesianImpedanceController(robot, controller)
        self.follower = CommandFollower(config, robot, trace)
        self.critic = critic
        if critic is not None:
            critic.validate = self.controller.check  # the controller's check, done once per command
        self.decision: SafetyTick | None = None  # the critic's answer of the last tick (composed)
        self.ticks = 0
        self.held = False  # whether the last tick held (no fresh command, or the critic's hold)
        self.hold_ticks = 0
        # The wrench of the newest sample in base-frame axes (N, Nm) and its stamp (s); None before one.
        self.wrench: WrenchSample | None = None
        self._trace = trace
        self.applied_trace = TraceRing()  # (crc32 of a command, the tick that first applied it)
        self._applied_crc: int | None = None

    def start(self, q: np.ndarray) -> None:
        """The torque motion starts at joints ``q`` (rad): the nullspace posture, and a commanded
        torque of zero, which the rate limit ramps from."""
        self.controller.reset(q)

    def on_command(self, values: object, now_s: float) -> bool:
        """An impedance command arrived at ``now_s`` (s) (separate mode); returns whether it was
        accepted."""
        return self.follower.on_command(values, now_s)

    def tick(self, q: np.ndarray, dq: np.ndarray, now_s: float, wrench: WrenchSample | None = None,
             tick_id: float = 0.0) -> np.ndarray:
        """Joint torques (Nm, gravity excluded) for the state ``q`` (rad), ``dq`` (rad/s) read at
        ``now_s`` (s), with the wrist ``wrench`` that came with it (None: no new sample since the
        last tick; the critic keeps the one it has and sees it age). ``tick_id``: the robot's clock
        (ms) of this state, for the trace. Raises :class:`UnsafeTorque` rather than return a
        non-finite torque."""
        controller = self.controller
        controller.observe(q, dq)
        if wrench is not None:
            if wrench.flange_axes:  # the tip frame is fixed to the flange with its axes (attach_peg)
                rotation = controller.tip_rotation
                wrench = WrenchSample(rotation @ wrench.force_n, rotation @ wrench.torque_nm, wrench.stamp_s)
            self.wrench = wrench
        if self.critic is not None:
            sample = None if wrench is None else (wrench.force_n, wrench.torque_nm, wrench.stamp_s)
            out = self.critic.tick(q, dq, now_s, controller.tip_position_m, controller.tip_velocity_m_per_s, sample)
            assert out.command is not None  # InLoopCritic always answers with a command
            self.decision = out
            command, self.held = out.command, out.status in HOLDING
        else:
            command, self.held = self.follower.command(q, now_s)
        tau = controller.torque(command)
        if not np.all(np.isfinite(tau)):
            raise UnsafeTorque(f"the controller produced a non-finite torque {tau} from q={q}, dq={dq}")
        if self._trace and not self.held:
            crc = values_crc(command.values) if self.critic is not None else self.follower.command_crc
            if crc != self._applied_crc:
                self.applied_trace.record(crc, tick_id)
                self._applied_crc = crc
        self.ticks += 1
        self.hold_ticks += int(self.held)
        return tau


def pose_matrix(column_major: Sequence[float]) -> np.ndarray:
    """libfranka's 16 column-major pose values as a 4x4 homogeneous matrix."""
    return np.asarray(column_major, dtype=float).reshape(4, 4, order="F")


class FlangeWrench:
    """The robot's wrench estimate in the contract's terms: the wrench the environment applies to
    the tool at the flange, base frame (force N, torque Nm).

    libfranka's ``O_F_ext_hat_K`` is the external wrench on the stiffness frame K, base axes. The
    force is the same at the flange; the torque moves by the lever from the flange to K, which is
    fixed in the end-effector frame: ``F_T_EE`` and ``EE_T_K`` (constant during a motion) give it
    once, ``O_T_EE`` turns it into base axes every tick. ``sign`` (+1 or -1) is the convention of the
    robot's estimate (docs/sim-to-real.md).
    """

    def __init__(self, f_t_ee: Sequence[float], ee_t_k: Sequence[float], sign: float = 1.0) -> None:
        k_in_ee = pose_matrix(ee_t_k)[:3, 3]
        flange_in_ee = np.linalg.inv(pose_matrix(f_t_ee))[:3, 3]
        self._lever_in_ee = k_in_ee - flange_in_ee
        self._sign = sign

    def __call__(self, o_f_ext_hat_k: Sequence[float], o_t_ee: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(force N, torque Nm) at the flange, base frame, for one robot state."""
        wrench = self._sign * np.asarray(o_f_ext_hat_k, dtype=float)
        ee = np.asarray(o_t_ee, dtype=float)  # column-major: ee[0:3], ee[4:7], ee[8:11] are R's columns
        d = self._lever_in_ee
        lever = ee[0:3] * d[0] + ee[4:7] * d[1] + ee[8:11] * d[2]
        force = wrench[:3]
        return force, wrench[3:] + cross(lever, force)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b of two 3-vectors (numpy's cross costs ~20 us a call, too much at 1 kHz)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def sensor_wrench(force_n: Sequence[float], torque_nm: Sequence[float],
                  flange_rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A wrist F/T sensor's reading (sensor at the flange, axes along the flange's) in base-frame axes."""
    return flange_rotation @ np.asarray(force_n, dtype=float), flange_rotation @ np.asarray(torque_nm, dtype=float)


def check_kinematics(robot: RobotModel, flange_link: str, q: np.ndarray, o_t_ee: Sequence[float],
                     f_t_ee: Sequence[float], tolerance_m: float = 1e-3, tolerance_rad: float = 1e-2) -> None:
    """Raise :class:`ModelMismatch` unless the model puts the flange where the robot says it is.

    The robot reports its end effector ``O_T_EE`` and the flange-to-EE transform ``F_T_EE``, so
    ``O_T_EE F_T_EE^-1`` is the flange in the robot's own kinematics; the model's (``robot.urdf_path``)
    must agree within ``tolerance_m`` and ``tolerance_rad`` at the robot's current joints ``q``.
    """
    measured = pose_matrix(o_t_ee) @ np.linalg.inv(pose_matrix(f_t_ee))
    model = robot.frame_pose(q, flange_link)
    position_error = float(np.linalg.norm(model.position_m - measured[:3, 3]))
    cosine = (np.trace(model.rotation.T @ measured[:3, :3]) - 1.0) / 2.0
    rotation_error = float(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if position_error > tolerance_m or rotation_error > tolerance_rad:
        raise ModelMismatch(
            f"the robot model (robot.urdf_path, flange '{flange_link}') puts the flange "
            f"{position_error * 1e3:.1f} mm and {np.degrees(rotation_error):.1f} deg away from where the connected "
            f"robot reports it (allowed {tolerance_m * 1e3:g} mm, {np.degrees(tolerance_rad):.1f} deg): give the URDF "
            "of the arm that is connected"
        )
