"""The critic in the arm's loop (composed mode), without ROS: what each arm applies, tick by tick.

The arm reads its state, the critic answers from that state, and the arm applies the answer in the
same tick (latency by construction: tested on both arms by tagging each tick's state and recording
what the controller applied). The critic fails closed inside the loop: when its tick raises,
answers a non-finite value or overruns its budget, the arm holds compliantly in that same tick,
and follows the critic again once it answers in time. Fake critics and a fake clock make these
tests assert logic, never timing. Also here: the simulated arm's own stop at
``safety.arm_fault_force_n``, and what the arm tick no longer computes twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pinocchio as pin
import pytest
from sim_helpers import FixedRisk

from bresa_control.common.config import BresaConfig
from bresa_control.contract import target_rotation
from bresa_control.control.impedance import CartesianImpedanceController, ImpedanceCommand
from bresa_control.control.robot import RobotModel
from bresa_control.runtime.franka_loop import FrankaArmLoop, WrenchSample
from bresa_control.runtime.safety_loop import InLoopCritic, SafetyLoop, SafetyTick
from bresa_control.runtime.timing import LoopStats, TraceRing
from bresa_control.safety.reflex import SoftenGains
from bresa_control.simulation.arm_loop import ArmLoop
from bresa_control.simulation.franka_fixture import FLANGE_LINK, fr3_model
from bresa_control.simulation.layout import HOME_Q

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


class FakeClock:
    """time.perf_counter for the critic's budget, advanced only by the test."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class ScriptedLoop:
    """A :class:`SafetyLoop` whose tick misbehaves on request; records what each tick saw and said.

    ``misbehave`` is called with the real answer and returns what the tick answers instead (or
    raises); ``slow_s`` advances the fake clock inside the tick."""

    def __init__(self, loop: SafetyLoop, clock: FakeClock) -> None:
        self.real = loop
        self.config = loop.config
        self.clock = clock
        self.misbehave: Callable[[SafetyTick], SafetyTick] | None = None
        self.slow_s = 0.0
        self.seen_q: list[np.ndarray] = []
        self.answers: list[SafetyTick] = []

    def on_kinematic_state(self, q: np.ndarray, *args: Any) -> None:
        self.seen_q.append(q.copy())
        self.real.on_kinematic_state(q, *args)

    def on_wrench(self, *args: Any) -> None:
        self.real.on_wrench(*args)

    def applied_instead(self, command: ImpedanceCommand) -> None:
        self.real.applied_instead(command)

    def tick(self, now_s: float) -> SafetyTick:
        out = self.real.tick(now_s)
        self.clock.now_s += self.slow_s
        if self.misbehave is not None:
            out = self.misbehave(out)
        self.answers.append(out)
        return out


def _checked(config: BresaConfig) -> BresaConfig:
    return dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))


def _action(tip: np.ndarray, offset: list[float], k: float = 1000.0) -> np.ndarray:
    return ImpedanceCommand(tip + np.array(offset), DOWN.copy(), np.array([k] * 3 + [60.0] * 3),
                            np.array([60.0] * 3 + [5.0] * 3)).to_array()


def _spy_applied(arm: ArmLoop) -> list[tuple[ImpedanceCommand, np.ndarray]]:
    """Every command the simulated arm's controller turned into a torque, with the joints it had
    observed for it (the state of that tick)."""
    applied: list[tuple[ImpedanceCommand, np.ndarray]] = []
    step = arm.sim.step
    controller = arm.sim.controller

    def recording_step(command: ImpedanceCommand) -> np.ndarray:
        assert controller._observed is not None
        applied.append((command, controller._observed[0].copy()))
        return step(command)

    arm.sim.step = recording_step  # type: ignore[method-assign]
    return applied


