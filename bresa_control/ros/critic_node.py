"""``safety_critic``: the 1 kHz reflex on the robot PC (:class:`~bresa_control.runtime.safety_loop.SafetyLoop`
with the TorchScript critic and recovery policy).

Subscribes ``joint_states``, ``ft_sensor/wrench`` and ``bresa/task_action``; every tick publishes
``bresa/impedance_command`` (the checked intermediate action, the recovery action, or a hold)
and ``bresa/reflex`` (on every change of the reflex state, else at 100 Hz); ``diagnostics`` at 1 Hz.
It refuses to start without models it can vouch for (:func:`bresa_control.safety.models.load_reflex_models`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.ros import messages
from bresa_control.ros.node_base import BresaNode, run
from bresa_control.runtime.safety_loop import SafetyLoop, SafetyTick
from bresa_control.runtime.timing import LoopStats
from bresa_control.safety.models import load_reflex_models

# bresa/reflex: every change of state (task, reflex, hold) at once, and the risk every 10 ticks (100 Hz).
REFLEX_EVERY_TICKS = 10
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
HOLDING = ("state-stale", "no-task-action")


class SafetyCriticNode(BresaNode):
    """Thin adapter: messages <-> :class:`SafetyLoop`."""

    def __init__(self) -> None:
        super().__init__("safety_critic", {
            "hole_estimate_m": ([0.55, 0.0, 0.035],
                                "where the robot believes the hole's top centre is (m, base frame)"),
            "models_dir": ("", "folder with safety_critic.pt and recovery_policy.pt (empty: the shipped models/)"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "trace": (False, "record the state sample behind each reflex firing (latency bench)"),
            "wait_for_subscribers": (0, "start ticking once bresa/impedance_command has this many subscribers "
                                        "(the simulated arm, and a recorder)"),
            "wait_for_reflex_subscribers": (0, "... and bresa/reflex this many (a recorder)"),
        })
        torch.set_num_threads(1)  # one small MLP per tick: threads only add jitter
        critic, recovery, card = load_reflex_models(self.config, self.param("models_dir") or None)
        hole = np.array(self.param("hole_estimate_m"), dtype=float)
        self.loop = SafetyLoop(self.config, critic, recovery, hole, trace=bool(self.param("trace")))
        self.stats = LoopStats()
        self._joints = messages.JointReader()
        self._command_pub = self.create_publisher(Float64MultiArray, contract.IMPEDANCE_COMMAND, messages.FAST_PUB_QOS)
        self._reflex_pub = self.create_publisher(Float64MultiArray, contract.REFLEX, messages.FAST_PUB_QOS)
        self._command_msg = messages.command_message()
        self._reflex_msg = messages.labelled_array(contract.REFLEX_LABELS, "reflex")
        self.create_subscription(JointState, contract.JOINT_STATES, self._on_joints, messages.FAST_QOS)
        self.create_subscription(WrenchStamped, contract.WRENCH, self._on_wrench, messages.FAST_QOS)
        self.create_subscription(Float64MultiArray, contract.TASK_ACTION, self._on_task_action, messages.RELIABLE_QOS)
        self._status_since_report: dict[str, int] = {}
        self._reflex_state, self._reflex_ticks = "", 0
        self._readers_connected = False
        self._watchdog_s = WATCHDOG_TICKS * self.config.env.control_period_s
        self._fresh_s = self.config.runtime.state_timeout_s
        self._last_tick_s = -np.inf
        self.create_timer(WATCHDOG_TIMER_S, self._on_watchdog)
        self.get_logger().info(
            f"reflex {self.config.reflex.mode} at {1 / self.config.env.control_period_s:.0f} Hz, eps_safe "
            f"{self.config.reflex.eps_safe}, critic AUROC {card.get('evaluation', {}).get('auroc_holdout', '?')}"
        )

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

    def _on_task_action(self, msg: Float64MultiArray) -> None:
        if not self.loop.on_task_action(messages.values(msg), time.time()):
            self.get_logger().warn(f"dropped task action: {self.loop.last_drop_reason}", throttle_duration_sec=1.0)

    def _on_watchdog(self) -> None:
        if time.perf_counter() - self._last_tick_s >= self._watchdog_s:
            self.tick()

    def tick(self) -> None:
        """One check: the loop's decision on the newest state, published to the arm."""
        if not self._readers_connected:  # until then the arm holds by itself (its own watchdog)
            self._readers_connected = (
                self._command_pub.get_subscription_count() >= self.param("wait_for_subscribers")
                and self._reflex_pub.get_subscription_count() >= self.param("wait_for_reflex_subscribers"))
            if not self._readers_connected:
                return
            self.get_logger().info("readers connected: checking starts")
        start = self._last_tick_s = time.perf_counter()
        now = time.time()
        out = self.loop.tick(now)
        if out.command is not None:
            self.send(self._command_pub, messages.set_values(self._command_msg, out.command.values))
        state = out.status
        self._reflex_ticks += 1
        if out.command is not None and (state != self._reflex_state or self._reflex_ticks >= REFLEX_EVERY_TICKS):
            self._publish_reflex(out, now)
            self._reflex_state, self._reflex_ticks = state, 0
        if out.fired:
            self.get_logger().info(f"reflex fired: risk {out.risk:.2f} > eps_safe {self.config.reflex.eps_safe}")
        if out.status in ("task", "reflex") or self.stats.ticks:  # steady state: from the first task action on
            self.stats.record(start, time.perf_counter() - start)

    def _publish_reflex(self, out: SafetyTick, now: float) -> None:
        age_ms = (now - out.state_stamp_s) * 1e3 if np.isfinite(out.state_stamp_s) else -1.0
        self.send(self._reflex_pub, messages.set_values(self._reflex_msg, np.array(
            [out.risk, self.config.reflex.eps_safe, float(out.status == "reflex"), float(out.fired),
             float(self.loop.reflex_count), age_ms, float(out.status in HOLDING)])))

    def status(self) -> tuple[str, str, dict[str, Any]]:
        ticks = dict(self.loop.status_ticks)
        recent = {k: v - self._status_since_report.get(k, 0) for k, v in ticks.items()}
        self._status_since_report = ticks
        if not self._readers_connected:
            level, message = "WARN", "waiting for the readers of bresa/impedance_command and bresa/reflex"
        elif recent.get("state-stale"):
            level, message = "ERROR", f"arm state older than {self.config.runtime.state_timeout_s * 1e3:g} ms: holding"
        elif recent.get("waiting-for-state"):
            level, message = "WARN", "waiting for joint_states and ft_sensor/wrench"
        elif recent.get("no-task-action"):
            level, message = "WARN", "no fresh task action: holding"
        else:
            level, message = "OK", "checking task actions"
        return level, message, self.summary_fields(last=1000)

    def summary_fields(self, last: int | None = None) -> dict[str, Any]:
        """Counters, and the tick timing over the last ``last`` ticks (None: the whole window)."""
        loop = self.loop
        return {
            **self.stats.summary(last),
            "reflex_count": loop.reflex_count,
            "dropped_malformed": loop.dropped["malformed"],
            "dropped_out_of_range": loop.dropped["out-of-range"],
            "dropped_before_state": loop.dropped["no-state"],
            "clamped": loop.clamped,
            "last_drop_reason": loop.last_drop_reason,
            **{f"ticks_{k.replace('-', '_')}": v for k, v in loop.status_ticks.items()},
        }

    def summary(self) -> dict[str, Any]:
        out = self.summary_fields()
        if self.loop.fired_trace:
            out["fired_trace"] = self.loop.fired_trace
        return out


def main(args: list[str] | None = None) -> None:
    """Console script ``safety_critic``."""
    run(SafetyCriticNode, "safety_critic", args)


if __name__ == "__main__":
    main()
