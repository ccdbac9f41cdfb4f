"""Where does the composed arm tick's time go? The simulated arm with the critic in its loop, without
ROS, paced at 1 kHz by sleeping, each part of every tick timed.

    python bench/tick_profile.py --seconds 12 [--models-dir models/seeds/bresa/seed1] [--json X.json]

One insertion (the demo's episode seed 63 by default) driven by the spiral search (the ``scripted``
task policy, a decision every 100 ticks, not timed): every tick runs what ``mujoco_sim`` runs in
composed mode, in its order, and this times each part:

- ``observe``: the controller's kinematics and dynamics pass on the state just read (pinocchio);
- ``critic``: the safety critic's tick (checks, features, the TorchScript critic, the recovery
  while the reflex holds), :class:`~bresa_control.runtime.safety_loop.InLoopCritic`;
- ``torque + physics``: the impedance law and MuJoCo's step (on a real arm: the robot's, not ours);
- ``after``: the wrench read, the insertion and stop checks.

The sum is the whole tick's compute (what ``bench_stack.py`` reports as tick compute, less the
messages a node publishes). Timing only: nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bresa_control.common.config import load_config
from bresa_control.policies.scripted import SpiralSearch
from bresa_control.runtime.policy_loop import PolicyLoop
from bresa_control.runtime.safety_loop import InLoopCritic, SafetyLoop
from bresa_control.runtime.timing import machine_info
from bresa_control.safety.models import load_reflex_models
from bresa_control.simulation.arm_loop import ArmLoop

PARTS = ("observe", "critic", "torque + physics", "after", "whole tick")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="simulated (and wall) seconds")
    parser.add_argument("--seed", type=int, default=63, help="episode seed (default: the demo's)")
    parser.add_argument("--models-dir", default=None, help="critic and recovery (default: the shipped)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(overrides={"reflex": {"mode": "control-rate"}})
    critic_model, recovery, card = load_reflex_models(config, args.models_dir)
    probe = ArmLoop(config, args.seed)
    hole = probe.layout.fixture_estimate_m
    safety = SafetyLoop(config, critic_model, recovery, hole)
    critic = InLoopCritic(safety, probe.sim.robot)
    arm = ArmLoop(config, args.seed, critic=critic)
    policy = PolicyLoop(config, SpiralSearch(config), hole)
    sim, controller = arm.sim, arm.sim.controller
    times: dict[str, list[float]] = {part: [] for part in PARTS}
    ticks = int(args.seconds / config.env.control_period_s)
    next_s = time.perf_counter()
    for k in range(ticks):
        if k % config.env.ticks_per_decision == 0:  # the policy's decision: another process, not timed
            policy.q, policy.dq = sim.q, sim.dq
            policy.force_n, policy.torque_nm = arm.force_n, arm.torque_nm
            target = policy.decide()
            if target is not None:
                safety.on_task_action(target.values, time.time())
        next_s += config.env.control_period_s
        time.sleep(max(0.0, next_s - time.perf_counter()))  # as the node waits for its timer
        now = time.time()
        t0 = time.perf_counter()
        q, dq = sim.q, sim.dq
        controller.observe(q, dq)
        t1 = time.perf_counter()
        out = critic.tick(q, dq, now, controller.tip_position_m, controller.tip_velocity_m_per_s,
                          (arm.force_n, arm.torque_nm, now))
        t2 = time.perf_counter()
        assert out.command is not None
        sim.step(out.command)
        t3 = time.perf_counter()
        arm._after_step(False)
        t4 = time.perf_counter()
        for part, value in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            times[part].append(value)
    figures = {part: {"p50_ms": float(np.percentile(v, 50) * 1e3), "p99_ms": float(np.percentile(v, 99) * 1e3),
                      "mean_ms": float(np.mean(v) * 1e3)} for part, v in times.items()}
    hidden = card.get("training", {}).get("hidden")
    print(f"{ticks} ticks, critic {args.models_dir or 'models'} ({hidden} wide), inserted {arm.inserted}, "
          f"reflexes {safety.reflex_count}, critic overruns {critic.faults['overrun']}")
    for part, f in figures.items():
        print(f"{part:17s} p50 {f['p50_ms']:.3f} / p99 {f['p99_ms']:.3f} / mean {f['mean_ms']:.3f} ms")
    machine = machine_info()
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_mhz']} MHz, {machine['cpu_count']} cores")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"command": ["python", "bench/tick_profile.py", *sys.argv[1:]],
                                               "critic_hidden": hidden, "figures": figures, "ticks": ticks,
                                               "inserted": arm.inserted, "machine": machine}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
