"""The variable-impedance controller: gain checks, step response, limits and stability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import place_tip

from bresa_control.common.config import BresaConfig
from bresa_control.control.impedance import (
    COMMAND_LABELS,
    COMMAND_SIZE,
    ImpedanceCommand,
    damping_from_ratio,
    validate_gains,
)
from bresa_control.simulation.simulator import ArmSim

FREE_SPACE_TIP = np.array([0.45, 0.1, 0.15])  # clear of the block and the table
DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def _command(target: np.ndarray, stiffness: np.ndarray, damping: np.ndarray) -> ImpedanceCommand:
    return ImpedanceCommand(np.asarray(target, float), DOWN.copy(), np.asarray(stiffness, float),
                            np.asarray(damping, float))


def _critical(
    sim: ArmSim, q: np.ndarray, k_trans: float, k_rot: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stiffness and the documented damping (zeta = 1 along every axis)."""
    stiffness = np.array([k_trans] * 3 + [k_rot] * 3)
    return stiffness, damping_from_ratio(stiffness, 1.0, sim.robot.cartesian_inertia(q))


@pytest.mark.parametrize(
    "index, value, fragment",
    [
        (9, 5000.0, "kz_n_per_m = 5000 N/m is outside the allowed [10, 3000]"),
        (7, 5.0, "kx_n_per_m = 5 N/m"),
        (10, 0.5, "krx_nm_per_rad = 0.5 Nm/rad"),
        (12, 301.0, "krz_nm_per_rad = 301 Nm/rad"),
        (14, -1.0, "dy_ns_per_m = -1 Ns/m"),
        (18, 1e6, "drz_nms_per_rad"),
        (8, float("nan"), "ky_n_per_m is nan"),
        (15, float("inf"), "dz_ns_per_m is inf"),
    ],
)
def test_invalid_gain_raises_value_error_naming_it(config: BresaConfig, index: int, value: float,
                                                   fragment: str) -> None:
    values = np.array([0.5, 0, 0.1, *DOWN, *[500.0] * 3, *[30.0] * 3, *[50.0] * 3, *[2.0] * 3])
    values[index] = value
    command = ImpedanceCommand(values[0:3], values[3:7], values[7:13], values[13:19])
    with pytest.raises(ValueError) as info:
        validate_gains(command, config.controller)
    assert fragment in str(info.value)
    assert COMMAND_LABELS[index] in str(info.value)


def test_controller_refuses_a_command_with_bad_gains(config: BresaConfig, sim: ArmSim) -> None:
    place_tip(sim, FREE_SPACE_TIP)
    before = sim.controller.last_torque
    bad = _command(FREE_SPACE_TIP, [500.0, 500.0, 5000.0, 30.0, 30.0, 30.0], [50.0] * 3 + [2.0] * 3)
    with pytest.raises(ValueError, match="kz_n_per_m = 5000"):
        sim.tick(bad)
    np.testing.assert_array_equal(sim.controller.last_torque, before)  # nothing was applied
    assert sim.time_s == 0.0


def test_valid_gains_pass_and_command_round_trips(config: BresaConfig) -> None:
    values = np.array([0.5, 0, 0.1, *DOWN, *[500.0] * 3, *[30.0] * 3, *[50.0] * 3, *[2.0] * 3])
    command = ImpedanceCommand.from_array(values)
    validate_gains(command, config.controller)
    np.testing.assert_array_equal(command.to_array(), values)
    with pytest.raises(ValueError, match=f"needs {COMMAND_SIZE} values"):
        ImpedanceCommand.from_array(values[:18])
    values[3] = np.nan
    with pytest.raises(ValueError, match="non-finite values: qx"):
        ImpedanceCommand.from_array(values)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_5cm_step_at_1000_n_per_m_settles_without_overshoot(sim: ArmSim, axis: int) -> None:
    """Documented damping: zeta = 1 against the operational-space inertia (damping_from_ratio)."""
    q = place_tip(sim, FREE_SPACE_TIP)
    stiffness, damping = _critical(sim, q, 1000.0, 60.0)
    target = FREE_SPACE_TIP.copy()
    target[axis] += 0.05
    command = _command(target, stiffness, damping)
    along = []
    for _ in range(3000):  # 3 s
        sim.tick(command)
        along.append(sim.tcp_pose().position_m[axis])
    final_error_m = np.linalg.norm(sim.tcp_pose().position_m - target)
    overshoot = (max(along) - target[axis]) / 0.05
    assert final_error_m < 1e-3
    assert overshoot < 0.05
    assert np.abs(np.array(along[-500:]) - target[axis]).max() < 1e-3  # it stays settled


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    target_offset=st.lists(st.floats(-0.1, 0.1), min_size=3, max_size=3),
    k_trans=st.floats(10.0, 3000.0),
    k_rot=st.floats(1.0, 300.0),
    d_trans=st.floats(0.0, 600.0),
    d_rot=st.floats(0.0, 60.0),
    tilt=st.floats(-0.5, 0.5),
)
def test_torque_rate_and_torque_limits_always_hold(
    config: BresaConfig, sim: ArmSim, target_offset: list, k_trans: float, k_rot: float, d_trans: float,
    d_rot: float, tilt: float,
) -> None:
    place_tip(sim, FREE_SPACE_TIP)
    orientation = np.array([np.cos(tilt / 2), 0.0, np.sin(tilt / 2), 0.0])  # tilted about y
    command = ImpedanceCommand(FREE_SPACE_TIP + target_offset, orientation / np.linalg.norm(orientation),
                               np.array([k_trans] * 3 + [k_rot] * 3), np.array([d_trans] * 3 + [d_rot] * 3))
    validate_gains(command, config.controller)
    limits = np.array(config.controller.joint_torque_limits_nm)
    rate = config.controller.torque_rate_limit_nm_per_tick
    previous = sim.controller.last_torque
    for _ in range(300):
        tau = sim.tick(command)
        assert np.all(np.abs(tau - previous) <= rate + 1e-9)
        assert np.all(np.abs(tau) <= limits + 1e-9)
        previous = tau


@pytest.mark.parametrize(
    "k_trans, k_rot",
    [(10.0, 60.0), (30.0, 60.0), (100.0, 60.0), (300.0, 60.0), (1000.0, 60.0), (2000.0, 60.0),
     (3000.0, 60.0), (1000.0, 1.0), (3000.0, 300.0), (10.0, 1.0)],
)
def test_every_stiffness_is_stable_for_5_s(sim: ArmSim, k_trans: float, k_rot: float) -> None:
    q = place_tip(sim, FREE_SPACE_TIP)
    stiffness, damping = _critical(sim, q, k_trans, k_rot)
    target = FREE_SPACE_TIP + np.array([0.01, -0.01, 0.01])
    command = _command(target, stiffness, damping)
    initial_error = np.linalg.norm(FREE_SPACE_TIP - target)
    errors, speeds = [], []
    for _ in range(5000):  # 5 s at 1 kHz
        sim.tick(command)
        errors.append(np.linalg.norm(sim.tcp_pose().position_m - target))
        speeds.append(np.linalg.norm(sim.dq))
    assert np.all(np.isfinite(errors))
    assert max(errors) <= initial_error * 1.01  # never pushed further away than it started
    assert max(speeds[-1000:]) < 0.01  # at rest (rad/s) over the last second
    assert errors[-1] < 0.1 * initial_error  # and it got there
