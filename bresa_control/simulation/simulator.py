"""The arm stand-in: MuJoCo physics with the impedance controller inside, ticking at 1 kHz.

One :class:`PegInsertionSim` is what the real arm plus its 1 kHz controller would be: it takes an
:class:`ImpedanceCommand` every tick and reports joint states and the wrist wrench. The gymnasium
environment and the ``mujoco_sim`` node both drive this class.
"""

from __future__ import annotations

import mujoco
import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.contract import ARM_JOINTS, target_rotation
from bresa_control.control.impedance import CartesianImpedanceController, ImpedanceCommand
from bresa_control.control.robot import PEG_LINK, TCP_FRAME, Pose, RobotModel, panda_urdf
from bresa_control.safety.risk_features import TickState
from bresa_control.simulation.layout import HOME_Q, Layout, draw_episode, hole_geometry, inserted
from bresa_control.simulation.scene import (
    FORCE_SENSOR,
    FT_SITE,
    HOLE_BODY,
    TORQUE_SENSOR,
    PegWrenchSensor,
    build_model,
)


class PegInsertionSim:
    """MuJoCo scene + impedance controller; one :meth:`tick` is one 1 ms control period."""

    def __init__(self, config: BresaConfig) -> None:
        self.config = config
        self.model = build_model(config)
        self.data = mujoco.MjData(self.model)
        self.robot = RobotModel(panda_urdf(config.scene.peg), config.scene.joint_armature_kg_m2)
        self.controller = CartesianImpedanceController(self.robot, config.controller)
        self.hole = hole_geometry(config.scene.peg.side_m, config.scene.hole)
        self._qpos = _contiguous([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._qvel = _contiguous([self.model.joint(j).dofadr[0] for j in ARM_JOINTS])
        self._hole_body = self.model.body(HOLE_BODY).id
        self._hole_z_m = float(self.model.body_pos[self._hole_body, 2])  # the block's height as built
        self._tip_body = self.model.body(TCP_FRAME).id
        self._peg_body = self.model.body(PEG_LINK).id
        self._sensor = PegWrenchSensor(self.model, FT_SITE, FORCE_SENSOR, TORQUE_SENSOR, PEG_LINK)
        self._ticked = False  # whether a tick ran since the arm was placed
        self.layout = self._layout_at(np.array(config.scene.hole.nominal_position_m), np.zeros(2))

    # ---- episode set-up ------------------------------------------------------------------

    def reset(self, rng: np.random.Generator) -> Layout:
        """Draw a hole position, a perception error and a start pose; put the arm there at rest."""
        draw = draw_episode(self.config, rng)
        q = self.robot.inverse_kinematics(draw.start_tip_m, self.target_rotation, HOME_Q)
        self.layout = Layout(draw.hole_top_m, draw.hole_estimate_m, q)
        self.set_hole_xy(draw.hole_top_m[:2])
        self.set_arm_state(q)
        return self.layout

    def set_arm_state(self, q: np.ndarray, dq: np.ndarray | None = None) -> None:
        """Place the arm at joint angles ``q`` (rad), velocities ``dq`` (rad/s, default rest)."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos] = q
        self.data.qvel[self._qvel] = 0.0 if dq is None else dq
        mujoco.mj_forward(self.model, self.data)
        self.controller.reset(q)
        self._ticked = False

    def set_hole_xy(self, xy_m: np.ndarray) -> None:
        """Move the hole block so the hole's centre is at ``xy_m`` (m) on the table."""
        self.model.body_pos[self._hole_body, :2] = xy_m
        self.model.body_pos[self._hole_body, 2] = self._hole_z_m
        mujoco.mj_kinematics(self.model, self.data)

    def move_hole_xy(self, xy_m: np.ndarray) -> None:
        """Slide the hole during an episode: the block moves, the robot's estimate does not."""
        self.set_hole_xy(xy_m)
        top = np.array([xy_m[0], xy_m[1], self.hole.top_z_m])
        self.layout = Layout(top, self.layout.hole_estimate_m, self.layout.start_q)

    def raise_hole(self, rise_m: float) -> None:
        """Lift the hole block ``rise_m`` above where the episode put it (the robot's estimate of
        the hole stays where it was)."""
        self.model.body_pos[self._hole_body, 2] = self._hole_z_m + rise_m
        mujoco.mj_kinematics(self.model, self.data)
        top = self.layout.hole_top_m.copy()
        top[2] = self.hole.top_z_m + rise_m
        self.layout = Layout(top, self.layout.hole_estimate_m, self.layout.start_q)

    def push_peg(self, force_n: np.ndarray) -> None:
        """Apply an external force (N, base frame) at the peg's centre of mass until changed."""
        self.data.xfrc_applied[self._peg_body, :3] = force_n

    def _layout_at(self, hole_xy: np.ndarray, error_xy: np.ndarray) -> Layout:
        top = np.array([hole_xy[0], hole_xy[1], self.hole.top_z_m])
        return Layout(top, top + np.array([*error_xy, 0.0]), HOME_Q.copy())

    @property
    def target_rotation(self) -> np.ndarray:
        """The configured tip orientation (peg down) as a rotation matrix."""
        return target_rotation(self.config.env.target_orientation_xyzw)

    # ---- the 1 kHz tick ------------------------------------------------------------------

    def tick(self, command: ImpedanceCommand) -> np.ndarray:
        """Run the controller on the current state and advance physics one control period.

        Returns the applied joint torques (Nm).
        """
        self.controller.observe(self.q, self.dq)
        return self.step(command)

    def step_torque(self, tau_nm: np.ndarray) -> None:
        """Advance physics one control period with joint torques ``tau_nm`` (Nm) from elsewhere than
        the impedance controller (the arm's own stop after its collision reflex: a joint hold)."""
        self.data.ctrl[:] = tau_nm
        mujoco.mj_step(self.model, self.data)
        self._ticked = True

    def step(self, command: ImpedanceCommand) -> np.ndarray:
        """Advance physics one control period with the torque for ``command`` at the state the
        controller has just observed (``controller.observe(q, dq)`` of this instant: the
        simulated arm does that before its critic decides, so both use one kinematics pass).

        Returns the applied joint torques (Nm).
        """
        tau = self.controller.torque(command)
        self.data.ctrl[:] = tau
        mujoco.mj_step(self.model, self.data)
        self._ticked = True
        return tau

    # ---- what the arm reports ------------------------------------------------------------

    @property
    def q(self) -> np.ndarray:
        """Joint angles (rad)."""
        return self.data.qpos[self._qpos].copy()

    @property
    def dq(self) -> np.ndarray:
        """Joint velocities (rad/s)."""
        return self.data.qvel[self._qvel].copy()

    @property
    def time_s(self) -> float:
        """Simulated time since reset (s)."""
        return float(self.data.time)

    def tcp_pose(self) -> Pose:
        """Peg-tip pose from the joint angles (pinocchio, as the real robot would compute it)."""
        return self.robot.frame_pose(self.q)

    def tcp_velocity(self) -> np.ndarray:
        """Tip twist [v (m/s); w (rad/s)], base frame."""
        return self.robot.frame_jacobian(self.q) @ self.dq

    def wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """Wrench the environment applies to the peg, at the flange, base frame: (force N, torque Nm),
        tared (:class:`~bresa_control.simulation.scene.PegWrenchSensor`)."""
        return self._sensor.read(self.data)

    def tick_state(self) -> TickState:
        """What the arm reports: wrist wrench, tip position and linear velocity.

        After a tick these describe the state that tick's controller and sensors saw (MuJoCo
        evaluates sensors before it integrates), so wrench and kinematics are of one instant.
        """
        force, torque = self.wrench()
        if self._ticked:
            position = self.controller.tip_position_m
            velocity = self.controller.tip_velocity_m_per_s
        else:
            q = self.q
            position = self.robot.frame_pose(q).position_m
            velocity = (self.robot.frame_jacobian(q) @ self.dq)[:3]
        return TickState(force, torque, position, velocity)

    def tip_position(self) -> np.ndarray:
        """True peg-tip position (m) from the physics (for scoring, not for the policy)."""
        return self.data.xpos[self._tip_body].copy()

    def insertion_depth_m(self) -> float:
        """How far the tip is below the hole's top face (m); negative above it."""
        return float(self.layout.hole_top_m[2] - self.tip_position()[2])

    def inserted(self, success_depth_m: float) -> bool:
        """Whether the tip is at least ``success_depth_m`` deep and laterally inside the hole."""
        return inserted(self.tip_position(), self.layout.hole_top_m, self.hole.half_side_m, success_depth_m)


def _contiguous(indices: list[int]) -> slice:
    """The arm's joints are one block of qpos/qvel; a slice reads them without a copy per index."""
    if list(indices) != list(range(indices[0], indices[0] + len(indices))):
        raise RuntimeError(f"arm joints are not contiguous in the MuJoCo model: {indices}")
    return slice(indices[0], indices[0] + len(indices))
