"""The embedded runner behind ``bresa demo``: the launch file's node set as processes, for
machines without the ``ros2`` CLI.

:class:`Stack` starts each :class:`~bresa_control.ros.bringup.NodeSpec` as its own process on real rclpy
(same parameters as ``launch/peg_insertion.launch.py``), with its log in the run folder, and stops
them with SIGINT so each writes its summary. :class:`Monitor` is a small rclpy node that watches
``diagnostics`` for the insertion. :func:`run_demo` runs one insertion and reports, composed (the
critic in the arm's process, the default) or separate (the critic its own process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from bresa_control import contract
from bresa_control.common.config import load_config
from bresa_control.ros import messages
from bresa_control.ros.bringup import DEMO_SEED, FAST_NICENESS, NodeSpec, config_files, node_set
from bresa_control.ros.node_base import make_executor
from bresa_control.ros.recorder import BagRecorder
from bresa_control.tasks import DEFAULT_TASK, TASKS

ARMS = ("mujoco", "franky-sim")  # what bresa demo --arm takes
STOP_TIMEOUT_S = 15.0
STOPPED_LAST = ("franky_sim",)
DRAIN_S = 0.5
# The wall-clock guard of a run of S simulated seconds: start-up plus this many wall seconds per
# simulated second (a machine three times slower than needed still finishes).
STARTUP_ALLOWANCE_S = 120.0
WALL_PER_SIM_S = 5.0


class Stack:
    """The node processes of one run."""

    def __init__(self, specs: list[NodeSpec], param_files: list[str], run_dir: Path, log_level: str = "info") -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.param_files = param_files
        self.run_dir = run_dir
        self.log_level = log_level
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, spec: NodeSpec) -> list[str]:
        """The command line that starts one node (what ``ros2 run`` would do, plus parameters)."""
        cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
        for path in self.param_files:
            cmd += ["--params-file", path]
        for key, value in spec.parameters.items():
            cmd += ["-p", f"{key}:={_yaml_value(value)}"]
        return cmd + ["--log-level", self.log_level]

    def start(self) -> None:
        """Start every node; its stdout and stderr go to ``<run_dir>/<name>.log``."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name, spec in self.specs.items():
            with open(self.run_dir / f"{name}.log", "wb") as log:  # the child keeps its own handle
                self.processes[name] = subprocess.Popen(self.command(spec), stdout=log, stderr=subprocess.STDOUT)

    def failed(self) -> str | None:
        """The first node that exited on its own, with the tail of its log; None if all run."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return f"{name} exited with status {code}: {self.log_tail(name)}"
        return None

    def log_tail(self, name: str, lines: int = 5) -> str:
        """The last lines of a node's log."""
        path = self.run_dir / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(text[-lines:])

    def kill(self, name: str) -> None:
        """Kill one node at once (SIGKILL), as a crash would."""
        self.processes[name].kill()
        self.processes[name].wait()

    def stop(self, names: list[str] | None = None, while_waiting: Callable[[], None] | None = None) -> None:
        """SIGINT the named nodes (default all) still running, so each writes its summary;
        SIGKILL any that has not exited after a timeout. ``while_waiting`` is called over and
        over until they have exited (the demo spins its bag recorder there, so that it keeps
        taking the messages the nodes hand over at shutdown). The protocol simulator stops last:
        the robot outlives the node that drives it, which would otherwise see it vanish mid-motion."""
        chosen = names or list(self.processes)
        first = [n for n in chosen if n not in STOPPED_LAST]
        for group in (first, [n for n in chosen if n in STOPPED_LAST]):
            self._stop_group([self.processes[n] for n in group], while_waiting)

    @staticmethod
    def _stop_group(chosen: list[subprocess.Popen[bytes]], while_waiting: Callable[[], None] | None) -> None:
        for process in chosen:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(p.poll() is None for p in chosen) and time.monotonic() < deadline:
            (while_waiting or (lambda: time.sleep(0.05)))()
        for process in chosen:
            if process.poll() is None:
                process.kill()
            process.wait()

    def summary(self, name: str) -> dict[str, Any]:
        """A node's summary JSON (written at shutdown), or {} if it wrote none."""
        path = self.run_dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}


