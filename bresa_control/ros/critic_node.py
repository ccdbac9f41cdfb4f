"""``safety_critic``: the 1 kHz reflex as a process of its own (``compose:=false``; composed, the
arm node runs the same :class:`~bresa_control.ros.critic_port.CriticPort` in its loop).

Subscribes ``joint_states``, ``ft_sensor/wrench`` and ``bresa/task_action``; every tick publishes
``bresa/impedance_command`` (the checked intermediate action, the recovery action, or a hold)
and ``bresa/reflex`` (on every change of the reflex state, else at 100 Hz); ``diagnostics`` at 1 Hz.
It refuses to start without models it can vouch for (:func:`bresa_control.safety.models.load_reflex_models`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import JointState

from bresa_control import contract
from bresa_control.ros import messages
from bresa_control.ros.critic_port import CRITIC_PARAMETERS, CriticPort
from bresa_control.ros.node_base import BresaNode, run

# Ticks follow the arm's samples: each wrench sample (the arm sends joint_states first, then the
# wrench of the same instant) is checked as it arrives, so every command answers the newest sample
# (a timer at a fixed phase answered samples up to a period old). A watchdog ticks on its own when
# no sample has come for WATCHDOG_TICKS periods (checked every WATCHDOG_TIMER_S): a late or silent
# arm still gets a check at close to the control rate, and a hold once its state is older than
# runtime.state_timeout_s. (A one-shot timer restarted by every tick wakes the process less, but
# under rclpy's EventsExecutor 1,000 restarts a second delayed the node's other timers: its 1 Hz
# diagnostics came late and in pairs.)
WATCHDOG_TICKS = 1.25
WATCHDOG_TIMER_S = 0.0005


class SafetyCriticNode(BresaNode):
    """Thin adapter: arm state messages -> :class:`CriticPort` (its loop, topics and report)."""

    def __init__(self) -> None:
        super().__init__("safety_critic", {
            **CRITIC_PARAMETERS,
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "trace": (False, "record the state sample behind each reflex firing (latency bench)"),
            "wait_for_subscribers": (0, "start ticking once bresa/impedance_command has this many subscribers "
                                        "(the simulated arm, and a recorder)"),
        })
        self.port = CriticPort(self, trace=bool(self.param("trace")))
        self.loop = self.port.loop
        self._joints = messages.JointReader()
        self.create_subscription(JointState, contract.JOINT_STATES, self._on_joints, messages.FAST_QOS)
        self.create_subscription(WrenchStamped, contract.WRENCH, self._on_wrench, messages.FAST_QOS)
        self._readers_connected = False
        self._watchdog_s = WATCHDOG_TICKS * self.config.env.control_period_s
        self._fresh_s = self.config.runtime.state_timeout_s
        self._last_tick_s = -np.inf
        self.create_timer(WATCHDOG_TIMER_S, self._on_watchdog)

    def _on_joints(self, msg: JointState) -> None:
        try:
            q, dq = self._joints(msg)
        except ValueError as exc:  # never act on it; the state goes stale and the loop holds
            self.get_logger().error(f"ignoring joint_states: {exc}", throttle_duration_sec=1.0)
            return
        self.loop.on_joints(q, dq, messages.seconds(msg.header.stamp))

    def _on_wrench(self, msg: WrenchStamped) -> None:
        force, torque = messages.wrench_arrays(msg)
        stamp_s = messages.seconds(msg.header.stamp)
        self.loop.on_wrench(force, torque, stamp_s)
        # After a stall the reader's queue delivers a backlog of old samples back to back: tick only
        # on one still fresh (a stale one would be answered by a hold the newer sample behind it
        # makes pointless); if none is fresh, the watchdog's tick holds.
        if time.time() - stamp_s <= self._fresh_s:
            self.tick()

    def _on_watchdog(self) -> None:
        if time.perf_counter() - self._last_tick_s >= self._watchdog_s:
            self.tick()

    def tick(self) -> None:
        """One check: the loop's decision on the newest state, published to the arm."""
        if not self._readers_connected:  # until then the arm holds by itself (its own watchdog)
            self._readers_connected = self.port.readers_connected(self.param("wait_for_subscribers"))
            if not self._readers_connected:
                return
            self.get_logger().info("readers connected: checking starts")
        start = self._last_tick_s = time.perf_counter()
        now = time.time()
        out = self.loop.tick(now)
        self.port.publish(out, now)
        self.port.record(start, time.perf_counter() - start, out)

    def status(self) -> tuple[str, str, dict[str, Any]]:
        return self.port.status(started=self._readers_connected)

    def summary(self) -> dict[str, Any]:
        return self.port.summary()


def main(args: list[str] | None = None) -> None:
    """Console script ``safety_critic``."""
    run(SafetyCriticNode, "safety_critic", args)


if __name__ == "__main__":
    main()
