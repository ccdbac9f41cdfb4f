"""The safety critic's 1 kHz loop, without ROS: what the ``safety_critic`` node runs every tick.

It keeps the latest arm state and task action, and each tick decides what goes to the arm:

=====================  ===========================================================================
status                 command sent to the arm
=====================  ===========================================================================
``waiting-for-state``  nothing (no arm state ever arrived; the arm's own watchdog holds it)
``state-stale``        hold (ERROR): joint_states or wrench older than ``runtime.state_timeout_s``
``no-task-action``     hold: no task action yet, or the last is older than
                       ``runtime.task_action_timeout_s`` (two decision periods; on the arm's
                       clock when the arm gives one: ``SafetyLoop.age_task_actions_by``)
``task``               the intermediate action a_hat_k, scored by the critic and let through
``reflex``             the recovery action (the critic's risk crossed ``eps_safe``)
=====================  ===========================================================================

A hold (:class:`~bresa_control.control.guard.Hold`) keeps the tip where it was when the hold began, with
compliant gains. Task actions are checked on arrival
(:class:`~bresa_control.control.guard.TaskActionCheck`): malformed or out-of-range ones are dropped and
counted, nothing unchecked is forwarded. The reflex itself is :class:`~bresa_control.safety.reflex.Reflex`,
the class the gymnasium environment trains with.

Composed (the default bringup) the loop runs inside the arm's own 1 kHz loop through
:class:`InLoopCritic`: the arm hands it the state it has just read, and applies the answer in the
same tick. It fails closed there too; in addition to the rows above:

=====================  ===========================================================================
``critic-error``       hold (ERROR): the critic's tick raised, or answered a non-finite risk or a
                       command the controller would refuse (non-finite, gains out of range)
``critic-overrun``     hold (WARN): the critic's tick took longer than ``runtime.critic_budget_s``;
                       this tick's command is the hold, not the late answer
=====================  ===========================================================================

This module imports no arm: the arms (``simulation/arm_loop.py``, ``runtime/franka_loop.py``)
import it, never the other way round (an import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandRejected, Hold, TaskActionCheck, values_crc
from bresa_control.control.impedance import GainLimits, ImpedanceCommand
from bresa_control.control.robot import RobotModel
from bresa_control.safety.reflex import RecoveryModel, Reflex, RiskModel
from bresa_control.safety.risk_features import TickState
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import Task

TRACED_RECOVERY_COMMANDS = 5  # per firing, for the reflex-latency benchmark
TRACED_FIRINGS = 10_000  # firings kept in the trace (the newest): bounded on a long run
# Statuses whose command is a hold (bresa/reflex's "holding"), and those the critic scored.
HOLDING = ("state-stale", "no-task-action", "critic-error", "critic-overrun")
SCORED = ("task", "reflex")


@dataclass(frozen=True)
class SafetyTick:
    """What the loop decided on one tick; ``command`` is None only while waiting for state, ``risk``
    is NaN on ticks the critic did not score (waiting or holding)."""

    command: ImpedanceCommand | None
    status: str
    risk: float
    fired: bool
    state_stamp_s: float  # when the arm sampled the state this tick used (s, wall clock)


@dataclass
class ArmState:
    """The latest arm report: joints (rad, rad/s) and wrist wrench (N, Nm, base frame), each with
    the time the arm sampled it (s, wall clock)."""

    q: np.ndarray | None = None
    dq: np.ndarray | None = None
    joints_stamp_s: float = -np.inf
    force_n: np.ndarray | None = None
    torque_nm: np.ndarray | None = None
    wrench_stamp_s: float = -np.inf

    @property
    def complete(self) -> bool:
        """Both joints and wrench have arrived at least once."""
        return self.q is not None and self.force_n is not None

    @property
    def stamp_s(self) -> float:
        """Sample time of the older of the two parts."""
        return min(self.joints_stamp_s, self.wrench_stamp_s)


class SafetyLoop:
    """Reflex + freshness checks + hold, fed with arm state and task actions, ticked at 1 kHz."""

    def __init__(
        self,
        config: BresaConfig,
        critic: RiskModel | None,
        recovery: RecoveryModel | None,
        fixture_estimate_m: np.ndarray,
        trace: bool = False,
        task: Task | None = None,
    ) -> None:
        """``fixture_estimate_m``: where the robot believes the task's fixture is (m, base frame);
        ``task`` (default peg insertion) gives the surface the critic measures the tip's height from."""
        if config.reflex.mode == "off":
            raise ValueError(
                "the safety critic checks every command: reflex.mode must be 'control-rate' (Bresa), not 'off'"
            )
        self.config = config
        task = task if task is not None else make_task(DEFAULT_TASK, config)
        self.reflex = Reflex(config, critic, recovery, task.brake_axes)
        self.robot = RobotModel.from_config(config)
        self.hold = Hold(config, self.robot)
        self.check = TaskActionCheck(config)
        self.face_z_m = task.surface_height_m(np.asarray(fixture_estimate_m, dtype=float))
        self.state = ArmState()
        self.dropped: Counter[str] = Counter()  # by kind: malformed, out-of-range, no-state
        self.last_drop_reason = ""
        self.clamped = 0
        self.status_ticks: Counter[str] = Counter()
        # Per firing: (stamp s of the wrench sample that fired it, crc32 of its first recovery commands):
        # the arm may apply the first of them or, if a later tick superseded it in time, the next.
        self.fired_trace: deque[tuple[float, list[int]]] = deque(maxlen=TRACED_FIRINGS)
        self._trace = trace
        self._action_time_s = -np.inf  # on the action clock (below) when the last task action came
        self._action_clock: Callable[[], float] | None = None
        self._have_action = False
        self._tick_cache: tuple[float, float, TickState] | None = None
        # The tip's kinematics for the joints of one stamp, when the arm has computed them already.
        self._kinematics: tuple[float, np.ndarray, np.ndarray] | None = None
        self._applied: ImpedanceCommand | None = None

    def age_task_actions_by(self, arm_clock_s: Callable[[], float]) -> None:
        """Measure a task action's age (``runtime.task_action_timeout_s``) on the arm's own clock
        (s): a composed arm gives its robot's or its simulator's time, which is what the policy
        decides by beside a simulator (its /clock). Without it, the age is wall-clock time, as is
        always the state's (its stamps): a simulator that fell below half real time would then see
        every decision as stale and hold between them."""
        self._action_clock = arm_clock_s

    # ---- inputs --------------------------------------------------------------------------

    def on_joints(self, q: np.ndarray, dq: np.ndarray, stamp_s: float) -> None:
        """Joint angles (rad) and velocities (rad/s) sampled at ``stamp_s``."""
        self.state.q, self.state.dq, self.state.joints_stamp_s = q, dq, stamp_s

    def on_wrench(self, force_n: np.ndarray, torque_nm: np.ndarray, stamp_s: float) -> None:
        """Wrist wrench (N, Nm, base frame) sampled at ``stamp_s``."""
        self.state.force_n, self.state.torque_nm, self.state.wrench_stamp_s = force_n, torque_nm, stamp_s

    def on_kinematic_state(self, q: np.ndarray, dq: np.ndarray, stamp_s: float, tip_position_m: np.ndarray,
                           tip_velocity_m_per_s: np.ndarray) -> None:
        """Joints (rad, rad/s) sampled at ``stamp_s`` with the tip's position (m) and linear velocity
        (m/s, base frame) the arm's controller has just computed from them: the loop then runs no
        kinematics of its own for this sample (the arm loop with the critic inside)."""
        self.on_joints(q, dq, stamp_s)
        self._kinematics = (stamp_s, tip_position_m, tip_velocity_m_per_s)
        self._tick_cache = None  # keyed by stamps: a caller may repeat one with new joints

    def applied_instead(self, command: ImpedanceCommand) -> None:
        """The arm applied ``command`` (a hold) instead of this tick's answer: the next decision's
        gains ramp from what really ran."""
        self._applied = command

    def on_task_action(self, values: object, now_s: float) -> bool:
        """A task action arrived; returns whether it was accepted (else counted in ``dropped``)."""
        if not self.state.complete:
            self._drop("no-state", "task action before any arm state")
            return False
        tick = self._tick_state()
        try:
            command, clamped = self.check(values, tick.tip_position_m)
        except CommandRejected as exc:
            self._drop(exc.kind, str(exc))
            return False
        self.clamped += int(clamped)
        self.reflex.begin_decision(command, tick, self.face_z_m, self._applied)
        self._action_time_s = now_s if self._action_clock is None else self._action_clock()
        self._have_action = True
        return True

    # ---- the tick ------------------------------------------------------------------------

    def tick(self, now_s: float) -> SafetyTick:
        """Decide this tick's command."""
        if not self.state.complete:
            return self._count(SafetyTick(None, "waiting-for-state", np.nan, False, -np.inf))
        stamp = self.state.stamp_s
        if now_s - stamp > self.config.runtime.state_timeout_s:
            return self._count(SafetyTick(self._hold_command(), "state-stale", np.nan, False, stamp))
        action_now_s = now_s if self._action_clock is None else self._action_clock()
        if not self._have_action or action_now_s - self._action_time_s > self.config.runtime.task_action_timeout_s:
            return self._count(SafetyTick(self._hold_command(), "no-task-action", np.nan, False, stamp))
        self.hold.release()
        decision = self.reflex.step(self._tick_state(), self.face_z_m)
        self._applied = decision.command
        if self._trace and decision.active:
            self._trace_recovery(decision.fired, values_crc(decision.command.values))
        status = "reflex" if decision.active else "task"
        return self._count(SafetyTick(decision.command, status, decision.risk, decision.fired, stamp))

    @property
    def reflex_count(self) -> int:
        """Times the reflex fired since start."""
        return self.reflex.reflex_count

    # ---- helpers -------------------------------------------------------------------------

    def _tick_state(self) -> TickState:
        """Tip position and velocity from the joints (pinocchio), with the wrench; cached per
        sample so several uses in one tick cost one kinematics call."""
        s = self.state
        assert s.q is not None and s.dq is not None and s.force_n is not None and s.torque_nm is not None
        key = (s.joints_stamp_s, s.wrench_stamp_s)
        if self._tick_cache is None or self._tick_cache[:2] != key:
            given = self._kinematics
            if given is not None and given[0] == s.joints_stamp_s:
                position, velocity = given[1], given[2]
            else:
                position, velocity = self.robot.tip_position_velocity(s.q, s.dq)
            self._tick_cache = (*key, TickState(s.force_n, s.torque_nm, position, velocity))
        return self._tick_cache[2]

    def _trace_recovery(self, fired: bool, crc: int) -> None:
        if fired:
            self.fired_trace.append((self.state.wrench_stamp_s, [crc]))
        elif self.fired_trace and len(self.fired_trace[-1][1]) < TRACED_RECOVERY_COMMANDS:
            self.fired_trace[-1][1].append(crc)

    def _hold_command(self) -> ImpedanceCommand:
        assert self.state.q is not None  # a hold needs the arm's state: only after it arrived
        self._applied = self.hold.command(self.state.q)
        return self._applied

    def _drop(self, kind: str, reason: str) -> None:
        self.dropped[kind] += 1
        self.last_drop_reason = reason

    def _count(self, result: SafetyTick) -> SafetyTick:
        self.status_ticks[result.status] += 1
        return result



