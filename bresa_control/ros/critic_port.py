"""The safety critic on ROS, whichever process runs it: its parameters, its topics and its report.

:class:`CriticPort` loads the critic and recovery models it can vouch for
(:func:`~bresa_control.safety.models.load_reflex_models`), builds the one
:class:`~bresa_control.runtime.safety_loop.SafetyLoop`, takes ``bresa/task_action``, publishes
``bresa/impedance_command`` (every tick) and ``bresa/reflex`` (on every change of the reflex state,
else at 100 Hz), and says in ``diagnostics`` what the critic is doing. Two processes use it:

* **composed** (the default bringup): the arm node (``mujoco_sim`` or ``franka_arm``) ticks the
  loop inside its own 1 kHz loop through an
  :class:`~bresa_control.runtime.safety_loop.InLoopCritic` and publishes the command it applied;
* **separate** (``compose:=false``): the ``safety_critic`` node ticks it on the arm's samples and
  the arm follows the published command.

So both modes share one set of parameters, one report and one set of fail-closed rules.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.ros import messages
from bresa_control.ros.node_base import TASK_PARAMETER, BresaNode
from bresa_control.runtime.safety_loop import HOLDING, SCORED, InLoopCritic, SafetyLoop, SafetyTick
from bresa_control.runtime.timing import LoopStats
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.reflex import gate_thresholds

# The critic's parameters, declared by every node that runs it.
CRITIC_PARAMETERS: dict[str, tuple[Any, str]] = {
    **TASK_PARAMETER,
    "fixture_estimate_m": ([0.55, 0.0, 0.035], "where the robot believes the task's fixture is (m, base frame; peg "
                                               "insertion: the hole's top centre; maze: the grid's centre on its "
                                               "floor)"),
    "models_dir": ("", "folder with safety_critic.pt and recovery_policy.pt (empty: the shipped models/)"),
    "wait_for_reflex_subscribers": (0, "start once bresa/reflex has this many subscribers (a recorder)"),
}
# bresa/reflex: every change of state (task, reflex, hold) at once, and the risk every 10 ticks (100 Hz).
REFLEX_EVERY_TICKS = 10


class CriticPort:
    """The critic's ROS side, for the ``safety_critic`` node and for an arm node that composes it."""

    def __init__(self, node: BresaNode, trace: bool, pull_task_actions: bool = False) -> None:
        """``trace``: record the state sample behind each reflex firing (latency bench).
        ``pull_task_actions``: the caller takes task actions itself (:meth:`take_task_actions`:
        ``franka_arm``, which runs no executor while the robot moves); else they are handled as
        they arrive."""
        torch.set_num_threads(1)  # one small MLP per tick: threads only add jitter
        config = node.config
        critic, recovery, card = load_reflex_models(config, node.param("models_dir") or None, node.param("task"))
        self.critic_card = card  # the critic's model card (its settings and held-out figures)
        hole = np.array(node.param("fixture_estimate_m"), dtype=float)
        self.loop = SafetyLoop(config, critic, recovery, hole, trace=trace, task=node.task())
        self.in_loop: InLoopCritic | None = None  # set by an arm that ticks the loop in its own
        self.stats = LoopStats()
        self._node = node
        self._config = config
        self._command_pub = node.create_publisher(Float64MultiArray, contract.IMPEDANCE_COMMAND,
                                                  messages.FAST_PUB_QOS)
        self._reflex_pub = node.create_publisher(Float64MultiArray, contract.REFLEX, messages.FAST_PUB_QOS)
        self._command_msg = messages.command_message()
        self._reflex_msg = messages.labelled_array(contract.REFLEX_LABELS, "reflex")
        callback = (lambda _msg: None) if pull_task_actions else self._on_task_action
        self._task_actions = node.create_subscription(Float64MultiArray, contract.TASK_ACTION, callback,
                                                      messages.RELIABLE_QOS)
        self._reflex_state, self._reflex_ticks = "", 0
        self._status_since_report: dict[str, int] = {}
        self._faults_since_report: dict[str, int] = {}
        self._faults_logged = 0
        self._fire_above = gate_thresholds(config.reflex)[0]  # published as the reflex topic's eps_safe
        node.get_logger().info(
            f"reflex {config.reflex.mode} at {1 / config.env.control_period_s:.0f} Hz, gate {config.reflex.gate} "
            f"firing above {self._fire_above}, critic AUROC {card.get('evaluation', {}).get('auroc_holdout', '?')}"
        )

    # ---- inputs ---------------------------------------------------------------------------

    def _on_task_action(self, msg: Float64MultiArray) -> None:
        self.task_action(messages.values(msg), time.time())

    def task_action(self, values: np.ndarray, now_s: float) -> None:
        """A task action arrived at ``now_s`` (s); a dropped one is logged (throttled) and counted."""
        if not self.loop.on_task_action(values, now_s):
            self._node.get_logger().warning(f"dropped task action: {self.loop.last_drop_reason}",
                                         throttle_duration_sec=1.0)

    def take_task_actions(self, now_s: float) -> None:
        """Every task action waiting in the subscription's queue, in order (``pull_task_actions``)."""
        while (taken := messages.take(self._task_actions)) is not None:
            self.task_action(messages.values(taken), now_s)

    def readers_connected(self, command_readers: int) -> bool:
        """Whether ``bresa/impedance_command`` has ``command_readers`` subscribers and
        ``bresa/reflex`` ``wait_for_reflex_subscribers`` (no message is lost to start-up)."""
        return (self._command_pub.get_subscription_count() >= command_readers
                and self._reflex_pub.get_subscription_count() >= self._node.param("wait_for_reflex_subscribers"))

    # ---- every tick -----------------------------------------------------------------------

    def publish(self, out: SafetyTick, now_s: float) -> None:
        """Publish one tick's decision: the command, and ``bresa/reflex`` when the state changed or
        every :data:`REFLEX_EVERY_TICKS` ticks; log a firing, and an in-loop fault (throttled)."""
        node = self._node
        if out.command is not None:
            node.send(self._command_pub, messages.set_values(self._command_msg, out.command.values))
        self._reflex_ticks += 1
        if out.command is not None and (out.status != self._reflex_state or self._reflex_ticks >= REFLEX_EVERY_TICKS):
            age_ms = (now_s - out.state_stamp_s) * 1e3 if np.isfinite(out.state_stamp_s) else -1.0
            node.send(self._reflex_pub, messages.set_values(self._reflex_msg, np.array(
                [out.risk, self._fire_above, float(out.status == "reflex"), float(out.fired),
                 float(self.loop.reflex_count), age_ms, float(out.status in HOLDING)])))
            self._reflex_state, self._reflex_ticks = out.status, 0
        if out.fired:
            node.get_logger().info(f"reflex fired: {self._config.reflex.gate} {out.risk:.2f} > {self._fire_above}")
        if self.in_loop is not None and sum(self.in_loop.faults.values()) > self._faults_logged:
            self._faults_logged = sum(self.in_loop.faults.values())
            node.get_logger().warning(f"holding this tick: {self.in_loop.last_fault}", throttle_duration_sec=1.0)

    def record(self, start_s: float, compute_s: float, out: SafetyTick) -> None:
        """Tick timing, from the first tick that followed a task action on (steady state)."""
        if out.status in SCORED or self.stats.ticks:
            self.stats.record(start_s, compute_s)

    # ---- report ---------------------------------------------------------------------------

    def status(self, started: bool = True, percentiles: bool = True) -> tuple[str, str, dict[str, Any]]:
        """(level, message, fields) for ``diagnostics``; ``started``: the readers are connected.
        ``percentiles``: the tick timing's of the last second (a timer's work); else only what is
        kept up tick by tick (a 1 kHz loop that reports between two of its ticks)."""
        ticks = dict(self.loop.status_ticks)
        recent = {k: v - self._status_since_report.get(k, 0) for k, v in ticks.items()}
        self._status_since_report = ticks
        faults = dict(self.in_loop.faults) if self.in_loop is not None else {}
        recent_faults = {k: v - self._faults_since_report.get(k, 0) for k, v in faults.items()}
        self._faults_since_report = faults
        budget_ms = self._config.runtime.critic_budget_s * 1e3
        if not started:
            level, message = "WARN", "waiting for the readers of bresa/impedance_command and bresa/reflex"
        elif recent_faults.get("raised") or recent_faults.get("non-finite"):
            reason = self.in_loop.last_fault if self.in_loop is not None else ""
            level, message = "ERROR", f"the critic failed, the arm held: {reason}"
        elif recent.get("state-stale"):
            level, message = "ERROR", f"arm state older than {self._config.runtime.state_timeout_s * 1e3:g} ms: holding"
        elif recent_faults.get("overrun"):
            level, message = "WARN", (f"the critic overran its {budget_ms:g} ms budget on {recent_faults['overrun']} "
                                      "ticks: the arm held on those")
        elif recent.get("waiting-for-state"):
            level, message = "WARN", "waiting for joint_states and ft_sensor/wrench"
        elif recent.get("no-task-action"):
            level, message = "WARN", "no fresh task action: holding"
        else:
            level, message = "OK", "checking task actions"
        fields = self.summary_fields(last=1000) if percentiles else {**self.stats.recent(), **self._counters()}
        return level, message, fields

    def summary_fields(self, last: int | None = None) -> dict[str, Any]:
        """Counters, and the tick timing over the last ``last`` ticks (None: the whole window)."""
        return {**self.stats.summary(last), **self._counters()}

    def _counters(self) -> dict[str, Any]:
        loop = self.loop
        out: dict[str, Any] = {
            "reflex_count": loop.reflex_count,
            "dropped_malformed": loop.dropped["malformed"],
            "dropped_out_of_range": loop.dropped["out-of-range"],
            "dropped_before_state": loop.dropped["no-state"],
            "clamped": loop.clamped,
            "last_drop_reason": loop.last_drop_reason,
            **{f"ticks_{k.replace('-', '_')}": v for k, v in loop.status_ticks.items()},
        }
        if self.in_loop is not None:
            out.update(in_loop=True, critic_budget_ms=self.in_loop.budget_s * 1e3,
                       critic_raised=self.in_loop.faults["raised"],
                       critic_non_finite=self.in_loop.faults["non-finite"],
                       critic_overruns=self.in_loop.faults["overrun"], last_critic_fault=self.in_loop.last_fault)
        return out

    def summary(self) -> dict[str, Any]:
        """:meth:`summary_fields` over the whole window, and the firing trace (with ``trace``)."""
        out = self.summary_fields()
        if self.loop.fired_trace:
            out["fired_trace"] = list(self.loop.fired_trace)
        return out
