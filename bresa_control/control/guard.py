"""Checks on commands that arrive over the wire, before anything acts on them.

A task action (``bresa/task_action``) reaching the safety critic is

* **dropped** when it is malformed (not 19 values, NaN or infinite) or out of range (a gain
  outside the controller's range, a quaternion that is not unit length):
  :class:`CommandRejected` says which value and what was expected;
* **clamped** into the envelope the critic was trained on when it is valid but bigger than any
  action the task policy can take: the setpoint at most ``env.max_step_m`` per axis from the
  current tip and inside the workspace box, translational stiffness within
  ``env.action_stiffness_range_n_per_m``. The critic can vouch only for actions like those it
  learned from; this keeps it inside them, and the critic still scores every tick of the result.

An arm (the ``mujoco_sim`` node, the ``franka_arm`` node) applies the same malformed/out-of-range
checks to ``bresa/impedance_command`` through one :class:`CommandFollower`. When the critic or the
arm has nothing valid and fresh to act on, it runs a :class:`Hold`.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.actions import ActionMap
from bresa_control.control.impedance import COMMAND_SIZE, GainLimits, ImpedanceCommand
from bresa_control.control.robot import RobotModel


class CommandRejected(ValueError):
    """A command was dropped; ``kind`` is ``malformed`` or ``out-of-range``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def parse_command(values: object, limits: GainLimits) -> ImpedanceCommand:
    """19 contract values -> :class:`ImpedanceCommand`, or :class:`CommandRejected`."""
    array = np.asarray(values, dtype=float) if not isinstance(values, np.ndarray) else values
    if array.shape != (COMMAND_SIZE,):
        raise CommandRejected("malformed", f"expected {COMMAND_SIZE} values, got {array.size}")
    try:
        command = ImpedanceCommand.from_array(array)
        limits.check(command)
    except ValueError as exc:
        kind = "malformed" if not np.all(np.isfinite(array)) else "out-of-range"
        raise CommandRejected(kind, str(exc)) from None
    return command


def values_crc(values: object) -> int:
    """A fingerprint of command values as float64 on the wire: the reflex-latency benchmark matches
    a command the critic published with the one the arm applied."""
    return zlib.crc32(np.ascontiguousarray(values, dtype=np.float64).tobytes())


class TaskActionCheck:
    """Drop malformed or out-of-range task actions; clamp valid ones into the trained envelope."""

    def __init__(self, config: BresaConfig) -> None:
        self._limits = GainLimits(config.controller)
        self._box_lo = np.array(config.safety.workspace_min_m)
        self._box_hi = np.array(config.safety.workspace_max_m)
        self._max_step_m = config.env.max_step_m
        self._k_lo, self._k_hi = config.env.action_stiffness_range_n_per_m

    def __call__(self, values: object, tip_position_m: np.ndarray) -> tuple[ImpedanceCommand, bool]:
        """The command to use and whether it was clamped; raises :class:`CommandRejected`."""
        command = parse_command(values, self._limits)
        target = command.position_m
        step = target - tip_position_m
        stiffness = command.stiffness[:3]
        # A micrometre of slack: the policy's own steps of exactly max_step_m pass unclamped.
        if (np.all(np.abs(step) <= self._max_step_m + 1e-6)
                and np.all((stiffness >= self._k_lo) & (stiffness <= self._k_hi))
                and np.all((target >= self._box_lo) & (target <= self._box_hi))):
            return command, False
        step = np.clip(step, -self._max_step_m, self._max_step_m)
        target = np.clip(tip_position_m + step, self._box_lo, self._box_hi)
        stiffness = np.concatenate([np.clip(stiffness, self._k_lo, self._k_hi), command.stiffness[3:]])
        return ImpedanceCommand(target, command.orientation_xyzw, stiffness, command.damping), True


class Hold:
    """The safe command when there is nothing fresh to follow: keep the tip where it was when the
    hold began, with compliant gains (``runtime.hold_stiffness_n_per_m``, damping ratio
    ``runtime.hold_damping_ratio``). The target is latched until :meth:`release`."""

    def __init__(self, config: BresaConfig, robot: RobotModel) -> None:
        self._robot = robot
        self._actions = ActionMap(config)
        self._stiffness = config.runtime.hold_stiffness_n_per_m
        self._ratio = config.runtime.hold_damping_ratio
        self._command: ImpedanceCommand | None = None

    def command(self, q: np.ndarray) -> ImpedanceCommand:
        """The hold command; on the first call after a release, latched at the tip for joints
        ``q`` (rad)."""
        if self._command is None:
            tip = self._robot.frame_pose(q).position_m
            self._command = self._actions.command(tip, self._stiffness, self._ratio,
                                                  self._robot.cartesian_inertia(q))
        return self._command

    def release(self) -> None:
        """Commands resumed: the next hold latches afresh."""
        self._command = None

    @property
    def active(self) -> bool:
        """Whether a hold target is latched."""
        return self._command is not None


class CommandFollower:
    """The arm's side of the contract, shared by the simulated and the real arm: it keeps the
    newest valid ``bresa/impedance_command`` and, at each control tick, says what to track: that
    command while it is fresh (at most ``runtime.command_timeout_s`` old), else a :class:`Hold`
    where the tip is. A malformed or out-of-range command is dropped and counted; the last good
    one stays in force until it goes stale."""

    def __init__(self, config: BresaConfig, robot: RobotModel, trace: bool = False) -> None:
        self._limits = GainLimits(config.controller)
        self._timeout_s = config.runtime.command_timeout_s
        self.hold = Hold(config, robot)
        self._command: ImpedanceCommand | None = None
        self._command_time_s = -np.inf
        self.dropped: Counter[str] = Counter()  # by kind: malformed, out-of-range
        self.last_drop_reason = ""
        self.hold_ticks = 0
        self._trace = trace
        # With trace: crc32 of the newest accepted command's values (the arm records when it first
        # applies each one, for the reflex-latency benchmark).
        self.command_crc = 0

    def on_command(self, values: object, now_s: float) -> bool:
        """An impedance command arrived at ``now_s`` (s); returns whether it was accepted."""
        try:
            command = parse_command(values, self._limits)
        except CommandRejected as exc:
            self.dropped[exc.kind] += 1
            self.last_drop_reason = str(exc)
            return False
        self._command, self._command_time_s = command, now_s
        if self._trace:
            self.command_crc = values_crc(values)
        return True

    def command(self, q: np.ndarray, now_s: float) -> tuple[ImpedanceCommand, bool]:
        """What to track at this tick (joints ``q`` in rad, time ``now_s`` in s) and whether it is a
        hold."""
        command = self._command
        if command is not None and now_s - self._command_time_s <= self._timeout_s:
            self.hold.release()
            return command, False
        self.hold_ticks += 1
        return self.hold.command(q), True
