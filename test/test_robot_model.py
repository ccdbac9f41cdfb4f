"""One robot model: pinocchio (control) and MuJoCo (physics) load the same URDF and agree."""

from __future__ import annotations

import mujoco
import numpy as np
import pinocchio as pin

from bresa_control.contract import ARM_JOINTS
from bresa_control.control.robot import FLANGE_FRAME, TCP_FRAME
from bresa_control.simulation.simulator import ArmSim


def _mujoco_frame(sim: ArmSim, body: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    body_id = sim.model.body(body).id
    jacp = np.zeros((3, sim.model.nv))
    jacr = np.zeros((3, sim.model.nv))
    mujoco.mj_jacBody(sim.model, sim.data, jacp, jacr, body_id)
    dofs = [sim.model.joint(j).dofadr[0] for j in ARM_JOINTS]
    jac = np.vstack([jacp[:, dofs], jacr[:, dofs]])
    return sim.data.xpos[body_id].copy(), sim.data.xmat[body_id].reshape(3, 3).copy(), jac


def test_flange_pose_and_jacobian_match_for_100_random_configurations(sim: ArmSim) -> None:
    rng = np.random.default_rng(0)
    lower, upper = sim.robot.q_lower, sim.robot.q_upper
    worst = 0.0
    for _ in range(100):
        q = rng.uniform(lower, upper)
        sim.set_arm_state(q)
        for frame in (FLANGE_FRAME, TCP_FRAME):
            position, rotation, jac = _mujoco_frame(sim, frame)
            pose = sim.robot.frame_pose(q, frame)
            jac_pin = sim.robot.frame_jacobian(q, frame)
            worst = max(
                worst,
                np.abs(pose.position_m - position).max(),
                np.abs(pose.rotation - rotation).max(),
                np.abs(jac_pin - jac).max(),
            )
    assert worst < 1e-6, f"largest pinocchio/MuJoCo difference {worst:.2e}"


def test_mass_matrix_and_gravity_match(sim: ArmSim) -> None:
    """Same inertias in both: the controller's dynamics are the simulated arm's dynamics."""
    rng = np.random.default_rng(1)
    dofs = [sim.model.joint(j).dofadr[0] for j in ARM_JOINTS]
    for _ in range(20):
        q = rng.uniform(sim.robot.q_lower, sim.robot.q_upper)
        sim.set_arm_state(q)
        full = np.zeros((sim.model.nv, sim.model.nv))
        mujoco.mj_fullM(sim.model, sim.data, full)
        mass_pin = pin.crba(sim.robot.model, sim.robot.data, q)
        mass_pin = np.triu(mass_pin) + np.triu(mass_pin, 1).T
        np.testing.assert_allclose(mass_pin, full[np.ix_(dofs, dofs)], atol=1e-6)
        np.testing.assert_allclose(sim.robot.gravity(q), sim.data.qfrc_bias[dofs], atol=1e-6)


def test_inverse_kinematics_reaches_the_pose(sim: ArmSim) -> None:
    target = np.array([0.5, 0.05, 0.08])
    q = sim.robot.inverse_kinematics(target, sim.target_rotation, np.zeros(7) + [0, 0.1, 0, -2.2, 0, 2.3, 0])
    pose = sim.robot.frame_pose(q)
    np.testing.assert_allclose(pose.position_m, target, atol=1e-6)
    np.testing.assert_allclose(pose.rotation, sim.target_rotation, atol=1e-6)
