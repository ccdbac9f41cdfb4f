"""The reflex: intermediate actions, hysteresis, the three modes, and the reflex in the loop."""

from __future__ import annotations

import numpy as np
import pytest

from bresa_control.common.config import BresaConfig, ConfigError, load_config
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.safety.reflex import ForceGuardRisk, IntermediateActions, Reflex, RiskGate, SoftenGains
from bresa_control.safety.risk_features import FEATURE_SIZE, FeatureMap, TickState
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.simulator import ArmSim

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def _command(position: list, k: float, d: float) -> ImpedanceCommand:
    return ImpedanceCommand(np.array(position, float), DOWN.copy(), np.array([k] * 3 + [60.0] * 3),
                            np.array([d] * 3 + [5.0] * 3))


def _tick(force_z: float = 0.0, tip: list | None = None) -> TickState:
    return TickState(np.array([0.0, 0.0, force_z]), np.zeros(3),
                     np.array(tip if tip is not None else [0.55, 0.0, 0.06]), np.zeros(3))


class CountingRisk:
    """Risk from the commanded setpoint depth: pushing more than 5 mm below the tip is risky."""

    def __init__(self) -> None:
        self.calls = 0

    def risk(self, features: np.ndarray) -> float:
        self.calls += 1
        assert features.shape == (FEATURE_SIZE,) and features.dtype == np.float32
        return 0.9 if features[11 + 2] < -0.5 else 0.1  # setpoint_dz / 1 cm


def test_intermediate_setpoint_moves_linearly_and_gains_ramp(config: BresaConfig) -> None:
    steps = IntermediateActions(config)
    applied = _command([0.5, 0.0, 0.1], k=100.0, d=20.0)
    target = _command([0.5, 0.0, 0.0], k=2000.0, d=200.0)
    steps.start(target, np.array([0.5, 0.0, 0.1]), applied)
    commands = [steps.next() for _ in range(config.env.ticks_per_decision)]
    z = np.array([c.position_m[2] for c in commands])
    np.testing.assert_allclose(z, 0.1 - 0.1 * np.arange(1, 101) / 100)
    k = np.array([c.stiffness[0] for c in commands])
    rate = config.reflex.stiffness_rate_n_per_m_per_tick
    assert np.all(np.diff(k) <= rate + 1e-9) and k[0] == pytest.approx(100.0 + rate)
    assert k[-1] == pytest.approx(2000.0)  # 1900 N/m at 50 N/m per tick: there after 38 ticks
    d = np.array([c.damping[0] for c in commands])
    assert d[-1] == pytest.approx(200.0) and np.all(np.diff(d) <= config.reflex.damping_rate_ns_per_m_per_tick + 1e-9)


def test_gate_has_hysteresis_and_minimum_dwell() -> None:
    gate = RiskGate(fire_above=0.5, release_below=0.3, min_active_ticks=5, hysteresis_timeout_ticks=1000)
    assert not gate.update(0.49)
    assert gate.update(0.51)  # fires: recovery runs this tick (1 of at least 5)
    assert gate.update(0.45)  # below eps but above release (0.3): holds (2)
    assert [gate.update(0.1) for _ in range(3)] == [True, True, True]  # low, but only 3, 4, 5
    assert not gate.update(0.1)  # ran 5 ticks and risk is low: releases
    assert gate.update(0.51) and not any(not gate.update(0.45) for _ in range(20))  # no chatter


def test_gate_lets_go_in_the_hysteresis_band_after_its_timeout() -> None:
    gate = RiskGate(fire_above=0.5, release_below=0.3, min_active_ticks=5, hysteresis_timeout_ticks=30)
    assert gate.update(0.51)  # fires (tick 1 on)
    held = [gate.update(0.45) for _ in range(40)]  # below eps_safe, above release (0.3)
    assert held[:29] == [True] * 29 and held[29] is False  # on for 30 ticks (as min_active: 5), then off
    assert not any(gate.update(0.5) for _ in range(100))  # at eps_safe: does not fire again
    assert gate.update(0.51)  # above it: fires again
    assert [gate.update(0.9) for _ in range(100)] == [True] * 100  # above eps_safe it never lets go
    assert not gate.update(0.45)  # the timeout counts from the firing: on 101 ticks, so it lets go
    assert gate.update(0.51) and gate.update(0.45)  # fired afresh: the band holds again


