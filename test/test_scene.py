"""The MuJoCo peg-insertion scene: geometry from config, randomisation, and the F/T sensor."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from sim_helpers import place_tip

from bresa_control.common.config import BresaConfig, load_config
from bresa_control.control.impedance import ImpedanceCommand, damping_from_ratio
from bresa_control.control.robot import FLANGE_FRAME, PEG_LINK
from bresa_control.simulation.scene import FT_SITE, build_model
from bresa_control.simulation.simulator import ArmSim
from bresa_control.tasks.base import FIXTURE_BODY
from bresa_control.tasks.peg_insertion import PegInsertionTask, hole_geometry

WALLS = ("hole_wall_px", "hole_wall_nx", "hole_wall_py", "hole_wall_ny")


def _aabb(model: mujoco.MjModel, name: str) -> tuple[np.ndarray, np.ndarray]:
    geom = model.geom(name)
    return geom.pos - geom.size, geom.pos + geom.size


@pytest.mark.parametrize("clearance_m", [0.0003, 0.0008, 0.001])
def test_hole_is_five_convex_boxes_with_the_configured_clearance(clearance_m: float) -> None:
    config = load_config(overrides={"scene": {"hole": {"clearance_m": clearance_m}}})
    model = build_model(config, PegInsertionTask(config))
    block = model.body(FIXTURE_BODY).id
    pieces = [g for g in range(model.ngeom) if model.geom_bodyid[g] == block]
    assert len(pieces) == 5
    assert all(model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX for g in pieces)
    # Opening between opposite walls minus the peg side is the clearance, in x and in y.
    px, nx = _aabb(model, "hole_wall_px"), _aabb(model, "hole_wall_nx")
    py, ny = _aabb(model, "hole_wall_py"), _aabb(model, "hole_wall_ny")
    peg_side = config.scene.peg.side_m
    assert px[0][0] - nx[1][0] - peg_side == pytest.approx(clearance_m, abs=1e-12)
    assert py[0][1] - ny[1][1] - peg_side == pytest.approx(clearance_m, abs=1e-12)
    # Depth: walls rise from the floor's top to the top face.
    floor_top = _aabb(model, "hole_floor")[1][2]
    wall_top = max(_aabb(model, w)[1][2] for w in WALLS)
    assert wall_top - floor_top == pytest.approx(config.scene.hole.depth_m)
    assert wall_top - floor_top >= 0.025
    assert hole_geometry(peg_side, config.scene.hole).top_z_m == pytest.approx(wall_top)


def test_physics_step_and_sensor_placement(sim: ArmSim) -> None:
    assert sim.model.opt.timestep == pytest.approx(0.001)
    site = sim.model.site(FT_SITE)
    assert sim.model.body(site.bodyid[0]).name == PEG_LINK
    q = place_tip(sim, np.array([0.5, 0.0, 0.1]))
    flange = sim.robot.frame_pose(q, FLANGE_FRAME).position_m
    np.testing.assert_allclose(sim.data.site_xpos[site.id], flange, atol=1e-9)
    assert {sim.model.sensor(i).name for i in range(sim.model.nsensor)} == {"ft_force", "ft_torque"}


def test_reset_randomises_hole_and_start_within_config(config: BresaConfig, sim: ArmSim) -> None:
    hole_cfg = config.scene.hole
    nominal = np.array(hole_cfg.nominal_position_m)
    holes, errors = [], []
    for seed in range(20):
        layout = sim.reset(np.random.default_rng(seed))
        holes.append(layout.fixture_m[:2])
        errors.append(layout.fixture_estimate_m[:2] - layout.fixture_m[:2])
        block_xy = sim.data.xpos[sim.model.body(FIXTURE_BODY).id][:2]
        np.testing.assert_allclose(block_xy, layout.fixture_m[:2])  # the block really moved
        tip = sim.tcp_pose().position_m
        height = tip[2] - layout.fixture_m[2]
        assert config.scene.start_height_m[0] - 1e-6 <= height <= config.scene.start_height_m[1] + 1e-6
        assert np.all(np.abs(tip[:2] - layout.fixture_estimate_m[:2]) <= config.scene.start_xy_range_m + 1e-6)
        np.testing.assert_allclose(sim.dq, 0.0)
    holes, errors = np.array(holes), np.array(errors)
    assert np.all(np.abs(holes - nominal) <= hole_cfg.position_range_m)
    assert np.all(np.abs(errors) <= hole_cfg.perception_error_m)
    assert holes.std(axis=0).min() > hole_cfg.position_range_m / 4  # it does vary
    again = sim.reset(np.random.default_rng(3))
    np.testing.assert_allclose(again.fixture_m[:2], holes[3])  # and is seeded


@pytest.mark.parametrize("stiffness_z, penetration_m", [(500.0, 0.01), (1000.0, 0.005), (2000.0, 0.005)])
def test_pressing_on_the_top_face_senses_k_times_penetration(
    sim: ArmSim, stiffness_z: float, penetration_m: float
) -> None:
    _press(sim, stiffness_z, penetration_m)


def test_a_softer_contact_onset_reaches_every_contact_geom_and_keeps_the_press_force() -> None:
    config = load_config(overrides={"scene": {"contact_impedance_at_touch": 0.5}})
    sim = ArmSim(config)
    contact_geoms = [g for g in range(sim.model.ngeom) if sim.model.geom_contype[g]]
    assert len(contact_geoms) >= 7  # peg, table, the hole's five boxes
    assert all(sim.model.geom_solimp[g][0] == 0.5 for g in contact_geoms)
    _press(sim, 1000.0, 0.005)  # only the transient changes: the static force is still K x penetration


def _press(sim: ArmSim, stiffness_z: float, penetration_m: float) -> None:
    sim.reset(np.random.default_rng(0))
    top = sim.layout.fixture_m
    on_face = top + np.array([0.025, 0.0, 0.0])  # on the block, clear of the hole
    q = place_tip(sim, on_face + [0.0, 0.0, 0.005])
    stiffness = np.array([1000.0, 1000.0, stiffness_z, 60.0, 60.0, 60.0])
    damping = damping_from_ratio(stiffness, 1.0, sim.robot.cartesian_inertia(q))
    command = ImpedanceCommand(on_face - [0.0, 0.0, penetration_m], np.array([1.0, 0, 0, 0]),
                               stiffness, damping)
    for _ in range(2000):
        sim.tick(command)
    force, _ = sim.wrench()
    expected = stiffness_z * penetration_m
    assert force[2] == pytest.approx(expected, rel=0.10)
    assert abs(sim.progress_m()) < 0.001  # resting on the face, not sunk into it


def test_wrench_is_zero_in_free_space(sim: ArmSim) -> None:
    q = place_tip(sim, np.array([0.45, 0.1, 0.15]))
    stiffness = np.array([1000.0] * 3 + [60.0] * 3)
    command = ImpedanceCommand(np.array([0.45, 0.1, 0.15]), np.array([1.0, 0, 0, 0]), stiffness,
                               damping_from_ratio(stiffness, 1.0, sim.robot.cartesian_inertia(q)))
    for _ in range(200):
        sim.tick(command)
    force, torque = sim.wrench()
    assert np.abs(force).max() < 0.05
    assert np.abs(torque).max() < 0.005
