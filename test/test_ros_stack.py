"""Integration tests on real rclpy (nothing of ROS is mocked): the nodes as processes, composed (the
critic in the arm's loop: ``mujoco_sim`` and ``task_policy``, the default) and separate (the
critic its own process between them).

Each test runs its nodes in a ROS domain of its own on localhost, so tests and a demo running
beside them do not hear each other. Limits checked here are safety limits (F_max, the arm's stop
at ``safety.arm_fault_force_n``); speed and rates are measured by bench/bench_stack.py, not
asserted here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy  # installed by ./run.sh setup: the ROS wheels, or your sourced ROS 2
from geometry_msgs.msg import WrenchStamped
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_helpers import (  # noqa: F401 (private_ros_domain: a fixture)
    Probe,
    adversarial_action,
    attack_the_composed_arm,
    private_ros_domain,
    take_over_the_separate_arm,
)
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from bresa_control import contract
from bresa_control.common.cards import CRITIC_FILE, RECOVERY_FILE, models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.ros import messages
from bresa_control.ros.bringup import config_files, node_set
from bresa_control.ros.runner import Stack
from bresa_control.simulation.layout import HOME_Q

pytestmark = pytest.mark.usefixtures("private_ros_domain")
REPO = Path(__file__).resolve().parent.parent


def _stack(tmp_path: Path, seed: int, nodes: tuple[str, ...], policy: str = "sac", compose: bool = True) -> Stack:
    specs = node_set(seed=seed, run_dir=str(tmp_path), nodes=nodes, policy=policy, compose=compose)
    return Stack(specs, config_files(None), tmp_path, "info")


def test_bresa_demo_runs_the_arm_with_the_critic_in_its_loop_and_inserts_the_peg(
    tmp_path: Path, config: BresaConfig
) -> None:
    out = tmp_path / "demo.json"
    result = subprocess.run(
        [sys.executable, "-m", "bresa_control.app.cli", "demo", "--json", str(out), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    demo = json.loads(out.read_text())
    assert demo["inserted"] is True
    assert demo["peak_force_n"] < config.safety.max_force_n
    assert demo["critic_rate_hz"] > 0 and demo["critic_period_p99_ms"] > 0
    assert isinstance(demo["reflex_count"], int)
    assert demo["nodes"]["task_policy"]["done"] is True  # the policy saw the peg in and held
    assert demo["composed"] is True and set(demo["nodes"]) == {"mujoco_sim", "task_policy"}
    assert demo["nodes"]["mujoco_sim"]["critic"]["in_loop"] is True
    # What real-time scheduling the arm's loop got (granted or refused: the machine decides), said.
    assert set(demo["realtime"]) >= {"fifo_priority", "cpus", "memory_locked", "gc_frozen", "warnings"}
    assert demo["arm_rate_hz"] > 0 and demo["arm_compute_p99_ms"] > 0 and demo["arm_error"] == ""
    for name in ("mujoco_sim", "task_policy"):
        assert (tmp_path / "run" / f"{name}.log").is_file()
    # The bag: MCAP, opens with rosbags, holds every contract topic, every message the nodes say
    # they published (the 1 kHz writers keep a second of history for the reliable recorder).
    published: dict[str, int] = {}
    for node in demo["nodes"].values():
        for topic, count in node["published"].items():
            published[topic] = published.get(topic, 0) + count
    assert demo["published"] == published
    assert demo["bag"] == str(tmp_path / "run" / "bag") and list(Path(demo["bag"]).glob("*.mcap"))
    with AnyReader([Path(demo["bag"])]) as reader:
        in_bag = {c.topic.lstrip("/"): c.msgcount for c in reader.connections}
    assert in_bag == demo["bag_counts"]  # the recorder wrote everything it received
    for topic in ("joint_states", "ft_sensor/wrench", "bresa/task_action", "bresa/impedance_command", "bresa/reflex"):
        assert published[topic] > 0, topic
    assert in_bag == published
    assert demo["bag_missing"] == {topic: 0 for topic in in_bag}
    assert Path(demo["plot"]).stat().st_size > 10_000 and "plot:" in result.stdout


def test_bresa_demo_with_a_duration_keeps_holding_the_peg_after_the_insertion(
    tmp_path: Path, config: BresaConfig
) -> None:
    out = tmp_path / "demo.json"
    result = subprocess.run(
        [sys.executable, "-m", "bresa_control.app.cli", "demo", "--duration", "20", "--json", str(out),
         "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    demo = json.loads(out.read_text())
    sim = demo["nodes"]["mujoco_sim"]
    # --duration is the arm's simulated time: the verdict does not hang on the machine's speed.
    assert demo["inserted"] is True and sim["sim_time_s"] >= 20.0
    assert sim["sim_time_s"] - sim["insertion_time_s"] > 3.0  # it kept running after the insertion ...
    assert sim["insertion_depth_m"] > config.env.success_depth_m - 0.002  # ... with the peg held in the hole
    assert demo["peak_force_n"] < config.safety.max_force_n


def test_killing_the_task_policy_mid_insertion_leaves_the_arm_holding_safely(
    tmp_path: Path, config: BresaConfig
) -> None:
    # The spiral search as the policy: the task_policy node's scripted path runs here.
    # Separate: the critic its own process, so that the arm can go silent under it at the end.
    stack = _stack(tmp_path, seed=3, nodes=("mujoco_sim", "safety_critic", "task_policy"), policy="scripted",
                   compose=False)
    probe = Probe()
    stack.start()
    try:
        probe.spin_until(lambda: probe.force_n > 2.0, timeout_s=90, stack=stack)  # in contact
        stack.kill("task_policy")
        # What the critic decides from half a second after the kill (its task action is stale
        # after 0.2 s): 100 of its bresa/reflex messages, however long a busy machine takes.
        settled = time.monotonic() + 0.5
        probe.spin_until(lambda: sum(t > settled for t, _ in probe.reflex) >= 100, timeout_s=120, stack=None)
        after_kill = [values for t, values in probe.reflex if t > settled]
        probe.spin_for(1.0)
        speed_after_hold = probe.joint_speed
        stack.stop(["mujoco_sim"])  # now the arm goes silent: the critic must report an error
        probe.diagnostics.clear()
        probe.spin_until(lambda: probe.level("safety_critic") is not None, timeout_s=5, stack=None)  # killed on purpose
        critic_level = probe.level("safety_critic")
    finally:
        stack.stop()
        probe.destroy_node()
    sim, critic = stack.summary("mujoco_sim"), stack.summary("safety_critic")
    assert sim["peak_force_n"] < config.safety.max_force_n
    # Every tick after the kill held (no fresh task action; on a busy machine a late arm sample
    # may make a tick the stale-state hold): none followed a task action or fired the reflex.
    holding = contract.REFLEX_LABELS.index("holding")
    assert all(values[holding] == 1.0 for values in after_kill), [v[holding] for v in after_kill]
    assert critic["ticks_no_task_action"] > 0
    assert speed_after_hold < 0.01  # rad/s: holding still
    assert critic_level == "ERROR"  # state older than runtime.state_timeout_s



def test_beside_a_simulator_the_task_policy_decides_on_its_clock_not_the_wall_clock(
    tmp_path: Path, config: BresaConfig
) -> None:
    """A simulator that falls behind the wall clock (a loaded machine) must slow the decisions with
    it: the test plays the simulated arm and its /clock, running at a fifth of real time, and
    counts the policy's decisions (wall-clock decisions would be five times as many)."""
    *_, policy = node_set(seed=3, run_dir=str(tmp_path), nodes=("mujoco_sim", "task_policy"), policy="scripted")
    assert policy.parameters["sim_clock"] is True  # set by the bringup beside a simulator (the probe plays it)
    assert node_set(seed=3, nodes=("task_policy",))[0].parameters["sim_clock"] is False
    stack = Stack([policy], config_files(None), tmp_path, "info")
    probe = Probe()
    decisions: list[float] = []
    probe.create_subscription(messages.Float64MultiArray, contract.TASK_ACTION,
                              lambda _: decisions.append(time.monotonic()), messages.RELIABLE_QOS)
    clock = probe.create_publisher(Clock, messages.CLOCK_TOPIC, messages.CLOCK_QOS)
    joints = probe.create_publisher(JointState, contract.JOINT_STATES, messages.FAST_PUB_QOS)
    wrench = probe.create_publisher(WrenchStamped, contract.WRENCH, messages.FAST_PUB_QOS)
    sim_time_s = 0.0

    def play_arm(speed: float) -> Callable[[], None]:
        def tick() -> None:  # every 10 ms of wall clock
            nonlocal sim_time_s
            sim_time_s += 0.01 * speed
            clock.publish(messages.clock(sim_time_s, Clock()))
            now = time.time()
            joints.publish(messages.joint_state(HOME_Q, np.zeros(7), np.zeros(7), now, JointState()))
            wrench.publish(messages.wrench(np.zeros(3), np.zeros(3), now, WrenchStamped()))
        return tick

    stack.start()
    try:
        deadline = time.monotonic() + 120
        while not decisions:  # up and deciding (the arm and its clock at real time meanwhile)
            assert stack.failed() is None and time.monotonic() < deadline, stack.log_tail("task_policy")
            probe.spin_for(0.1, every=play_arm(1.0), period_s=0.01)
        probe.spin_for(0.5, every=play_arm(0.2), period_s=0.01)
        first, start_s = len(decisions), sim_time_s
        probe.spin_for(4.0, every=play_arm(0.2), period_s=0.01)
        slow = len(decisions) - first
        slow_sim_s = sim_time_s - start_s
        probe.spin_for(0.3)  # a decision in flight arrives
        spacing_s = np.diff(decisions[first:])  # wall clock: ~0.5 s each at a fifth of real time
        before_stop = len(decisions)
        probe.spin_for(1.5, every=lambda: None)  # the simulator stalls: no /clock
        stalled = len(decisions) - before_stop
    finally:
        stack.stop()
        probe.destroy_node()
    expected = slow_sim_s / config.env.decision_period_s  # one per decision period of simulated time
    assert abs(slow - expected) <= 2, (slow, expected)  # ~8 in 4 s of wall clock, not ~40
    assert np.all(spacing_s > 0.05), spacing_s  # never a pair at one instant (a catch-up burst)
    assert stalled == 0


