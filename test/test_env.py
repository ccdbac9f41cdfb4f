"""The TaskEnv gymnasium environment: API contract, timing, costs and termination."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from bresa_control.common.config import BresaConfig, load_config
from bresa_control.contract import OBSERVATION_LABELS
from bresa_control.control.actions import ActionMap
from bresa_control.simulation.env import TaskEnv

INFO_KEYS = {"cost", "force_violation", "torque_violation", "workspace_violation", "fault",
             "peak_force_n", "peak_torque_nm", "inserted", "insertion_depth_m", "time_s"}


@pytest.fixture(scope="module")
def env(config: BresaConfig) -> TaskEnv:
    return TaskEnv(config)


@pytest.mark.filterwarnings("ignore:.*Box observation space m.*:UserWarning")  # SI units, unbounded
def test_passes_gymnasium_check_env(env: TaskEnv) -> None:
    check_env(env, skip_render_check=True)


def test_step_is_100_control_ticks_of_1_ms(env: TaskEnv) -> None:
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(OBSERVATION_LABELS),) and obs.dtype == np.float32
    _, _, _, _, info = env.step(np.zeros(7, dtype=np.float32))
    assert info["time_s"] == pytest.approx(0.1)
    assert INFO_KEYS <= set(info)
    assert info["cost"] == 0.0 and not info["inserted"]


def test_observation_is_relative_to_the_hole_estimate(env: TaskEnv) -> None:
    obs, info = env.reset(seed=4)
    layout = info["layout"]
    tip = env.sim.tcp_pose().position_m
    np.testing.assert_allclose(obs[0:3], tip - layout.fixture_estimate_m, atol=1e-6)


def test_action_displacement_moves_the_tip(env: TaskEnv) -> None:
    obs, _ = env.reset(seed=1)
    up = env.actions.to_action(np.array([0.0, 0.0, 0.01]), np.array([1500.0] * 3), 1.0)
    heights = [env.step(up)[0][2] - obs[2] for _ in range(5)]
    # Each step asks for 1 cm more than where the tip is; the setpoint gets there over the 100 ms
    # and a compliant arm follows a quarter of it within the step, steadily.
    assert np.all(np.diff(heights) > 0.002)
    assert heights[-1] > 0.01


def test_pressing_hard_into_the_block_costs_and_faults(env: TaskEnv) -> None:
    env.reset(seed=2)
    # Tip over the block's face, then drive the target 1 cm into it each step at top stiffness.
    down_hard = env.actions.to_action(np.array([0.02, 0.0, -0.01]), np.array([2000.0] * 3), 1.0)
    costs, infos = [], []
    for _ in range(env.config.env.max_episode_steps):
        _, _, terminated, truncated, info = env.step(down_hard)
        costs.append(info["cost"])
        infos.append(info)
        if terminated or truncated:
            break
    assert any(i["force_violation"] for i in infos)
    assert max(i["peak_force_n"] for i in infos) > env.config.safety.max_force_n
    assert max(costs) == 1.0
    assert terminated and infos[-1]["fault"]  # the arm's 40 N threshold ends the episode
    assert not infos[-1]["inserted"]


def test_reward_charges_the_steps_peak_wrist_force() -> None:
    """Same episode, same actions, with and without the force term: rewards differ by exactly
    force_reward_weight * peak force / F_max, and only where the peg pressed on something."""
    rewards, forces = {}, []
    for weight in (0.0, 2.0):
        env = TaskEnv(load_config(overrides={"env": {"force_reward_weight": weight}}))
        env.reset(seed=2)
        aside = env.actions.to_action(np.array([0.01, 0.0, 0.0]), np.array([800.0] * 3), 1.0)
        down = env.actions.to_action(np.array([0.0, 0.0, -0.01]), np.array([800.0] * 3), 1.0)
        rewards[weight] = []
        for action in [aside] * 4 + [down] * 20:  # over the block's face, 1 cm from the hole, then press
            _, reward, terminated, _, info = env.step(action)
            rewards[weight].append(reward)
            forces.append(info["peak_force_n"]) if weight == 0.0 else None
            assert not terminated
    expected = -2.0 * np.array(forces) / load_config().safety.max_force_n
    np.testing.assert_allclose(np.array(rewards[2.0]) - np.array(rewards[0.0]), expected, atol=1e-9)
    assert max(forces) > 5.0  # it did press on the block


def test_leaving_the_workspace_costs() -> None:
    config = load_config(overrides={"safety": {"workspace_max_m": [0.75, 0.25, 0.05]}})
    env = TaskEnv(config)
    env.reset(seed=0)
    up = env.actions.to_action(np.array([0.0, 0.0, 0.01]), np.array([1500.0] * 3), 1.0)
    infos = [env.step(up)[4] for _ in range(5)]
    assert infos[-1]["workspace_violation"] and infos[-1]["cost"] == 1.0
    assert not any(i["force_violation"] for i in infos)


def test_episode_truncates_at_max_steps() -> None:
    env = TaskEnv(load_config(overrides={"env": {"max_episode_steps": 3}}))
    env.reset(seed=0)
    flags = [env.step(np.zeros(7, dtype=np.float32))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


@pytest.mark.parametrize("bad, fragment", [(np.zeros(6), "shape (7,)"), (np.full(7, np.nan), "finite")])
def test_malformed_actions_are_rejected(env: TaskEnv, bad: np.ndarray, fragment: str) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        env.step(bad)


def test_action_map_round_trips(config: BresaConfig) -> None:
    actions = ActionMap(config)
    action = actions.to_action(np.array([0.004, -0.002, 0.0]), np.array([200.0, 900.0, 1800.0]), 1.2)
    command = actions.to_command(action, np.zeros(3), np.eye(6))
    np.testing.assert_allclose(command.position_m, [0.004, -0.002, 0.0], atol=1e-7)
    np.testing.assert_allclose(command.stiffness[:3], [200.0, 900.0, 1800.0], rtol=1e-5)
    np.testing.assert_allclose(command.damping[:3], 2 * 1.2 * np.sqrt([200.0, 900.0, 1800.0]), rtol=1e-5)
    assert np.all(np.abs(actions.to_action(np.full(3, 1.0), np.full(3, 1e5), 9.0)) <= 1.0)
    # Top stiffness and damping ratio on a heavy pose: damping is capped at what the controller takes.
    heavy = actions.to_command(np.ones(7), np.zeros(3), np.eye(6) * 50.0)
    assert heavy.damping[0] == config.controller.damping_range_ns_per_m[1]
