"""What the ROS integration tests share: a private ROS domain, the test's own probe node, and
the adversarial task action."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import rclpy  # installed by ./run.sh setup: the ROS wheels, or your sourced ROS 2
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.common.config import BresaConfig
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.ros import messages
from bresa_control.ros.runner import Stack


@pytest.fixture()
def private_ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ROS domain per test process, on localhost only (children inherit the environment)."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init()
    yield
    rclpy.try_shutdown()


class Probe(Node):
    """The test's own node: publishes task actions, watches the wrench, joints and commands."""

    def __init__(self) -> None:
        super().__init__("test_probe")
        self.task_action = self.create_publisher(Float64MultiArray, contract.TASK_ACTION, messages.RELIABLE_QOS)
        self.force_n = 0.0
        self.commands = 0
        self.joint_speed = np.inf
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.history: list[tuple[str, str, str]] = []  # (name, level, message) of every status seen
        self.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, 10)
        self.create_subscription(WrenchStamped, contract.WRENCH, self._on_wrench, messages.FAST_QOS)
        self.create_subscription(JointState, contract.JOINT_STATES, self._on_joints, messages.FAST_QOS)
        self.create_subscription(Float64MultiArray, contract.IMPEDANCE_COMMAND, self._on_command, messages.FAST_QOS)
        self.reflex: list[tuple[float, np.ndarray]] = []  # (time received, bresa/reflex values)
        self.create_subscription(Float64MultiArray, contract.REFLEX, self._on_reflex, messages.FAST_QOS)

    def _on_wrench(self, msg: WrenchStamped) -> None:
        force, _ = messages.wrench_arrays(msg)
        self.force_n = float(np.linalg.norm(force))

    def _on_joints(self, msg: JointState) -> None:
        self.joint_speed = float(np.max(np.abs(msg.velocity)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        fields = messages.diagnostic_fields(msg)
        self.diagnostics.update(fields)
        self.history += [(name, status["level"], status["message"]) for name, status in fields.items()]

    def said(self, node: str, text: str, level: str | None = None) -> bool:
        """Whether ``node`` ever reported a diagnostics message containing ``text`` (at ``level``)."""
        return any(n == node and text in m and (level is None or lv == level) for n, lv, m in self.history)

    def level(self, node: str) -> str | None:
        """The latest diagnostics level a node reported."""
        return self.diagnostics.get(node, {}).get("level")

    def _on_command(self, msg: Float64MultiArray) -> None:
        self.commands += 1

    def _on_reflex(self, msg: Float64MultiArray) -> None:
        self.reflex.append((time.monotonic(), messages.values(msg).copy()))

    def spin_until(self, done: Callable[[], bool], timeout_s: float, stack: Stack | None) -> None:
        """Spin until ``done()``; fail if time ran out or (``stack`` given) a node died."""
        deadline = time.monotonic() + timeout_s
        while not done():
            rclpy.spin_once(self, timeout_sec=0.05)
            if stack is not None:
                failure = stack.failed()
                assert failure is None, failure
            assert time.monotonic() < deadline, "timed out" + (
                f"; logs: {[stack.log_tail(n) for n in stack.specs]}" if stack else "")

    def spin_for(self, seconds: float, every: Callable[[], None] | None = None, period_s: float = 0.1) -> None:
        """Spin for a while, calling ``every()`` each ``period_s``."""
        end = time.monotonic() + seconds
        next_call = time.monotonic()
        while time.monotonic() < end:
            if every is not None and time.monotonic() >= next_call:
                every()
                next_call += period_s
            rclpy.spin_once(self, timeout_sec=0.005)

    def publish(self, values: np.ndarray) -> None:
        self.task_action.publish(messages.set_values(messages.command_message(), values))


def adversarial_action(config: BresaConfig, fixture_estimate_m: np.ndarray) -> np.ndarray:
    """5 cm below the hole's top face (where the tip is once in contact: 5 cm below the tip), at
    the controller's maximum stiffness (3000 N/m). As a task action the critic checks it; published
    straight to ``bresa/impedance_command`` it is the rogue command of the "reflex in the loop"
    issue."""
    k_max = config.controller.stiffness_range_n_per_m[1]
    kr_max = config.controller.rotational_stiffness_range_nm_per_rad[1]
    return ImpedanceCommand(
        fixture_estimate_m - np.array([0.0, 0.0, 0.05]), np.array(config.env.target_orientation_xyzw),
        np.array([k_max] * 3 + [kr_max] * 3), np.array([200.0] * 3 + [10.0] * 3),
    ).to_array()


def take_over_the_separate_arm(stack: Stack, probe: Probe, arm: str, config: BresaConfig,
                                stopped: Callable[[], bool]) -> dict[str, str]:
    """Start ``stack`` (separate: with a safety_critic process) and, once the peg is in contact,
    publish the rogue command to ``bresa/impedance_command``; once ``arm`` has warned about a second
    publisher, kill safety_critic (the worst case: the rogue is the only one left; with the critic
    still there, how often the arm follows the rogue depends on how fast each side publishes, the
    machine's speed) and keep publishing until ``stopped()``, then one second more. Returns the
    arm's diagnostics at the stop; stops the stack."""
    hole = np.array(stack.specs["safety_critic"].parameters["fixture_estimate_m"])
    attack = messages.set_values(messages.command_message(), adversarial_action(config, hole))
    stack.start()
    try:
        probe.spin_until(lambda: probe.force_n > 2.0, timeout_s=120, stack=stack)  # in contact: mid-insertion
        rogue = probe.create_publisher(Float64MultiArray, contract.IMPEDANCE_COMMAND, messages.FAST_QOS)
        probe.spin_until(lambda: probe.said(arm, "has 2 publishers", "WARN"), timeout_s=30, stack=stack)
        stack.kill("safety_critic")
        deadline = time.monotonic() + 60
        while not stopped():
            assert time.monotonic() < deadline, [stack.log_tail(n) for n in stack.specs]
            probe.spin_for(0.2, every=lambda: rogue.publish(attack), period_s=0.001)
        at_stop = dict(probe.diagnostics.get(arm, {}))
        probe.spin_for(1.0, every=lambda: rogue.publish(attack), period_s=0.001)  # it keeps coming
        return at_stop
    finally:
        stack.stop()
        probe.destroy_node()


def attack_the_composed_arm(stack: Stack, probe: Probe, arm: str, config: BresaConfig, seconds: float = 4.0) -> None:
    """Start ``stack`` (composed: no safety_critic process) and, once the peg is in contact, publish
    the rogue command (:func:`adversarial_action`) straight to ``bresa/impedance_command`` at about
    1 kHz for ``seconds``, after ``arm`` has warned about the foreign publisher. Stops the stack."""
    hole = np.array(stack.specs[arm].parameters["fixture_estimate_m"])
    rogue = probe.create_publisher(Float64MultiArray, contract.IMPEDANCE_COMMAND, messages.FAST_QOS)
    attack = messages.set_values(messages.command_message(), adversarial_action(config, hole))
    stack.start()
    try:
        probe.spin_until(lambda: probe.force_n > 2.0, timeout_s=120, stack=stack)  # in contact: mid-insertion
        probe.spin_until(lambda: probe.said(arm, "foreign publisher", "WARN"), timeout_s=30, stack=stack)
        probe.spin_for(seconds, every=lambda: rogue.publish(attack), period_s=0.001)
    finally:
        stack.stop()
        probe.destroy_node()