def test_the_reflex_checks_every_tick_and_fires_within_the_decision(config: BresaConfig) -> None:
    cfg = load_config(overrides={"reflex": {"mode": "control-rate", "brake_s": 0.0}})  # the recovery itself
    critic = CountingRisk()
    reflex = Reflex(cfg, critic, SoftenGains())
    reflex.begin_decision(_command([0.55, 0.0, 0.0], 2000.0, 150.0), _tick(), 0.035, None)
    decisions = [reflex.step(_tick(), 0.035) for _ in range(100)]
    assert critic.calls == 100
    # Early intermediate setpoints are close to the tip (low risk); the reflex fires on the
    # first tick whose setpoint is more than 5 mm below the tip, not at the next decision.
    fired = [i for i, d in enumerate(decisions) if d.fired]
    assert fired[0] == 8  # tick 9: 60 mm * 9/100 > 5 mm
    assert decisions[8].command.stiffness[0] == pytest.approx(10.0)
    # While it holds, the critic scores resuming from here (a fresh, gentle approach):
    # safe, so after the 50 ms dwell it lets go; the approach turns risky again 9 ticks
    # later and the reflex fires again.
    assert fired == [8, 8 + 50 + 8]
    assert reflex.reflex_count == 2


def test_off_mode_passes_intermediate_actions_through(config: BresaConfig) -> None:
    reflex = Reflex(config)  # shipped config: mode off
    target = _command([0.55, 0.0, 0.0], 2000.0, 150.0)
    reflex.begin_decision(target, _tick(), 0.035, None)
    last = [reflex.step(_tick(), 0.035) for _ in range(100)][-1]
    np.testing.assert_allclose(last.command.position_m, target.position_m)
    assert not last.active and last.risk == 0.0


def test_a_mode_that_checks_refuses_to_run_without_models() -> None:
    cfg = load_config(overrides={"reflex": {"mode": "control-rate"}})
    with pytest.raises(ValueError, match="needs a risk critic and a recovery policy"):
        Reflex(cfg)
    with pytest.raises(ConfigError, match="quote the value"):
        load_config(overrides={"reflex": {"mode": False}})


def test_feature_map_round_trips_recovery_actions(config: BresaConfig) -> None:
    features = FeatureMap(config)
    tip = np.array([0.5, 0.0, 0.05])
    template = _command([0.5, 0.0, 0.05], 500.0, 60.0)
    command = _command([0.503, -0.002, 0.045], 800.0, 120.0)
    back = features.command(features.action(command, tip), tip, template)
    np.testing.assert_allclose(back.position_m, command.position_m, atol=1e-6)
    np.testing.assert_allclose(back.stiffness, command.stiffness, rtol=1e-5)
    np.testing.assert_allclose(back.damping, command.damping, rtol=1e-5)
    state = features.state(_tick(force_z=15.0, tip=[0.5, 0.0, 0.045]), face_height_m=0.035)
    assert state[2] == pytest.approx(0.5) and state[9] == pytest.approx(1.0)


def test_force_guard_in_the_loop_keeps_a_hard_press_under_f_max() -> None:
    """Resting on the block's face, then driving the target 2 cm into it at top stiffness: the
    force builds tick by tick toward 40 N. Without a reflex the arm faults; with the force-guard
    rule as the reflex the wrist force stays under F_max."""
    peaks = {}
    for mode in ("off", "control-rate"):
        cfg = load_config(overrides={"reflex": {"mode": mode}, "env": {"max_step_m": 0.02}})
        env = TaskEnv(cfg, ForceGuardRisk(0.8), SoftenGains())
        obs, _ = env.reset(seed=2)
        over_face = env.actions.to_action(np.array([0.02, 0.0, 0.0]), np.array([1000.0] * 3), 1.0)
        for _ in range(10):
            obs, *_ = env.step(over_face)  # 2 cm aside: above the block's face, off the hole
        while obs[11] < 0.5:  # descend (5 mm steps, then 1 mm) until the face pushes back
            step_m = 0.005 if obs[2] > 0.008 else 0.001
            obs, *_ = env.step(env.actions.to_action(np.array([0.0, 0.0, -step_m]), np.full(3, 1000.0), 1.0))
        press = env.actions.to_action(np.array([0.0, 0.0, -0.02]), np.array([2000.0] * 3), 1.0)
        infos = []
        for _ in range(2):
            _, _, terminated, _, info = env.step(press)
            infos.append(info)
            if terminated:
                break
        peaks[mode] = max(i["peak_force_n"] for i in infos)
        if mode == "control-rate":
            assert sum(i["reflex_fired"] for i in infos) >= 1
            assert not any(i["force_violation"] for i in infos)
    assert peaks["off"] > cfg.safety.max_force_n > peaks["control-rate"]


