"""The stack's commands: ``bresa demo`` (the ROS 2 nodes, one insertion) and ``doctor`` (a robot
PC's readiness)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.app.commands.common import positive_float
from bresa_control.app.commands.evaluation import plot_bag
from bresa_control.common.config import load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.policies.by_name import POLICIES
from bresa_control.ros.bringup import DEMO_SEED
from bresa_control.runtime import doctor
from bresa_control.tasks import DEFAULT_TASK, TASKS


def add_commands(commands: Any) -> None:
    """The stack's commands, on the ``bresa`` parser's sub-commands."""
    de = commands.add_parser("demo", help="run the ROS 2 stack for one insertion (the arm with the critic in its loop, "
                                          "and the task policy)")
    de.add_argument("--seed", type=int, default=DEMO_SEED,
                    help=f"episode seed (hole, perception error, start); default {DEMO_SEED}, a typical episode")
    de.add_argument("--duration", type=positive_float, metavar="S",
                    help="keep the stack running (holding after the insertion) until the arm's simulated clock "
                         "reaches S seconds")
    de.add_argument("--policy", choices=POLICIES, default="sac", help="the task policy (default sac)")
    de.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK,
                    help="the task (docs/adding-a-task.md); the models must be trained for it")
    de.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml")
    de.add_argument("--models-dir", default="", help="trained models (default: the shipped models/)")
    de.add_argument("--run-dir", help="node logs and summaries (default: results/demo-<time>)")
    de.add_argument("--json", help="write the result here")
    de.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    de.add_argument("--no-bag", action="store_true", help="do not record the MCAP bag (nor plot it)")
    de.add_argument("--arm", choices=("mujoco", "franky-sim"), default="mujoco",
                    help="mujoco: the simulated Panda (mujoco_sim); franky-sim: franka_arm driving a simulated "
                         "FR3 over libfranka's network protocol on 127.0.0.1")
    de.add_argument("--separate", action="store_true",
                    help="run the safety critic as a process of its own (three processes; the critic's command then "
                         "reaches the arm a tick or more after its state) instead of in the arm's loop")
    de.set_defaults(func=_demo)

    dr = commands.add_parser("doctor", help="check this robot PC (and the robot) for the arm's 1 kHz loop")
    doctor.add_arguments(dr)
    dr.set_defaults(func=_doctor)


def _demo(args: argparse.Namespace) -> int:
    from bresa_control.ros.runner import run_demo  # imports rclpy: only this command needs ROS

    load_config(args.config)  # a bad file fails here, before any node starts
    try:
        result = run_demo(args.config, args.seed, args.duration, args.run_dir, args.policy, args.models_dir,
                          args.log_level, record=not args.no_bag, arm=args.arm, separate=args.separate,
                          task=args.task)
    except RuntimeError as exc:
        print(f"bresa demo: {exc}", file=sys.stderr)
        return 1
    result["plot"] = None
    if result["bag"]:
        print(f"bag: {result['bag']} ({sum(result['bag_counts'].values())} messages)")
        missing = {topic: n for topic, n in result["bag_missing"].items() if n}
        if missing:
            print("bag: the nodes published messages the recorder never received: "
                  + ", ".join(f"{topic} {n}" for topic, n in missing.items())
                  + " (the recorder fell more than a second behind, or a node could not hand over its last"
                  " messages at shutdown: see the node logs)", file=sys.stderr)
        result["plot"] = str(plot_bag(result["bag"], Path(result["run_dir"]) / "plot.png", args.config))
        print(f"plot: {result['plot']}")
    rate = result["critic_rate_hz"]
    where = "in the arm's loop" if result["composed"] else "its own process"
    timing = (f"critic ({where}) {rate:.0f} Hz with period p99 {result['critic_period_p99_ms']:.2f} ms" if rate
              else "the critic never received a task action")
    print(
        f"{TASKS[result['task']].success_word}: {result['inserted']}, peak force {result['peak_force_n']:.1f} N (F_max "
        f"{result['max_force_n']:g} N), reflexes: {result['reflex_count']}, {timing}; "
        f"logs in {result['run_dir']}"
    )
    if result["arm"] == "franky-sim":
        print(_arm_line(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0 if result["inserted"] else 1


def _arm_line(result: dict[str, Any]) -> str:
    """The franka_arm loop over the protocol, in one line."""
    if result["arm_rate_hz"] is None:
        return "franka_arm: the motion never started"
    latency = result["reflex_latency_ticks"]
    reflexes = (f"reflex latency median {np.median(latency):g} / max {max(latency)} robot ticks" if latency
                else "no reflex to time")
    line = (f"franka_arm: {result['arm_rate_hz']:.0f} Hz, period p50 {result['arm_period_p50_ms']:.2f} / p99 "
            f"{result['arm_period_p99_ms']:.2f} ms, robot ticks answered: worst 100-tick window "
            f"{result['arm_command_success_rate_min']:.2f}, {result['arm_missed_robot_ticks']} of "
            f"{result['arm_robot_ticks']} missed; {reflexes}; torques over Franka's rate / torque limits: "
            f"{result['torque_rate_violations']} / {result['torque_limit_violations']}")
    if result["arm_error"]:
        line += f"; stopped: {result['arm_error']}"
    return line


def _doctor(args: argparse.Namespace) -> int:
    return doctor.run(args)  # prints every check; 1 when one blocks a run
