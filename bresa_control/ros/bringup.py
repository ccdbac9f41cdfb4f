"""One description of the node set, read by both the launch file and ``bresa demo``.

``launch/peg_insertion.launch.py`` turns each :class:`NodeSpec` into a ``launch_ros`` ``Node``;
the embedded runner (:mod:`bresa_control.ros.runner`) turns the same specs into processes. So the
two bring up the same nodes with the same parameters, composed (the critic in the arm's process,
the default) or separate (``compose=False``: the critic a process of its own). Imports no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.common.config import default_config_path, load_config
from bresa_control.tasks import DEFAULT_TASK, TASKS, make_task, shipped_models

PACKAGE = "bresa_control"
# The 1 kHz nodes ask to run before the 10 Hz policy when cores are short (on a robot PC, give
# them a real-time kernel and priority instead; see README).
FAST_NICENESS = -10
# franka_arm answers the robot every 1 ms or the robot repeats its last command (and a real one
# stops on too many misses): it goes before everything else of the stack.
ARM_NICENESS = -15
# The 10 Hz policy runs after them but before ordinary processes: with another process keeping a
# core busy at niceness 0, its decisions came over 200 ms late (runtime.task_action_timeout_s)
# often enough for the critic to hold 1.5 s in 30 s, and the spiral search then missed the hole.
POLICY_NICENESS = -5
# The simulated episode the demo and the launch file run by default. Seed 63 is a typical nominal
# episode: every learned controller inserts it in 5.9-6.1 s in the environment (bresa's median over
# seeds 0-99: 6.4 s; results/compare/*_nominal.json). Seed 0, the default until then, is a hard
# one (bresa does not insert it within an episode's 20 s), and in the stack whether it inserted
# within runtime.demo_timeout_s hung on thread timing.
DEMO_SEED = 63


@dataclass(frozen=True)
class NodeSpec:
    """One node: its ROS name, console script (``lib/bresa_control/<executable>``), Python module
    (for the embedded runner) and the parameters it gets on top of the config file."""

    name: str
    executable: str
    module: str
    parameters: dict[str, Any] = field(default_factory=dict)


def node_set(
    config_path: str | Path | None = None,
    *,
    use_sim: bool = True,
    seed: int = DEMO_SEED,
    fixture_estimate_m: tuple[float, float, float] | None = None,
    task: str = DEFAULT_TASK,
    fixture_variant: int = 0,
    robot_ip: str = "",
    protocol_sim: bool = False,
    robot_urdf: str = "",
    flange_link: str = "",
    policy: str = "sac",
    models_dir: str = "",
    reflex_mode: str = "control-rate",
    run_dir: str = "",
    trace: bool = False,
    recorder: bool = False,
    nodes: tuple[str, ...] | None = None,
    compose: bool = True,
    wrench_topic: str = "",
) -> list[NodeSpec]:
    """The nodes of the stack for ``task`` (default peg insertion; ``docs/adding-a-task.md``).

    ``compose`` (the default): the safety critic runs in the arm's process and loop (the arm node
    gets the critic's parameters), so the node set is the arm and ``task_policy``; without it the
    critic is the ``safety_critic`` process between them (three processes, and a command a tick or
    more later). In simulation (``use_sim``) the arm is ``mujoco_sim``, the episode (hole position,
    perception error, start pose) is drawn from ``seed`` and the critic and policy are told where
    the robot believes the hole is. On a Franka (``use_sim=False``) the arm is ``franka_arm`` at
    ``robot_ip``, and ``fixture_estimate_m`` (x y z of the task's fixture: the hole's top centre, the
    maze's grid centre on its floor; m, base frame) must be given, with ``fixture_variant`` (the
    maze's layout); ``models_dir`` defaults to the task's models folder (``Task.shipped_models``);
    ``robot_urdf`` and ``flange_link``, when set, override ``robot.urdf_path`` and
    ``robot.flange_link`` for every node; ``wrench_topic``, when set, makes ``franka_arm`` relay a
    wrist F/T sensor from that topic instead of the robot's estimate. ``protocol_sim`` puts
    ``franky_sim`` (the Franka protocol simulator holding episode ``seed``) in front of
    ``franka_arm`` on 127.0.0.1; the fixture estimate then comes from the seed. ``run_dir``, when set,
    is where each node writes its summary JSON at shutdown; ``trace`` adds what the reflex-latency
    benchmark needs to it. ``nodes`` picks a subset (tests leave out the policy and play it
    themselves). The arm starts once every node that reads its state (and the bag recorder, with
    ``recorder``) has subscribed, the critic once the arm (and the recorder) listen to its commands
    (composed: once the recorder does), and the policy decides only once the critic (and the
    recorder) listen to ``bresa/task_action``: no message is lost to start-up, and the episode's
    time does not run while the policy is still loading. Beside a simulator (``mujoco_sim`` or
    ``franky_sim`` in the set), the policy decides on its ``/clock`` (``sim_clock``).
    """
    config = load_config(config_path)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    the_task = make_task(task, config)
    models_dir = models_dir or str(shipped_models(task) or "")  # the task's own models unless told otherwise
    if protocol_sim:
        use_sim, robot_ip = False, robot_ip or "127.0.0.1"
    if use_sim or protocol_sim:
        draw = the_task.draw_episode(np.random.default_rng(seed))
        estimate, fixture_variant = draw.fixture_estimate_m, draw.variant
    elif fixture_estimate_m is None:
        raise ValueError("on the real arm (use_sim false) the fixture estimate must be given: fixture_estimate_m "
                         "x y z (the task's fixture in the base frame, m)")
    else:
        estimate = np.asarray(fixture_estimate_m, dtype=float)
    if estimate.shape != (3,) or not np.all(np.isfinite(estimate)):
        raise ValueError(f"fixture_estimate_m must be 3 finite numbers (m), got {fixture_estimate_m}")
    if not 0 <= fixture_variant < len(the_task.fixture_variants()):
        raise ValueError(f"fixture_variant must be from 0 to {len(the_task.fixture_variants()) - 1} for the {task} "
                         f"task, got {fixture_variant}")
    if not use_sim and not robot_ip:
        raise ValueError("on the real arm (use_sim false) the robot's address must be given: robot_ip")
    hole = [float(v) for v in estimate]
    arm = "mujoco_sim" if use_sim else "franka_arm"
    names = {arm, "task_policy", "franky_sim"} | (set() if compose else {"safety_critic"})
    wanted = set(nodes) if nodes is not None else names
    if compose and "safety_critic" in wanted:
        raise ValueError("composed (compose true) the safety critic runs in the arm's process: there is no "
                         "safety_critic node to start; compose false starts it as a process of its own")
    model = {**({"robot.urdf_path": robot_urdf} if robot_urdf else {}),
             **({"robot.flange_link": flange_link} if flange_link else {})}

    def outputs(name: str) -> dict[str, str]:
        if not run_dir:
            return {}
        return {"summary_path": str(Path(run_dir) / f"{name}.json")}

    # The critic's parameters, for the process that runs it.
    critic = {"task": task, "fixture_estimate_m": hole, "models_dir": models_dir, "reflex.mode": reflex_mode,
              "wait_for_reflex_subscribers": int(recorder)}
    in_arm = ({"compose": True, **critic, "wait_for_command_subscribers": int(recorder)} if compose
              else {"compose": False, "task": task})  # the simulated arm builds the task's fixture either way
    readers = sum(name in wanted for name in ("safety_critic", "task_policy")) + int(recorder)
    specs = []
    if protocol_sim:
        specs.append(NodeSpec("franky_sim", "franky_sim", f"{PACKAGE}.ros.franky_sim_node",
                              {"seed": seed, "task": task, "niceness": FAST_NICENESS, **outputs("franky_sim")}))
    if use_sim:
        specs.append(NodeSpec("mujoco_sim", "mujoco_sim", f"{PACKAGE}.ros.sim_node",
                              {"seed": seed, "niceness": FAST_NICENESS, "trace": trace,
                               "wait_for_subscribers": readers, **in_arm, **outputs("mujoco_sim")}))
    else:
        specs.append(NodeSpec("franka_arm", "franka_arm", f"{PACKAGE}.ros.franka_arm_node",
                              {"robot_ip": robot_ip, "realtime": not protocol_sim, "niceness": ARM_NICENESS,
                               "connect_wait_s": 60.0 if protocol_sim else 0.0, "wrench_topic": wrench_topic,
                               "trace": trace, "wait_for_subscribers": readers, **in_arm, **model,
                               **outputs("franka_arm")}))
    if not compose:
        specs.append(NodeSpec("safety_critic", "safety_critic", f"{PACKAGE}.ros.critic_node",
                              {**critic, "niceness": FAST_NICENESS, "trace": trace, **model,
                               "wait_for_subscribers": int(arm in wanted) + int(recorder),
                               **outputs("safety_critic")}))
    action_readers = int(("safety_critic" if not compose else arm) in wanted) + int(recorder)
    simulator = "franky_sim" if protocol_sim else "mujoco_sim" if use_sim else None
    specs.append(NodeSpec("task_policy", "task_policy", f"{PACKAGE}.ros.policy_node",
                          {"task": task, "fixture_estimate_m": hole, "fixture_variant": int(fixture_variant),
                           "models_dir": models_dir, "policy": policy,
                           "niceness": POLICY_NICENESS, "wait_for_subscribers": action_readers, **model,
                           # Decide on the simulator's clock (/clock: node_base.SimClock), where one runs.
                           "sim_clock": simulator in wanted,
                           **outputs("task_policy")}))
    return [spec for spec in specs if spec.name in wanted]


def config_files(config_path: str | Path | None) -> list[str]:
    """Parameter files for every node: the shipped defaults, then the user's file on top."""
    files = [str(default_config_path())]
    if config_path:
        files.append(str(config_path))
    return files

