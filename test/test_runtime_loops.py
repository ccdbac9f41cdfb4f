"""The runtime loops behind the nodes, without ROS: what reaches the arm in every failure case.

The safety critic forwards nothing unchecked: no state -> nothing; stale state -> hold; stale or
missing task action -> hold; malformed or out-of-range task action -> dropped and counted; a valid
action bigger than the policy's envelope -> clamped. The simulated arm holds on its own when
commands stop, and never applies a bad one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sim_helpers import FixedRisk

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandRejected, TaskActionCheck
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.policies.scripted import SpiralSearch
from bresa_control.runtime.policy_loop import PolicyLoop
from bresa_control.runtime.safety_loop import SafetyLoop
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.reflex import ForceGuardRisk, SoftenGains
from bresa_control.simulation.arm_loop import ArmLoop
from bresa_control.tasks.peg_insertion import PegInsertionTask

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def arm(config: BresaConfig) -> ArmLoop:
    return ArmLoop(config, seed=0)


def _checked(config: BresaConfig) -> BresaConfig:
    """The critic checking, without the reflex's brake: these tests are about the loop around the
    reflex (the brake's own tests are in test_reflex.py), and the recorded insertion below was
    recorded before the brake existed."""
    return dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate", brake_s=0.0))


def _loop(config: BresaConfig, arm: ArmLoop, risk: float = 0.1, now: float = 0.0) -> SafetyLoop:
    loop = SafetyLoop(_checked(config), FixedRisk(risk), SoftenGains(), arm.layout.fixture_estimate_m)
    _feed(loop, arm, now)
    return loop


def _feed(loop: SafetyLoop, arm: ArmLoop, stamp: float) -> None:
    force, torque = arm.sim.wrench()
    loop.on_joints(arm.sim.q, arm.sim.dq, stamp)
    loop.on_wrench(force, torque, stamp)


def _action(tip: np.ndarray, offset: list, k: float = 1000.0) -> np.ndarray:
    return ImpedanceCommand(tip + np.array(offset), DOWN.copy(), np.array([k] * 3 + [60.0] * 3),
                            np.array([60.0] * 3 + [5.0] * 3)).to_array()


def _tip(arm: ArmLoop) -> np.ndarray:
    return arm.sim.robot.frame_pose(arm.sim.q).position_m


def test_the_critic_refuses_to_run_with_the_reflex_off(config: BresaConfig, arm: ArmLoop) -> None:
    with pytest.raises(ValueError, match="reflex.mode must be"):
        SafetyLoop(config, FixedRisk(0.0), SoftenGains(), arm.layout.fixture_estimate_m)  # shipped mode: off


def test_nothing_is_sent_before_any_state_arrives(config: BresaConfig, arm: ArmLoop) -> None:
    loop = SafetyLoop(_checked(config), FixedRisk(0.0), SoftenGains(), arm.layout.fixture_estimate_m)
    assert not loop.on_task_action(_action(np.array([0.55, 0.0, 0.1]), [0, 0, 0]), 0.0)
    assert loop.dropped["no-state"] == 1
    out = loop.tick(0.0)
    assert out.command is None and out.status == "waiting-for-state"


def test_a_fresh_safe_action_goes_through_as_intermediate_actions(config: BresaConfig, arm: ArmLoop) -> None:
    loop = _loop(config, arm)
    tip = _tip(arm)
    assert loop.on_task_action(_action(tip, [0.0, 0.0, -0.005]), 0.0)
    out = loop.tick(0.001)
    assert out.status == "task" and out.risk == pytest.approx(0.1)
    # One tick into the decision: the setpoint has moved 1/100 of the way toward the target.
    assert out.command.position_m[2] == pytest.approx(tip[2] - 0.005 / config.env.ticks_per_decision)


def test_risk_above_eps_safe_fires_the_recovery_at_once(config: BresaConfig, arm: ArmLoop) -> None:
    loop = _loop(config, arm, risk=0.9)
    tip = _tip(arm)
    assert loop.on_task_action(_action(tip, [0.0, 0.0, -0.005], k=2000.0), 0.0)
    out = loop.tick(0.001)
    assert out.status == "reflex" and out.fired and loop.reflex_count == 1
    np.testing.assert_allclose(out.command.stiffness[:3], config.controller.stiffness_range_n_per_m[0])  # softened


@pytest.mark.parametrize("task_name, braked", [("peg-insertion", [False, False, True]), ("maze", [True, True, True])])
def test_the_safety_critic_brakes_along_its_tasks_axes(config: BresaConfig, arm: ArmLoop, task_name: str,
                                                       braked: list[bool]) -> None:
    """The node's loop runs the environment's reflex with the task it serves: on the maze the brake
    takes x and y too (``Task.brake_axes``), on peg insertion z alone."""
    from bresa_control.tasks import make_task

    with_brake = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    loop = SafetyLoop(with_brake, FixedRisk(0.9), SoftenGains(), arm.layout.fixture_estimate_m,
                      task=make_task(task_name, with_brake))
    _feed(loop, arm, 0.0)
    assert loop.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.005], k=2000.0), 0.0)
    out = loop.tick(0.001)
    assert out.status == "reflex" and out.fired
    brake = (config.reflex.brake_stiffness_n_per_m, config.reflex.brake_damping_ns_per_m)
    assert [(out.command.stiffness[a], out.command.damping[a]) == pytest.approx(brake) for a in range(3)] == braked


def test_a_stale_task_action_makes_it_hold_where_the_tip_is(config: BresaConfig, arm: ArmLoop) -> None:
    loop = _loop(config, arm)
    tip = _tip(arm)
    assert loop.on_task_action(_action(tip, [0.0, 0.0, -0.01]), 0.0)
    timeout = config.runtime.task_action_timeout_s
    _feed(loop, arm, timeout + 0.001)
    out = loop.tick(timeout + 0.002)
    assert out.status == "no-task-action"
    np.testing.assert_allclose(out.command.position_m, tip, atol=1e-9)  # not the action's target
    assert np.all(out.command.stiffness[:3] == config.runtime.hold_stiffness_n_per_m)
    # The hold target is latched: the next tick holds the same place.
    assert loop.tick(timeout + 0.003).command is out.command


def test_on_the_arms_clock_a_task_action_ages_with_the_arm_not_the_wall_clock(
    config: BresaConfig, arm: ArmLoop
) -> None:
    """A composed arm ages task actions on its own clock (a simulator's, behind the wall clock on a
    loaded machine; the policy decides on it): the wall clock running past the timeout does not
    make the action stale while the arm's clock has not, and the arm's clock alone does."""
    loop = _loop(config, arm)
    arm_clock_s = 10.0
    loop.age_task_actions_by(lambda: arm_clock_s)
    tip = _tip(arm)
    assert loop.on_task_action(_action(tip, [0.0, 0.0, -0.01]), 0.0)
    timeout = config.runtime.task_action_timeout_s
    arm_clock_s += 0.5 * timeout  # the simulator at a quarter of real time: 2 x the timeout of wall clock
    _feed(loop, arm, 2.0 * timeout)
    assert loop.tick(2.0 * timeout + 0.001).status == "task"
    arm_clock_s += timeout  # now 1.5 x the timeout on the arm's clock
    _feed(loop, arm, 2.0 * timeout + 0.002)
    assert loop.tick(2.0 * timeout + 0.003).status == "no-task-action"


def test_stale_state_holds_and_is_reported_as_an_error_status(config: BresaConfig, arm: ArmLoop) -> None:
    loop = _loop(config, arm, now=0.0)
    assert loop.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.01]), 0.0)
    out = loop.tick(config.runtime.state_timeout_s + 0.001)  # no state since t = 0
    assert out.status == "state-stale" and np.isnan(out.risk)  # not scored: held
    assert np.all(out.command.stiffness[:3] == config.runtime.hold_stiffness_n_per_m)


def _bad_action(case: str, tip: np.ndarray) -> np.ndarray:
    values = _action(tip, [0.0, 0.0, -0.005])
    if case == "short":
        return np.zeros(5)
    if case == "nan":
        values[:] = np.nan
    elif case == "inf":
        values[8] = np.inf
    elif case == "stiffness":
        values[7:10] = 5000.0
    elif case == "quaternion":
        values[3:7] = [0.0, 0.0, 0.0, 0.2]
    return values


@pytest.mark.parametrize(
    ("case", "kind", "reason"),
    [
        ("short", "malformed", "expected 19 values, got 5"),
        ("nan", "malformed", "non-finite"),
        ("inf", "malformed", "non-finite values: ky_n_per_m"),
        ("stiffness", "out-of-range", "kx_n_per_m = 5000 N/m is outside the allowed"),
        ("quaternion", "out-of-range", "quaternion norm"),
    ],
)
def test_bad_task_actions_are_dropped_counted_and_explained(
    config: BresaConfig, arm: ArmLoop, case: str, kind: str, reason: str
) -> None:
    loop = _loop(config, arm)
    assert not loop.on_task_action(_bad_action(case, _tip(arm)), 0.0)
    assert loop.dropped[kind] == 1 and reason in loop.last_drop_reason
    assert loop.tick(0.001).status == "no-task-action"  # nothing of it reached the arm


def test_actions_beyond_the_policy_envelope_are_clamped(config: BresaConfig, arm: ArmLoop) -> None:
    check = TaskActionCheck(config)
    tip = _tip(arm)
    command, clamped = check(_action(tip, [0.0, 0.0, -0.05], k=3000.0), tip)
    assert clamped
    assert command.position_m[2] == pytest.approx(tip[2] - config.env.max_step_m)
    assert np.all(command.stiffness[:3] == config.env.action_stiffness_range_n_per_m[1])
    inside, clamped = check(_action(tip, [0.0, 0.0, -config.env.max_step_m], k=1500.0), tip)
    assert not clamped and inside.position_m[2] == pytest.approx(tip[2] - config.env.max_step_m)
    below_table = _action(tip, [0.0, 0.0, -1.0])
    below_table[2] = -0.5
    command, clamped = check(below_table, tip)
    assert clamped and command.position_m[2] == pytest.approx(max(tip[2] - config.env.max_step_m, 0.0))
    with pytest.raises(CommandRejected, match="expected 19 values"):
        check(np.zeros(18), tip)


def test_arm_holds_by_itself_when_commands_stop(config: BresaConfig) -> None:
    arm = ArmLoop(config, seed=1)
    tip = _tip(arm)
    assert arm.on_command(_action(tip, [0.0, 0.0, -0.005]), 0.0)
    assert not arm.tick(0.001)  # fresh: follows the command
    held = arm.tick(config.runtime.command_timeout_s + 0.0011)
    assert held and arm.follower.hold_ticks == 1
    # Holding for a second keeps the tip where it was (compliant, gravity compensated).
    for k in range(1000):
        arm.tick(1.0 + k * 0.001)
    assert np.linalg.norm(_tip(arm) - tip) < 0.002


def test_arm_drops_bad_commands_and_keeps_the_last_good_one(config: BresaConfig) -> None:
    arm = ArmLoop(config, seed=2)
    tip = _tip(arm)
    good = _action(tip, [0.0, 0.0, 0.0])
    assert arm.on_command(good, 0.0)
    bad = good.copy()
    bad[7] = np.nan
    assert not arm.on_command(bad, 0.0005)
    assert not arm.on_command(np.zeros(3), 0.0006)
    assert arm.follower.dropped == {"malformed": 2}
    assert not arm.tick(0.001)  # still following the good command, not holding


def test_policy_loop_waits_for_state_then_commands_and_holds_once_in(config: BresaConfig, arm: ArmLoop) -> None:
    loop = PolicyLoop(config, SpiralSearch(config), arm.layout.fixture_estimate_m)
    assert loop.decide() is None
    loop.q, loop.dq = arm.sim.q, arm.sim.dq
    loop.force_n, loop.torque_nm = arm.sim.wrench()
    command = loop.decide()
    tip = _tip(arm)
    assert command is not None and command.position_m[2] < tip[2]  # the spiral search descends
    assert not loop.done
    # With the tip success_depth_m below the estimated face, it is done and holds.
    loop.fixture_estimate_m = tip + np.array([0.0, 0.0, config.env.success_depth_m])
    held = loop.decide()
    assert loop.done and np.allclose(held.position_m, tip)


def test_force_guard_baseline_still_works_as_a_safety_loop_critic(config: BresaConfig, arm: ArmLoop) -> None:
    loop = SafetyLoop(_checked(config), ForceGuardRisk(0.8), SoftenGains(), arm.layout.fixture_estimate_m)
    loop.on_joints(arm.sim.q, arm.sim.dq, 0.0)
    loop.on_wrench(np.array([0.0, 0.0, 0.9 * config.safety.max_force_n]), np.zeros(3), 0.0)
    assert loop.on_task_action(_action(_tip(arm), [0.0, 0.0, -0.005]), 0.0)
    assert loop.tick(0.001).status == "reflex"


def test_safety_loop_decides_as_recorded_on_a_recorded_insertion(config: BresaConfig) -> None:
    """Replays the inputs of test/data/safety_trace.npz (shipped models; the reflex fires, the state
    goes stale once, a malformed action arrives) and checks every tick's decision against what
    the loop decided when the file was made: making the loop faster must not change a command."""
    trace = dict(np.load(Path(__file__).parent / "data" / "safety_trace.npz"))  # read once, not per access
    statuses = ("waiting-for-state", "state-stale", "no-task-action", "task", "reflex")
    checked = _checked(config)
    critic, recovery, _ = load_reflex_models(checked)
    hole = PegInsertionTask(checked).draw_episode(np.random.default_rng(int(trace["seed"]))).fixture_estimate_m
    loop = SafetyLoop(checked, critic, recovery, hole)
    assert {statuses[s] for s in trace["status"]} >= {"task", "reflex", "state-stale"}
    status, fired, risk, command = [], [], [], []
    for k in range(len(trace["now"])):
        if np.isfinite(trace["state_stamp"][k]):
            loop.on_joints(trace["q"][k], trace["dq"][k], trace["state_stamp"][k])
            loop.on_wrench(trace["force"][k], trace["torque"][k], trace["state_stamp"][k])
        if not np.all(np.isnan(trace["action"][k])):
            loop.on_task_action(trace["action"][k], trace["action_stamp"][k])
        out = loop.tick(trace["now"][k])
        status.append(statuses.index(out.status))
        fired.append(out.fired)
        risk.append(out.risk)
        command.append(out.command.to_array())
    np.testing.assert_array_equal(status, trace["status"])
    np.testing.assert_array_equal(fired, trace["fired"])
    np.testing.assert_allclose(risk, trace["risk"], atol=1e-6)
    np.testing.assert_allclose(np.array(command), trace["command"], atol=1e-6)


def test_loop_stats_report_the_last_ticks_across_the_ring_wrap_and_the_whole_window() -> None:
    from bresa_control.runtime.timing import LoopStats

    stats = LoopStats(window=1000)
    start_s = 0.0
    for i in range(2500):  # the ring wraps twice; tick 2400 comes 5 ms after the one before
        start_s += 0.005 if i == 2400 else 0.001
        stats.record(start_s, i * 1e-6)
    recent = stats.summary(last=100)  # ticks 2400..2499
    assert recent["compute_p50_ms"] == pytest.approx(2.4495) and recent["period_max_ms"] == pytest.approx(5.0)
    assert stats.summary(last=50)["period_max_ms"] == pytest.approx(1.0)  # the long period is older
    whole = stats.summary()
    assert whole["period_max_ms"] == pytest.approx(5.0) and whole["compute_p50_ms"] == pytest.approx(1.9995)
    assert whole["ticks"] == 2500 and whole["rate_hz"] == pytest.approx(2499 / (start_s - 0.001))
