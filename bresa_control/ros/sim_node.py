"""``mujoco_sim``: the arm stand-in. MuJoCo physics with the impedance controller inside, paced
to the wall clock at 1 kHz (:class:`~bresa_control.simulation.arm_loop.ArmLoop`).

Publishes ``joint_states`` and ``ft_sensor/wrench`` every tick; applies ``bresa/impedance_command``;
holds the current pose with compliant gains when commands stop for ``runtime.command_timeout_s``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.ros import messages
from bresa_control.ros.node_base import BresaNode, run
from bresa_control.simulation.arm_loop import ArmLoop

MAX_CATCH_UP_TICKS = 5  # after a late timer call, run at most this many ticks to catch up


class MujocoSimNode(BresaNode):
    """Thin adapter: messages <-> :class:`ArmLoop`."""

    def __init__(self) -> None:
        super().__init__("mujoco_sim", {
            "seed": (0, "episode seed: hole position, perception error and start pose"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "trace": (False, "record when each distinct command was first applied (latency bench)"),
            "wait_for_subscribers": (0, "start ticking once joint_states and ft_sensor/wrench each have this "
                                        "many subscribers (the nodes that read the arm, and a recorder)"),
        })
        self.loop = ArmLoop(self.config, int(self.param("seed")), trace=bool(self.param("trace")))
        self._dt = self.config.env.control_period_s
        self._joints_pub = self.create_publisher(JointState, contract.JOINT_STATES, messages.FAST_PUB_QOS)
        self._wrench_pub = self.create_publisher(WrenchStamped, contract.WRENCH, messages.FAST_PUB_QOS)
        self._joints, self._wrench = JointState(), WrenchStamped()
        self.create_subscription(Float64MultiArray, contract.IMPEDANCE_COMMAND, self._on_command, messages.FAST_QOS)
        self._ticks = 0
        self._late_ticks = 0
        self._start_s: float | None = None  # wall time of tick 0, once the readers are there
        self.create_timer(self._dt, self._on_timer)
        layout = self.loop.layout
        self.get_logger().info(
            f"hole at {np.round(layout.hole_top_m, 4).tolist()} m, robot's estimate "
            f"{np.round(layout.hole_estimate_m, 4).tolist()} m; ticking at {1 / self._dt:.0f} Hz"
        )

    def _on_command(self, msg: Float64MultiArray) -> None:
        if not self.loop.on_command(messages.values(msg), time.time()):
            self.get_logger().warn(f"dropped impedance command: {self.loop.follower.last_drop_reason}",
                                   throttle_duration_sec=1.0)

    def _on_timer(self) -> None:
        now = time.time()
        if self._start_s is None:
            wanted = self.param("wait_for_subscribers")
            if min(self._joints_pub.get_subscription_count(), self._wrench_pub.get_subscription_count()) < wanted:
                return
            self._start_s = now
            self._publish_state(time.time())
            self.get_logger().info("readers connected: the arm starts")
            return
        due = int((now - self._start_s) / self._dt + 0.5) - self._ticks  # nearest: timers jitter both ways
        if due > MAX_CATCH_UP_TICKS:  # far behind (a stall): drop the backlog, keep going
            self._late_ticks += due - MAX_CATCH_UP_TICKS
            self._ticks += due - MAX_CATCH_UP_TICKS
            due = MAX_CATCH_UP_TICKS
        for _ in range(max(due, 0)):
            self.loop.tick(now)
            self._ticks += 1
        if due > 0:
            self._publish_state(time.time())  # stamped when the sample is complete

    def _publish_state(self, now: float) -> None:
        sim = self.loop.sim
        self.send(self._joints_pub, messages.joint_state(sim.q, sim.dq, sim.controller.last_torque, now, self._joints))
        self.send(self._wrench_pub, messages.wrench(self.loop.force_n, self.loop.torque_nm, now, self._wrench))

    def status(self) -> tuple[str, str, dict[str, Any]]:
        if self._start_s is None:
            return "WARN", f"waiting for {self.param('wait_for_subscribers')} subscribers to start", {}
        loop = self.loop
        holding = loop.follower.hold.active
        message = "holding: no fresh impedance command" if holding else "following impedance commands"
        return ("WARN" if holding else "OK"), message, self.summary_fields()

    def summary_fields(self) -> dict[str, Any]:
        loop = self.loop
        return {
            "sim_time_s": loop.sim.time_s,
            "real_time_factor": loop.sim.time_s / max(time.time() - (self._start_s or time.time()), 1e-9),
            "inserted": loop.inserted,
            "insertion_time_s": loop.insertion_time_s if loop.insertion_time_s is not None else -1.0,
            "insertion_depth_m": loop.sim.insertion_depth_m(),
            "peak_force_n": loop.peak_force_n,
            "hold_ticks": loop.follower.hold_ticks,
            "skipped_ticks": self._late_ticks,
            "dropped_malformed": loop.follower.dropped["malformed"],
            "dropped_out_of_range": loop.follower.dropped["out-of-range"],
        }

    def summary(self) -> dict[str, Any]:
        layout = self.loop.layout
        out = {**self.summary_fields(), "hole_top_m": layout.hole_top_m.tolist(),
               "hole_estimate_m": layout.hole_estimate_m.tolist(),
               "tip_position_m": self.loop.sim.tip_position().tolist()}
        if self.loop.follower.applied_trace:
            out["applied_trace"] = self.loop.follower.applied_trace
        return out


def main(args: list[str] | None = None) -> None:
    """Console script ``mujoco_sim``."""
    run(MujocoSimNode, "mujoco_sim", args)


if __name__ == "__main__":
    main()
