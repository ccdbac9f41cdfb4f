"""Record the safety critic's loop on a simulated insertion: its inputs tick by tick and what it
decided, into ``safety_trace.npz`` beside this file.

    python test/data/make_safety_trace.py [--seed 35] [--ticks 3000]

The loop runs closed in simulated time, without ROS: the simulated arm (``ArmLoop``) applies the
critic's command every 1 ms tick, the critic (``SafetyLoop``, shipped models) sees the arm's state,
and the shipped SAC policy (``PolicyLoop``) decides every 100 ticks. Two faults are injected: the
arm's state stops for 8 ms once (the critic must hold) and one malformed task action arrives.
``test/test_runtime_loops.py`` replays the recorded inputs open loop and checks that the critic
still decides exactly this (commands to 1e-6), so a faster implementation cannot change what
reaches the arm. The file was first made with the code of commit f29f834, before the 1 kHz loop
was made lean, and remade on 2026-12-07 when the shipped models changed (the code of that day
decided the previous file's ticks exactly with the models before); rerun this only when the
critic's behaviour or its models are meant to change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bresa_control.common.cards import models_folder
from bresa_control.common.config import load_config
from bresa_control.policies.residual import ResidualController, load_task_policy
from bresa_control.runtime.policy_loop import PolicyLoop
from bresa_control.runtime.safety_loop import SafetyLoop
from bresa_control.safety.models import load_reflex_models
from bresa_control.simulation.arm_loop import ArmLoop

STATUSES = ("waiting-for-state", "state-stale", "no-task-action", "task", "reflex")
STALE_TICKS = range(1500, 1508)  # the arm's reports stop for 8 ms here
MALFORMED_AT = 1200  # a task action with a NaN arrives at this tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--out", default=str(Path(__file__).with_name("safety_trace.npz")))
    args = parser.parse_args()

    config = load_config(overrides={"reflex": {"mode": "control-rate", "brake_s": 0.0}})  # as the test: no brake
    arm = ArmLoop(config, args.seed)
    critic, recovery, _ = load_reflex_models(config)
    loop = SafetyLoop(config, critic, recovery, arm.layout.fixture_estimate_m)
    policy = PolicyLoop(config, ResidualController(load_task_policy(models_folder()), config),
                        arm.layout.fixture_estimate_m)
    dt = config.env.control_period_s
    names = ("q", "dq", "force", "torque", "state_stamp", "now", "action", "action_stamp", "command", "risk", "status",
             "fired")
    rows: dict[str, list] = {k: [] for k in names}
    for k in range(args.ticks):
        now = k * dt
        fresh = k not in STALE_TICKS
        if fresh:
            loop.on_joints(arm.sim.q, arm.sim.dq, now)
            loop.on_wrench(arm.force_n, arm.torque_nm, now)
        policy.q, policy.dq, policy.force_n, policy.torque_nm = arm.sim.q, arm.sim.dq, arm.force_n, arm.torque_nm
        action = np.full(19, np.nan)
        if k % config.env.ticks_per_decision == 0 and (decided := policy.decide()) is not None:
            action = decided.to_array()
        if k == MALFORMED_AT:
            action = np.full(19, np.nan)
            action[0] = 0.5  # not all NaN: a malformed message, not "no action"
        if not np.all(np.isnan(action)):
            loop.on_task_action(action, now)
        out = loop.tick(now + 0.0003)
        rows["q"].append(arm.sim.q)
        rows["dq"].append(arm.sim.dq)
        rows["force"].append(arm.force_n)
        rows["torque"].append(arm.torque_nm)
        rows["state_stamp"].append(now if fresh else np.nan)
        rows["now"].append(now + 0.0003)
        rows["action"].append(action)
        rows["action_stamp"].append(now)
        rows["command"].append(out.command.to_array() if out.command is not None else np.full(19, np.nan))
        rows["risk"].append(out.risk)
        rows["status"].append(STATUSES.index(out.status))
        rows["fired"].append(out.fired)
        if out.command is not None:
            arm.on_command(out.command.to_array(), now)
        arm.tick(now + dt)
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    np.savez_compressed(args.out, seed=args.seed, **arrays)
    statuses = {s: int(np.sum(arrays["status"] == i)) for i, s in enumerate(STATUSES)}
    print(f"wrote {args.out}: {args.ticks} ticks, statuses {statuses}, reflex fired {int(arrays['fired'].sum())} "
          f"times, peak force {arm.peak_force_n:.1f} N, inserted {arm.inserted}")


if __name__ == "__main__":
    main()
