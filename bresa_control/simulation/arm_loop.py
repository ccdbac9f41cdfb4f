"""The simulated arm's 1 kHz loop, without ROS: what the ``mujoco_sim`` node runs every tick.

It owns a :class:`~bresa_control.simulation.simulator.PegInsertionSim` (MuJoCo + the impedance controller) and
applies the latest ``bresa/impedance_command``. Like a real arm's controller it never acts on a
bad command: a malformed or out-of-range one is dropped and counted, and if no valid command
has arrived for ``runtime.command_timeout_s`` (20 ms) it holds the tip where it is with compliant
gains until commands resume.
"""

from __future__ import annotations

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandFollower
from bresa_control.simulation.simulator import Layout, PegInsertionSim


class ArmLoop:
    """Simulated arm: commands in, physics ticks, joint state and wrench out."""

    def __init__(self, config: BresaConfig, seed: int, trace: bool = False) -> None:
        self.config = config
        self.sim = PegInsertionSim(config)
        self.layout: Layout = self.sim.reset(np.random.default_rng(seed))
        self.follower = CommandFollower(config, self.sim.robot, trace)
        self.force_n, self.torque_nm = self.sim.wrench()  # wrist wrench after the last tick (N, Nm)
        self.peak_force_n = 0.0
        self.inserted = False
        self.insertion_time_s: float | None = None

    def on_command(self, values: object, now_s: float) -> bool:
        """An impedance command arrived; returns whether it was accepted."""
        return self.follower.on_command(values, now_s)

    def tick(self, now_s: float) -> bool:
        """One 1 ms control period: apply the latest command, or hold if it is missing or stale.
        Returns whether this tick held."""
        command, held = self.follower.command(self.sim.q, now_s)
        self.sim.tick(command)
        self.force_n, self.torque_nm = self.sim.wrench()
        self.peak_force_n = max(self.peak_force_n, float(np.sqrt(self.force_n @ self.force_n)))
        if not self.inserted and self.sim.inserted(self.config.env.success_depth_m):
            self.inserted, self.insertion_time_s = True, self.sim.time_s
        return held