class BrokenRisk:
    def risk(self, features: np.ndarray) -> float:
        return float("nan")


@pytest.mark.parametrize("gate", ["q-risk", "feasibility"])
def test_a_non_finite_risk_or_input_fires_the_reflex(gate: str) -> None:
    cfg = load_config(overrides={"reflex": {"mode": "control-rate", "brake_s": 0.0, "gate": gate}})  # the recovery
    reflex = Reflex(cfg, BrokenRisk(), SoftenGains())
    reflex.begin_decision(_command([0.55, 0.0, 0.05], 500.0, 80.0), _tick(), 0.035, None)
    decision = reflex.step(_tick(), 0.035)
    assert decision.active and decision.risk == 1.0
    assert decision.command.stiffness[0] == pytest.approx(10.0)  # the soft recovery, not the task
    reflex = Reflex(cfg, CountingRisk(), SoftenGains())
    reflex.begin_decision(_command([0.55, 0.0, 0.05], 500.0, 80.0), _tick(), 0.035, None)
    assert reflex.step(_tick(force_z=float("nan")), 0.035).active  # a NaN wrench reading too


class AlwaysRisky:
    def risk(self, features: np.ndarray) -> float:
        return 0.9


def test_a_learned_recovery_sets_the_insertion_axis_in_its_box_and_keeps_the_lateral_gains() -> None:
    """The shipped recovery replaces the setpoint and the z gains, within its box; x and y keep the
    stiffness and damping of the action it replaces, so an external force does not find a limp arm."""
    from bresa_control.safety.models import load_reflex_models

    cfg = load_config(overrides={"reflex": {"mode": "control-rate", "brake_s": 0.0}})  # the recovery itself
    _, recovery, _ = load_reflex_models(cfg)
    reflex = Reflex(cfg, AlwaysRisky(), recovery)
    target = ImpedanceCommand(np.array([0.55, 0.0, 0.04]), DOWN.copy(), np.array([1500.0, 900.0, 1200.0, 60, 60, 60]),
                              np.array([220.0, 170.0, 200.0, 5, 5, 5]))
    reflex.begin_decision(target, _tick(force_z=20.0), 0.035, None)
    decision = reflex.step(_tick(force_z=20.0), 0.035)
    assert decision.fired
    np.testing.assert_allclose(decision.command.stiffness[:2], [1500.0, 900.0], rtol=1e-5)
    np.testing.assert_allclose(decision.command.damping[:2], [220.0, 170.0], rtol=1e-5)
    # The recovery box along z (risk_features.RECOVERY_HIGH): at most 960 N/m and 600 N s/m, so that
    # it can brake (the models before 2026-12-07 had a box of at most 170 N/m) ...
    assert decision.command.stiffness[2] <= 960.0 + 1e-3 and decision.command.damping[2] <= 600.0 + 1e-3
    assert decision.command.position_m[2] >= 0.06 - 1e-9  # ... and a setpoint at or above the tip
    # The force-guard rule (SoftenGains) softens every axis, as a practitioner's first rule would.
    guard = Reflex(cfg, AlwaysRisky(), SoftenGains())
    guard.begin_decision(target, _tick(force_z=20.0), 0.035, None)
    np.testing.assert_allclose(guard.step(_tick(force_z=20.0), 0.035).command.stiffness[:3], 10.0)