def _composed_arm(config: BresaConfig, seed: int = 0, risk: float = 0.1,
                  trace: bool = False) -> tuple[ArmLoop, ScriptedLoop, FakeClock, InLoopCritic]:
    checked = _checked(config)
    probe = ArmLoop(checked, seed)  # only for the episode's hole estimate
    clock = FakeClock()
    safety = SafetyLoop(checked, FixedRisk(risk), SoftenGains(), probe.layout.fixture_estimate_m, trace=trace)
    scripted = ScriptedLoop(safety, clock)
    critic = InLoopCritic(scripted, probe.sim.robot, clock=clock)  # type: ignore[arg-type]
    arm = ArmLoop(checked, seed, trace=trace, critic=critic)
    arm.show_critic(0.0)  # as the node does when it first publishes the state
    scripted.seen_q.clear()
    return arm, scripted, clock, critic


def _tip(arm: ArmLoop) -> np.ndarray:
    return arm.sim.robot.frame_pose(arm.sim.q).position_m


def _is_hold(command: ImpedanceCommand, config: BresaConfig) -> bool:
    return bool(np.all(command.stiffness[:3] == config.runtime.hold_stiffness_n_per_m))


# ---- latency by construction ------------------------------------------------------------------


def test_the_simulated_arm_applies_the_command_computed_from_the_state_of_the_same_tick(config: BresaConfig) -> None:
    arm, scripted, _, _ = _composed_arm(config)
    applied = _spy_applied(arm)
    assert scripted.real.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.0)
    states, stamps = [], []
    for k in range(50):
        states.append(arm.sim.q)  # the state of tick k, tagged before the tick
        stamps.append(k * 1e-3)
        arm.tick(k * 1e-3)
    assert len(applied) == len(scripted.answers) == len(states) == 50
    for k in range(50):
        np.testing.assert_array_equal(scripted.seen_q[k], states[k])  # the critic answered tick k's state
        command, observed_q = applied[k]
        assert command is scripted.answers[k].command  # ... and tick k applied that answer, not an older one
        np.testing.assert_array_equal(observed_q, states[k])  # to tick k's state
        assert scripted.answers[k].status == "task" and scripted.answers[k].state_stamp_s == stamps[k]
    assert len({id(c) for c, _ in applied}) == 50  # a fresh answer every tick


def test_the_franka_arm_applies_the_command_computed_from_the_state_of_the_same_tick(config: BresaConfig) -> None:
    fr3 = fr3_model(config)
    checked = _checked(config)
    q0 = fr3.inverse_kinematics(np.array([0.55, 0.0, 0.09]), target_rotation(config.env.target_orientation_xyzw),
                                HOME_Q)
    clock = FakeClock()
    scripted = ScriptedLoop(SafetyLoop(checked, FixedRisk(0.1), SoftenGains(), np.array([0.55, 0.0, 0.035])), clock)
    loop = FrankaArmLoop(checked, fr3, critic=InLoopCritic(scripted, fr3, clock=clock))  # type: ignore[arg-type]
    loop.start(q0)
    torqued: list[ImpedanceCommand] = []
    torque = loop.controller.torque
    loop.controller.torque = lambda command: torqued.append(command) or torque(command)  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    states = [q0 + rng.normal(0.0, 1e-3, 7) for _ in range(30)]  # each tick's state, tagged by its values
    wrench = WrenchSample(np.zeros(3), np.zeros(3), 0.0)
    scripted.real.on_kinematic_state(q0, np.zeros(7), 0.0, fr3.frame_pose(q0).position_m, np.zeros(3))
    scripted.real.on_wrench(np.zeros(3), np.zeros(3), 0.0)
    assert scripted.real.on_task_action(_action(fr3.frame_pose(q0).position_m, [0.0, 0.0, -0.01]), 0.0)
    scripted.seen_q.clear()
    for k, q in enumerate(states):
        now = (k + 1) * 1e-3
        loop.tick(q, np.zeros(7), now, wrench._replace(stamp_s=now))
        np.testing.assert_array_equal(scripted.seen_q[k], q)
        assert torqued[k] is scripted.answers[k].command and scripted.answers[k].status == "task"
    # The tip the critic scored is the controller's, from the same pass over this tick's joints.
    np.testing.assert_allclose(scripted.real._tick_state().tip_position_m, fr3.frame_pose(states[-1]).position_m,
                               atol=1e-12)


