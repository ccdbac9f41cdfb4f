"""Cartesian variable-impedance control at the peg tip.

The law (design brief, section 1)::

    tau = J^T (-K clip(e) - D xdot) + N (K_ns (q_0 - q) - D_ns dq) + C(q, dq) dq  [+ g(q)]

with ``e`` the tip's pose error (position, and the rotation vector of R R_d^T), ``xdot = J dq``,
``N = I - J^T (J^T)^+`` the nullspace projector, then Franka's limits: at most 1 Nm of change per
1 ms tick and the joint torque limits. ``g(q)`` is added only in simulation; the real arm
compensates gravity itself (and the controller then computes the nonlinear effects without it,
in the same single dynamics pass).

:class:`ImpedanceCommand` is the 19-value message of the topic contract: target pose, stiffness
and damping travel together so the controller never applies a target with mismatched gains.
"""

from __future__ import annotations

import math

import numpy as np
import pinocchio as pin

from bresa_control.common.config import ControllerConfig
from bresa_control.contract import COMMAND_LABELS, COMMAND_SIZE, target_rotation
from bresa_control.control.robot import RobotModel

_ROTATIONS: dict[bytes, np.ndarray] = {}  # orientation (quaternion bytes) -> rotation matrix


class ImpedanceCommand:
    """Target pose plus gains: the 19 values of ``bresa/task_action`` and ``impedance_command``.

    position_m: target tip position (m, base frame); orientation_xyzw: unit quaternion;
    stiffness: Kx Ky Kz (N/m), Krx Kry Krz (Nm/rad); damping: Dx Dy Dz (Ns/m), Drx Dry Drz (Nms/rad).
    All four are read-only views of one array of the 19 values in contract order (:attr:`values`):
    the 1 kHz loop builds, checks and sends a command without copying it.
    """

    __slots__ = ("values", "_rotation")

    def __init__(self, position_m: np.ndarray, orientation_xyzw: np.ndarray, stiffness: np.ndarray,
                 damping: np.ndarray) -> None:
        values = np.empty(COMMAND_SIZE)
        values[0:3], values[3:7], values[7:13], values[13:19] = position_m, orientation_xyzw, stiffness, damping
        self._own(values)

    @classmethod
    def wrap(cls, values: np.ndarray) -> ImpedanceCommand:
        """A command over 19 float64 values in contract order, without a copy or a check: the
        array is made read-only and belongs to the command from then on."""
        command = cls.__new__(cls)
        command._own(values)
        return command

    def _own(self, values: np.ndarray) -> None:
        values.flags.writeable = False
        self.values = values
        self._rotation: np.ndarray | None = None

    @property
    def position_m(self) -> np.ndarray:
        """Target tip position x y z (m, base frame)."""
        return self.values[0:3]

    @property
    def orientation_xyzw(self) -> np.ndarray:
        """Target orientation, unit quaternion x y z w."""
        return self.values[3:7]

    @property
    def stiffness(self) -> np.ndarray:
        """Kx Ky Kz (N/m), Krx Kry Krz (Nm/rad)."""
        return self.values[7:13]

    @property
    def damping(self) -> np.ndarray:
        """Dx Dy Dz (Ns/m), Drx Dry Drz (Nms/rad)."""
        return self.values[13:19]

    def to_array(self) -> np.ndarray:
        """A copy of the 19 values in contract order (:attr:`values` reads them without one)."""
        return self.values.copy()

    @classmethod
    def from_array(cls, values: np.ndarray) -> ImpedanceCommand:
        """Parse 19 values in contract order; raises ``ValueError`` on a wrong size or NaN."""
        values = np.array(values, dtype=float)  # a copy: the command owns its values
        if values.shape != (COMMAND_SIZE,):
            raise ValueError(f"impedance command needs {COMMAND_SIZE} values, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            bad = [COMMAND_LABELS[i] for i in np.flatnonzero(~np.isfinite(values))]
            raise ValueError(f"impedance command has non-finite values: {', '.join(bad)}")
        return cls.wrap(values)

    @property
    def rotation(self) -> np.ndarray:
        """Target orientation as a rotation matrix (computed once per distinct orientation: a
        stream of commands at 1 kHz mostly repeats one)."""
        if self._rotation is None:
            key = self.values[3:7].tobytes()
            rotation = _ROTATIONS.get(key)
            if rotation is None:
                if len(_ROTATIONS) >= 256:
                    _ROTATIONS.clear()
                rotation = _ROTATIONS[key] = target_rotation(self.orientation_xyzw)
                rotation.flags.writeable = False
            self._rotation = rotation
        return self._rotation

    def __repr__(self) -> str:
        return f"ImpedanceCommand({self.values.tolist()})"


class GainLimits:
    """The gain ranges of a :class:`ControllerConfig`, checked on every command."""

    def __init__(self, limits: ControllerConfig) -> None:
        ranges = [
            (limits.stiffness_range_n_per_m, "N/m"),
            (limits.rotational_stiffness_range_nm_per_rad, "Nm/rad"),
            (limits.damping_range_ns_per_m, "Ns/m"),
            (limits.rotational_damping_range_nms_per_rad, "Nms/rad"),
        ]
        per_gain = [ranges[group] for group in range(4) for _ in range(3)]
        self._lo = np.array([r[0][0] for r in per_gain])
        self._hi = np.array([r[0][1] for r in per_gain])
        self._units = [r[1] for r in per_gain]

    def check(self, command: ImpedanceCommand) -> None:
        """Raise ``ValueError`` naming the first gain that is non-finite or out of range, or
        saying what is wrong with the target pose."""
        values = command.values
        gains = values[7:19]  # stiffness then damping, as in the contract
        quat = values[3:7]
        quat_norm_sq = float(quat @ quat)
        if (((gains >= self._lo) & (gains <= self._hi)).all()  # NaN fails too
                and 0.81 < quat_norm_sq < 1.21 and math.isfinite(values[0] + values[1] + values[2])):
            return
        for i, value in enumerate(gains):
            label = COMMAND_LABELS[7 + i]
            if not np.isfinite(value):
                raise ValueError(f"gain {label} is {value}; it must be finite")
            if not self._lo[i] <= value <= self._hi[i]:
                raise ValueError(
                    f"gain {label} = {value:g} {self._units[i]} is outside the allowed "
                    f"[{self._lo[i]:g}, {self._hi[i]:g}]"
                )
        raise ValueError(
            f"target pose is invalid: position {command.position_m}, quaternion norm "
            f"{np.sqrt(quat_norm_sq):.3f} (expected a finite position and a unit quaternion)"
        )


def validate_gains(command: ImpedanceCommand, limits: ControllerConfig) -> None:
    """Raise ``ValueError`` naming the first gain that is non-finite or outside its range."""
    GainLimits(limits).check(command)


def damping_from_ratio(
    stiffness: np.ndarray, damping_ratio: np.ndarray | float, cartesian_inertia: np.ndarray
) -> np.ndarray:
    """Per-axis damping D_i = 2 zeta_i sqrt(K_i Lambda_ii) (Ns/m, Nms/rad).

    ``cartesian_inertia`` is the 6x6 operational-space inertia at the tip
    (:meth:`RobotModel.cartesian_inertia`); zeta = 1 is critical damping along each axis.
    """
    return 2.0 * np.asarray(damping_ratio) * np.sqrt(stiffness * np.diag(cartesian_inertia))


def pose_error(position_m: np.ndarray, rotation: np.ndarray, command: ImpedanceCommand) -> np.ndarray:
    """[p - p_d; log(R R_d^T)]: position (m) and rotation-vector (rad) error, base frame."""
    return np.concatenate(
        [position_m - command.position_m, pin.log3(rotation @ command.rotation.T)]
    )


class CartesianImpedanceController:
    """The impedance law plus Franka's torque-rate and torque limits (stateful: last torque).

    One instance drives one arm; call :meth:`reset` when the arm's state jumps (episode start).
    A tick is :meth:`compute`, or its two halves: :meth:`observe` (the state's kinematics and
    dynamics, independent of the command) then :meth:`torque`. An arm whose critic runs in its
    loop observes first, lets the critic decide from the same tip pose and velocity, then asks
    for the torque: one kinematics pass per tick for both.
    """

    def __init__(self, robot: RobotModel, config: ControllerConfig) -> None:
        self.robot = robot
        self.config = config
        self._torque_limits = np.asarray(config.joint_torque_limits_nm)
        self._clip = np.array([config.max_position_error_m] * 3 + [config.max_rotation_error_rad] * 3)
        self._q_rest = np.zeros(robot.nq)
        self._last_tau = np.zeros(robot.nq)
        self._regulariser = 1e-9 * np.eye(6)
        self._gain_limits = GainLimits(config)
        # Tip position (m), linear velocity (m/s) and rotation at the state the last observe() saw.
        self.tip_position_m = np.zeros(3)
        self.tip_velocity_m_per_s = np.zeros(3)
        self.tip_rotation = np.eye(3)
        self._validated: ImpedanceCommand | None = None  # last command that passed the check
        self._observed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def reset(self, q: np.ndarray) -> None:
        """Start from rest at ``q``: it becomes the nullspace posture; the torque starts at g(q)."""
        self._q_rest = np.array(q, dtype=float)
        self._last_tau = self.robot.gravity(q) if self.config.gravity_compensation else np.zeros(self.robot.nq)
        self._observed = None

    @property
    def last_torque(self) -> np.ndarray:
        """Torque (Nm) returned by the last :meth:`compute`."""
        return self._last_tau.copy()

    def compute(self, q: np.ndarray, dq: np.ndarray, command: ImpedanceCommand) -> np.ndarray:
        """Joint torques (Nm) for one control tick: :meth:`observe` then :meth:`torque`.

        Raises ``ValueError`` (naming the gain) for a command whose gains are non-finite or outside
        the configured ranges: such a command never reaches the motors.
        """
        self.check(command)
        self.observe(q, dq)
        return self.torque(command)

    def check(self, command: ImpedanceCommand) -> None:
        """Raise ``ValueError`` (naming the gain) unless ``command`` may reach the motors; a command
        that passed is not checked again."""
        if command is not self._validated:
            self._gain_limits.check(command)
            self._validated = command

    def observe(self, q: np.ndarray, dq: np.ndarray) -> None:
        """The state of this tick, joints ``q`` (rad) and ``dq`` (rad/s): tip pose, Jacobian and
        the nonlinear effects (with gravity only where ``gravity_compensation``: the real arm adds
        it itself), in one pinocchio pass. Sets :attr:`tip_position_m`, :attr:`tip_velocity_m_per_s`
        and :attr:`tip_rotation`."""
        pose, jac, nle = self.robot.tcp_state(q, dq, gravity=self.config.gravity_compensation)
        twist = jac @ dq
        self.tip_position_m = pose.position_m
        self.tip_velocity_m_per_s = twist[:3]
        self.tip_rotation = pose.rotation
        self._observed = (q, dq, jac, twist, nle)

    def torque(self, command: ImpedanceCommand) -> np.ndarray:
        """Joint torques (Nm) for ``command`` at the state the last :meth:`observe` saw, within
        Franka's limits; raises ``ValueError`` for a command :meth:`check` refuses."""
        self.check(command)
        if self._observed is None:
            raise RuntimeError("CartesianImpedanceController.torque() called before observe()")
        q, dq, jac, twist, nle = self._observed
        error = pose_error(self.tip_position_m, self.tip_rotation, command)
        error = np.minimum(np.maximum(error, -self._clip), self._clip)
        wrench = -command.stiffness * error - command.damping * twist
        tau_task = jac.T @ wrench

        # N = I - J^T (J^T)^+ with (J^T)^+ = (J J^T)^-1 J (J has full row rank away from
        # singularities; the tiny damping keeps the solve finite at them), applied to the posture
        # torque: N p = p - J^T (J J^T)^-1 (J p).
        k_ns = self.config.nullspace_stiffness_nm_per_rad
        posture = k_ns * (self._q_rest - q) - 2.0 * np.sqrt(k_ns) * dq
        tau_null = posture - jac.T @ np.linalg.solve(jac @ jac.T + self._regulariser, jac @ posture)

        return self._limit(tau_task + tau_null + nle)  # nle = C dq (+ g where the controller adds it)

    def _limit(self, tau: np.ndarray) -> np.ndarray:
        rate = self.config.torque_rate_limit_nm_per_tick
        tau = self._last_tau + np.minimum(np.maximum(tau - self._last_tau, -rate), rate)
        tau = np.minimum(np.maximum(tau, -self._torque_limits), self._torque_limits)
        self._last_tau = tau
        return tau.copy()