def test_adversarial_and_malformed_task_actions_never_reach_the_arm_unchecked(
    tmp_path: Path, config: BresaConfig
) -> None:
    stack = _stack(tmp_path, seed=0, nodes=("mujoco_sim",))  # composed; the test is the policy
    hole = np.array(stack.specs["mujoco_sim"].parameters["fixture_estimate_m"])
    attack = adversarial_action(config, hole)
    probe = Probe()
    stack.start()
    try:
        probe.spin_until(lambda: probe.commands > 100, timeout_s=90, stack=stack)  # critic up, holding
        refused = _set_parameter(probe, "mujoco_sim", "safety.max_force_n", 60.0)
        probe.spin_for(4.0, every=lambda: probe.publish(attack))
        nan = attack.copy()
        nan[9] = np.nan
        too_stiff = attack.copy()
        too_stiff[7:10] = 2.0 * config.controller.stiffness_range_n_per_m[1]
        for bad in (attack[:5], nan, too_stiff):
            probe.publish(bad)
        probe.spin_for(0.5)
    finally:
        stack.stop()
        probe.destroy_node()
    sim = stack.summary("mujoco_sim")
    critic = sim["critic"]
    assert sim["peak_force_n"] < config.safety.max_force_n and sim["error"] == ""
    assert critic["reflex_count"] >= 1  # the reflex, not luck, kept the force down
    assert critic["clamped"] >= 1
    assert critic["dropped_malformed"] == 2 and critic["dropped_out_of_range"] == 1
    assert not refused.successful and "read-only" in refused.reason  # configured at startup only


