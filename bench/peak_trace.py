"""Where did an episode's peak force come from? Prints the control ticks around it.

    python bench/peak_trace.py --controller bresa --seed 45 [--scenario nominal] [--ticks 4] [--config X.yaml]
    python bench/peak_trace.py --controller bresa --scenario push --seeds 1,8,22   (one line per seed)
    ... --models-dir models/seeds/bresa/seed1     (another training seed's models)
    ... --task maze --models-dir models/maze/seeds/bresa/seed2    (the maze; default models/maze/)
    ... --contacts    (with --seed: also the tip's velocity and every contact at the episode's last tick)

For each tick: simulated time, wrist force |F|, the critic's risk, whether the reflex held, tip
height above the estimated top face and its vertical velocity, commanded Kz and setpoint offset,
and the tip's speed along every axis (in the maze, the speed at which it meets a wall).
Used to tell a predictable force build-up from a contact transient (docs/sim-to-real.md).
With ``--seeds``, one line per episode instead: the peak, whether the reflex held at it, when it
last held before it, and the critic's highest risk in the ``--window-ms`` before it (did the
critic see it coming?); then one line of what they have in common.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import mujoco
import numpy as np

from bresa_control.app.commands.common import models_for
from bresa_control.app.controllers import ControllerSetup, make_controller
from bresa_control.common.config import load_config
from bresa_control.learning.registry import CONTROLLERS
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.scenarios import SCENARIOS
from bresa_control.tasks import DEFAULT_TASK, TASKS, make_task

COLUMNS = ("t", "force", "risk", "active", "height", "vz", "kz", "dz", "speed")


def trace(setup: ControllerSetup, scenario: str, seed: int, task: str = DEFAULT_TASK,
          at_end: Callable[[TaskEnv], None] | None = None) -> tuple[np.ndarray, dict]:
    """One episode, every control tick as a row of :data:`COLUMNS` (SI units), and the last info.

    Each row is the arm's state at a tick and the reflex's decision on it. The last row is the
    state the episode ended in (a fault ends it on the tick that reached the fault force), with
    the last decision, which was in force when it was measured.
    """
    env = TaskEnv(setup.config, setup.critic, setup.recovery, scenario=scenario, task=task)
    rows = []
    last = None  # (decision, face height) of the latest tick
    inner_step = env.reflex.step

    def row(tick, face_z, decision):
        return (env.sim.time_s, float(np.linalg.norm(tick.force_n)), decision.risk, decision.active,
                tick.tip_position_m[2] - face_z, tick.tip_velocity_m_per_s[2], decision.command.stiffness[2],
                decision.command.position_m[2] - tick.tip_position_m[2],
                float(np.linalg.norm(tick.tip_velocity_m_per_s)))

    def step(tick, face_z):  # the env's reflex, observed: nothing it does changes
        nonlocal last
        decision = inner_step(tick, face_z)
        rows.append(row(tick, face_z, decision))
        last = decision, face_z
        return decision

    env.reflex.step = step
    obs, _ = env.reset(seed=seed)
    setup.policy.reset()
    while True:
        obs, _, terminated, truncated, info = env.step(setup.policy.act(obs))
        if terminated or truncated:
            decision, face_z = last
            rows.append(row(env.sim.tick_state(), face_z, decision))
            if at_end is not None:
                at_end(env)
            return np.array(rows), {**info, "event_time_s": env.scenario.event_time_s}


def print_contacts(env: TaskEnv) -> None:
    """The tip's velocity and every contact (geoms, normal, force in the contact frame) now."""
    model, data = env.sim.model, env.sim.data
    tick = env.sim.tick_state()
    print(f"at t = {env.sim.time_s:.3f} s: |F| {np.linalg.norm(tick.force_n):.1f} N, tip velocity "
          f"{np.round(tick.tip_velocity_m_per_s * 1e3, 1).tolist()} mm/s (base frame)")
    for i in range(data.ncon):
        contact, force = data.contact[i], np.zeros(6)
        mujoco.mj_contactForce(model, data, i, force)
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in (contact.geom1, contact.geom2)]
        print(f"  contact {names[0]} / {names[1]}: normal {np.round(contact.frame[:3], 2).tolist()}, "
              f"force {np.round(force[:3], 1).tolist()} N, penetration {-contact.dist * 1e3:.3f} mm")