class SoftRecovery:
    """By default the soft recovery of the shipped models before the brake: z at 150 N/m and
    42 N s/m, the setpoint 5 mm up; x and y as the replaced action."""

    def __init__(self, kz_n_per_m: float = 150.0, dz_ns_per_m: float = 42.0) -> None:
        self.kz_n_per_m = kz_n_per_m
        self.dz_ns_per_m = dz_ns_per_m

    def act(self, state_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
        action = np.array(replaced_features, dtype=np.float32)
        action[2] = 0.5
        action[5] = 2.0 * np.log(self.kz_n_per_m / 10.0) / np.log(3000.0 / 10.0) - 1.0
        action[8] = 2.0 * self.dz_ns_per_m / 600.0 - 1.0
        return action


def _peak_force_when_firing_above_the_face(config: BresaConfig, speed_m_per_s: float, brake_s: float,
                                          push_down_n: float = 0.0, recovery: SoftRecovery | None = None,
                                          height_m: float = 0.001, **reflex: float) -> float:
    """The tip comes down at ``speed_m_per_s`` ``height_m`` above the hole block's top face (beside
    the hole) under a fast task action, and the reflex fires on the first tick: the peak wrist force
    over the next 0.3 s. ``push_down_n``: a downward push on the peg for the first 0.2 s, as in
    the push-down scenario; ``reflex``: other reflex settings."""
    import dataclasses

    from sim_helpers import place_tip

    from bresa_control.control.actions import ActionMap

    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate",
                                                                    brake_s=brake_s, **reflex))
    sim = ArmSim(config)
    hole_xy = np.array(config.scene.hole.nominal_position_m)
    sim.set_fixture_xy(hole_xy)
    face_z = sim.task.fixture_height_m()
    q = place_tip(sim, np.array([hole_xy[0] + 0.025, hole_xy[1], face_z + height_m]))
    tip_twist = np.array([0.0, 0.0, -speed_m_per_s, 0.0, 0.0, 0.0])
    sim.set_arm_state(q, np.linalg.pinv(sim.robot.frame_jacobian(q)) @ tip_twist)
    reflex = Reflex(config, AlwaysRisky(), recovery or SoftRecovery())
    state = sim.tick_state()
    assert state.tip_velocity_m_per_s[2] == pytest.approx(-speed_m_per_s, abs=1e-3)
    fast_down = np.array([0.0, 0.0, -1.0, 1.0, 1.0, 1.0, 0.0], np.float32)  # 1 cm down at 2000 N/m
    target = ActionMap(config).to_command(fast_down, state.tip_position_m, sim.robot.cartesian_inertia(q))
    reflex.begin_decision(target, state, face_z, None)
    return _peak_force_with_the_reflex_on(sim, reflex, face_z, np.array([0.0, 0.0, -push_down_n]), 300)


def _peak_force_with_the_reflex_on(sim: ArmSim, reflex: Reflex, surface_z_m: float, push_n: np.ndarray,
                                   ticks: int) -> float:
    """Tick ``sim`` under ``reflex`` (which must hold throughout) for ``ticks``, the peg pushed by
    ``push_n`` for the first 0.2 s (a scenario's push): the peak wrist force (N)."""
    state = sim.tick_state()
    peak_n = 0.0
    for tick in range(ticks):
        sim.push_peg(push_n if tick < 200 else np.zeros(3))
        decision = reflex.step(state, surface_z_m)
        assert decision.active
        sim.tick(decision.command)
        state = sim.tick_state()
        peak_n = max(peak_n, float(np.linalg.norm(state.force_n)))
    return peak_n


def test_the_brake_stops_a_tip_at_60_mm_per_s_within_a_millimetre(config: BresaConfig) -> None:
    """Item 1 of "A reflex that earns its place": with the brake (the default) the peak force
    stays under F_max; the soft recovery alone cannot stop the arm in that distance."""
    f_max = config.safety.max_force_n
    assert config.reflex.brake_s > 0.0
    assert _peak_force_when_firing_above_the_face(config, 0.06, config.reflex.brake_s) < f_max
    assert _peak_force_when_firing_above_the_face(config, 0.03, config.reflex.brake_s) < f_max
    assert _peak_force_when_firing_above_the_face(config, 0.06, 0.0) > f_max


def test_the_loaded_brake_carries_a_20_n_push_down_off_the_face(config: BresaConfig) -> None:
    """The push-down scenario's 20 N on a peg coming down at 25 mm/s 3 mm above the face, the
    reflex firing as the push starts (as in bresa's push-down violations at commit fa71986): the
    brake whose setpoint rises with the load and which lasts while the load does (the default)
    keeps the wrist force under F_max (about 20 N: the push); the brake of fixed lift and length,
    after which the soft recovery takes over, lets the push drive the peg into the face (84 N)."""
    f_max = config.safety.max_force_n
    reflex = config.reflex
    assert reflex.brake_lift_per_load_m_per_n > 0.0 and reflex.brake_max_s >= 0.2 + reflex.brake_s
    loaded = _peak_force_when_firing_above_the_face(config, 0.025, reflex.brake_s, push_down_n=20.0, height_m=0.003)
    fixed = _peak_force_when_firing_above_the_face(config, 0.025, reflex.brake_s, push_down_n=20.0, height_m=0.003,
                                                   brake_lift_per_load_m_per_n=0.0, brake_max_s=reflex.brake_s)
    assert loaded < f_max < fixed


