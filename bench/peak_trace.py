"""Where did an episode's peak force come from? Prints the control ticks around it.

    python bench/peak_trace.py --controller bresa --seed 45 [--scenario nominal] [--ticks 4] [--config X.yaml]

For each tick: simulated time, wrist force |F|, the critic's risk, whether the reflex held, tip
height above the estimated top face and its vertical velocity, commanded Kz and setpoint offset.
Used to tell a predictable force build-up from a contact transient (docs/sim-to-real.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from bresa_control.config import load_config
from bresa_control.env import PegInsertion
from bresa_control.evaluate import CONTROLLERS, make_controller
from bresa_control.scenarios import SCENARIOS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controller", choices=list(CONTROLLERS), default="bresa")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    parser.add_argument("--ticks", type=int, default=4, help="ticks shown before and after the peak")
    parser.add_argument("--config", help="YAML laid over config/peg_insertion.yaml")
    args = parser.parse_args()

    setup = make_controller(args.controller, load_config(args.config))
    env = PegInsertion(setup.config, setup.critic, setup.recovery, scenario=args.scenario)
    rows = []
    inner_step = env.reflex.step

    def step(tick, face_z):  # the env's reflex, observed: nothing it does changes
        decision = inner_step(tick, face_z)
        rows.append((env.sim.time_s, float(np.linalg.norm(tick.force_n)), decision.risk, decision.active,
                     tick.tip_position_m[2] - face_z, tick.tip_velocity_m_per_s[2], decision.command.stiffness[2],
                     decision.command.position_m[2] - tick.tip_position_m[2]))
        return decision

    env.reflex.step = step
    obs, _ = env.reset(seed=args.seed)
    setup.policy.reset()
    while True:
        obs, _, terminated, truncated, info = env.step(setup.policy.act(obs))
        if terminated or truncated:
            break
    table = np.array(rows)
    k = int(np.argmax(table[:, 1]))
    print(f"{args.controller}, {args.scenario}, seed {args.seed}: peak {table[k, 1]:.1f} N at t = {table[k, 0]:.3f} s; "
          f"inserted: {info['inserted']}")
    print("   t (s)   |F| (N)  risk  reflex  height (mm)  vz (mm/s)  Kz (N/m)  setpoint dz (mm)")
    for t, force, risk, active, height, vz, kz, dz in table[max(0, k - args.ticks): k + args.ticks + 1]:
        print(f"  {t:7.3f}  {force:7.1f}  {risk:5.2f}  {int(active):6d}  {height * 1e3:10.2f}  {vz * 1e3:9.1f}"
              f"  {kz:8.0f}  {dz * 1e3:15.2f}")


if __name__ == "__main__":
    main()