class Monitor(Node):
    """Listens to ``diagnostics``: the latest fields of every node. ``world`` is the node that
    knows the truth about the episode: ``mujoco_sim``, or ``franky_sim`` behind ``franka_arm``."""

    def __init__(self, world: str = "mujoco_sim") -> None:
        super().__init__("bresa_demo_monitor")
        self.world = world
        self.latest: dict[str, dict[str, str]] = {}
        self.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.latest.update(messages.diagnostic_fields(msg))

    def inserted(self) -> bool:
        """Whether the simulator reports the peg in."""
        return self.latest.get(self.world, {}).get("inserted") == "True"

    def sim_time_s(self) -> float:
        """The arm's simulated clock (s) as the simulator last reported it (1 Hz); 0 before."""
        return float(self.latest.get(self.world, {}).get("sim_time_s", 0.0))

    def holding(self) -> bool:
        """Whether task_policy reports the task done: it has seen the peg in and holds."""
        return self.latest.get("task_policy", {}).get("done") == "True"

    def arm_error(self, arm: str = "franka_arm") -> str | None:
        """The arm node's message once it reports ERROR (its motion stopped for good), else None."""
        status = self.latest.get(arm, {})
        return status.get("message") if status.get("level") == "ERROR" else None


def run_demo(
    config_path: str | None = None,
    seed: int = DEMO_SEED,
    duration_s: float | None = None,
    run_dir: str | Path | None = None,
    policy: str = "sac",
    models_dir: str = "",
    log_level: str = "info",
    trace: bool = False,
    record: bool = True,
    arm: str = "mujoco",
    separate: bool = False,
    task: str = DEFAULT_TASK,
) -> dict[str, Any]:
    """Start the stack, run one insertion (and keep holding until the arm's simulated clock reaches
    ``duration_s``, if given), stop it. Without ``duration_s`` it gives up on the insertion at
    ``runtime.demo_timeout_s`` of simulated time.

    With ``record`` every contract topic goes into an MCAP bag in the run folder. Returns
    ``inserted``, ``peak_force_n``, ``critic_rate_hz``, ``critic_period_p99_ms``, ``reflex_count``,
    ``bag``, the arm loop's figures (``arm_*``: its rate, period and per-tick compute, critic
    included when composed), ``realtime`` (what real-time scheduling the composed arm got) and
    more; with ``trace`` (always over the protocol) ``reflex_latency_ticks``. Raises
    ``RuntimeError`` if a node fails to start.

    ``arm``: ``mujoco`` (the ``mujoco_sim`` node) or ``franky-sim``: ``franka_arm`` driving the Franka
    protocol simulator (``franky_sim``, an FR3 with the same fixture) over libfranka on 127.0.0.1.
    ``separate``: the critic as a process of its own instead of in the arm's loop. ``task``: the
    task every node serves (its models must be trained for it).
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm '{arm}'; choose from {', '.join(ARMS)}")
    config = load_config(config_path)
    run_dir = Path(run_dir) if run_dir else Path("results") / time.strftime("demo-%Y%m%d-%H%M%S")
    world = "mujoco_sim" if arm == "mujoco" else "franky_sim"
    arm_node = "mujoco_sim" if arm == "mujoco" else "franka_arm"
    fr3: dict[str, Any] = {}
    if arm == "franky-sim":
        from bresa_control.simulation.franka_fixture import FLANGE_LINK, fr3_urdf_path

        fr3 = {"protocol_sim": True, "robot_urdf": str(fr3_urdf_path()), "flange_link": FLANGE_LINK}
    # Over the protocol the demo reports the reflex latency in robot ticks: that needs the traces.
    trace = trace or arm == "franky-sim"
    specs = node_set(config_path, seed=seed, task=task, policy=policy, models_dir=models_dir, run_dir=str(run_dir),
                     trace=trace, recorder=record, compose=not separate, **fr3)
    stack = Stack(specs, config_files(config_path), run_dir, log_level)
    # Limits in simulated time (the arm's clock), so that a slow or busy machine gets as much of
    # the episode as a fast one; the wall-clock guard only stops a stack whose arm is stuck.
    limit_s = duration_s if duration_s is not None else config.runtime.demo_timeout_s
    wall_limit_s = STARTUP_ALLOWANCE_S + WALL_PER_SIM_S * limit_s
    if record and (run_dir / "bag").exists():
        raise RuntimeError(f"{run_dir} already holds a bag from an earlier run; give a new --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    rclpy.init(args=[])
    executor = make_executor()
    monitor = Monitor(world)
    recorder = BagRecorder(run_dir / "bag") if record else None
    for node in (monitor, recorder):
        if node is not None:
            executor.add_node(node)
    start = time.monotonic()
    inserted_at: float | None = None
    failure = None
    try:
        stack.start()
        if recorder is not None:
            _keep_up_with_the_nodes()
        while monitor.sim_time_s() < limit_s:
            if time.monotonic() - start > wall_limit_s:
                print(f"[bresa demo] stopping: the arm's clock reached only {monitor.sim_time_s():.1f} of "
                      f"{limit_s:g} s of simulated time in {wall_limit_s:.0f} s (see the node logs)",
                      file=sys.stderr, flush=True)
                break
            executor.spin_once(timeout_sec=0.05)
            failure = stack.failed()
            if failure:
                break
            if monitor.arm_error(arm_node):
                failure = f"{arm_node} stopped: {monitor.arm_error(arm_node)}"
                print(f"[bresa demo] {failure}", file=sys.stderr, flush=True)
                break
            if inserted_at is None and monitor.inserted():
                inserted_at = time.monotonic() - start
                print(f"[bresa demo] {TASKS[task].success_word} after {inserted_at:.1f} s (wall clock, node start "
                      "included)", flush=True)
            # One insertion ends once the policy holds too (it decides at 10 Hz and may not have
            # seen the peg in yet when the arm reports it).
            if duration_s is None and inserted_at is not None and monitor.holding():
                break
    finally:
        stack.stop(while_waiting=lambda: executor.spin_once(timeout_sec=0.05))
        drain_until = time.monotonic() + DRAIN_S  # messages still in flight reach the bag
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.05)
        if recorder is not None:
            recorder.close()
            recorder.destroy_node()
        monitor.destroy_node()
        rclpy.try_shutdown()
    summaries = {name: stack.summary(name) for name in stack.specs}
    if failure and not summaries.get(arm_node, {}).get("error"):
        raise RuntimeError(f"the stack did not run: {failure} (logs in {run_dir})")
    sim, arm_summary = summaries[world], summaries[arm_node]
    critic = summaries["safety_critic"] if separate else arm_summary.get("critic", {})
    if not sim or not critic:
        raise RuntimeError(f"a node wrote no summary at shutdown (logs in {run_dir})")
    published: dict[str, int] = {}
    for summary in summaries.values():
        for topic, count in summary.get("published", {}).items():
            published[topic] = published.get(topic, 0) + count
    return {
        "inserted": bool(sim["inserted"]),
        "insertion_time_s": sim["insertion_time_s"] if sim["inserted"] else None,
        "peak_force_n": sim["peak_force_n"],
        "max_force_n": config.safety.max_force_n,
        "critic_rate_hz": critic.get("rate_hz"),
        "critic_period_p50_ms": critic.get("period_p50_ms"),
        "critic_period_p99_ms": critic.get("period_p99_ms"),
        "critic_compute_p99_ms": critic.get("compute_p99_ms"),
        "reflex_count": critic["reflex_count"],
        "wall_time_s": time.monotonic() - start,
        "seed": seed,
        "task": task,
        "policy": policy,
        "run_dir": str(run_dir),
        "bag": str(recorder.path) if recorder is not None else None,
        "bag_counts": dict(recorder.counts) if recorder is not None else None,
        "bag_missing": recorder.missing(published) if recorder is not None else None,
        "published": published,
        "arm": arm,
        "composed": not separate,
        "realtime": arm_summary.get("realtime", {}),
        "arm_rate_hz": arm_summary.get("rate_hz"), "arm_period_p50_ms": arm_summary.get("period_p50_ms"),
        "arm_period_p99_ms": arm_summary.get("period_p99_ms"),
        "arm_compute_p50_ms": arm_summary.get("compute_p50_ms"),
        "arm_compute_p99_ms": arm_summary.get("compute_p99_ms"),
        "arm_error": arm_summary.get("error", ""),
        **({"reflex_latency_ticks": reflex_latencies_ticks(arm_summary, critic)[0]} if trace else {}),
        **(_protocol_figures(arm_summary, sim) if arm == "franky-sim" else {}),
        "nodes": summaries,
    }


def _protocol_figures(arm: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    """What the demo reports of the arm loop over the protocol: the share of the robot's ticks it
    answered (worst 100-tick window), a fault if the motion stopped, and the robot side's audit of
    Franka's limits and of the collision thresholds it was given."""
    robot_ms = np.array(arm.get("tick_trace", []), dtype=float).reshape(-1, 2)[:, 1]
    return {
        "arm_control_command_success_rate_min": arm.get("control_command_success_rate_min"),
        "arm_command_success_rate_min": command_success_rate_min(robot_ms),
        "arm_missed_robot_ticks": arm.get("missed_robot_ticks"), "arm_robot_ticks": arm.get("robot_ticks"),
        "arm_faults": world.get("faults", []),
        "collision_force_thresholds_n": world.get("collision_force_thresholds_n"),
        "torque_rate_violations": world.get("torque_rate_violations"),
        "torque_limit_violations": world.get("torque_limit_violations"),
    }


