"""The robot model: an arm's URDF with the peg (the tool) fixed to its flange.

In simulation the arm is example-robot-data's Panda with the hand removed: :func:`panda_urdf`
builds the URDF text that both pinocchio (control) and MuJoCo (physics) load, so kinematics and
inertias cannot drift apart. A real arm's URDF (``robot.urdf_path``) gets the same peg by
:func:`attach_peg`. :class:`RobotModel` wraps pinocchio for the controller: frame poses,
Jacobians, dynamics and a small inverse-kinematics solver for episode starts.
"""

from __future__ import annotations

import importlib.metadata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from bresa_control.common.config import BresaConfig, ConfigError, PegConfig

FLANGE_FRAME = "panda_link8"
PEG_LINK = "panda_peg"
TCP_FRAME = "panda_peg_tip"
_HAND_LINKS = {"panda_hand", "panda_hand_tcp", "panda_leftfinger", "panda_rightfinger"}
_URDF_IN_PACKAGE = "cmeel.prefix/share/example-robot-data/robots/panda_description/urdf/panda.urdf"


def panda_urdf_path() -> Path:
    """Path of the Panda URDF shipped by the PyPI package ``example-robot-data``."""
    try:
        dist = importlib.metadata.distribution("example-robot-data")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            "the Python package 'example-robot-data' is not installed; run ./run.sh setup"
        ) from None
    path = Path(str(dist.locate_file(_URDF_IN_PACKAGE)))
    if not path.is_file():
        raise RuntimeError(f"example-robot-data is installed but {path} is missing")
    return path


def panda_urdf(peg: PegConfig) -> str:
    """Panda arm URDF (hand removed) with a square peg fixed to the flange and a tip frame.

    Visual meshes (Collada, which MuJoCo cannot read) are dropped; the STL collision meshes stay
    for drawing. Mesh paths are made absolute so the text loads from anywhere.
    """
    source = panda_urdf_path()
    root = ET.parse(source).getroot()
    for element in list(root):
        if element.tag == "link" and element.get("name") in _HAND_LINKS:
            root.remove(element)
        elif element.tag == "joint" and _child_link(element) in _HAND_LINKS:
            root.remove(element)
    for link in root.iter("link"):
        for visual in link.findall("visual"):
            link.remove(visual)
    package_root = str(source.parents[3])  # .../share/example-robot-data
    for mesh in root.iter("mesh"):
        mesh.set("filename", mesh.get("filename", "").replace("package://example-robot-data", package_root))
    return attach_peg(ET.tostring(root, encoding="unicode"), FLANGE_FRAME, peg)


def attach_peg(urdf: str, flange_link: str, peg: PegConfig) -> str:
    """The URDF text with the peg fixed to ``flange_link`` (along its z axis) and the tip frame
    :data:`TCP_FRAME` at the peg's end; ValueError if the URDF has no such link."""
    try:
        root = ET.fromstring(urdf)
    except ET.ParseError as exc:
        raise ValueError(f"the robot's URDF is not valid XML: {exc}") from None
    links = [link.get("name") for link in root.iter("link")]
    if flange_link not in links:
        raise ValueError(f"the robot's URDF has no link '{flange_link}' to fix the tool to "
                         f"(robot.flange_link); its links: {', '.join(str(n) for n in links)}")
    half = peg.length_m / 2.0
    inertia = peg_inertia(peg)
    root.append(
        ET.fromstring(
            f"""<link name="{PEG_LINK}">
              <inertial><origin xyz="0 0 {half}"/><mass value="{peg.mass_kg}"/>
                <inertia ixx="{inertia[0, 0]}" ixy="0" ixz="0" iyy="{inertia[1, 1]}" iyz="0"
                         izz="{inertia[2, 2]}"/></inertial>
              <collision><origin xyz="0 0 {half}"/>
                <geometry><box size="{peg.side_m} {peg.side_m} {peg.length_m}"/></geometry>
              </collision></link>"""
        )
    )
    root.append(_fixed_joint("panda_peg_joint", flange_link, PEG_LINK, 0.0))
    root.append(ET.fromstring(f'<link name="{TCP_FRAME}"/>'))
    root.append(_fixed_joint("panda_peg_tip_joint", PEG_LINK, TCP_FRAME, peg.length_m))
    return ET.tostring(root, encoding="unicode")


def peg_inertia(peg: PegConfig) -> np.ndarray:
    """Inertia (kg m^2) of the square peg about its centre of mass, its axis along z."""
    side = peg.mass_kg * (peg.side_m**2 + peg.length_m**2) / 12.0
    return np.diag([side, side, peg.mass_kg * peg.side_m**2 / 6.0])


def robot_urdf(config: BresaConfig) -> str:
    """The URDF every node of a run computes kinematics from: ``robot.urdf_path`` with the peg at
    ``robot.flange_link``, or the simulated Panda when the path is empty."""
    path = config.robot.urdf_path
    if not path:
        return panda_urdf(config.scene.peg)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"robot.urdf_path: cannot read {path}: {exc.strerror}") from None
    try:
        return attach_peg(text, config.robot.flange_link, config.scene.peg)
    except ValueError as exc:
        raise ConfigError(f"robot.urdf_path {path}: {exc}") from None


def _child_link(joint: ET.Element) -> str | None:
    """The child link's name of a URDF joint element."""
    child = joint.find("child")
    return None if child is None else child.get("link")


def _fixed_joint(name: str, parent: str, child: str, z_m: float) -> ET.Element:
    return ET.fromstring(
        f'<joint name="{name}" type="fixed"><parent link="{parent}"/><child link="{child}"/>'
        f'<origin xyz="0 0 {z_m}" rpy="0 0 0"/></joint>'
    )