def test_the_brake_lifts_with_the_load_either_way_and_lasts_while_it_does(config: BresaConfig) -> None:
    """The brake's setpoint rises by brake_lift_per_load_m_per_n per newton of z force above
    brake_hold_load_n, a push down or the face pushing up alike, capped at brake_max_lift_m (a
    non-finite reading: the cap);
    past brake_s it lasts while |F_z| > brake_hold_load_n, and never past brake_max_s."""
    import dataclasses

    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    r = config.reflex
    dt = config.env.control_period_s
    tip = [0.55, 0.0, 0.06]
    reflex = Reflex(config, AlwaysRisky(), SoftRecovery())
    task = _command([0.55, 0.0, 0.05], 1500.0, 80.0)
    reflex.begin_decision(task, _tick(tip=tip), 0.03, task)
    down, up, far, nan, bias = (reflex.step(_tick(force_z, tip), 0.03).command.position_m[2] - tip[2]
                                for force_z in (-10.0, 10.0, -1e3, float("nan"), r.brake_hold_load_n))
    assert down == pytest.approx(r.brake_lift_m + 10.0 * r.brake_lift_per_load_m_per_n)
    assert up == pytest.approx(down)
    assert far == pytest.approx(r.brake_max_lift_m) and nan == pytest.approx(r.brake_max_lift_m)
    assert bias == pytest.approx(r.brake_lift_m)  # up to brake_hold_load_n: a tare error, no load
    loaded = 2.0 * r.brake_hold_load_n
    kz = [reflex.step(_tick(-loaded, tip), 0.03).command.stiffness[2] for _ in range(int(round(r.brake_max_s / dt)))]
    assert set(kz[:-5]) == {r.brake_stiffness_n_per_m}  # loaded: the brake (5 ticks above), to brake_max_s ...
    assert kz[-1] == pytest.approx(150.0, rel=1e-3)  # ... then the learned recovery, loaded or not
    reflex.reset()
    reflex.begin_decision(task, _tick(tip=tip), 0.03, task)
    brake_ticks = int(round(r.brake_s / dt))
    kz = [reflex.step(_tick(0.5 * r.brake_hold_load_n, tip), 0.03).command.stiffness[2] for _ in range(brake_ticks + 1)]
    assert kz[brake_ticks - 1] == r.brake_stiffness_n_per_m and kz[brake_ticks] == pytest.approx(150.0, rel=1e-3)


def test_the_brake_holds_the_tip_with_the_replaced_lateral_gains(config: BresaConfig) -> None:
    import dataclasses

    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    reflex = Reflex(config, AlwaysRisky(), SoftRecovery())
    tip = [0.55, 0.0, 0.06]
    task = _command([0.55, 0.01, 0.05], 1500.0, 80.0)
    reflex.begin_decision(task, _tick(tip=tip), 0.03, task)
    brake_ticks = int(round(config.reflex.brake_s / config.env.control_period_s))
    commands = [reflex.step(_tick(tip=tip), 0.03).command for _ in range(brake_ticks + 1)]
    brake = commands[0]
    np.testing.assert_allclose(brake.position_m, [0.55, 0.0, 0.06 + config.reflex.brake_lift_m])
    np.testing.assert_allclose(brake.stiffness[:3], [1500.0, 1500.0, config.reflex.brake_stiffness_n_per_m])
    np.testing.assert_allclose(brake.damping[:3], [80.0, 80.0, config.reflex.brake_damping_ns_per_m])
    assert all(np.array_equal(c.values, brake.values) for c in commands[:brake_ticks])
    assert commands[brake_ticks].stiffness[2] == pytest.approx(150.0, rel=1e-3)  # then the learned recovery