def command_success_rate_min(robot_ms: np.ndarray, window_ticks: int = 100) -> float:
    """The lowest share of the robot's ticks the arm loop answered in any ``window_ticks`` of them
    (libfranka's ``control_command_success_rate`` is over the last 100 ms), from the robot clock
    (ms) of every tick it answered."""
    if len(robot_ms) < 2:
        return float("nan")
    answered = np.zeros(int(robot_ms[-1] - robot_ms[0]) + 1)
    answered[(robot_ms - robot_ms[0]).astype(int)] = 1.0
    if len(answered) <= window_ticks:
        return float(answered.mean())
    return float((np.convolve(answered, np.ones(window_ticks), mode="valid") / window_ticks).min())


def reflex_latencies_ticks(arm: dict[str, Any], critic: dict[str, Any]) -> tuple[list[int], int]:
    """Latency in control ticks of every reflex firing: the number of the arm's ticks from the one
    that read the state sample on which the risk crossed ``eps_safe`` to the one whose torque
    answers it (the first that applied one of the recovery commands, matched by CRC), counting
    that tick's own period, in which its torque acts: 1 is the least possible (the answer computed
    and applied in the sample's own tick: the critic in the arm's loop), and a critic in another
    process answers at 2 or more on the real arm's clock. Measured the same way composed and
    separate, from the nodes' traces (``trace``): the arm's ``tick_trace`` (stamp of a state sample,
    the tick that read it; over the protocol the robot's clock in ms) and ``applied_trace`` (CRC of a
    command, the tick that first applied it), the critic's ``fired_trace``. Also returns how many
    firings could not be matched."""
    ticks = np.array(arm.get("tick_trace", []), dtype=float).reshape(-1, 2)
    stamps, tick_numbers = ticks[:, 0], ticks[:, 1]

    def tick_of(stamp_s: float) -> float | None:
        i = int(np.searchsorted(stamps, stamp_s - 1e-6))
        return tick_numbers[i] if i < len(stamps) and abs(stamps[i] - stamp_s) < 1e-6 else None

    applied: dict[int, list[float]] = {}  # crc -> every tick that began applying it
    for crc, tick in arm.get("applied_trace", []):
        applied.setdefault(int(crc), []).append(tick)
    out, unmatched = [], 0
    for stamp_s, crcs in critic.get("fired_trace", []):
        sample = tick_of(stamp_s)
        answers = [t for c in crcs for t in applied.get(int(c), []) if sample is not None and t >= sample]
        if sample is None or not answers:
            unmatched += 1
            continue
        out.append(int(min(answers) - sample) + 1)
    return out, unmatched


def _keep_up_with_the_nodes() -> None:
    """Run this process (the bag recorder) at the 1 kHz nodes' priority, so they cannot starve it
    of the CPU it needs to take their messages (called after the nodes are started: children
    inherit it)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, FAST_NICENESS)
    except OSError as exc:
        print(f"[bresa demo] could not set niceness {FAST_NICENESS} for the recorder ({exc}); "
              "the bag may miss best-effort messages on a busy machine", file=sys.stderr, flush=True)


def _yaml_value(value: Any) -> str:
    """A parameter value as ROS's ``-p name:=value`` parses it (YAML, one line)."""
    if isinstance(value, str):
        return value if value else "''"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

