"""The simulated arm's 1 kHz loop, without ROS: what the ``mujoco_sim`` node runs every tick.

It owns a :class:`~bresa_control.simulation.simulator.ArmSim` (MuJoCo + the impedance
controller). Each tick the controller observes the arm's state (one kinematics and dynamics pass),
the command for it is chosen, the torque is computed and physics advances one period. The command is

* **composed** (an :class:`~bresa_control.runtime.safety_loop.InLoopCritic` given): the critic's
  answer to this very state, in this very tick, or its fail-closed hold;
* **separate**: the newest ``bresa/impedance_command`` from the critic's process. Like a real arm's
  controller it never acts on a bad command: a malformed or out-of-range one is dropped and
  counted, and if no valid command has arrived for ``runtime.command_timeout_s`` (20 ms) it holds
  the tip where it is with compliant gains until commands resume.

Like the real arm (its Cartesian collision reflex, which ``franka_arm`` configures at
``safety.arm_fault_force_n``, and franky-sim's fixture) it **stops** once the wrist force reaches
``safety.arm_fault_force_n``: from the next tick on it holds its joints where they were (a stiff
joint hold with gravity compensation, outside the impedance controller and its 1 Nm-per-tick
rate limit, as franky-sim holds its joints after a stop and a Franka stops after a reflex),
follows no command and never resumes on its own (:attr:`ArmLoop.fault` says why).
"""

from __future__ import annotations

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandFollower, values_crc
from bresa_control.runtime.safety_loop import HOLDING, InLoopCritic, SafetyTick
from bresa_control.runtime.timing import TraceRing
from bresa_control.simulation.simulator import ArmSim, Layout
from bresa_control.tasks.base import Task

# The stop's joint hold (Nm/rad, Nm s/rad): stiff, about critically damped for the arm's joint
# inertias with the scene's armature, and stable at the 1 ms step.
STOP_STIFFNESS_NM_PER_RAD = np.array([600.0] * 4 + [250.0] * 3)
STOP_DAMPING_NMS_PER_RAD = np.array([50.0] * 4 + [20.0] * 3)


class ArmLoop:
    """Simulated arm: commands in (or a critic inside), physics ticks, joint state and wrench out."""

    def __init__(self, config: BresaConfig, seed: int, trace: bool = False,
                 critic: InLoopCritic | None = None, task: Task | None = None) -> None:
        """``critic``: run composed, the critic deciding every tick's command; None: follow
        ``on_command``. ``trace``: record what the reflex-latency benchmark needs. ``task``: the
        fixture and episode (default peg insertion)."""
        self.config = config
        self.sim = ArmSim(config, task)
        self.layout: Layout = self.sim.reset(np.random.default_rng(seed))
        self.follower = CommandFollower(config, self.sim.robot, trace)
        self.critic = critic
        if critic is not None:
            critic.validate = self.sim.controller.check  # the controller's check, done once per command
        self.decision: SafetyTick | None = None  # the critic's answer of the last tick (composed)
        self.force_n, self.torque_nm = self.sim.wrench()  # wrist wrench after the last tick (N, Nm)
        self.peak_force_n = 0.0
        self.inserted = False
        self.insertion_time_s: float | None = None
        self.ticks = 0  # control periods run; tick k reads the state the k ticks before left
        self.hold_ticks = 0
        self.held = False  # whether the last tick held
        self.fault = ""  # why the arm stopped (its collision reflex), once it has
        self.stop_force_n: float | None = None  # the wrist force (N) on the tick that stopped it
        self.peak_force_before_stop_n = 0.0  # the highest wrist force (N) of the ticks before that one
        self._stop_q: np.ndarray | None = None  # the joints the arm holds after its stop
        self._fault_force_n = config.safety.arm_fault_force_n
        self._torque_limits = np.asarray(config.controller.joint_torque_limits_nm)
        self._trace = trace
        # With trace: (stamp s of a state sample the critic saw, the tick that read that state) and
        # (crc32 of a command, the tick that first applied it), for the reflex latency in ticks.
        self.tick_trace = TraceRing()
        self.applied_trace = TraceRing()
        self._applied_crc: int | None = None

    def on_command(self, values: object, now_s: float) -> bool:
        """An impedance command arrived (separate mode); returns whether it was accepted."""
        return self.follower.on_command(values, now_s)

    def show_critic(self, now_s: float) -> None:
        """Composed: hand the critic the arm's current state at ``now_s`` (s) without a tick (the
        state published before the first tick, which the task policy answers)."""
        if self.critic is not None:
            sim = self.sim
            q, dq = sim.q, sim.dq
            sim.controller.observe(q, dq)
            self.critic.observe(q, dq, now_s, sim.controller.tip_position_m, sim.controller.tip_velocity_m_per_s,
                                (self.force_n, self.torque_nm, now_s))

    def state_published(self, stamp_s: float) -> None:
        """The state after the last tick went out stamped ``stamp_s`` (separate mode): with trace,
        note that the next tick reads it."""
        if self._trace:
            self.tick_trace.record(stamp_s, self.ticks)

    def tick(self, now_s: float) -> bool:
        """One 1 ms control period at wall time ``now_s`` (s). Returns whether this tick held."""
        sim = self.sim
        q, dq = sim.q, sim.dq
        if self.fault:  # stopped: hold the joints, never resume
            self._stop(q, dq)
            return True
        controller = sim.controller
        controller.observe(q, dq)
        if self.critic is not None:
            out = self.critic.tick(q, dq, now_s, controller.tip_position_m, controller.tip_velocity_m_per_s,
                                   (self.force_n, self.torque_nm, now_s))
            assert out.command is not None  # InLoopCritic always answers with a command
            self.decision = out
            command, held = out.command, out.status in HOLDING
            if self._trace:
                self.tick_trace.record(now_s, self.ticks)
        else:
            command, held = self.follower.command(q, now_s)
        if self._trace:
            crc = values_crc(command.values) if self.critic is not None else self.follower.command_crc
            if crc != self._applied_crc and not held:
                self.applied_trace.record(crc, self.ticks)
                self._applied_crc = crc
        sim.step(command)
        self._after_step(held)
        return held

    def _stop(self, q: np.ndarray, dq: np.ndarray) -> None:
        """One tick of the stopped arm: its joints held where they were when it stopped."""
        if self._stop_q is None:
            self._stop_q = q
        robot = self.sim.robot
        tau = robot.gravity(q) + STOP_STIFFNESS_NM_PER_RAD * (self._stop_q - q) - STOP_DAMPING_NMS_PER_RAD * dq
        self.sim.step_torque(np.minimum(np.maximum(tau, -self._torque_limits), self._torque_limits))
        self._after_step(True)

    def _after_step(self, held: bool) -> None:
        sim = self.sim
        self.ticks += 1
        self.hold_ticks += int(held)
        self.held = held
        self.force_n, self.torque_nm = sim.wrench()
        force_n = float(np.sqrt(self.force_n @ self.force_n))
        self.peak_force_n = max(self.peak_force_n, force_n)
        if not self.inserted and sim.succeeded():
            self.inserted, self.insertion_time_s = True, sim.time_s
        if self.fault:
            return
        if force_n < self._fault_force_n:
            self.peak_force_before_stop_n = max(self.peak_force_before_stop_n, force_n)
        else:
            self.stop_force_n = force_n
            self.fault = (f"the arm's collision reflex: the wrist force reached {force_n:.1f} N "
                          f"(safety.arm_fault_force_n {self._fault_force_n:g} N) at t = {sim.time_s:.3f} s")
