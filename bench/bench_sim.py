"""Benchmark of the arm stand-in: how fast the simulation runs on this machine.

    python bench/bench_sim.py --json results/bench_sim.json

Prints and writes:
  * ``mj_step_per_s``: raw MuJoCo steps per second on the peg scene (constant torques);
  * ``control_tick_per_s`` and ``control_real_time_factor``: the full 1 kHz loop (pinocchio
    impedance controller + mj_step + wrench read), and simulated seconds per wall second;
  * ``controller_overhead_ratio``: how many times slower the full tick is than a raw step;
  * ``env_steps_per_s``: gymnasium decision steps (100 ticks each) per second under the scripted
    controller, resets included;
  * ``env_steps_per_s_bresa``: the same with the shipped SAC policy and the shipped critic checking
    every tick (``bresa``, what evaluation and training run);
  * ``arm_tick_us``: p50 / p99 of one tick of what ``mujoco_sim`` runs (``ArmLoop.on_command`` with a
    fresh command, as from the critic each tick, then ``ArmLoop.tick``), without ROS.
Figures are medians of ``--repeats`` runs. Timing only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import mujoco
import numpy as np

from bresa_control.app.controllers import make_controller
from bresa_control.common.config import BresaConfig, load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.contract import Controller
from bresa_control.control.impedance import ImpedanceCommand, damping_from_ratio
from bresa_control.policies.scripted import SpiralSearch
from bresa_control.runtime.timing import machine_info
from bresa_control.simulation.arm_loop import ArmLoop
from bresa_control.simulation.env import TaskEnv


def bench_mj_step(env: TaskEnv, steps: int) -> float:
    """Raw mj_step rate (steps/s) holding the start posture's gravity torques."""
    sim = env.sim
    sim.data.ctrl[:] = sim.robot.gravity(sim.q)
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(sim.model, sim.data)
    return steps / (time.perf_counter() - start)


def bench_control_tick(env: TaskEnv, ticks: int) -> float:
    """Full control tick rate (ticks/s): controller, physics step and wrench read."""
    sim = env.sim
    q = sim.q
    stiffness = np.array([1000.0] * 3 + [60.0] * 3)
    command = ImpedanceCommand(sim.tcp_pose().position_m - [0.0, 0.0, 0.01], np.array([1.0, 0, 0, 0]),
                               stiffness, damping_from_ratio(stiffness, 1.0, sim.robot.cartesian_inertia(q)))
    start = time.perf_counter()
    for _ in range(ticks):
        sim.tick(command)
        sim.wrench()
    return ticks / (time.perf_counter() - start)


def bench_env(env: TaskEnv, controller: Controller, steps: int, seed: int) -> float:
    """Decision steps per second of ``controller`` in ``env`` (resets included)."""
    done, episode = 0, 0
    start = time.perf_counter()
    while done < steps:
        obs, _ = env.reset(seed=seed + episode)
        controller.reset()
        episode += 1
        while done < steps:
            obs, _, terminated, truncated, _ = env.step(controller.act(obs))
            done += 1
            if terminated or truncated:
                break
    return steps / (time.perf_counter() - start)


def bench_arm_tick(config: BresaConfig, ticks: int, seed: int) -> list[float]:
    """Seconds per tick of the simulated arm's loop, each with a new command arriving."""
    arm = ArmLoop(config, seed)
    stiffness = np.array([1000.0] * 3 + [60.0] * 3)
    q = arm.sim.q
    values = ImpedanceCommand(arm.sim.tcp_pose().position_m - [0.0, 0.0, 0.01], np.array([1.0, 0, 0, 0]), stiffness,
                              damping_from_ratio(stiffness, 1.0, arm.sim.robot.cartesian_inertia(q))).to_array()
    out = []
    for k in range(ticks):
        command = values.copy()  # a new message every tick, as from the critic
        start = time.perf_counter()
        arm.on_command(command, k * 0.001)
        arm.tick(k * 0.001)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=5000, help="physics steps / ticks per run")
    parser.add_argument("--env-steps", type=int, default=300, help="decision steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="results/bench_sim.json")
    args = parser.parse_args()

    env = TaskEnv(load_config())
    bresa = make_controller("bresa", env.config)  # SAC policy, shipped critic checking every tick
    bresa_env = TaskEnv(bresa.config, bresa.critic, bresa.recovery)
    runs: dict[str, list[float]] = {"mj_step_per_s": [], "control_tick_per_s": [], "env_steps_per_s": [],
                                    "env_steps_per_s_bresa": []}
    arm_ticks: list[float] = []
    for _ in range(args.repeats):
        env.reset(seed=args.seed)
        runs["mj_step_per_s"].append(bench_mj_step(env, args.ticks))
        env.reset(seed=args.seed)
        runs["control_tick_per_s"].append(bench_control_tick(env, args.ticks))
        runs["env_steps_per_s"].append(bench_env(env, SpiralSearch(env.config), args.env_steps, args.seed))
        runs["env_steps_per_s_bresa"].append(bench_env(bresa_env, bresa.policy, args.env_steps, args.seed))
        arm_ticks += bench_arm_tick(env.config, args.ticks, args.seed)
    result = {name: statistics.median(values) for name, values in runs.items()}
    dt = env.config.env.control_period_s
    result["control_real_time_factor"] = result["control_tick_per_s"] * dt
    result["mj_step_real_time_factor"] = result["mj_step_per_s"] * dt
    result["controller_overhead_ratio"] = result["mj_step_per_s"] / result["control_tick_per_s"]
    result["arm_tick_us"] = {"p50": float(np.percentile(arm_ticks, 50) * 1e6),
                             "p99": float(np.percentile(arm_ticks, 99) * 1e6)}
    result["runs"] = runs
    result["settings"] = vars(args)
    result["machine"] = {**machine_info(), "mujoco": mujoco.__version__}

    print(f"raw mj_step            {result['mj_step_per_s']:10.0f} steps/s  "
          f"(real-time factor {result['mj_step_real_time_factor']:.1f})")
    print(f"full control tick      {result['control_tick_per_s']:10.0f} ticks/s  "
          f"(real-time factor {result['control_real_time_factor']:.1f})")
    print(f"controller overhead    {result['controller_overhead_ratio']:10.1f} x raw mj_step")
    print(f"env decision steps     {result['env_steps_per_s']:10.1f} steps/s (scripted, reflex off)")
    print(f"env decision steps     {result['env_steps_per_s_bresa']:10.1f} steps/s (bresa: SAC + critic every tick)")
    arm = result["arm_tick_us"]
    print(f"mujoco_sim's tick      {arm['p50']:10.1f} us p50, {arm['p99']:.1f} us p99")
    write_json_atomic(Path(args.json), result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
