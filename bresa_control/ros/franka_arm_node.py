"""``franka_arm``: a Franka arm on the topic contract, through libfranka torque control at 1 kHz.

At start it connects to ``robot_ip`` (one line and exit status 2 if it cannot: the address and the
cause), checks that the configured robot model (``robot.urdf_path``, ``robot.flange_link``) puts the
flange where the robot reports it, tells the robot the tool's load (``scene.peg``), and waits for
the nodes that read it. Then, every tick of the robot's 1 kHz clock (:class:`FrankaArmLoop`):
the state in, the newest ``bresa/impedance_command`` (or a compliant hold after
``runtime.command_timeout_s`` without one) through the shared impedance controller, torques out,
then ``joint_states`` and ``ft_sensor/wrench`` published. The wrench is the robot's estimate
``O_F_ext_hat_K`` moved to the flange, or, with ``wrench_topic`` set, a wrist F/T sensor's
reading relayed with its own stamp (so the critic sees it go stale if the sensor stops).

A libfranka error (a reflex, a discontinuity, lost packets) or a non-finite torque ends the motion:
``diagnostics`` says ERROR with the robot's error names and the node never resumes on its own;
restart it once the cause is fixed.

pylibfranka keeps the GIL while it waits for the robot, so the loop is single-threaded: commands
are taken from the subscription between ticks without an executor.
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
from bresa_control.ros.node_base import BresaNode, StartupError, run
from bresa_control.runtime.franka_loop import (
    FlangeWrench,
    FrankaArmLoop,
    ModelMismatch,
    UnsafeTorque,
    check_kinematics,
    sensor_wrench,
)
from bresa_control.runtime.franka_robot import (
    FRANKA_ERRORS,
    RobotFault,
    RobotUnavailable,
    TorqueMotion,
    connect,
    set_tool_load,
)
from bresa_control.runtime.timing import LoopStats


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
        })
        robot_ip = str(self.param("robot_ip"))
        if not robot_ip:
            raise StartupError("parameter robot_ip is empty: give the robot's address (robot_ip:=172.16.0.2)")
        if float(self.param("wrench_sign")) not in (1.0, -1.0):
            raise StartupError(f"parameter wrench_sign must be 1.0 or -1.0, got {self.param('wrench_sign')}")
        self._flange = self.config.robot.flange_link
        model = RobotModel.from_config(self.config)
        self.loop = FrankaArmLoop(self.config, model, trace=bool(self.param("trace")))
        try:
            self.robot = connect(robot_ip, bool(self.param("realtime")), float(self.param("connect_wait_s")))
            state = self.robot.read_once()
            check_kinematics(model, self._flange, np.array(state.q), state.O_T_EE, state.F_T_EE)
            peg = self.config.scene.peg
            set_tool_load(self.robot, peg.mass_kg, (0.0, 0.0, peg.length_m / 2.0), peg_inertia(peg))
        except (RobotUnavailable, ModelMismatch) as exc:
            raise StartupError(str(exc)) from None
        except FRANKA_ERRORS as exc:
            raise StartupError(f"the robot at {robot_ip} refused its state or the tool's load: {exc}") from None
        self._joints_pub = self.create_publisher(JointState, contract.JOINT_STATES, messages.FAST_PUB_QOS)
        self._wrench_pub = self.create_publisher(WrenchStamped, contract.WRENCH, messages.FAST_PUB_QOS)
        self._joints, self._wrench = JointState(), WrenchStamped()
        self._commands = self.create_subscription(Float64MultiArray, contract.IMPEDANCE_COMMAND,
                                                  lambda _msg: None, messages.FAST_QOS)
        topic = str(self.param("wrench_topic"))
        self._sensor = (self.create_subscription(WrenchStamped, topic, lambda _msg: None, messages.FAST_QOS)
                        if topic else None)
        self.error = ""  # why the motion ended, when it ended on its own
        self.stopped = False
        self.stats = LoopStats()
        self._trace = bool(self.param("trace"))
        self.worst_success_rate = 1.0  # libfranka's control_command_success_rate, lowest seen
        self.robot_ticks = 0  # the robot's 1 ms ticks since the motion started (from its clock)
        self._robot_ms: int | None = None
        self.tick_trace: list[tuple[float, int]] = []  # (stamp s, robot time ms) of every tick, with trace
        self.get_logger().info(f"connected to the robot at {robot_ip}; its kinematics match robot.urdf_path")

    # ---- the 1 kHz loop ------------------------------------------------------------------

    def spin(self, executor: Any, stop: threading.Event) -> None:
        """Wait for the readers, run the torque motion until ``stop`` or a fault, then serve
        diagnostics (ERROR after a fault) until ``stop``."""
        wanted = int(self.param("wait_for_subscribers"))
        while not stop.is_set() and min(self._joints_pub.get_subscription_count(),
                                         self._wrench_pub.get_subscription_count()) < wanted:
            time.sleep(0.01)
        if not stop.is_set():
            self.get_logger().info("readers connected: the motion starts")
            self._control(stop)
        self.stopped = True
        super().spin(executor, stop)

    def _control(self, stop: threading.Event) -> None:
        motion = None
        try:
            motion = TorqueMotion(self.robot)
            state, _ = motion.read()
            self.loop.start(np.array(state.q))
            self._estimate = FlangeWrench(state.F_T_EE, state.EE_T_K, float(self.param("wrench_sign")))
            while not stop.is_set():
                start, now = time.perf_counter(), time.time()
                q, dq = np.array(state.q), np.array(state.dq)
                self._take_commands(now)
                motion.write(self.loop.tick(q, dq, now))
                self.stats.record(start, time.perf_counter() - start)
                self._publish(state, q, dq, now)
                self._count_robot_ticks(state, now)
                if self.loop.ticks % 1000 == 0:
                    self._publish_diagnostics()
                state, _ = motion.read()
        except (RobotFault, UnsafeTorque) as exc:
            self.error = str(exc)
            self.get_logger().error(f"motion stopped: {exc}; the node will not resume on its own")
        finally:
            if motion is not None:
                motion.finish()
            self._publish_diagnostics()

    def _count_robot_ticks(self, state: Any, now: float) -> None:
        """Track the robot's clock: ticks it ran, libfranka's worst command success rate and, with
        ``trace``, which robot tick the state stamped ``now`` was."""
        robot_ms = round(state.time.to_sec() * 1e3)
        if self._trace:
            self.tick_trace.append((now, robot_ms))
        if self._robot_ms is not None:
            self.robot_ticks += robot_ms - self._robot_ms
        self._robot_ms = robot_ms
        self.worst_success_rate = min(self.worst_success_rate, state.control_command_success_rate)

    def _take_commands(self, now: float) -> None:
        """Every command that arrived since the last tick, in order (the newest valid one wins)."""
        while (taken := messages.take(self._commands)) is not None:
            if not self.loop.on_command(messages.values(taken), now):
                self.get_logger().warn(f"dropped impedance command: {self.loop.follower.last_drop_reason}",
                                       throttle_duration_sec=1.0)

    def _publish(self, state: Any, q: np.ndarray, dq: np.ndarray, now: float) -> None:
        self.send(self._joints_pub, messages.joint_state(q, dq, np.asarray(state.tau_J), now, self._joints))
        if self._sensor is None:
            force, torque = self._estimate(state.O_F_ext_hat_K, state.O_T_EE)
            self.send(self._wrench_pub, messages.wrench(force, torque, now, self._wrench))
        else:
            latest = None
            while (taken := messages.take(self._sensor)) is not None:
                latest = taken
            if latest is not None:  # relayed with the sensor's own stamp
                rotation = self.loop.robot.frame_pose(q, self._flange).rotation
                force, torque = sensor_wrench(*messages.wrench_arrays(latest), rotation)
                msg = messages.wrench(force, torque, 0.0, self._wrench)
                msg.header.stamp = latest.header.stamp
                self.send(self._wrench_pub, msg)

    # ---- diagnostics and summary ---------------------------------------------------------

    def status(self) -> tuple[str, str, dict[str, Any]]:
        if self.error:
            return "ERROR", f"stopped: {self.error}", self.summary_fields(last=1000)
        if self.stopped:
            return "WARN", "stopped", self.summary_fields(last=1000)
        if self.loop.ticks == 0:
            return "WARN", f"waiting for {self.param('wait_for_subscribers')} subscribers to start", {}
        holding = self.loop.held
        message = "holding: no fresh impedance command" if holding else "following impedance commands"
        return ("WARN" if holding else "OK"), message, self.summary_fields(last=1000)

    def summary_fields(self, last: int | None = None) -> dict[str, Any]:
        """Counters, and the loop timing over the last ``last`` ticks (None: the whole window)."""
        follower = self.loop.follower
        return {
            **self.stats.summary(last),
            "control_command_success_rate_min": self.worst_success_rate,
            # Robot ticks the loop did not answer (the robot then repeats the last command).
            "missed_robot_ticks": max(self.robot_ticks - (self.loop.ticks - 1), 0),
            "robot_ticks": self.robot_ticks,
            "hold_ticks": follower.hold_ticks,
            "dropped_malformed": follower.dropped["malformed"],
            "dropped_out_of_range": follower.dropped["out-of-range"],
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.summary_fields(), "error": self.error}
        if self._trace:
            out["applied_trace"] = self.loop.follower.applied_trace
            out["tick_trace"] = self.tick_trace
        return out


def main(args: list[str] | None = None) -> None:
    """Console script ``franka_arm``."""
    run(FrankaArmNode, "franka_arm", args)


if __name__ == "__main__":
    main()
