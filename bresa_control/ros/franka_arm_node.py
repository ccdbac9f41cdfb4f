"""``franka_arm``: a Franka arm on the topic contract, through libfranka torque control at 1 kHz.

At start it connects to ``robot_ip`` (one line and exit status 2 if it cannot: the address and the
cause), checks that the configured robot model (``robot.urdf_path``, ``robot.flange_link``) puts the
flange where the robot reports it, tells the robot the tool's load (``scene.peg``) and its collision
thresholds (the Cartesian force threshold at ``safety.arm_fault_force_n``: the arm's own last line),
and waits for the nodes that read it (publishing that it waits in ``diagnostics``). Then, every
tick of the robot's 1 kHz clock (:class:`FrankaArmLoop`): the state in, the command through the
shared impedance controller, torques out, then ``joint_states`` and ``ft_sensor/wrench`` published.
The command is

* with ``compose`` (the bringup's default): the safety critic's, computed in this tick from this
  tick's state (:class:`~bresa_control.ros.critic_port.CriticPort`,
  :class:`~bresa_control.runtime.safety_loop.InLoopCritic`), fed by ``bresa/task_action``, and
  published on ``bresa/impedance_command`` (with ``bresa/reflex``) for the bag and anyone
  listening; commands others publish there are never applied, only counted;
* without: the newest ``bresa/impedance_command`` from the ``safety_critic`` process (or a
  compliant hold after ``runtime.command_timeout_s`` without one); a second publisher of that
  topic is warned about.

The wrench is the robot's estimate ``O_F_ext_hat_K`` moved to the flange, or, with
``wrench_topic`` set, a wrist F/T sensor's reading relayed with its own stamp (so the critic sees
it go stale if the sensor stops), turned into base axes with the flange rotation the controller
has just computed.

A libfranka error (a reflex, a discontinuity, lost packets) or a non-finite torque ends the motion:
``diagnostics`` says ERROR with the robot's error names and the node never resumes on its own;
restart it once the cause is fixed.

pylibfranka keeps the GIL while it waits for the robot, so the loop is single-threaded: task
actions or commands are taken from their subscriptions between ticks without an executor, and the
loop publishes ``diagnostics`` itself once a second with what it keeps up tick by tick (no
percentiles: those are in the summary, and in ``diagnostics`` once the motion has ended).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.control.robot import RobotModel, peg_inertia
from bresa_control.ros import messages
from bresa_control.ros.command_watch import CommandWatch
from bresa_control.ros.critic_port import CRITIC_PARAMETERS, CriticPort
from bresa_control.ros.node_base import BresaNode, StartupError, run
from bresa_control.runtime.franka_loop import (
    FlangeWrench,
    FrankaArmLoop,
    ModelMismatch,
    UnsafeTorque,
    WrenchSample,
    check_kinematics,
)
from bresa_control.runtime.franka_robot import (
    FRANKA_ERRORS,
    RobotFault,
    RobotUnavailable,
    TorqueMotion,
    connect,
    set_collision_thresholds,
    set_tool_load,
)
from bresa_control.runtime.realtime import apply_realtime
from bresa_control.runtime.safety_loop import InLoopCritic
from bresa_control.runtime.timing import LoopStats, TraceRing


class FrankaArmNode(BresaNode):
    """Thin adapter: libfranka's torque control <-> :class:`FrankaArmLoop` <-> topics."""

    def __init__(self) -> None:
        super().__init__("franka_arm", {
            "robot_ip": ("", "address of the robot's FCI (the control PC's network), e.g. 172.16.0.2"),
            "realtime": (True, "ask libfranka to enforce real-time scheduling (needs a PREEMPT_RT kernel)"),
            "connect_wait_s": (0.0, "keep trying to reach the robot this long before giving up (a robot or "
                                    "simulator still starting)"),
            "wrench_topic": ("", "empty: publish the robot's estimate O_F_ext_hat_K; else relay a wrist F/T "
                                 "sensor's geometry_msgs/WrenchStamped from this topic (sensor axes = flange axes)"),
            "wrench_sign": (1.0, "+1 or -1: the sign that makes the robot's estimate the wrench the environment "
                                 "applies to the tool (docs/sim-to-real.md)"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "trace": (False, "record every tick's stamp and when each command was first applied (latency bench)"),
            "wait_for_subscribers": (0, "start the motion once joint_states and ft_sensor/wrench each have this "
                                        "many subscribers"),
            "compose": (False, "run the safety critic in this arm's loop (the bringup's default); false: follow "
                               "bresa/impedance_command from the safety_critic process"),
            "wait_for_command_subscribers": (0, "composed: ... and bresa/impedance_command this many (a recorder)"),
            **CRITIC_PARAMETERS,
        })
        robot_ip = str(self.param("robot_ip"))
        if not robot_ip:
            raise StartupError("parameter robot_ip is empty: give the robot's address (robot_ip:=172.16.0.2)")
        if float(self.param("wrench_sign")) not in (1.0, -1.0):
            raise StartupError(f"parameter wrench_sign must be 1.0 or -1.0, got {self.param('wrench_sign')}")
        self._flange = self.config.robot.flange_link
        self._trace = bool(self.param("trace"))
        self.composed = bool(self.param("compose"))
        model = RobotModel.from_config(self.config)
        self.port: CriticPort | None = None
        critic = None
        if self.composed:  # the models load (and may refuse) before the robot is touched
            self.port = CriticPort(self, trace=self._trace, pull_task_actions=True)
            critic = self.port.in_loop = InLoopCritic(self.port.loop, model)
        self.loop = FrankaArmLoop(self.config, model, trace=self._trace, critic=critic)
        fault_force_n = self.config.safety.arm_fault_force_n
        try:
            self.robot = connect(robot_ip, bool(self.param("realtime")), float(self.param("connect_wait_s")))
            state = self.robot.read_once()
            check_kinematics(model, self._flange, np.array(state.q), state.O_T_EE, state.F_T_EE)
            peg = self.config.scene.peg
            set_tool_load(self.robot, peg.mass_kg, (0.0, 0.0, peg.length_m / 2.0), peg_inertia(peg))
            set_collision_thresholds(self.robot, fault_force_n)
        except (RobotUnavailable, ModelMismatch) as exc:
            raise StartupError(str(exc)) from None
        except FRANKA_ERRORS as exc:
            raise StartupError(f"the robot at {robot_ip} refused its state, the tool's load or the collision "
                               f"thresholds: {exc}") from None
        self._joints_pub = self.create_publisher(JointState, contract.JOINT_STATES, messages.FAST_PUB_QOS)
        self._wrench_pub = self.create_publisher(WrenchStamped, contract.WRENCH, messages.FAST_PUB_QOS)
        self._joints, self._wrench = JointState(), WrenchStamped()
        self._commands = (None if self.composed else self.create_subscription(
            Float64MultiArray, contract.IMPEDANCE_COMMAND, lambda _msg: None, messages.FAST_QOS))
        self.watch = CommandWatch(self, composed=self.composed)
        topic = str(self.param("wrench_topic"))
        self._sensor = (self.create_subscription(WrenchStamped, topic, lambda _msg: None, messages.FAST_QOS)
                        if topic else None)
        self.error = ""  # why the motion ended, when it ended on its own
        self.started = False
        self.stopped = False
        self.in_motion = False
        self.stats = LoopStats()  # the tick's work: the critic (composed), the controller, the torque write
        self.realtime: dict[str, Any] = {}
        self.worst_success_rate = 1.0  # libfranka's control_command_success_rate, lowest seen
        self.robot_ticks = 0  # the robot's 1 ms ticks since the motion started (from its clock)
        self._robot_ms: int | None = None
        self.tick_trace = TraceRing()  # (stamp s, robot time ms) of every tick, with trace
        self._sensor_stamp: Any = None  # header stamp of the newest relayed sensor reading
        self.get_logger().info(f"connected to the robot at {robot_ip}; its kinematics match robot.urdf_path; "
                               f"collision threshold {fault_force_n:g} N"
                               + ("; the safety critic in the loop" if self.composed else ""))

    # ---- the 1 kHz loop ------------------------------------------------------------------

    def _readers_connected(self) -> bool:
        wanted = int(self.param("wait_for_subscribers"))
        if min(self._joints_pub.get_subscription_count(), self._wrench_pub.get_subscription_count()) < wanted:
            return False
        return self.port is None or self.port.readers_connected(self.param("wait_for_command_subscribers"))

    def spin(self, executor: Any, stop: threading.Event) -> None:
        """Wait for the readers (diagnostics once a second meanwhile), run the torque motion until
        ``stop`` or a fault, then serve diagnostics (ERROR after a fault) until ``stop``."""
        next_report_s = time.monotonic()
        while not stop.is_set() and not self._readers_connected():
            if time.monotonic() >= next_report_s:  # no executor spins yet: report "waiting" ourselves
                self._publish_diagnostics()
                next_report_s += 1.0
            time.sleep(0.01)
        if not stop.is_set():
            self.started = True
            self.get_logger().info("readers connected: the motion starts")
            if self.composed:  # start-up is done: real-time scheduling for the loop's thread
                runtime = self.config.runtime
                self.realtime = apply_realtime(runtime.realtime_priority, list(runtime.realtime_cpus) or None,
                                               log=self.get_logger().warning).as_dict()
            self._control(stop)
        self.stopped = True
        super().spin(executor, stop)

    def _control(self, stop: threading.Event) -> None:
        motion = None
        port, loop, watch = self.port, self.loop, self.watch
        try:
            motion = TorqueMotion(self.robot)
            state, _ = motion.read()
            loop.start(np.array(state.q))
            self._estimate = FlangeWrench(state.F_T_EE, state.EE_T_K, float(self.param("wrench_sign")))
            self.in_motion = True
            robot_ms = round(state.time.to_sec() * 1e3)
            if port is not None:  # a task action's age on the robot's clock (franky-sim's: simulated)
                port.loop.age_task_actions_by(lambda: robot_ms * 1e-3)
            while not stop.is_set():
                start, now = time.perf_counter(), time.time()
                robot_ms = round(state.time.to_sec() * 1e3)
                q, dq = np.array(state.q), np.array(state.dq)
                wrench = self._wrench_sample(state, now)
                if port is not None:
                    port.take_task_actions(now)
                else:
                    self._take_commands(now)
                motion.write(loop.tick(q, dq, now, wrench, robot_ms))
                self.stats.record(start, time.perf_counter() - start)
                self._publish(state, q, dq, now, wrench is not None)
                if port is not None and loop.decision is not None and loop.critic is not None:
                    port.record(start, loop.critic.compute_s, loop.decision)
                    port.publish(loop.decision, now)
                self._count_robot_ticks(state, robot_ms, now)
                if watch.active:
                    watch.drain()
                if loop.ticks % 1000 == 0:
                    self._publish_diagnostics()
                state, _ = motion.read()
        except (RobotFault, UnsafeTorque) as exc:
            self.error = str(exc)
            self.get_logger().error(f"motion stopped: {exc}; the node will not resume on its own")
        finally:
            self.in_motion = False
            if motion is not None:
                motion.finish()
            self._publish_diagnostics()

    def _wrench_sample(self, state: Any, now: float) -> WrenchSample | None:
        """This tick's wrist wrench: the robot's estimate (every tick), or the newest relayed sensor
        reading in flange axes with the sensor's stamp (None when none came since the last tick)."""
        if self._sensor is None:
            force, torque = self._estimate(state.O_F_ext_hat_K, state.O_T_EE)
            return WrenchSample(force, torque, now)
        latest = None
        while (taken := messages.take(self._sensor)) is not None:
            latest = taken
        if latest is None:
            return None
        self._sensor_stamp = latest.header.stamp  # relayed as it came, to the nanosecond
        force, torque = messages.wrench_arrays(latest)
        return WrenchSample(force, torque, messages.seconds(latest.header.stamp), flange_axes=True)

    def _count_robot_ticks(self, state: Any, robot_ms: int, now: float) -> None:
        """Track the robot's clock: ticks it ran, libfranka's worst command success rate and, with
        ``trace``, which robot tick the state stamped ``now`` was."""
        if self._trace:
            self.tick_trace.record(now, robot_ms)
        if self._robot_ms is not None:
            self.robot_ticks += robot_ms - self._robot_ms
        self._robot_ms = robot_ms
        self.worst_success_rate = min(self.worst_success_rate, state.control_command_success_rate)

    def _take_commands(self, now: float) -> None:
        """Every command that arrived since the last tick, in order (the newest valid one wins)."""
        while (taken := messages.take(self._commands)) is not None:
            if not self.loop.on_command(messages.values(taken), now):
                self.get_logger().warning(f"dropped impedance command: {self.loop.follower.last_drop_reason}",
                                       throttle_duration_sec=1.0)

    def _publish(self, state: Any, q: np.ndarray, dq: np.ndarray, now: float, new_wrench: bool) -> None:
        self.send(self._joints_pub, messages.joint_state(q, dq, np.asarray(state.tau_J), now, self._joints))
        wrench = self.loop.wrench  # in base axes
        if wrench is None or not new_wrench:
            return
        msg = messages.wrench(wrench.force_n, wrench.torque_nm, wrench.stamp_s, self._wrench)
        if self._sensor is not None:  # relayed with the sensor's own stamp
            msg.header.stamp = self._sensor_stamp
        self.send(self._wrench_pub, msg)

    def destroy_node(self) -> None:
        watch = getattr(self, "watch", None)  # None when the node refused to start before making it
        if watch is not None:
            watch.close()
        super().destroy_node()

    # ---- diagnostics and summary ---------------------------------------------------------

    def status(self) -> tuple[str, str, dict[str, Any]]:
        self.watch.check()  # once a second (in motion: between two ticks)
        fields = self._fields()
        if self.error:
            return "ERROR", f"stopped: {self.error}", fields
        if self.stopped:
            return "WARN", "stopped", fields
        if not self.started or self.loop.ticks == 0:
            return "WARN", f"waiting for {self.param('wait_for_subscribers')} subscribers to start", fields
        if self.watch.warning:
            return "WARN", self.watch.warning, fields
        if self.loop.held:
            return "WARN", "holding: " + ("the critic holds" if self.composed else "no fresh impedance command"), fields
        return "OK", "following " + ("the critic in its loop" if self.composed else "impedance commands"), fields

    def _fields(self) -> dict[str, Any]:
        """In motion, what the loop keeps up tick by tick; else the percentiles of the last second."""
        return self.summary_fields(last=1000) if not self.in_motion else {
            **self.stats.recent(), **self._counters()}

    def statuses(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        out = super().statuses()
        if self.port is not None:  # the critic in this loop reports as it does in its own process
            out.append(("safety_critic", *self.port.status(started=self.started, percentiles=not self.in_motion)))
        return out

    def summary_fields(self, last: int | None = None) -> dict[str, Any]:
        """Counters, and the loop timing over the last ``last`` ticks (None: the whole window)."""
        return {**self.stats.summary(last), **self._counters()}

    def _counters(self) -> dict[str, Any]:
        follower = self.loop.follower
        return {
            "composed": self.composed,
            "control_command_success_rate_min": self.worst_success_rate,
            # Robot ticks the loop did not answer (the robot then repeats the last command).
            "missed_robot_ticks": max(self.robot_ticks - (self.loop.ticks - 1), 0),
            "robot_ticks": self.robot_ticks,
            "hold_ticks": self.loop.hold_ticks,
            "dropped_malformed": follower.dropped["malformed"],
            "dropped_out_of_range": follower.dropped["out-of-range"],
            **self.watch.fields(),
            **{f"realtime_{k}": v for k, v in self.realtime.items()},  # what real-time scheduling it got
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.summary_fields(), "error": self.error, "realtime": self.realtime}
        if self.port is not None:
            out["critic"] = self.port.summary()
        if self._trace:
            out["applied_trace"] = self.loop.applied_trace.rows()
            out["tick_trace"] = self.tick_trace.rows()
        return out


def main(args: list[str] | None = None) -> None:
    """Console script ``franka_arm``."""
    run(FrankaArmNode, "franka_arm", args)


if __name__ == "__main__":
    main()