def peak_facts(table: np.ndarray, window_ms: float, event_time_s: float = np.inf) -> dict:
    """The peak of one episode, what the reflex and the critic did in the ``window_ms`` before it,
    and (with a push or a hole move) how long after the event began it came."""
    k = int(np.argmax(table[:, 1]))
    t_peak = table[k, 0]
    before = table[(table[:, 0] > t_peak - window_ms / 1e3) & (table[:, 0] <= t_peak)]
    held = before[before[:, 3] > 0]
    return {"peak_n": table[k, 1], "t_s": t_peak, "after_event_ms": (t_peak - event_time_s) * 1e3,
            "height_mm": table[k, 4] * 1e3, "held_at_peak": bool(table[k, 3]),
            "last_held_ms": (t_peak - held[-1, 0]) * 1e3 if len(held) else None,
            "max_risk": before[:, 2].max(), "vz_mm_per_s": table[max(0, k - 5), 5] * 1e3}


def summary_line(facts: dict, seed: int, window_ms: float) -> str:
    """One episode's :func:`peak_facts` as a line."""
    last = "not in the window" if facts["last_held_ms"] is None else f"{facts['last_held_ms']:.0f} ms before"
    event = f" ({facts['after_event_ms']:.0f} ms after the event)" if np.isfinite(facts["after_event_ms"]) else ""
    return (f"seed {seed}: peak {facts['peak_n']:.1f} N at {facts['t_s']:.3f} s{event}, "
            f"height {facts['height_mm']:.1f} mm, reflex at the peak: {facts['held_at_peak']}, "
            f"last held: {last}, max risk in the {window_ms:g} ms before: {facts['max_risk']:.2f}, "
            f"tip vz 5 ms before: {facts['vz_mm_per_s']:.0f} mm/s")


def totals_line(facts: list[dict], eps_safe: float, max_force_n: float) -> str:
    """What the episodes of ``--seeds`` have in common."""
    above = sum(f["peak_n"] > max_force_n for f in facts)
    return (f"{len(facts)} episodes: peak above F_max ({max_force_n:g} N) in {above}, "
            f"median {np.median([f['peak_n'] for f in facts]):.1f} N; reflex holding at the peak in "
            f"{sum(f['held_at_peak'] for f in facts)}; the critic's risk stayed below eps_safe ({eps_safe:g}) in the "
            f"window before in {sum(f['max_risk'] < eps_safe for f in facts)}; tip vz 5 ms before the peak: median "
            f"{np.median([f['vz_mm_per_s'] for f in facts]):.0f} mm/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controller", choices=list(CONTROLLERS), default="bresa")
    seeds = parser.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seed", type=int)
    seeds.add_argument("--seeds", help="comma-separated seeds: one summary line each")
    parser.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    parser.add_argument("--ticks", type=int, default=4, help="ticks shown before and after the peak")
    parser.add_argument("--window-ms", type=float, default=200.0, help="with --seeds: look this far before the peak")
    parser.add_argument("--config", help="YAML laid over config/peg_insertion.yaml")
    parser.add_argument("--models-dir", help="a models folder (e.g. models/seeds/bresa/seed1); default: the task's")
    parser.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK)
    parser.add_argument("--contacts", action="store_true", help="with --seed: the contacts at the last tick")
    args = parser.parse_args()

    config = load_config(args.config)
    setup = make_controller(args.controller, config, models_for(args.task, args.models_dir),
                            make_task(args.task, config))
    if args.seeds:
        facts = []
        for seed in (int(s) for s in args.seeds.split(",")):
            table, info = trace(setup, args.scenario, seed, args.task)
            facts.append(peak_facts(table, args.window_ms, info["event_time_s"]))
            print(summary_line(facts[-1], seed, args.window_ms), flush=True)
        print(totals_line(facts, setup.config.reflex.eps_safe, setup.config.safety.max_force_n))
        return
    ends: list[TaskEnv] = []
    table, info = trace(setup, args.scenario, args.seed, args.task, ends.append if args.contacts else None)
    k = int(np.argmax(table[:, 1]))
    print(f"{args.controller}, {args.scenario}, seed {args.seed}: peak {table[k, 1]:.1f} N at t = {table[k, 0]:.3f} s; "
          f"inserted: {info['inserted']}")
    print("   t (s)   |F| (N)  risk  reflex  height (mm)  vz (mm/s)  Kz (N/m)  setpoint dz (mm)  |v| (mm/s)")
    for t, force, risk, active, height, vz, kz, dz, speed in table[max(0, k - args.ticks): k + args.ticks + 1]:
        print(f"  {t:7.3f}  {force:7.1f}  {risk:5.2f}  {int(active):6d}  {height * 1e3:10.2f}  {vz * 1e3:9.1f}"
              f"  {kz:8.0f}  {dz * 1e3:15.2f}  {speed * 1e3:10.1f}")
    for env in ends:
        print_contacts(env)


if __name__ == "__main__":
    main()