# ---- failing closed in the loop ---------------------------------------------------------------


def _run_ticks(arm: ArmLoop, first: int, count: int) -> None:
    for k in range(first, first + count):
        arm.tick(k * 1e-3)


def test_a_critic_that_raises_makes_the_arm_hold_that_same_tick_then_resume(config: BresaConfig) -> None:
    arm, scripted, _, critic = _composed_arm(config)
    applied = _spy_applied(arm)
    tip = _tip(arm)
    assert scripted.real.on_task_action(_action(tip, [0.0, 0.0, -0.01]), 0.0)
    _run_ticks(arm, 0, 3)
    assert arm.decision is not None and arm.decision.status == "task"

    def broken(out: SafetyTick) -> SafetyTick:
        raise RuntimeError("torch says no")

    scripted.misbehave = broken
    _run_ticks(arm, 3, 1)
    assert arm.decision.status == "critic-error" and arm.held
    command, _ = applied[-1]
    assert command is arm.decision.command and _is_hold(command, config)
    np.testing.assert_allclose(command.position_m, _tip(arm), atol=2e-4)  # where the tip was: a compliant hold
    assert critic.faults["raised"] == 1 and "RuntimeError: torch says no" in critic.last_fault
    scripted.misbehave = None
    _run_ticks(arm, 4, 1)
    assert arm.decision.status == "task" and not _is_hold(applied[-1][0], config)


@pytest.mark.parametrize("case", ["nan-command", "nan-risk", "out-of-range"])
def test_a_critic_that_answers_a_non_finite_value_makes_the_arm_hold_that_same_tick(
    config: BresaConfig, case: str
) -> None:
    arm, scripted, _, critic = _composed_arm(config)
    applied = _spy_applied(arm)
    assert scripted.real.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.0)
    _run_ticks(arm, 0, 2)

    def corrupt(out: SafetyTick) -> SafetyTick:
        assert out.command is not None
        values = out.command.to_array()
        if case == "nan-command":
            values[2] = np.nan
        elif case == "out-of-range":
            values[7] = 1e6
        risk = np.nan if case == "nan-risk" else out.risk
        return SafetyTick(ImpedanceCommand.wrap(values), out.status, risk, out.fired, out.state_stamp_s)

    scripted.misbehave = corrupt
    _run_ticks(arm, 2, 1)
    assert arm.decision is not None and arm.decision.status == "critic-error"
    assert _is_hold(applied[-1][0], config) and np.all(np.isfinite(applied[-1][0].values))
    assert critic.faults["non-finite"] == 1


def test_a_critic_over_its_budget_is_not_applied_the_arm_holds_that_same_tick(config: BresaConfig) -> None:
    arm, scripted, clock, critic = _composed_arm(config)
    applied = _spy_applied(arm)
    assert scripted.real.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.0)
    scripted.slow_s = 0.9 * config.runtime.critic_budget_s  # within budget: applied
    _run_ticks(arm, 0, 2)
    assert arm.decision is not None and arm.decision.status == "task"
    assert applied[-1][0] is scripted.answers[-1].command
    scripted.slow_s = 1.5 * config.runtime.critic_budget_s  # the fake clock says: too late
    _run_ticks(arm, 2, 1)
    late = scripted.answers[-1]
    assert late.status == "task" and late.command is not None  # a valid answer, but late ...
    assert arm.decision.status == "critic-overrun" and applied[-1][0] is not late.command  # ... so not applied
    assert _is_hold(applied[-1][0], config) and critic.faults["overrun"] == 1
    assert critic.compute_s == pytest.approx(1.5 * config.runtime.critic_budget_s)
    assert "over its budget" in critic.last_fault
    scripted.slow_s = 0.0
    _run_ticks(arm, 3, 1)
    assert arm.decision.status == "task" and applied[-1][0] is scripted.answers[-1].command