@dataclass(frozen=True)
class Pose:
    """A frame pose in the robot base frame: position (m) and rotation matrix."""

    position_m: np.ndarray
    rotation: np.ndarray


class RobotModel:
    """Pinocchio model of the arm + peg: kinematics and dynamics at the tip and the flange."""

    def __init__(self, urdf: str, joint_armature_kg_m2: float = 0.0) -> None:
        """``urdf``: an arm with the peg attached (:func:`panda_urdf`, :func:`attach_peg`)."""
        self.model = pin.buildModelFromXML(urdf)
        if self.model.nq != 7:
            raise ValueError(f"the robot model has {self.model.nq} joints; a Franka arm has 7 "
                             "(a URDF with gripper fingers? give the arm without them)")
        self.model.armature[:] = joint_armature_kg_m2
        self.data = self.model.createData()
        self.tcp_id = self.model.getFrameId(TCP_FRAME)
        self.q_lower = self.model.lowerPositionLimit.copy()
        self.q_upper = self.model.upperPositionLimit.copy()
        # The same arm without gravity: its nonlinear effects are C(q, dq) dq alone, for an arm that
        # compensates gravity itself (one dynamics pass per tick, not nle and then g to subtract).
        self._no_gravity = self.model.copy()
        self._no_gravity.gravity = pin.Motion.Zero()
        self._no_gravity_data = self._no_gravity.createData()

    @classmethod
    def from_config(cls, config: BresaConfig) -> RobotModel:
        """The run's arm (:func:`robot_urdf`) with the configured joint armature."""
        return cls(robot_urdf(config), config.scene.joint_armature_kg_m2)

    @property
    def nq(self) -> int:
        """Number of joints (7)."""
        return int(self.model.nq)

    def frame_pose(self, q: np.ndarray, frame: str = TCP_FRAME) -> Pose:
        """Pose of a named frame (default: peg tip) at configuration ``q`` (rad)."""
        frame_id = self.model.getFrameId(frame)
        pin.framesForwardKinematics(self.model, self.data, q)
        placement = self.data.oMf[frame_id]
        return Pose(placement.translation.copy(), placement.rotation.copy())

    def frame_jacobian(self, q: np.ndarray, frame: str = TCP_FRAME) -> np.ndarray:
        """6x7 Jacobian of a frame, base-aligned axes at the frame origin: [v; w] = J dq."""
        frame_id = self.model.getFrameId(frame)
        return pin.computeFrameJacobian(
            self.model, self.data, q, frame_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        )

    def tcp_state(self, q: np.ndarray, dq: np.ndarray, gravity: bool = True) -> tuple[Pose, np.ndarray, np.ndarray]:
        """Tip pose, tip Jacobian and nonlinear effects C(q, dq) dq + g(q) (without ``gravity``:
        C(q, dq) dq alone), in one kinematics and one dynamics pass."""
        pin.computeJointJacobians(self.model, self.data, q)
        pin.updateFramePlacement(self.model, self.data, self.tcp_id)
        jac = pin.getFrameJacobian(
            self.model, self.data, self.tcp_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        )
        if gravity:
            nle = pin.nonLinearEffects(self.model, self.data, q, dq)
        else:
            nle = pin.nonLinearEffects(self._no_gravity, self._no_gravity_data, q, dq)
        placement = self.data.oMf[self.tcp_id]
        return Pose(placement.translation.copy(), placement.rotation.copy()), jac, nle.copy()

    def tip_position_velocity(self, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tip position (m) and linear velocity (m/s, base frame) in one kinematics pass."""
        pin.computeJointJacobians(self.model, self.data, q)
        placement = pin.updateFramePlacement(self.model, self.data, self.tcp_id)
        jac = pin.getFrameJacobian(self.model, self.data, self.tcp_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
        return placement.translation.copy(), jac[:3] @ dq

    def gravity(self, q: np.ndarray) -> np.ndarray:
        """Joint torques (Nm) that hold the arm and peg against gravity."""
        return pin.computeGeneralizedGravity(self.model, self.data, q).copy()

    def cartesian_inertia(self, q: np.ndarray) -> np.ndarray:
        """Operational-space inertia at the tip, Lambda = (J M^-1 J^T)^-1 (kg, kg m^2 blocks)."""
        mass = pin.crba(self.model, self.data, q)
        mass = np.triu(mass) + np.triu(mass, 1).T
        jac = self.frame_jacobian(q)
        return np.linalg.inv(jac @ np.linalg.solve(mass, jac.T))

    def inverse_kinematics(
        self,
        position_m: np.ndarray,
        rotation: np.ndarray,
        q_init: np.ndarray,
        tolerance: float = 1e-6,
        max_iterations: int = 200,
    ) -> np.ndarray:
        """Joint angles putting the tip at a pose (damped least squares from ``q_init``).

        Raises ``RuntimeError`` if the pose is not reached within ``tolerance`` (m and rad).
        """
        q = np.array(q_init, dtype=float)
        target = pin.SE3(rotation, np.asarray(position_m, dtype=float))
        for _ in range(max_iterations):
            pin.framesForwardKinematics(self.model, self.data, q)
            current = self.data.oMf[self.tcp_id]
            error = np.concatenate(
                [current.translation - target.translation, pin.log3(current.rotation @ target.rotation.T)]
            )
            if np.linalg.norm(error) < tolerance:
                return q
            jac = self.frame_jacobian(q)
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-6 * np.eye(6), error)
            q = np.clip(q - step, self.q_lower, self.q_upper)
        raise RuntimeError(
            f"inverse kinematics did not reach tip position {np.round(position_m, 4)} m "
            f"(error {np.linalg.norm(error):.2e})"
        )
