"""``task_policy``: the 10 Hz decision loop (:class:`~bresa_control.runtime.policy_loop.PolicyLoop` with the
SAC policy from ``models/task_policy.zip``, FISOR's from ``models/fisor/``, or the scripted spiral search).

Subscribes ``joint_states`` and ``ft_sensor/wrench``; publishes ``bresa/task_action`` (19 values)
once per decision period, and holds once the peg is in. The period is kept on the wall clock, or,
with ``sim_clock`` (set by the bringup beside a simulator), on the simulator's ``/clock``: one
decision per period of simulated time, taken in the ``/clock`` callback (rclpy's own timers on
simulated time fired irregularly here: gaps of 0.65 s, pairs at one instant).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from geometry_msgs.msg import WrenchStamped
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.common.cards import models_folder
from bresa_control.contract import Controller
from bresa_control.policies.by_name import POLICIES, POLICY_DIRS, load_policy
from bresa_control.ros import messages
from bresa_control.ros.node_base import TASK_PARAMETER, BresaNode, StartupError, run
from bresa_control.runtime.policy_loop import PolicyLoop
from bresa_control.tasks.base import Task


class TaskPolicyNode(BresaNode):
    """Thin adapter: messages <-> :class:`PolicyLoop`."""

    def __init__(self) -> None:
        super().__init__("task_policy", {
            **TASK_PARAMETER,
            "fixture_estimate_m": ([0.55, 0.0, 0.035],
                                   "where the robot believes the task's fixture is (m, base frame; peg insertion: the "
                                   "hole's top centre; maze: the grid's centre on its floor)"),
            "fixture_variant": (0, "which of the task's fixture variants stands there (maze: the layout, from 0)"),
            "models_dir": ("", "folder with task_policy.zip and fisor/ (empty: the shipped models/)"),
            "policy": ("sac", "sac (the trained residual SAC policy), fisor (FISOR's diffusion policy) or scripted "
                              "(spiral search)"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "wait_for_subscribers": (0, "decide only once bresa/task_action has this many subscribers "
                                        "(the critic, and a recorder)"),
            "sim_clock": (False, "decide once per decision period of the simulator's /clock instead of the wall "
                                 "clock (beside a simulator; a real arm has no /clock)"),
        })
        torch.set_num_threads(1)
        task = self.task()
        variant = int(self.param("fixture_variant"))
        if not 0 <= variant < len(task.fixture_variants()):
            raise StartupError(f"parameter fixture_variant = {variant} must be from 0 to "
                               f"{len(task.fixture_variants()) - 1} for the {task.name} task")
        self.loop = PolicyLoop(self.config, self._controller(task), self.param("fixture_estimate_m"), task, variant)
        self._joints = messages.JointReader()
        self._pub = self.create_publisher(Float64MultiArray, contract.TASK_ACTION, messages.RELIABLE_QOS)
        self._msg = messages.command_message()
        # The arm reports at 1 kHz, the policy decides at 10 Hz: keep the newest serialized message
        # and decode only the one a decision uses (raw subscriptions: no message object per sample).
        self._latest: dict[str, bytes] = {}
        self.create_subscription(JointState, contract.JOINT_STATES, partial(self._keep, "joints"), messages.FAST_QOS,
                                 raw=True)
        self.create_subscription(WrenchStamped, contract.WRENCH, partial(self._keep, "wrench"), messages.FAST_QOS,
                                 raw=True)
        self._next_decision_s: float | None = None  # on /clock: the simulated time of the next decision
        if self.param("sim_clock"):
            self.create_subscription(messages.Clock, messages.CLOCK_TOPIC, self._on_clock, messages.CLOCK_QOS)
        else:
            self.create_timer(self.config.env.decision_period_s, self._on_timer)
        self.get_logger().info(f"{self.param('policy')} policy at {1 / self.config.env.decision_period_s:.0f} Hz")

    def _controller(self, task: Task) -> Controller:
        policy = self.param("policy")
        if policy not in POLICIES:
            raise StartupError(f"parameter policy = {policy!r} must be one of: {', '.join(POLICIES)}")
        subfolder = POLICY_DIRS[policy]
        folder = None if subfolder is None else models_folder(self.param("models_dir") or None) / subfolder
        return load_policy(policy, self.config, folder, task.scripted)

    def _keep(self, kind: str, data: bytes) -> None:
        self._latest[kind] = data

    def _decode_latest(self) -> None:
        if "joints" in self._latest:
            try:
                self.loop.q, self.loop.dq = self._joints(deserialize_message(self._latest.pop("joints"), JointState))
            except ValueError as exc:
                self.get_logger().error(f"ignoring joint_states: {exc}", throttle_duration_sec=1.0)
        if "wrench" in self._latest:
            wrench = deserialize_message(self._latest.pop("wrench"), WrenchStamped)
            self.loop.force_n, self.loop.torque_nm = messages.wrench_arrays(wrench)

    def _on_clock(self, msg: Any) -> None:
        """One decision per decision period of simulated time; after a stall, one, not a burst."""
        now_s = messages.seconds(msg.clock)
        period_s = self.config.env.decision_period_s
        scheduled = self._next_decision_s
        if scheduled is not None and now_s < scheduled:
            return
        if scheduled is None or now_s >= scheduled + period_s:  # the first, or after a stall
            self._next_decision_s = now_s + period_s
        else:
            self._next_decision_s = scheduled + period_s
        self._on_timer()

    def _on_timer(self) -> None:
        if self._pub.get_subscription_count() < self.param("wait_for_subscribers"):
            return
        self._decode_latest()
        was_done = self.loop.done
        command = self.loop.decide()
        if command is not None:
            self.send(self._pub, messages.set_values(self._msg, command.values))
        if self.loop.done and not was_done:
            self.get_logger().info("peg is in (by the estimated hole): holding")

    def status(self) -> tuple[str, str, dict[str, Any]]:
        fields = {"decisions": self.loop.decisions, "done": self.loop.done}
        if self.loop.q is None or self.loop.force_n is None:
            return "WARN", "waiting for joint_states and ft_sensor/wrench", fields
        return "OK", "done: holding" if self.loop.done else "inserting", fields

    def summary(self) -> dict[str, Any]:
        return {"decisions": self.loop.decisions, "done": self.loop.done}


def main(args: list[str] | None = None) -> None:
    """Console script ``task_policy``."""
    run(TaskPolicyNode, "task_policy", args)


if __name__ == "__main__":
    main()
