"""Assemble the MuJoCo peg-insertion scene with ``mujoco.MjSpec``.

Static fixture from ``sim/peg_insertion.xml``; the arm and peg from :func:`robot.panda_urdf` (the
URDF pinocchio loads too); the task's fixture (its convex boxes), contact parameters, motors and the
force/torque sensor from the config.
"""

from __future__ import annotations

import mujoco
import numpy as np

from bresa_control.common.config import BresaConfig, SceneConfig
from bresa_control.common.paths import find_data
from bresa_control.contract import ARM_JOINTS
from bresa_control.control.robot import PEG_LINK, panda_urdf
from bresa_control.tasks.base import FIXTURE_BODY, Task

FT_SITE = "ft_sensor"
FORCE_SENSOR = "ft_force"
TORQUE_SENSOR = "ft_torque"
PEG_GEOM = "peg"
CONTACT_GROUP = 1  # contype/conaffinity bit shared by peg, block and table
ARM_PREFIX = "panda_"


def build_spec(config: BresaConfig, task: Task) -> mujoco.MjSpec:
    """The scene with ``task``'s fixture, as an editable spec (compile it with ``spec.compile()``)."""
    scene = config.scene
    spec = mujoco.MjSpec.from_file(str(find_data("sim/peg_insertion.xml")))
    spec.option.timestep = config.env.control_period_s

    arm = mujoco.MjSpec.from_string(_urdf_for_mujoco(config))
    spec.frame("robot_base").attach_body(arm.body("link0"), ARM_PREFIX, "")

    for geom in spec.geoms:
        if geom.name in ("floor",):
            continue
        geom.contype = geom.conaffinity = 0
        if geom.material == "" and geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            geom.material = "arm"

    peg_body = spec.body(PEG_LINK)
    peg_geom = peg_body.first_geom()
    peg_geom.name = PEG_GEOM
    peg_geom.material = "peg"
    table = spec.geom("table")
    for geom in (peg_geom, table):
        _make_contact(geom, scene)

    _add_fixture(spec.body(FIXTURE_BODY), config, task)

    site = peg_body.add_site(name=FT_SITE, pos=[0, 0, 0], size=[0.005, 0, 0])
    spec.add_sensor(name=FORCE_SENSOR, type=mujoco.mjtSensor.mjSENS_FORCE,
                    objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site.name)
    spec.add_sensor(name=TORQUE_SENSOR, type=mujoco.mjtSensor.mjSENS_TORQUE,
                    objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site.name)

    for joint, limit in zip(ARM_JOINTS, config.controller.joint_torque_limits_nm):
        spec.joint(joint).armature = scene.joint_armature_kg_m2
        spec.add_actuator(name=f"{joint}_motor", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT,
                          gainprm=[1.0] + [0.0] * 9, ctrlrange=[-limit, limit])
    return spec


def build_model(config: BresaConfig, task: Task) -> mujoco.MjModel:
    """Compile the scene for this config and task."""
    return build_spec(config, task).compile()


def _urdf_for_mujoco(config: BresaConfig) -> str:
    """The shared URDF plus MuJoCo's import options (keep fixed links as bodies, keep meshes).

    MuJoCo wants a non-empty prefix when one spec is attached to another, so the names lose their
    "panda_" here and get it back from the attach: the compiled scene has the URDF's own names.
    """
    urdf = panda_urdf(config.scene.peg).replace(f'"{ARM_PREFIX}', '"')
    extension = '<mujoco><compiler fusestatic="false" discardvisual="false"/></mujoco>'
    return urdf.replace("</robot>", extension + "</robot>")


def _make_contact(geom: mujoco.MjsGeom, scene: SceneConfig) -> None:
    """Make a geom collide, with the scene's contact softness and friction."""
    geom.contype = geom.conaffinity = CONTACT_GROUP
    geom.solref = [scene.contact_timeconst_s, 1.0]
    geom.solimp = [scene.contact_impedance_at_touch, 0.95, 0.001, 0.5, 2.0]
    geom.friction = [scene.friction, 0.005, 0.0001]
    geom.condim = 3


def fixture_geom_name(variant: int, name: str, variants: int) -> str:
    """A fixture box's geom name: the task's own name, prefixed ``v<variant>_`` when the task has
    several variants (all are built; the simulator lets one touch the peg per episode)."""
    return name if variants == 1 else f"v{variant}_{name}"


def _add_fixture(block: mujoco.MjsBody, config: BresaConfig, task: Task) -> None:
    """The task's fixture, every variant: its convex boxes, with the scene's contact parameters."""
    variants = task.fixture_variants()
    boxes = {fixture_geom_name(k, name, len(variants)): box for k, v in enumerate(variants) for name, box in v.items()}
    for name, (pos, size) in boxes.items():
        geom = block.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=pos, size=size,
                              material="block")
        _make_contact(geom, config.scene)


class PegWrenchSensor:
    """The wrist force/torque sensor of a MuJoCo scene: the wrench the environment applies to the
    peg, at the flange, base frame (N, Nm), tared like a real F/T sensor (the peg's own weight is
    removed). Both scenes (the simulated Panda's, the Franka protocol simulator's) read it so."""

    def __init__(self, model: mujoco.MjModel, site: str, force_sensor: str, torque_sensor: str, peg_body: str) -> None:
        self._site = model.site(site).id
        force_adr, torque_adr = model.sensor(force_sensor).adr[0], model.sensor(torque_sensor).adr[0]
        self._force = slice(force_adr, force_adr + 3)
        self._torque = slice(torque_adr, torque_adr + 3)
        self._peg_body = model.body(peg_body).id
        self._weight_n = model.body_mass[self._peg_body] * model.opt.gravity

    def read(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """(force N, torque Nm) of the environment on the peg, at the flange, base frame."""
        rotation = data.site_xmat[self._site].reshape(3, 3)
        force_sensor = rotation @ data.sensordata[self._force]
        torque_sensor = rotation @ data.sensordata[self._torque]
        # MuJoCo's sensor reads the force the flange applies to the peg. At rest the peg is in
        # balance: flange + environment + weight = 0, so environment = -(flange + weight).
        weight = self._weight_n
        lx, ly, lz = data.xipos[self._peg_body] - data.site_xpos[self._site]
        weight_torque = np.array([ly * weight[2] - lz * weight[1], lz * weight[0] - lx * weight[2],
                                  lx * weight[1] - ly * weight[0]])
        return -force_sensor - weight, -torque_sensor - weight_torque
