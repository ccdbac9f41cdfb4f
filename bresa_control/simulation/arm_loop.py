"""The simulated arm's 1 kHz loop, without ROS: what the ``mujoco_sim`` node runs every tick.

It owns a :class:`~bresa_control.simulation.simulator.PegInsertionSim` (MuJoCo + the impedance controller) and
applies the latest ``bresa/impedance_command``. Like a real arm's controller it never acts on a
bad command: a malformed or out-of-range one is dropped and counted, and if no valid command
has arrived for ``runtime.command_timeout_s`` (20 ms) it holds the tip where it is with compliant
gains until commands resume.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.guard import CommandRejected, Hold, parse_command, values_crc
from bresa_control.control.impedance import GainLimits, ImpedanceCommand
from bresa_control.simulation.simulator import Layout, PegInsertionSim


class ArmLoop:
    """Simulated arm: commands in, physics ticks, joint state and wrench out."""

    def __init__(self, config: BresaConfig, seed: int, trace: bool = False) -> None:
        self.config = config
        self.sim = PegInsertionSim(config)
        self.layout: Layout = self.sim.reset(np.random.default_rng(seed))
        self.hold = Hold(config, self.sim.robot)
        self._limits = GainLimits(config.controller)
        self._command: ImpedanceCommand | None = None
        self._command_crc = 0
        self._command_time_s = -np.inf
        self.dropped: Counter[str] = Counter()
        self.last_drop_reason = ""
        self.hold_ticks = 0
        self.force_n, self.torque_nm = self.sim.wrench()  # wrist wrench after the last tick (N, Nm)
        self.peak_force_n = 0.0
        self.inserted = False
        self.insertion_time_s: float | None = None
        self.applied_trace: list[tuple[int, float]] = []  # (crc32 of a command, first applied s)
        self._trace = trace
        self._traced_crc: int | None = None

    def on_command(self, values: object, now_s: float) -> bool:
        """An impedance command arrived; returns whether it was accepted."""
        try:
            command = parse_command(values, self._limits)
        except CommandRejected as exc:
            self.dropped[exc.kind] += 1
            self.last_drop_reason = str(exc)
            return False
        self._command, self._command_time_s = command, now_s
        if self._trace:
            self._command_crc = values_crc(values)
        return True

    def tick(self, now_s: float) -> bool:
        """One 1 ms control period: apply the latest command, or hold if it is missing or stale.
        Returns whether this tick held."""
        fresh = self._command is not None and now_s - self._command_time_s <= self.config.runtime.command_timeout_s
        if fresh:
            self.hold.release()
            command = self._command
            if self._trace and self._command_crc != self._traced_crc:
                self.applied_trace.append((self._command_crc, now_s))
                self._traced_crc = self._command_crc
        else:
            command = self.hold.command(self.sim.q)
            self.hold_ticks += 1
        self.sim.tick(command)
        self.force_n, self.torque_nm = self.sim.wrench()
        self.peak_force_n = max(self.peak_force_n, float(np.sqrt(self.force_n @ self.force_n)))
        if not self.inserted and self.sim.inserted(self.config.env.success_depth_m):
            self.inserted, self.insertion_time_s = True, self.sim.time_s
        return not fresh