def test_a_stale_task_action_still_holds_in_the_loop(config: BresaConfig) -> None:
    arm, scripted, _, _ = _composed_arm(config)
    applied = _spy_applied(arm)
    _run_ticks(arm, 0, 1)
    assert arm.decision is not None and arm.decision.status == "no-task-action"  # none yet
    assert _is_hold(applied[-1][0], config)
    assert scripted.real.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.001)
    _run_ticks(arm, 2, 1)
    assert arm.decision.status == "task"
    arm.tick(0.001 + config.runtime.task_action_timeout_s + 0.001)  # the action is older than its timeout
    assert arm.decision.status == "no-task-action" and arm.held and _is_hold(applied[-1][0], config)


def test_the_composed_arm_never_applies_a_command_from_outside(config: BresaConfig) -> None:
    arm, scripted, _, _ = _composed_arm(config)
    applied = _spy_applied(arm)
    tip = _tip(arm)
    rogue = _action(tip, [0.0, 0.0, -0.05], k=3000.0)
    assert arm.on_command(rogue, 0.0)  # the follower would take it; composed, nothing reads it
    _run_ticks(arm, 0, 5)
    assert all(not np.allclose(command.values, rogue) for command, _ in applied)
    assert all(_is_hold(command, config) for command, _ in applied)  # no task action yet: the critic holds


def test_the_composed_arm_traces_a_reflex_latency_of_one_tick(config: BresaConfig) -> None:
    from bresa_control.ros.runner import reflex_latencies_ticks

    arm, scripted, _, _ = _composed_arm(config, risk=0.9, trace=True)
    assert scripted.real.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.0)
    _run_ticks(arm, 1, 20)
    fired = [[stamp, crcs] for stamp, crcs in scripted.real.fired_trace]
    latencies, unmatched = reflex_latencies_ticks(
        {"tick_trace": arm.tick_trace.rows(), "applied_trace": arm.applied_trace.rows()}, {"fired_trace": fired})
    assert latencies == [1] and unmatched == 0


# ---- the simulated arm's own stop -------------------------------------------------------------


def test_the_simulated_arm_stops_for_good_once_the_wrist_force_reaches_the_fault_force(config: BresaConfig) -> None:
    arm = ArmLoop(config, seed=0)
    hole = arm.layout.fixture_estimate_m
    tip0 = _tip(arm)
    target = tip0 + np.array([0.003, 0.0, 0.0])
    now = 0.0
    for _ in range(8000):  # come down gently onto the block's face, beside the hole
        target[2] = max(tip0[2] - 0.005 * now, hole[2] - 0.003)
        arm.on_command(_action(target, [0.0, 0.0, 0.0], k=800.0), now)
        arm.tick(now)
        now += 1e-3
    assert 1.0 < np.linalg.norm(arm.force_n) < 10.0 and not arm.fault  # in contact, pressing lightly
    rogue = _action(_tip(arm), [0.0, 0.0, -0.05], k=3000.0)  # 5 cm below the tip at 3000 N/m
    forces = []
    for _ in range(2000):
        arm.on_command(rogue, now)  # fresh every tick: the arm would follow it
        arm.tick(now)
        forces.append(float(np.linalg.norm(arm.force_n)))
        now += 1e-3
    fault_force = config.safety.arm_fault_force_n
    first = next(i for i, f in enumerate(forces) if f >= fault_force)
    assert arm.stop_force_n == pytest.approx(forces[first])  # it stopped on the first tick at 40 N
    assert arm.peak_force_before_stop_n == pytest.approx(max(forces[:first]))  # the approach pressed less
    assert arm.peak_force_before_stop_n < fault_force
    assert "collision reflex" in arm.fault
    # From the next tick on the joints are held: the force grows no further (a few newtons at most
    # while the arm decelerates), and the arm follows none of the commands that keep coming.
    assert max(forces) <= arm.stop_force_n + 5.0
    assert arm.held and arm.hold_ticks >= len(forces) - first - 1
    tip = _tip(arm)
    for _ in range(200):
        arm.on_command(rogue, now)
        arm.tick(now)
        now += 1e-3
    assert np.linalg.norm(_tip(arm) - tip) < 1e-3  # still where it stopped: it never resumes on its own