def test_a_rogue_publisher_of_impedance_commands_cannot_move_the_composed_arm(
    tmp_path: Path, config: BresaConfig
) -> None:
    """An outsider on the domain publishes straight to bresa/impedance_command during an insertion
    (5 cm below the tip at 3000 N/m, best effort, ~1 kHz): composed, the arm takes commands only
    from the critic in its loop, so the force stays under F_max; the outsider is counted and warned
    about."""
    stack = _stack(tmp_path, seed=3, nodes=("mujoco_sim", "task_policy"), policy="scripted")
    attack_the_composed_arm(stack, Probe(), "mujoco_sim", config)
    sim = stack.summary("mujoco_sim")
    assert sim["peak_force_n"] < config.safety.max_force_n and sim["error"] == ""
    assert sim["foreign_command_messages"] > 0 and "/test_probe" in sim["foreign_command_publishers"]
    log = stack.log_tail("mujoco_sim", 400)
    assert "ignoring 1 foreign publisher(s) of bresa/impedance_command (/test_probe" in log


def test_separate_a_second_command_publisher_is_warned_about_and_the_arm_stops_at_the_fault_force(
    tmp_path: Path, config: BresaConfig
) -> None:
    """Separate, the arm follows whoever publishes bresa/impedance_command: it warns as soon as a
    second publisher appears, and its own last line, the stop at safety.arm_fault_force_n (40 N),
    ends the motion; it does not resume."""
    stack = _stack(tmp_path, seed=3, nodes=("mujoco_sim", "safety_critic", "task_policy"), policy="scripted",
                   compose=False)
    probe = Probe()
    at_stop = take_over_the_separate_arm(stack, probe, "mujoco_sim", config,
                                         lambda: probe.level("mujoco_sim") == "ERROR")["message"]
    after = probe.diagnostics["mujoco_sim"]
    sim = stack.summary("mujoco_sim")
    assert "collision reflex" in at_stop and "collision reflex" in sim["error"]
    assert after["level"] == "ERROR"  # never resumed
    # It stopped on the first tick the force reached 40 N: below 40 N on every tick before, and its
    # joints held from the next tick on. (The force on that tick, and in the few ticks the held
    # joints take to stop the arm, depends on how fast the rogue command drove it, as on a real
    # arm: a peg pushed down into the hole can meet its floor with well over 40 N within a tick.)
    assert sim["peak_force_before_stop_n"] < config.safety.arm_fault_force_n <= sim["stop_force_n"]
    log = stack.log_tail("mujoco_sim", 400)
    assert "bresa/impedance_command has 2 publishers (/safety_critic, /test_probe)" in log


