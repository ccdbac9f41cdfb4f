"""The reflex: intermediate actions, the risk gate and the recovery switch (Bresa, design 1).

Every control tick ``k`` the high-level action becomes an intermediate action ``a_hat_k``
(:class:`IntermediateActions`). In ``control-rate`` mode the critic scores every ``a_hat_k``; when
``Q_risk > eps_safe`` the recovery policy's action replaces it at once, and :class:`RiskGate`
keeps it in place until risk has fallen below ``eps_safe * release_ratio`` for at least
``min_active_s`` (hysteresis, so it does not chatter), or below ``eps_safe`` once it has held for
``hysteresis_timeout_s`` (a reflex is brief: in a state the critic finds mildly risky whatever the
action, such as the peg part-way into the hole, holding on would stall the task for good).
``off`` passes ``a_hat_k`` through. (The Recovery RL baseline checks once per decision with a
critic of its own: safety/recovery_rl.py.) With ``reflex.gate: feasibility`` the score is the
reachability value ``Q_h`` of the same features instead (FISOR's formulation, learned on the same
ticks: ``learning/feasibility.py``), and the reflex fires where ``Q_h > 0``; everything else is
the same.

One class, :class:`Reflex`, serves the gymnasium environment and the ``safety_critic`` node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bresa_control.common.config import BresaConfig, ReflexConfig
from bresa_control.contract import COMMAND_LABELS
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.safety.risk_features import FEATURE_SIZE, STATE_SIZE, FeatureMap, TickState


class RiskModel(Protocol):
    """``Q_risk(s, a)``: discounted probability of a future violation, in [0, 1]."""

    def risk(self, features: np.ndarray) -> float:
        """Risk of one feature vector (state then action features)."""


class RecoveryModel(Protocol):
    """``pi_recovery(s)``: the action features of a recovery action for state features ``s``."""

    def act(self, state_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
        """Recovery action features in [-1, 1]; ``replaced_features`` are those of the action it
        replaces (a learned recovery keeps some of them: risk_features.RECOVERY_KEEPS)."""


# What the intermediate actions read of the ``reflex`` config: all a controller without the
# reflex (``mode: off``) reads of it.
RAMP_KEYS = ("stiffness_rate_n_per_m_per_tick", "damping_rate_ns_per_m_per_tick")


class IntermediateActions:
    """``a_hat_k``: setpoint moved linearly from the tip toward the target over the decision
    period; translational gains ramped toward the target's under per-tick rate limits.

    Orientation and rotational gains are taken from the target directly.
    """

    def __init__(self, config: BresaConfig) -> None:
        self._ticks = config.env.ticks_per_decision
        self._k_rate = config.reflex.stiffness_rate_n_per_m_per_tick
        self._d_rate = config.reflex.damping_rate_ns_per_m_per_tick
        self._target: ImpedanceCommand | None = None
        self._start_m = np.zeros(3)
        self._stiffness = np.zeros(3)
        self._damping = np.zeros(3)
        self._k = 0

    def start(
        self, target: ImpedanceCommand, tip_position_m: np.ndarray, applied: ImpedanceCommand | None
    ) -> None:
        """Begin a decision period toward ``target`` with the tip at ``tip_position_m``;
        ``applied`` is the last command the controller ran (None at an episode's start)."""
        self._target = target
        self._start_m = np.array(tip_position_m, dtype=float)
        base = target if applied is None else applied
        self._stiffness = base.stiffness[:3].copy()
        self._damping = base.damping[:3].copy()
        self._k = 0

    def restart(self, tip_position_m: np.ndarray, applied: ImpedanceCommand) -> None:
        """Approach the same target afresh from here, gains ramping from ``applied`` (while a
        reflex holds, so the task action resumes gently instead of jumping back)."""
        if self._target is None:
            raise RuntimeError("IntermediateActions.restart() called before start()")
        self.start(self._target, tip_position_m, applied)

    def next(self) -> ImpedanceCommand:
        """The intermediate action for the next tick."""
        if self._target is None:
            raise RuntimeError("IntermediateActions.next() called before start()")
        target = self._target.values
        self._k = min(self._k + 1, self._ticks)
        fraction = self._k / self._ticks
        self._stiffness += _clamp(target[7:10] - self._stiffness, self._k_rate)
        self._damping += _clamp(target[13:16] - self._damping, self._d_rate)
        values = target.copy()  # orientation and rotational gains: the target's
        values[0:3] = self._start_m + fraction * (target[0:3] - self._start_m)
        values[7:10] = self._stiffness
        values[13:16] = self._damping
        return ImpedanceCommand.wrap(values)


def _clamp(values: np.ndarray, bound: float) -> np.ndarray:
    """Clip into [-bound, bound] (np.clip is slow on 3-vectors at 1 kHz)."""
    return np.minimum(np.maximum(values, -bound), bound)


def gate_thresholds(reflex: ReflexConfig) -> tuple[float, float]:
    """(fire above, release below) of the configured gate (``reflex.gate``): ``Q_risk`` against
    ``eps_safe``, released below ``eps_safe * release_ratio``; or the reachability value ``Q_h``
    against 0 (the action leaves the feasible region), released below ``feasibility_release_below``."""
    if reflex.gate == "feasibility":
        return 0.0, reflex.feasibility_release_below
    return reflex.eps_safe, reflex.eps_safe * reflex.release_ratio


class RiskGate:
    """Threshold with hysteresis, a minimum dwell time and a time limit on the hysteresis band.

    Fires when the score > ``fire_above``. Releases once it has been on for ``min_active_ticks``
    and the score < ``release_below``; after ``hysteresis_timeout_ticks`` on, a score <=
    ``fire_above`` is enough. At worst it re-fires once per timeout, never at every tick.
    """

    def __init__(
        self, fire_above: float, release_below: float, min_active_ticks: int, hysteresis_timeout_ticks: int
    ) -> None:
        self.fire_above = fire_above
        self.release = release_below
        self.min_active_ticks = min_active_ticks
        self.hysteresis_timeout_ticks = max(hysteresis_timeout_ticks, min_active_ticks)
        self.active = False
        self._active_ticks = 0

    @classmethod
    def from_config(cls, reflex: ReflexConfig, control_period_s: float) -> RiskGate:
        """The configured gate (:func:`gate_thresholds`)."""
        fire_above, release_below = gate_thresholds(reflex)
        return cls(fire_above, release_below, max(1, int(round(reflex.min_active_s / control_period_s))),
                   max(1, int(round(reflex.hysteresis_timeout_s / control_period_s))))

    def reset(self) -> None:
        """Release the gate (episode start)."""
        self.active = False
        self._active_ticks = 0

    def update(self, risk: float) -> bool:
        """Feed one tick's risk; returns whether the reflex is on."""
        if not self.active:
            if risk > self.fire_above:
                self.active = True
                self._active_ticks = 1
            return self.active
        if self._active_ticks >= self.min_active_ticks and (
            risk < self.release or (risk <= self.fire_above and self._active_ticks >= self.hysteresis_timeout_ticks)
        ):
            self.active = False  # it has run its minimum and the risk has come down
            return False
        self._active_ticks += 1
        return True


@dataclass(frozen=True)
class ReflexDecision:
    """What the reflex did on one tick."""

    command: ImpedanceCommand
    risk: float
    active: bool
    fired: bool  # the reflex switched on at this tick


_STIFFNESS_X = COMMAND_LABELS.index("kx_n_per_m")
_DAMPING_X = COMMAND_LABELS.index("dx_ns_per_m")


class Reflex:
    """Intermediate actions + critic + recovery + gate, on (``control-rate``) or ``off``."""

    def __init__(
        self, config: BresaConfig, critic: RiskModel | None = None, recovery: RecoveryModel | None = None,
        brake_axes: tuple[int, ...] = (2,),
    ) -> None:
        """``brake_axes``: the axes (0 x, 1 y, 2 z) the brake stops the tip along, the task's
        (``Task.brake_axes``); the others keep the replaced action's gains."""
        if not brake_axes or not set(brake_axes) <= {0, 1, 2} or len(set(brake_axes)) != len(brake_axes):
            raise ValueError(f"brake_axes is {brake_axes!r}; expected distinct axes out of 0 (x), 1 (y), 2 (z)")
        self.mode = config.reflex.mode
        if self.mode != "off" and (critic is None or recovery is None):
            raise ValueError(
                f"reflex mode '{self.mode}' needs a risk critic and a recovery policy; "
                "load them (bresa_control.safety.models) or set reflex.mode: off"
            )
        self.features = FeatureMap(config)
        self.intermediate = IntermediateActions(config)
        self.critic = critic
        self.recovery = recovery
        dt = config.env.control_period_s
        self.gate = RiskGate.from_config(config.reflex, dt)
        self._last_recovery: ImpedanceCommand | None = None
        reflex = config.reflex
        self._brake_ticks = int(round(reflex.brake_s / dt))
        # brake_s 0: no brake at all, loaded or not.
        self._brake_max_ticks = max(self._brake_ticks, int(round(reflex.brake_max_s / dt))) if self._brake_ticks else 0
        self._brake_lift_m = reflex.brake_lift_m
        self._brake_lift_per_load_m_per_n = reflex.brake_lift_per_load_m_per_n
        self._brake_max_lift_m = max(reflex.brake_max_lift_m, reflex.brake_lift_m)
        self._brake_hold_load_n = reflex.brake_hold_load_n
        self._brake_gains = (reflex.brake_stiffness_n_per_m, reflex.brake_damping_ns_per_m)
        self._brake_axes = list(brake_axes)
        self._brake: ImpedanceCommand | None = None  # latched when the reflex fires
        self._braked_ticks = 0
        self._features = np.zeros(FEATURE_SIZE, np.float32)  # the critic's input, rewritten every tick
        self.reflex_count = 0

    def reset(self) -> None:
        """Episode start: gate released, counters cleared."""
        self.gate.reset()
        self.reflex_count = 0
        self._brake = None
        self._braked_ticks = 0

    def begin_decision(
        self, target: ImpedanceCommand, tick: TickState, face_height_m: float,
        applied: ImpedanceCommand | None,
    ) -> None:
        """A new high-level action arrived: its intermediate actions start from here."""
        self.intermediate.start(target, tick.tip_position_m, applied)

    def step(self, tick: TickState, face_height_m: float) -> ReflexDecision:
        """The command for this control tick."""
        a_hat = self.intermediate.next()
        if self.mode == "off":
            return ReflexDecision(a_hat, 0.0, False, False)
        was_active = self.gate.active
        if was_active and self._last_recovery is not None:
            # What would run if the reflex let go now: the task action approached afresh from
            # here, gains ramping up from the recovery's. That is what must be safe to release.
            self.intermediate.restart(tick.tip_position_m, self._last_recovery)
            a_hat = self.intermediate.next()
        risk = self._risk(a_hat, tick, face_height_m)
        active = self.gate.update(risk)
        fired = active and not was_active
        self.reflex_count += int(fired)
        if active:
            if fired:
                self._brake = self._brake_command(tick, a_hat)
                self._braked_ticks = 0
            if self._brake is not None and self._braking(tick):
                command = self._loaded_brake(tick)
                self._braked_ticks += 1
            else:
                command = self._recover(tick, a_hat)
            self._last_recovery = command
        else:
            command = a_hat
        return ReflexDecision(command, risk, active, fired)

    def _risk(self, command: ImpedanceCommand, tick: TickState, face_height_m: float) -> float:
        """Critic's risk of ``command``; a non-finite answer (or input) counts as certain risk, so
        a broken critic or sensor fires the reflex instead of letting the command through. Leaves
        the features of this tick's state and ``command`` in ``self._features``."""
        self._fill_features(command, tick, face_height_m)
        assert self.critic is not None  # checked in __init__ for every mode that scores
        risk = float(self.critic.risk(self._features))
        # One sum is non-finite if any feature is (or if finite ones overflow float32: absurd, so risky too).
        return risk if math.isfinite(risk) and math.isfinite(self._features.sum()) else 1.0

    def _recover(self, tick: TickState, replaced: ImpedanceCommand) -> ImpedanceCommand:
        """The recovery action replacing ``replaced``, which the critic has just scored in this
        state (its features are in ``self._features``)."""
        assert self.recovery is not None  # checked in __init__ for every mode that recovers
        features = self._features
        action = self.recovery.act(features[:STATE_SIZE], features[STATE_SIZE:])
        return self.features.command(action, tick.tip_position_m, replaced)

    def _brake_command(self, tick: TickState, replaced: ImpedanceCommand) -> ImpedanceCommand:
        """The first ticks of a reflex: stop the tip where it is now (``brake_lift_m`` higher) with
        the brake's stiffness and damping along the task's brake axes; the other axes keep the
        gains of the action it replaces.
        A tip coming down fast is stopped by damping before the learned recovery's soft spring
        takes over (config ``reflex.brake_*``). Latched at firing; :meth:`_loaded_brake` adds
        the lift for the load of each tick."""
        values = replaced.values.copy()
        values[0:3] = tick.tip_position_m
        values[2] += self._brake_lift_m
        for axis in self._brake_axes:
            values[_STIFFNESS_X + axis], values[_DAMPING_X + axis] = self._brake_gains
        return ImpedanceCommand.wrap(values)

    def _braking(self, tick: TickState) -> bool:
        """Whether this tick still brakes: for ``brake_s`` after firing, then while the force on
        the tool along the brake axes is above ``brake_hold_load_n``, up to ``brake_max_s``."""
        if self._braked_ticks < self._brake_ticks:
            return True
        load_n = float(np.linalg.norm(np.asarray(tick.force_n)[self._brake_axes]))
        return self._braked_ticks < self._brake_max_ticks and not load_n <= self._brake_hold_load_n

    def _loaded_brake(self, tick: TickState) -> ImpedanceCommand:
        """The latched brake with its setpoint raised for this tick's z force on the tool
        (``brake_lift_per_load_m_per_n``, either sign: a push down or a face pushing up both
        ask the tip to rise), at most ``brake_max_lift_m`` above the tip at firing. A force up to
        ``brake_hold_load_n`` is no load (a sensor's tare error, such as a wrong payload
        setting, must not lift the tip); a non-finite reading lifts it the most."""
        assert self._brake is not None
        load_n = abs(float(tick.force_n[2]))
        if self._brake_lift_per_load_m_per_n == 0.0 or load_n <= self._brake_hold_load_n:
            return self._brake
        most_m = self._brake_max_lift_m - self._brake_lift_m
        extra_m = min(self._brake_lift_per_load_m_per_n * load_n, most_m) if math.isfinite(load_n) else most_m
        values = self._brake.values.copy()
        values[2] += extra_m
        return ImpedanceCommand.wrap(values)

    def _fill_features(self, command: ImpedanceCommand, tick: TickState, face_height_m: float) -> None:
        self.features.state_into(tick, face_height_m, self._features[:STATE_SIZE])
        self.features.action_into(command, tick.tip_position_m, self._features[STATE_SIZE:])


class ForceGuardRisk:
    """The rule a practitioner writes first, as a :class:`RiskModel`: risk is 1 once the wrist
    force passes ``fraction`` of F_max, else 0 (it looks at the force only, never ahead)."""

    def __init__(self, fraction: float = 0.8) -> None:
        self.fraction = fraction

    def risk(self, features: np.ndarray) -> float:
        """1.0 when |force| / F_max > fraction (features start with force / F_max)."""
        return float(np.sqrt(features[0:3] @ features[0:3]) > self.fraction)


class SoftenGains:
    """Fixed recovery: hold the tip where it is with the softest stiffness and low damping on
    every axis (the force-guard rule softens the lateral gains too)."""

    def act(self, state_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
        """Action features: zero setpoint offset, minimum log-stiffness, damping at 10 % of max."""
        return np.array([0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -0.8, -0.8, -0.8], dtype=np.float32)
