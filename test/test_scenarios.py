"""Evaluation perturbations: each does what it says, from the episode seed, and undoes itself."""

from __future__ import annotations

import numpy as np
import pytest

from bresa_control.common.config import BresaConfig, load_config
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.scenarios import SCENARIOS, Scenario


def _hold(env: TaskEnv) -> np.ndarray:
    return env.actions.to_action(np.zeros(3), np.array([1000.0] * 3), 1.0)


def _run_past_event(env: TaskEnv) -> list[dict]:
    infos = []
    while env.sim.time_s < env.scenario.event_time_s + env.config.scenarios.event_duration_s + 0.3:
        infos.append(env.step(_hold(env))[4])
    return infos


def test_hole_moves_3_mm_during_the_episode(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="hole-moves")
    env.reset(seed=3)
    start = env.sim.layout.fixture_m.copy()
    estimate = env.sim.layout.fixture_estimate_m.copy()
    assert config.scenarios.event_window_s[0] <= env.scenario.event_time_s <= config.scenarios.event_window_s[1]
    _run_past_event(env)
    moved = env.sim.layout.fixture_m - start
    assert np.linalg.norm(moved[:2]) == pytest.approx(config.scenarios.hole_shift_m, rel=1e-9)
    assert moved[2] == 0.0
    np.testing.assert_array_equal(env.sim.layout.fixture_estimate_m, estimate)  # the robot is not told
    block = env.sim.data.xpos[env.sim.model.body("hole_block").id][:2]
    np.testing.assert_allclose(block, env.sim.layout.fixture_m[:2])


def test_push_shows_up_on_the_wrist_only_while_it_lasts(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="push")
    env.reset(seed=5)
    infos = _run_past_event(env)
    push = config.scenarios.push_force_n
    assert max(i["peak_force_n"] for i in infos) > 0.5 * push
    assert np.linalg.norm(env.sim.data.xfrc_applied) == 0.0  # released afterwards
    assert infos[0]["peak_force_n"] < 1.0  # nothing before the event


def test_friction_is_scaled_and_restored(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="friction")
    nominal = TaskEnv(config).sim.model.geom_friction[:, 0].copy()
    env.reset(seed=0)
    np.testing.assert_allclose(env.sim.model.geom_friction[:, 0], nominal * config.scenarios.friction_scale)
    env.reset(seed=1)  # a second reset does not compound the scaling
    np.testing.assert_allclose(env.sim.model.geom_friction[:, 0], nominal * config.scenarios.friction_scale)


def test_events_are_seeded(config: BresaConfig) -> None:
    times = []
    for _ in range(2):
        env = TaskEnv(config, scenario="push")
        env.reset(seed=11)
        times.append((env.scenario.event_time_s, tuple(env.scenario.direction)))
    assert times[0] == times[1]


def test_unknown_scenario_is_named(config: BresaConfig) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'storm'; choose from nominal, hole-moves"):
        Scenario("storm", config.scenarios)


def test_ft_drift_biases_what_the_controllers_see_never_the_scored_force(config: BresaConfig) -> None:
    drifting = load_config(overrides={"scenarios": {"ft_drift_n": 40.0, "ft_noise_n": 0.3}})  # past F_max
    env = TaskEnv(drifting, scenario="ft-drift")
    env.reset(seed=4)
    infos = [env.step(_hold(env))[4] for _ in range(50)]  # 5 s of 20: a quarter of the bias
    seen, truth = env._seen.force_n, env.sim.wrench()[0]
    bias = seen - truth
    assert np.linalg.norm(bias) == pytest.approx(40.0 * env.sim.time_s / 20.0, abs=1.5)  # + 0.3 N noise
    assert max(i["peak_force_n"] for i in infos) < 5.0 and not any(i["cost"] for i in infos)  # the truth
    observed_force = env._observation()[9:12]
    np.testing.assert_allclose(observed_force, seen, atol=1e-4)  # the policy sees the drift too
    again = TaskEnv(drifting, scenario="ft-drift")
    again.reset(seed=4)
    for _ in range(50):
        again.step(_hold(again))
    np.testing.assert_array_equal(again._seen.force_n, seen)  # drift and noise come from the seed


def test_state_latency_shows_the_controllers_the_state_of_5_ms_ago(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="state-latency")
    env.reset(seed=2)
    truths = []
    env.tick_observer = lambda *_: truths.append(env.sim.tick_state())
    move = env.actions.to_action(np.array([0.0, 0.0, -0.01]), np.array([1000.0] * 3), 1.0)
    env.step(move)
    latency = round(config.scenarios.state_latency_s / config.env.control_period_s)
    assert latency == 5
    np.testing.assert_array_equal(env._seen.tip_position_m, truths[-1 - latency].tip_position_m)
    assert np.linalg.norm(truths[-1].tip_position_m - env._seen.tip_position_m) > 1e-5  # it moved meanwhile


