"""The arm stand-in: MuJoCo physics with the impedance controller inside, ticking at 1 kHz.

One :class:`ArmSim` is what the real arm plus its 1 kHz controller would be: it takes an
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
from bresa_control.simulation.layout import HOME_Q, Layout
from bresa_control.simulation.scene import (
    FORCE_SENSOR,
    FT_SITE,
    TORQUE_SENSOR,
    PegWrenchSensor,
    build_model,
    fixture_geom_name,
)
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import FIXTURE_BODY, Task


class ArmSim:
    """MuJoCo scene + impedance controller; one :meth:`tick` is one 1 ms control period. The
    ``task`` (default: peg insertion) gives the fixture, the episodes and what success is."""

    def __init__(self, config: BresaConfig, task: Task | None = None) -> None:
        self.config = config
        self.task = task if task is not None else make_task(DEFAULT_TASK, config)
        self.model = build_model(config, self.task)
        self.data = mujoco.MjData(self.model)
        self.robot = RobotModel(panda_urdf(config.scene.peg), config.scene.joint_armature_kg_m2)
        self.controller = CartesianImpedanceController(self.robot, config.controller)
        self._qpos = _contiguous([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._qvel = _contiguous([self.model.joint(j).dofadr[0] for j in ARM_JOINTS])
        self._fixture_body = self.model.body(FIXTURE_BODY).id
        self._fixture_z_m = float(self.model.body_pos[self._fixture_body, 2])  # the fixture's height as built
        variants = self.task.fixture_variants()
        self._variant_geoms = [[self.model.geom(fixture_geom_name(k, name, len(variants))).id for name in boxes]
                               for k, boxes in enumerate(variants)]
        self._contact = (int(self.model.geom_contype[self._variant_geoms[0][0]]),
                         int(self.model.geom_conaffinity[self._variant_geoms[0][0]]))
        self._tip_body = self.model.body(TCP_FRAME).id
        self._peg_body = self.model.body(PEG_LINK).id
        self._sensor = PegWrenchSensor(self.model, FT_SITE, FORCE_SENSOR, TORQUE_SENSOR, PEG_LINK)
        self._ticked = False  # whether a tick ran since the arm was placed
        self.layout = self._layout_at(self.model.body_pos[self._fixture_body, :2].copy())  # until reset

    # ---- episode set-up ------------------------------------------------------------------

    def reset(self, rng: np.random.Generator) -> Layout:
        """Draw the task's episode (fixture pose, the robot's estimate of it, the tip's start); put
        the fixture and the arm there, at rest."""
        draw = self.task.draw_episode(rng)
        q = self.robot.inverse_kinematics(draw.start_tip_m, self.target_rotation, HOME_Q)
        self.layout = Layout(draw.fixture_m, draw.fixture_estimate_m, q, draw.variant)
        self.show_variant(draw.variant)
        self.set_fixture_xy(draw.fixture_m[:2])
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

    def show_variant(self, variant: int) -> None:
        """Let fixture variant ``variant``'s boxes touch the peg and be seen; hide the others."""
        if len(self._variant_geoms) == 1:
            return
        for k, geoms in enumerate(self._variant_geoms):
            on = k == variant
            self.model.geom_contype[geoms] = self._contact[0] if on else 0
            self.model.geom_conaffinity[geoms] = self._contact[1] if on else 0
            self.model.geom_rgba[geoms, 3] = 1.0 if on else 0.0

    def set_fixture_xy(self, xy_m: np.ndarray) -> None:
        """Move the fixture so its reference point is at ``xy_m`` (m) on the table."""
        self.model.body_pos[self._fixture_body, :2] = xy_m
        self.model.body_pos[self._fixture_body, 2] = self._fixture_z_m
        mujoco.mj_kinematics(self.model, self.data)

    def move_fixture_xy(self, xy_m: np.ndarray) -> None:
        """Slide the fixture during an episode: it moves, the robot's estimate does not."""
        self.set_fixture_xy(xy_m)
        top = np.array([xy_m[0], xy_m[1], self.task.fixture_height_m()])
        self.layout = Layout(top, self.layout.fixture_estimate_m, self.layout.start_q, self.layout.variant)

    def raise_fixture(self, rise_m: float) -> None:
        """Lift the fixture ``rise_m`` above where the episode put it (the robot's estimate of it
        stays where it was)."""
        self.model.body_pos[self._fixture_body, 2] = self._fixture_z_m + rise_m
        mujoco.mj_kinematics(self.model, self.data)
        top = self.layout.fixture_m.copy()
        top[2] = self.task.fixture_height_m() + rise_m
        self.layout = Layout(top, self.layout.fixture_estimate_m, self.layout.start_q, self.layout.variant)

    def push_peg(self, force_n: np.ndarray) -> None:
        """Apply an external force (N, base frame) at the peg's centre of mass until changed."""
        self.data.xfrc_applied[self._peg_body, :3] = force_n

    def _layout_at(self, fixture_xy: np.ndarray) -> Layout:
        top = np.array([fixture_xy[0], fixture_xy[1], self.task.fixture_height_m()])
        return Layout(top, top.copy(), HOME_Q.copy())

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

    def progress_m(self) -> float:
        """How far the true tip has got in the task (m; peg insertion: its depth below the hole's
        top face, negative above it)."""
        return self.task.progress_m(self.tip_position(), self.layout.fixture_m, self.layout.variant)

    def succeeded(self) -> bool:
        """Whether the true tip has done the task (peg insertion: inserted)."""
        return self.task.succeeded(self.tip_position(), self.layout.fixture_m, self.layout.variant)


def _contiguous(indices: list[int]) -> slice:
    """The arm's joints are one block of qpos/qvel; a slice reads them without a copy per index."""
    if list(indices) != list(range(indices[0], indices[0] + len(indices))):
        raise RuntimeError(f"arm joints are not contiguous in the MuJoCo model: {indices}")
    return slice(indices[0], indices[0] + len(indices))