class InLoopCritic:
    """The safety critic's tick inside the arm's 1 kHz loop (composed mode), failing closed.

    The arm reads its state, lets its controller compute the tip's kinematics
    (:meth:`~bresa_control.control.impedance.CartesianImpedanceController.observe`), calls
    :meth:`tick` with both and applies the command it returns in the same tick: the answer to a
    state sample acts on the period that follows it, never a tick later. The command is a compliant
    hold (latched at the tip, ``runtime.hold_stiffness_n_per_m``) when the :class:`SafetyLoop`

    * raises (status ``critic-error``),
    * answers a non-finite risk or a command the controller would refuse: non-finite values,
      gains out of range, a non-unit quaternion (``critic-error``),
    * takes longer than ``runtime.critic_budget_s`` (``critic-overrun``, measured with ``clock``,
      :func:`time.perf_counter` unless a test gives another): the late answer is not applied,
    * or decides a hold itself (no fresh task action; no wrench yet from a relayed sensor).

    Each tick is tried afresh: the arm follows the critic again on the first tick it answers in
    time. Faults are counted in :attr:`faults` by kind (``raised``, ``non-finite``, ``overrun``).
    """

    def __init__(self, loop: SafetyLoop, robot: RobotModel, clock: Callable[[], float] = time.perf_counter) -> None:
        """``robot``: the arm's model (the hold latches the tip from it, independent of the loop's)."""
        config = loop.config
        self.loop = loop
        self.budget_s = config.runtime.critic_budget_s
        self.hold = Hold(config, robot)
        # What a command must pass to reach the motors: the controller's own check, once the arm
        # hands it over (its controller then knows the command passed and does not check it again).
        self.validate: Callable[[ImpedanceCommand], None] = GainLimits(config.controller).check
        self._clock = clock
        self.faults: Counter[str] = Counter()
        self.last_fault = ""
        self.compute_s = 0.0  # how long the last tick's critic took (s, by ``clock``)

    def observe(self, q: np.ndarray, dq: np.ndarray, now_s: float, tip_position_m: np.ndarray,
                tip_velocity_m_per_s: np.ndarray, wrench: tuple[np.ndarray, np.ndarray, float]) -> None:
        """Hand the loop a state without deciding anything (the state an arm publishes before its
        first tick: a task action that answers it then finds the state it needs). Arguments as
        :meth:`tick`'s."""
        self.loop.on_kinematic_state(q, dq, now_s, tip_position_m, tip_velocity_m_per_s)
        self.loop.on_wrench(*wrench)

    def tick(self, q: np.ndarray, dq: np.ndarray, now_s: float, tip_position_m: np.ndarray,
             tip_velocity_m_per_s: np.ndarray,
             wrench: tuple[np.ndarray, np.ndarray, float] | None) -> SafetyTick:
        """This tick's command for the joints ``q`` (rad), ``dq`` (rad/s) the arm read at ``now_s``
        (s, wall clock; also their stamp), with the tip's kinematics from them and the wrist
        ``wrench`` (force N, torque Nm, base frame; its sample time s), or None if no new wrench
        sample came with this state. The returned command is never None."""
        start = self._clock()
        try:
            self.loop.on_kinematic_state(q, dq, now_s, tip_position_m, tip_velocity_m_per_s)
            if wrench is not None:
                self.loop.on_wrench(*wrench)
            out = self.loop.tick(now_s)
        except Exception as exc:  # whatever broke in the critic, the arm holds this tick
            self.compute_s = self._clock() - start
            return self._fault("raised", f"the critic raised {type(exc).__name__}: {exc}", q, now_s, "critic-error")
        self.compute_s = elapsed_s = self._clock() - start
        command = out.command
        if command is None:  # no complete state yet (a relayed wrench not yet arrived): hold
            return SafetyTick(self._hold(q), out.status, math.nan, False, out.state_stamp_s)
        if out.status in SCORED and not math.isfinite(out.risk):
            return self._fault("non-finite", f"the critic answered risk {out.risk}", q, now_s, "critic-error")
        try:
            self.validate(command)
        except ValueError as exc:
            return self._fault("non-finite", f"the critic answered a command the arm refuses: {exc}", q, now_s,
                               "critic-error")
        if elapsed_s > self.budget_s:
            return self._fault("overrun", f"the critic took {elapsed_s * 1e3:.2f} ms, over its budget of "
                               f"{self.budget_s * 1e3:g} ms (runtime.critic_budget_s)", q, now_s, "critic-overrun")
        self.hold.release()
        return out

    def _hold(self, q: np.ndarray) -> ImpedanceCommand:
        command = self.hold.command(q)
        self.loop.applied_instead(command)
        return command

    def _fault(self, kind: str, reason: str, q: np.ndarray, stamp_s: float, status: str) -> SafetyTick:
        self.faults[kind] += 1
        self.last_fault = reason
        return SafetyTick(self._hold(q), status, math.nan, False, stamp_s)