def test_payload_is_in_the_physics_but_not_in_the_model_or_the_tare(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="payload")
    env.reset(seed=1)
    peg = env.sim.model.body("panda_peg").id
    nominal = TaskEnv(config).sim.model.body_mass[peg]
    assert env.sim.model.body_mass[peg] == pytest.approx(nominal + config.scenarios.payload_kg)
    for _ in range(10):
        info = env.step(_hold(env))[4]
    # At rest in free space the tared sensor reads the untared 0.3 kg: ~2.9 N down.
    assert env._seen.force_n[2] == pytest.approx(-config.scenarios.payload_kg * 9.81, rel=0.1)
    assert info["peak_force_n"] == pytest.approx(config.scenarios.payload_kg * 9.81, rel=0.15)
    env.reset(seed=2)  # a second reset does not compound the payload
    assert env.sim.model.body_mass[peg] == pytest.approx(nominal + config.scenarios.payload_kg)


def test_push_down_pushes_the_peg_down_only_while_it_lasts(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="push-down")
    env.reset(seed=5)
    peg = env.sim.model.body("panda_peg").id
    applied = []
    env.tick_observer = lambda *_: applied.append(env.sim.data.xfrc_applied[peg, :3].copy())
    infos = _run_past_event(env)
    down = np.array([0.0, 0.0, -config.scenarios.push_down_force_n])
    pushing = [f for f in applied if f.any()]
    assert len(pushing) == round(config.scenarios.event_duration_s / config.env.control_period_s)
    assert all(np.array_equal(f, down) for f in pushing)
    assert np.linalg.norm(env.sim.data.xfrc_applied) == 0.0  # released afterwards
    assert infos[0]["peak_force_n"] < 1.0


def test_block_rises_8_mm_and_the_robot_is_not_told(config: BresaConfig) -> None:
    env = TaskEnv(config, scenario="block-rises")
    env.reset(seed=3)
    top = env.sim.layout.fixture_m.copy()
    estimate = env.sim.layout.fixture_estimate_m.copy()
    block = env.sim.model.body("hole_block").id
    z0 = env.sim.data.xpos[block][2]
    _run_past_event(env)
    assert env.sim.layout.fixture_m[2] - top[2] == pytest.approx(config.scenarios.block_rise_m, rel=1e-9)
    assert env.sim.data.xpos[block][2] - z0 == pytest.approx(config.scenarios.block_rise_m, rel=1e-9)
    np.testing.assert_array_equal(env.sim.layout.fixture_estimate_m, estimate)
    env.reset(seed=4)  # the next episode's block is back on the table
    assert env.sim.data.xpos[block][2] == pytest.approx(z0)


def test_training_disturbances_stay_weaker_than_the_scenarios_and_come_from_the_seed(config: BresaConfig) -> None:
    randomised = load_config(overrides={"randomisation": {"enabled": True, "pulse_episode_fraction": 1.0}})
    nominal_friction = TaskEnv(config).sim.model.geom_friction[:, 0].copy()
    draws = []
    for _ in range(2):
        env = TaskEnv(randomised)
        env.reset(seed=7)
        draws.append(([(a, b, tuple(f)) for a, b, f in env.disturbances.pulses],
                      env.sim.model.geom_friction[:, 0].copy()))
    assert draws[0][0] == draws[1][0] and len(draws[0][0]) >= 1
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    scale = draws[0][1] / nominal_friction
    lo, hi = randomised.randomisation.friction_scale_range
    assert np.allclose(scale, scale[0]) and lo <= scale[0] <= hi
    peg = env.sim.model.body("panda_peg").id
    applied = []
    env.tick_observer = lambda *_: applied.append(float(np.linalg.norm(env.sim.data.xfrc_applied[peg, :3])))
    while env.sim.time_s < max(end for _, end, _ in env.disturbances.pulses) + 0.1:
        env.step(_hold(env))
    assert 0.0 < max(applied) <= randomised.randomisation.pulse_force_max_n + 1e-9
    assert randomised.randomisation.pulse_force_max_n < config.scenarios.push_force_n
    with pytest.raises(ValueError, match="nominal scenario only"):
        TaskEnv(randomised, scenario="push")
    assert not TaskEnv(config).disturbances.enabled  # evaluation never randomises


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_an_episode_does_not_depend_on_the_episode_before_it(config: BresaConfig, scenario: str) -> None:
    """Every scenario restores what it changed: an episode run after another in the same
    environment sees what it sees in a fresh one (the payload's mass once leaked into the next
    episode's first reading, so a comparison's figures depended on how its episodes were shared
    out between workers)."""
    def first_steps(env: TaskEnv, seed: int) -> list[np.ndarray]:
        action = np.linspace(-0.8, 0.8, env.action_space.shape[0]).astype(np.float32)
        observations = [env.reset(seed=seed)[0]]
        observations += [env.step(action)[0] for _ in range(3)]
        return observations

    used = TaskEnv(config, scenario=scenario)
    first_steps(used, 3)
    for fresh, after in zip(first_steps(TaskEnv(config, scenario=scenario), 5), first_steps(used, 5)):
        np.testing.assert_array_equal(fresh, after)