def test_the_brake_stops_the_tip_along_every_axis_the_task_names(config: BresaConfig) -> None:
    """A task whose surfaces stand beside the tip (the maze's walls: ``brake_axes`` x, y and z)
    gets the brake's stiffness and damping on those axes too, the setpoint latched at the tip, and
    a sideways load keeps it on past brake_s (a 20 N push along a corridor); along z alone (peg
    insertion) the same sideways load does not. Axes other than 0, 1, 2 are refused."""
    import dataclasses

    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    r = config.reflex
    tip = [0.55, 0.0, 0.06]
    sideways = TickState(np.array([2.0 * r.brake_hold_load_n, 0.0, 0.0]), np.zeros(3), np.array(tip), np.zeros(3))
    brake_ticks = int(round(r.brake_s / config.env.control_period_s))
    braked_at_end = {}
    for axes in ((0, 1, 2), (2,)):
        reflex = Reflex(config, AlwaysRisky(), SoftRecovery(), brake_axes=axes)
        task = _command([0.55, 0.01, 0.05], 1500.0, 80.0)
        reflex.begin_decision(task, _tick(tip=tip), 0.03, task)
        commands = [reflex.step(sideways, 0.03).command for _ in range(brake_ticks + 1)]
        brake = commands[0]
        np.testing.assert_allclose(brake.position_m, [0.55, 0.0, 0.06 + r.brake_lift_m])
        expected_k = [r.brake_stiffness_n_per_m if axis in axes else 1500.0 for axis in range(3)]
        expected_d = [r.brake_damping_ns_per_m if axis in axes else 80.0 for axis in range(3)]
        np.testing.assert_allclose(brake.stiffness[:3], expected_k)
        np.testing.assert_allclose(brake.damping[:3], expected_d)
        braked_at_end[axes] = np.array_equal(commands[brake_ticks].values, brake.values)
    assert braked_at_end == {(0, 1, 2): True, (2,): False}
    for bad in ((), (3,), (2, 2)):
        with pytest.raises(ValueError, match="brake_axes"):
            Reflex(config, AlwaysRisky(), SoftRecovery(), brake_axes=bad)


def _peak_force_when_pushed_along_a_corridor(config: BresaConfig, brake_axes: tuple[int, ...]) -> float:
    """The maze's push (20 N sideways for 0.2 s) on a tip resting in the first corridor of layout
    0, 27.5 mm short of the corridor's end wall, along the corridor; the task action is soft
    sideways (the softest stiffness and damping: a policy sliding along walls), and the reflex fires
    on the first tick: the peak wrist force over the next 0.4 s (README "Tasks": bresa's maze-push
    violations, the peg slid along a corridor into its end wall at 220 mm/s)."""
    import dataclasses

    from sim_helpers import place_tip

    from bresa_control.control.actions import ActionMap
    from bresa_control.tasks.maze import MazeTask

    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    task = MazeTask(config)
    sim = ArmSim(config, task)
    sim.show_variant(0)
    fixture = np.array([0.55, 0.0, task.fixture_height_m()])
    sim.set_fixture_xy(fixture[:2])
    turn = fixture + task.layouts[0].centre_line_m[1]  # the first straight runs along +x to here
    start = turn - np.array([0.0275 - (task.pitch_m - config.scene.peg.side_m) / 2.0, 0.0, 0.0])
    q = place_tip(sim, start)
    state = sim.tick_state()
    soft_along_x = np.array([1.0, 0.0, 0.0, -1.0, -1.0, 1.0, -1.0], np.float32)
    target = ActionMap(config).to_command(soft_along_x, state.tip_position_m, sim.robot.cartesian_inertia(q))
    reflex = Reflex(config, AlwaysRisky(), SoftRecovery(), brake_axes=brake_axes)
    reflex.begin_decision(target, state, fixture[2], None)
    return _peak_force_with_the_reflex_on(sim, reflex, fixture[2], np.array([20.0, 0.0, 0.0]), 400)


def test_the_maze_brake_stops_a_push_along_a_corridor_short_of_its_end_wall(config: BresaConfig) -> None:
    """With the maze's brake axes (x, y, z) the push leaves the peg against the wall with about
    the push's own force; braked along z alone, x and y keep the soft task action's gains and the
    push drives the peg into the end wall (113 N in one run of this scene)."""
    from bresa_control.tasks.maze import MazeTask

    f_max = config.safety.max_force_n
    assert _peak_force_when_pushed_along_a_corridor(config, MazeTask.brake_axes) < f_max
    assert _peak_force_when_pushed_along_a_corridor(config, (2,)) > f_max
