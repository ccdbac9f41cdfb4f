"""A Franka FR3 on this machine: the protocol simulator with the peg-insertion fixture.

franky-sim (PyPI ``franky-sim``, Apache-2.0) simulates an FR3 in MuJoCo and speaks libfranka's
network protocol (robot server version 10), so the ``franka_arm`` node drives it with pylibfranka
exactly as it drives a real arm. :class:`FrankaFixture` adds what the peg insertion needs, and
what a real FR3 does that franky-sim leaves out:

* **the fixture**: the table, the task's fixture (:meth:`~bresa_control.tasks.base.Task.fixture_boxes`,
  with the simulated Panda scene's contact parameters) where the episode ``seed`` puts it, and the
  peg fixed to the flange; the arm starts with the peg tip where the same seed puts it;
* **the robot's wrench estimate**: franky-sim reports ``O_F_ext_hat_K`` as zeros; here it is the
  wrench the environment applies to the peg, from a force/torque sensor at the flange
  (:class:`~bresa_control.simulation.scene.PegWrenchSensor`), moved to the K frame;
* **friction compensation**: the FCI takes "gravity and friction compensated" joint torques; franky-sim
  compensates gravity but keeps its MJCF's joint friction loss (up to 1.1 Nm), so it is set to 0;
* **the arm's own reflex**: when the true contact force reaches the Cartesian force threshold the
  robot was given (libfranka's ``setCollisionBehavior``, which ``franka_arm`` sets from
  ``safety.arm_fault_force_n``; franky-sim only acknowledges it), or ``safety.arm_fault_force_n``
  (40 N) before any was given, the motion is aborted with ``cartesian_reflex``, as the arm's
  collision detection would (on the force's magnitude: the real arm compares each axis with its
  threshold, which stops no later for a push along one axis, as in the insertion). The thresholds
  received are in the summary (``collision_force_thresholds_n``);
* **Franka's command limits checked on the robot's side**: every torque command received is
  compared with the joint torque limits and the 1 Nm-per-tick rate limit (:class:`TorqueAudit`);
* **loopback only**: the TCP servers and the UDP socket are bound to 127.0.0.1 (franky-sim binds
  its UDP socket to every interface);
* **1 kHz of wall clock on an absolute schedule** (franky-sim sleeps 1 ms after each step's work and
  so runs at ~0.9x real time).

franky-sim has no public hooks for these: what reaches into its internals is in
:mod:`bresa_control.simulation.franky_patches`, which refuses a franky-sim version it was not written for.

It runs as a process of its own (the ``franky_sim`` node, :mod:`bresa_control.ros.franky_sim_node`):
pylibfranka holds the GIL while it waits for the robot, so the two cannot share one. Code for
this machine only, never the robot PC.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from franky_sim import SimulationServer
from franky_sim.mujoco_simulator import MujocoSimulator
from franky_sim.urdf import URDF_PATH

from bresa_control.common.config import BresaConfig
from bresa_control.contract import target_rotation
from bresa_control.control.robot import PEG_LINK, RobotModel, attach_peg
from bresa_control.runtime.franka_loop import cross, pose_matrix
from bresa_control.simulation import franky_patches as franky
from bresa_control.simulation.layout import HOME_Q
from bresa_control.simulation.scene import PegWrenchSensor
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import FIXTURE_BODY, Task

ADDRESS = "127.0.0.1"  # the only address the fixture listens on
FLANGE_LINK = "link8"  # the flange in the URDF franky-sim serves (franky_sim/assets/fr3_clean.urdf)
FIXTURE_BIT = 2  # contype/conaffinity of the peg, table and block: the arm's own geoms never touch them
CARTESIAN_REFLEX = 7  # index of cartesian_reflex in libfranka's Errors (franka/errors.h)
_PREFIX = "robot0_"  # franky-sim's names for its first robot
_EE_BEYOND_FLANGE_M = 0.1034  # franky-sim's default end effector (K = EE): the Franka Hand's TCP
_FT_SITE, _FORCE, _TORQUE, _TIP_SITE = "peg_ft_site", "peg_ft_force", "peg_ft_torque", "peg_tip_site"


def fr3_urdf_path() -> Path:
    """The FR3 URDF franky-sim serves to libfranka (the robot's own model, as a real arm serves it)."""
    return Path(URDF_PATH)


def fr3_model(config: BresaConfig) -> RobotModel:
    """The FR3 with the configured peg at its flange, as the nodes load it."""
    return RobotModel(attach_peg(fr3_urdf_path().read_text(), FLANGE_LINK, config.scene.peg),
                      config.scene.joint_armature_kg_m2)


class TorqueAudit:
    """Every joint torque command the robot received (Nm), checked against Franka's limits: joint
    torques within ``controller.joint_torque_limits_nm`` and at most
    ``controller.torque_rate_limit_nm_per_tick`` from the previous command."""

    def __init__(self, config: BresaConfig, tolerance_nm: float = 1e-4) -> None:
        self._limits = np.asarray(config.controller.joint_torque_limits_nm)
        self._rate = config.controller.torque_rate_limit_nm_per_tick
        self._tolerance = tolerance_nm  # the protocol carries float64; this is for rounding only
        self._previous = np.zeros(7)  # a torque motion starts from zero commanded torque
        self.commands = 0
        self.late_commands = 0  # arrived after the robot had ended the motion (in flight at a fault)
        self.max_abs_nm = np.zeros(7)
        self.max_rate_nm_per_tick = 0.0
        self.torque_violations = 0
        self.rate_violations = 0

    def start_motion(self) -> None:
        """A new torque motion: the rate is measured from zero again."""
        self._previous = np.zeros(7)

    def record(self, tau_nm: np.ndarray) -> None:
        """One command as the robot received it."""
        rate = float(np.max(np.abs(tau_nm - self._previous)))
        self.commands += 1
        self.max_abs_nm = np.maximum(self.max_abs_nm, np.abs(tau_nm))
        self.max_rate_nm_per_tick = max(self.max_rate_nm_per_tick, rate)
        self.torque_violations += int(np.any(np.abs(tau_nm) > self._limits + self._tolerance))
        self.rate_violations += int(rate > self._rate + self._tolerance)
        self._previous = np.array(tau_nm, dtype=float)

    def record_late(self) -> None:
        """A command that reached the robot after it had ended the motion (not executed)."""
        self.late_commands += 1

    def summary(self) -> dict[str, Any]:
        """The figures the tests and the demo check."""
        return {"torque_commands": self.commands, "late_torque_commands": self.late_commands,
                "max_abs_torque_nm": self.max_abs_nm.round(4).tolist(),
                "max_torque_rate_nm_per_tick": round(self.max_rate_nm_per_tick, 6),
                "torque_limit_violations": self.torque_violations,
                "torque_rate_violations": self.rate_violations}


class FrankaFixture:
    """franky-sim's FR3 holding the peg over the episode ``seed``'s fixture (``task``, default peg
    insertion), served on 127.0.0.1."""

    def __init__(self, config: BresaConfig, seed: int, library_version: int | None = None,
                 task: Task | None = None) -> None:
        """``library_version``: the protocol version the server claims (tests: another than 10)."""
        franky.check_version()
        self.config = config
        self.task = task if task is not None else make_task(DEFAULT_TASK, config)
        draw = self.task.draw_episode(np.random.default_rng(seed))
        self.fixture_m, self.fixture_estimate_m = draw.fixture_m, draw.fixture_estimate_m
        self.variant = draw.variant  # only this variant's boxes are built (one episode per server)
        start_q = fr3_model(config).inverse_kinematics(
            draw.start_tip_m, target_rotation(config.env.target_orientation_xyzw), HOME_Q)
        self.start_q = start_q
        self.sim = MujocoSimulator()
        self.sim.init()
        self.robot = self.sim.add_robot(initial_q=tuple(start_q))
        self._build_fixture()
        self.server = SimulationServer(self.sim, hostname_candidates=[ADDRESS])
        self.audit = TorqueAudit(config)
        self.ticks = 0
        self.peak_force_n = 0.0
        self.inserted = False
        self.insertion_time_s: float | None = None
        self.faults: list[str] = []
        # The upper Cartesian thresholds (x y z N, then Nm) the client set, or None before it did.
        self.collision_force_thresholds: list[float] | None = None
        self.stop_force_n: float | None = None  # the true contact force on the step that stopped the arm
        self.peak_force_before_stop_n = 0.0  # the highest of the steps before that one
        self._fault_force_n = config.safety.arm_fault_force_n
        self._force_n = np.zeros(3)
        self._wrench_k = np.zeros(6)  # O_F_ext_hat_K of the last step
        self._was_torque = False
        self.server.init()  # binds 127.0.0.1:1337 (and the gripper's 1338) and compiles the scene
        self._robot_server = self.server.robot_servers[0]
        if library_version is not None:
            franky.claim_library_version(self._robot_server, library_version)
        franky.record_collision_behavior(self._robot_server, self._on_collision_behavior)
        self._after_compile()

    # ---- scene ---------------------------------------------------------------------------

    def _build_fixture(self) -> None:
        """Table, the task's fixture and the peg (with its F/T sensor) in franky-sim's MJCF, before
        compiling."""
        scene, peg = self.config.scene, self.config.scene.peg
        contact = {
            "contype": str(FIXTURE_BIT), "conaffinity": str(FIXTURE_BIT), "condim": "3",
            "solref": f"{scene.contact_timeconst_s} 1",
            "solimp": f"{scene.contact_impedance_at_touch} 0.95 0.001 0.5 2",
            "friction": f"{scene.friction} 0.005 0.0001",
        }
        world = self.sim.worldbody
        ET.SubElement(world, "geom", name="table", type="box", pos="0.4 0 -0.02", size="0.6 0.5 0.02",
                      rgba="0.55 0.45 0.35 1", attrib=contact)
        x, y = self.fixture_m[:2]
        block = ET.SubElement(world, "body", name=FIXTURE_BODY, pos=f"{x} {y} 0")
        for name, (pos, size) in self.task.fixture_boxes(self.variant).items():
            ET.SubElement(block, "geom", name=name, type="box", pos=_vec(pos), size=_vec(size),
                          rgba="0.35 0.55 0.75 1", attrib=contact)
        hand = next(b for b in world.iter("body") if b.get("name") == f"{_PREFIX}hand")
        # franky-sim's hand body sits at the flange turned -45 deg about z; the peg is aligned with
        # the flange itself (link8), as in the URDF the nodes load.
        half_turn = math.pi / 8.0
        body = ET.SubElement(hand, "body", name=PEG_LINK, quat=f"{math.cos(half_turn)} 0 0 {math.sin(half_turn)}")
        half = peg.length_m / 2.0
        ET.SubElement(body, "geom", name="peg", type="box", pos=f"0 0 {half}",
                      size=f"{peg.side_m / 2} {peg.side_m / 2} {half}", mass=str(peg.mass_kg),
                      rgba="0.85 0.55 0.2 1", attrib=contact)
        ET.SubElement(body, "site", name=_FT_SITE, pos="0 0 0", size="0.005")
        ET.SubElement(body, "site", name=_TIP_SITE, pos=f"0 0 {peg.length_m}", size="0.002")
        sensors = ET.SubElement(self.sim.scene, "sensor")
        ET.SubElement(sensors, "force", name=_FORCE, site=_FT_SITE)
        ET.SubElement(sensors, "torque", name=_TORQUE, site=_FT_SITE)

    def _after_compile(self) -> None:
        model = self.sim.model
        for j in range(1, 8):  # the FCI compensates joint friction: see the module docstring
            model.dof_frictionloss[model.joint(f"{_PREFIX}fr3_joint{j}").dofadr[0]] = 0.0
        self._sensor = PegWrenchSensor(model, _FT_SITE, _FORCE, _TORQUE, PEG_LINK)
        self._tip_site = model.site(_TIP_SITE).id
        self._hand_body = model.body(f"{_PREFIX}hand").id
        self.sim.register_post_step_callback(self._after_step)
        audit = self.audit

        def audited(command: Any) -> None:
            if command.message_id > 0 and not command.torque_command_finished:
                if self._torque_mode():
                    audit.record(np.asarray(command.tau_J_d, dtype=float))
                elif self.faults:
                    audit.record_late()

        franky.audit_torque_commands(self._robot_server, audited)
        franky.bind_udp_to_loopback(self._robot_server)
        franky.report_state(self.robot, self._state_fields)

    def _state_fields(self, state: Any) -> dict[str, Any]:
        """What the robot's state reports beyond franky-sim's: the fixture's wrench estimate and,
        after the arm's reflex, its errors."""
        fields: dict[str, Any] = {"O_F_ext_hat_K": tuple(float(v) for v in self._wrench_k),
                                  "K_F_ext_hat_K": self._wrench_in_k(state)}
        if self.faults:
            errors = tuple(i == CARTESIAN_REFLEX for i in range(41))
            # The wire carries two sets: franky-sim's errors (libfranka's current_errors) and
            # reflex_reason (libfranka's last_motion_errors).
            fields.update(errors=errors, reflex_reason=errors)
        return fields

    def _torque_mode(self) -> bool:
        torque = franky.in_torque_mode(self._robot_server)
        if torque and not self._was_torque:
            self.audit.start_motion()
        self._was_torque = torque
        return torque

    # ---- every step ----------------------------------------------------------------------

    def _after_step(self, sim: Any) -> None:
        data = sim.data
        force, torque = self._sensor.read(data)
        self._force_n = force
        # O_F_ext_hat_K: the wrench on the stiffness frame K (franky-sim: K = EE, the hand's TCP
        # beyond the flange), base-frame axes.
        hand_rotation = data.xmat[self._hand_body].reshape(3, 3)
        tcp_m = data.xpos[self._hand_body] + hand_rotation[:, 2] * _EE_BEYOND_FLANGE_M
        lever = data.xpos[self._hand_body] - tcp_m
        self._wrench_k = np.concatenate([force, torque + cross(lever, force)])
        self.ticks += 1
        magnitude = float(np.sqrt(force @ force))
        self.peak_force_n = max(self.peak_force_n, magnitude)
        if not self.inserted and self.task.succeeded(data.site_xpos[self._tip_site], self.fixture_m, self.variant):
            self.inserted, self.insertion_time_s = True, self.sim_time_s
        if not self.faults and magnitude < self._fault_force_n:
            self.peak_force_before_stop_n = max(self.peak_force_before_stop_n, magnitude)
        if magnitude >= self._fault_force_n and not self.faults and self._torque_mode():
            self._reflex(magnitude)

    def _on_collision_behavior(self, upper_force_thresholds: list[float]) -> None:
        """The client set the robot's collision thresholds: stop at its translational force threshold."""
        self.collision_force_thresholds = [float(v) for v in upper_force_thresholds]
        self._fault_force_n = min(self.collision_force_thresholds[:3])

    def _wrench_in_k(self, state: Any) -> tuple[float, ...]:
        rotation = pose_matrix(state.O_T_EE)[:3, :3]
        return tuple(float(v) for v in (rotation.T @ self._wrench_k.reshape(2, 3).T).T.ravel())

    def _reflex(self, force_n: float) -> None:
        """The arm's collision reflex: abort the torque motion with cartesian_reflex."""
        self.stop_force_n = force_n
        self.faults.append(f"cartesian_reflex at {force_n:.1f} N, t = {self.sim_time_s:.3f} s")
        franky.abort_motion_with_reflex(self._robot_server)

    # ---- running -------------------------------------------------------------------------

    @property
    def sim_time_s(self) -> float:
        """Simulated time (s): one 1 ms step per tick."""
        return self.ticks * 1e-3

    def run(self, stop: Callable[[], bool], every_second: Callable[[], None] = lambda: None,
            every_tick: Callable[[int, float], None] = lambda ticks, time_s: None) -> None:
        """Serve the robot at 1 kHz of wall clock (absolute schedule, no catch-up bursts beyond 5
        ticks) until ``stop()``; ``every_second`` is called once per 1,000 ticks, ``every_tick`` with
        the ticks run and the simulated time (s) after each."""
        period_s = 1e-3
        next_s = time.monotonic()
        while not stop():
            self.server.run_once(realtime=False)
            every_tick(self.ticks, self.sim_time_s)
            if self.ticks % 1000 == 0:
                every_second()
            next_s += period_s
            delay = next_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -5 * period_s:  # far behind (a stall): drop the backlog
                next_s = time.monotonic()

    def close(self) -> None:
        """Stop serving and free the ports."""
        self.server.cleanup()
        self.sim.cleanup()

    def summary(self) -> dict[str, Any]:
        """Outcome of the episode as the fixture saw it (true contact force, not an estimate)."""
        return {"sim_time_s": self.sim_time_s, "inserted": self.inserted,
                "insertion_time_s": self.insertion_time_s if self.insertion_time_s is not None else -1.0,
                "peak_force_n": self.peak_force_n, "faults": list(self.faults),
                "task": self.task.name, "fixture_variant": self.variant,
                "fixture_m": self.fixture_m.tolist(), "fixture_estimate_m": self.fixture_estimate_m.tolist(),
                "start_q": self.start_q.tolist(), "collision_force_thresholds_n": self.collision_force_thresholds,
                "fault_force_n": self._fault_force_n,
                "stop_force_n": self.stop_force_n if self.stop_force_n is not None else -1.0,
                "peak_force_before_stop_n": self.peak_force_before_stop_n, **self.audit.summary()}


def _vec(values: Any) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)