def _set_parameter(probe: Probe, node: str, name: str, value: float) -> Any:
    """What ``ros2 param set`` does: call the node's set_parameters service."""
    client = probe.create_client(SetParameters, f"/{node}/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
    rclpy.spin_until_future_complete(probe, future, timeout_sec=10)
    return future.result().results[0]


def _refusal(tmp_path: Path, *params: str,
             module: str = "bresa_control.ros.critic_node") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", module, "--ros-args"]
    for path in config_files(None):
        cmd += ["--params-file", path]
    cmd += ["-p", "reflex.mode:=control-rate"]
    for param in params:
        cmd += ["-p", param]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_critic_node_refuses_to_start_without_its_model_files(tmp_path: Path) -> None:
    result = _refusal(tmp_path, f"models_dir:={tmp_path}")
    assert result.returncode == 2
    assert f"{tmp_path / CRITIC_FILE} does not exist" in result.stderr
    # Composed, the arm runs the critic: it refuses in the same way, before the arm starts.
    arm = _refusal(tmp_path, f"models_dir:={tmp_path}", "compose:=true", module="bresa_control.ros.sim_node")
    assert arm.returncode == 2 and "[mujoco_sim] refusing to start" in arm.stderr
    assert f"{tmp_path / CRITIC_FILE} does not exist" in arm.stderr


def test_critic_node_refuses_a_model_whose_card_does_not_match(tmp_path: Path) -> None:
    for name in (CRITIC_FILE, RECOVERY_FILE):
        for path in (models_folder() / name, (models_folder() / name).with_suffix(".json")):
            shutil.copy(path, tmp_path / path.name)
    card_path = tmp_path / "safety_critic.json"
    card: dict[str, Any] = json.loads(card_path.read_text())
    card["input_size"] = card["input_size"] + 3
    card_path.write_text(json.dumps(card))
    result = _refusal(tmp_path, f"models_dir:={tmp_path}")
    assert result.returncode == 2
    assert "takes 20 inputs but its card" in result.stderr and "input_size 23" in result.stderr


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("safety.max_force_n:=-5.0", "safety.max_force_n out of range Min: 1.0, Max: 100.0, value: -5.0"),
        ("safety.max_force_n:=200.5", "safety.max_force_n out of range"),
        ("reflex.mode:='off'", "reflex.mode must be 'control-rate'"),
        ("reflex.mode:=off", "(YAML reads bare on/off/yes/no as true/false: quote the value)"),
        ("safety.max_forse_n:=20.0", "unknown parameter 'safety.max_forse_n'"),
    ],
)
def test_critic_node_rejects_invalid_parameters_with_the_reason(tmp_path: Path, param: str, message: str) -> None:
    result = _refusal(tmp_path, param)
    assert result.returncode == 2 and message in result.stderr, result.stderr
