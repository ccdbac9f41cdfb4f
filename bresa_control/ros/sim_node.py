"""``mujoco_sim``: the arm stand-in. MuJoCo physics with the impedance controller inside, paced
to the wall clock at 1 kHz (:class:`~bresa_control.simulation.arm_loop.ArmLoop`).

Publishes ``joint_states`` and ``ft_sensor/wrench`` every tick. With ``compose`` (the default
bringup) the safety critic runs in this process's loop (:class:`~bresa_control.ros.critic_port.CriticPort`,
:class:`~bresa_control.runtime.safety_loop.InLoopCritic`): it takes ``bresa/task_action``, decides
each tick's command from that tick's state, and the command is applied in the same tick and
published on ``bresa/impedance_command`` (with ``bresa/reflex``) for the bag and for anyone listening;
commands others publish there are never applied, only counted (:class:`~bresa_control.ros.command_watch.CommandWatch`).
Without ``compose`` it applies ``bresa/impedance_command`` from the ``safety_critic`` process and
holds the current pose with compliant gains when commands stop for ``runtime.command_timeout_s``.

Like the real arm it stops once the wrist force reaches ``safety.arm_fault_force_n`` (40 N): ERROR
in ``diagnostics``, and it never resumes on its own; restart the node.
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
from bresa_control.ros import messages
from bresa_control.ros.command_watch import CommandWatch
from bresa_control.ros.critic_port import CRITIC_PARAMETERS, CriticPort
from bresa_control.ros.node_base import BresaNode, SimClock, run
from bresa_control.runtime.realtime import apply_realtime
from bresa_control.runtime.safety_loop import InLoopCritic
from bresa_control.runtime.timing import LoopStats
from bresa_control.simulation.arm_loop import ArmLoop

MAX_CATCH_UP_TICKS = 5  # after a late timer call, run at most this many ticks to catch up


class MujocoSimNode(BresaNode):
    """Thin adapter: messages <-> :class:`ArmLoop` (with the critic inside when composed)."""

    def __init__(self) -> None:
        super().__init__("mujoco_sim", {
            "seed": (0, "episode seed: the task's fixture pose and variant, the robot's estimate, the start pose"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "trace": (False, "record the ticks behind each command and state sample (latency bench)"),
            "wait_for_subscribers": (0, "start ticking once joint_states and ft_sensor/wrench each have this "
                                        "many subscribers (the nodes that read the arm, and a recorder)"),
            "compose": (False, "run the safety critic in this arm's loop (the bringup's default); false: follow "
                               "bresa/impedance_command from the safety_critic process"),
            "wait_for_command_subscribers": (0, "composed: ... and bresa/impedance_command this many (a recorder)"),
            **CRITIC_PARAMETERS,
        })
        trace = bool(self.param("trace"))
        self.composed = bool(self.param("compose"))
        self.port: CriticPort | None = None
        critic = None
        if self.composed:
            self.port = CriticPort(self, trace=trace)
            # The critic's kinematics come from the arm's controller (the same model).
            critic = self.port.in_loop = InLoopCritic(self.port.loop, self.port.loop.robot)
        self.loop = ArmLoop(self.config, int(self.param("seed")), trace=trace, critic=critic, task=self.task())
        if self.port is not None:  # a task action's age in simulated time, the policy's (/clock)
            self.port.loop.age_task_actions_by(lambda: self.loop.sim.time_s)
        self.stats = LoopStats()  # the whole tick: the critic (composed), the controller and physics
        self.realtime: dict[str, Any] = {}
        self._dt = self.config.env.control_period_s
        self._joints_pub = self.create_publisher(JointState, contract.JOINT_STATES, messages.FAST_PUB_QOS)
        self._wrench_pub = self.create_publisher(WrenchStamped, contract.WRENCH, messages.FAST_PUB_QOS)
        self._joints, self._wrench = JointState(), WrenchStamped()
        if not self.composed:
            self.create_subscription(Float64MultiArray, contract.IMPEDANCE_COMMAND, self._on_command,
                                     messages.FAST_QOS)
        self.watch = CommandWatch(self, composed=self.composed)
        self.clock = SimClock(self)
        self._ticks = 0
        self._late_ticks = 0
        self._start_s: float | None = None  # wall time of tick 0, once the readers are there
        self._fault_reported = False
        self.create_timer(self._dt, self._on_timer)
        layout = self.loop.layout
        self.get_logger().info(
            f"hole at {np.round(layout.fixture_m, 4).tolist()} m, robot's estimate "
            f"{np.round(layout.fixture_estimate_m, 4).tolist()} m; ticking at {1 / self._dt:.0f} Hz"
            + (", the safety critic in the loop" if self.composed else "")
        )

    def spin(self, executor: Any, stop: threading.Event) -> None:
        """Composed: real-time scheduling for this process's loop once start-up is done, then serve."""
        if self.composed:
            runtime = self.config.runtime
            report = apply_realtime(runtime.realtime_priority, list(runtime.realtime_cpus) or None,
                                    log=self.get_logger().warning)
            self.realtime = report.as_dict()
        super().spin(executor, stop)

    def _on_command(self, msg: Float64MultiArray) -> None:
        if not self.loop.on_command(messages.values(msg), time.time()):
            self.get_logger().warning(f"dropped impedance command: {self.loop.follower.last_drop_reason}",
                                   throttle_duration_sec=1.0)

    def _readers_connected(self) -> bool:
        wanted = self.param("wait_for_subscribers")
        if min(self._joints_pub.get_subscription_count(), self._wrench_pub.get_subscription_count()) < wanted:
            return False
        return self.port is None or self.port.readers_connected(self.param("wait_for_command_subscribers"))

    def _on_timer(self) -> None:
        if self._start_s is None:
            if not self._readers_connected():
                return
            self._start_s = time.time()
            now = time.time()
            self.loop.show_critic(now)  # composed: the policy answers this state; the critic must know it
            self._publish_state(now)
            self.get_logger().info("readers connected: the arm starts")
            return
        due = int((time.time() - self._start_s) / self._dt + 0.5) - self._ticks  # nearest: timers jitter both ways
        if due > MAX_CATCH_UP_TICKS:  # far behind (a stall): drop the backlog, keep going
            self._late_ticks += due - MAX_CATCH_UP_TICKS
            self._ticks += due - MAX_CATCH_UP_TICKS
            due = MAX_CATCH_UP_TICKS
        for _ in range(max(due, 0)):
            start, now = time.perf_counter(), time.time()
            self.loop.tick(now)
            self.stats.record(start, time.perf_counter() - start)
            self._ticks += 1
            self.clock.tick(self._ticks, self.loop.sim.time_s)
            decision = self.loop.decision
            if self.port is not None and decision is not None and not self.loop.fault:
                assert self.loop.critic is not None
                self.port.record(start, self.loop.critic.compute_s, decision)
                self.port.publish(decision, now)
        if due > 0:
            self._publish_state(time.time())  # stamped when the sample is complete
        if self.watch.active:
            self.watch.drain()  # outsiders' commands: counted, never applied
        if self.loop.fault and not self._fault_reported:
            self._fault_reported = True
            self.get_logger().error(f"stopped: {self.loop.fault}; the arm holds and will not resume on its own")

    def _publish_state(self, now: float) -> None:
        sim = self.loop.sim
        self.send(self._joints_pub, messages.joint_state(sim.q, sim.dq, sim.data.ctrl.copy(), now, self._joints))
        self.send(self._wrench_pub, messages.wrench(self.loop.force_n, self.loop.torque_nm, now, self._wrench))
        self.loop.state_published(now)

    def destroy_node(self) -> None:
        watch = getattr(self, "watch", None)  # None when the node refused to start before making it
        if watch is not None:
            watch.close()
        super().destroy_node()

    # ---- diagnostics and summary ---------------------------------------------------------

    def status(self) -> tuple[str, str, dict[str, Any]]:
        self.watch.check()
        if self._start_s is None:
            return "WARN", f"waiting for {self.param('wait_for_subscribers')} subscribers to start", {}
        fields = self.summary_fields(last=1000)
        if self.loop.fault:
            return "ERROR", f"stopped: {self.loop.fault}; restart the node", fields
        if self.watch.warning:
            return "WARN", self.watch.warning, fields
        if self.loop.held:
            return "WARN", "holding: " + ("the critic holds" if self.composed else "no fresh impedance command"), fields
        return "OK", "following " + ("the critic in its loop" if self.composed else "impedance commands"), fields

    def statuses(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        out = super().statuses()
        if self.port is not None:  # the critic in this loop reports as it does in its own process
            out.append(("safety_critic", *self.port.status(started=self._start_s is not None)))
        return out

    def summary_fields(self, last: int | None = None) -> dict[str, Any]:
        """Counters, and the tick timing over the last ``last`` ticks (None: the whole window)."""
        loop = self.loop
        return {
            **self.stats.summary(last),
            "composed": self.composed,
            "sim_time_s": loop.sim.time_s,
            "real_time_factor": loop.sim.time_s / max(time.time() - (self._start_s or time.time()), 1e-9),
            "inserted": loop.inserted,
            "insertion_time_s": loop.insertion_time_s if loop.insertion_time_s is not None else -1.0,
            "insertion_depth_m": loop.sim.progress_m(),
            "peak_force_n": loop.peak_force_n,
            "hold_ticks": loop.hold_ticks,
            "skipped_ticks": self._late_ticks,
            "dropped_malformed": loop.follower.dropped["malformed"],
            "dropped_out_of_range": loop.follower.dropped["out-of-range"],
            "error": loop.fault,
            "stop_force_n": loop.stop_force_n if loop.stop_force_n is not None else -1.0,
            "peak_force_before_stop_n": loop.peak_force_before_stop_n,
            **self.watch.fields(),
            **{f"realtime_{k}": v for k, v in self.realtime.items()},  # what real-time scheduling it got
        }

    def summary(self) -> dict[str, Any]:
        layout = self.loop.layout
        out = {**self.summary_fields(), "task": self.loop.sim.task.name, "fixture_variant": layout.variant,
               "fixture_m": layout.fixture_m.tolist(),
               "fixture_estimate_m": layout.fixture_estimate_m.tolist(),
               "tip_position_m": self.loop.sim.tip_position().tolist(), "realtime": self.realtime}
        if self.port is not None:
            out["critic"] = self.port.summary()
        if bool(self.param("trace")):
            out["applied_trace"] = self.loop.applied_trace.rows()
            out["tick_trace"] = self.loop.tick_trace.rows()
        return out


def main(args: list[str] | None = None) -> None:
    """Console script ``mujoco_sim``."""
    run(MujocoSimNode, "mujoco_sim", args)


if __name__ == "__main__":
    main()