# ---- what the tick no longer does twice -------------------------------------------------------


def test_without_gravity_the_controller_runs_one_dynamics_pass_and_the_same_law(
    config: BresaConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = RobotModel.from_config(config)
    controller = CartesianImpedanceController(robot, dataclasses.replace(config.controller,
                                                                         gravity_compensation=False))
    q = np.array([0.1, 0.3, -0.1, -2.0, 0.05, 2.3, 0.7])
    dq = np.linspace(-0.2, 0.2, 7)
    controller.reset(q)
    command = ImpedanceCommand.wrap(_action(robot.frame_pose(q).position_m, [0.0, 0.0, -0.003]))
    calls: list[str] = []
    gravity = pin.computeGeneralizedGravity
    nle = pin.nonLinearEffects
    monkeypatch.setattr(pin, "computeGeneralizedGravity", lambda *a: calls.append("g") or gravity(*a))
    monkeypatch.setattr(pin, "nonLinearEffects", lambda *a: calls.append("nle") or nle(*a))
    tau = controller.compute(q, dq, command)
    assert calls == ["nle"]  # one dynamics pass, no gravity pass to subtract
    monkeypatch.undo()
    # The law is unchanged: C dq + g - g, as before, within rounding (before the 1 Nm rate limit).
    reference = CartesianImpedanceController(robot, dataclasses.replace(config.controller, gravity_compensation=True,
                                                                        torque_rate_limit_nm_per_tick=1e6))
    reference.reset(q)
    expected = reference.compute(q, dq, command) - robot.gravity(q)
    limit = config.controller.torque_rate_limit_nm_per_tick
    np.testing.assert_allclose(tau, np.clip(expected, -limit, limit), atol=1e-9)


def test_the_relayed_wrench_turns_with_the_flange_rotation_the_controller_already_has(config: BresaConfig) -> None:
    fr3 = fr3_model(config)
    loop = FrankaArmLoop(config, fr3)
    q = np.array([0.1, 0.3, -0.1, -2.0, 0.05, 2.3, 0.7])
    loop.start(q)
    loop.on_command(_action(fr3.frame_pose(q).position_m, [0.0, 0.0, 0.0]), 0.0)
    calls = []
    frame_pose = fr3.frame_pose
    fr3.frame_pose = lambda *a, **k: calls.append(a) or frame_pose(*a, **k)  # type: ignore[method-assign]
    loop.tick(q, np.zeros(7), 0.001, WrenchSample(np.array([0.0, 0.0, 5.0]), np.array([0.1, 0.0, 0.0]), 7.0,
                                                 flange_axes=True))
    assert calls == []  # no kinematics beyond the controller's one pass
    rotation = frame_pose(q, FLANGE_LINK).rotation
    assert loop.wrench is not None and loop.wrench.stamp_s == 7.0
    np.testing.assert_allclose(loop.wrench.force_n, rotation @ np.array([0.0, 0.0, 5.0]), atol=1e-12)
    np.testing.assert_allclose(loop.wrench.torque_nm, rotation @ np.array([0.1, 0.0, 0.0]), atol=1e-12)


def test_the_latency_traces_are_bounded_rings_and_the_loop_reports_without_sorting() -> None:
    ring = TraceRing(capacity=4)
    for i in range(10):
        ring.record(float(i), float(10 * i))
    assert len(ring) == 4 and ring.rows() == [[6.0, 60.0], [7.0, 70.0], [8.0, 80.0], [9.0, 90.0]]
    stats = LoopStats(window=100)
    for i in range(300):
        stats.record(i * 1e-3 + (0.004 if i == 250 else 0.0), 1e-4 if i != 299 else 7e-4)
    recent = stats.recent()
    assert recent["ticks"] == 300 and recent["period_max_ms_recent"] == pytest.approx(5.0)
    assert recent["compute_max_ms_recent"] == pytest.approx(0.7) and "period_p99_ms" not in recent
    assert stats.recent()["period_max_ms_recent"] == 0.0  # since the last report
