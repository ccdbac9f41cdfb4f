"""Perturbations the policies never trained on, selected with ``--scenario``.

=============  ================================================================================
nominal        the training distribution
hole-moves     the hole block slides ``hole_shift_m`` (3 mm) in a random horizontal direction,
               over ``event_duration_s``, at a random time in ``event_window_s``
push           an external horizontal force of ``push_force_n`` on the peg for
               ``event_duration_s``, at a random time in ``event_window_s``
push-down      an external downward force of ``push_down_force_n`` (20 N) on the peg for
               ``event_duration_s``, at a random time in ``event_window_s``: the arm must pull up
block-rises    the hole block rises ``block_rise_m`` (8 mm) over ``event_duration_s``, at a random
               time in ``event_window_s``: the arm must yield
friction       sliding friction of peg, block and table multiplied by ``friction_scale`` (2x)
ft-drift       the wrist force the controllers see gains a bias growing linearly to ``ft_drift_n``
               (4 N) by the episode's end, in a direction drawn per episode, plus Gaussian noise
               of ``ft_noise_n`` (0.3 N) per axis and tick
state-latency  the controllers (critic, policy) see the arm's state ``state_latency_s`` (5 ms) late
payload        the tool is ``payload_kg`` (0.3 kg) heavier than the controller's model and the
               sensor's tare assume
=============  ================================================================================

The sensing faults change what the controllers see (:meth:`Scenario.sense`), never the truth:
violations are scored on the true contact force. Each scenario draws its randomness from the
episode's seed, so every controller meets the same events.

Training never meets these. It may meet :class:`Disturbances` instead (config ``randomisation``,
turned on by the training commands): generic wrench pulses weaker than any push here, and a spread
of friction and contact stiffness, so that the critic has seen the world push back.
"""

from __future__ import annotations

from collections import deque

import mujoco
import numpy as np

from bresa_control.common.config import RandomisationConfig, ScenarioConfig
from bresa_control.control.robot import PEG_LINK
from bresa_control.safety.risk_features import TickState
from bresa_control.simulation.simulator import ArmSim
from bresa_control.tasks.base import uniform_in

SCENARIOS = ("nominal", "hole-moves", "push", "friction", "ft-drift", "state-latency", "payload", "push-down",
             "block-rises")
EVENT_SCENARIOS = ("hole-moves", "push", "push-down", "block-rises")  # one timed event per episode


class Scenario:
    """Applies one named perturbation to a :class:`ArmSim`, tick by tick."""

    def __init__(self, name: str, config: ScenarioConfig, episode_s: float = 20.0, tick_s: float = 0.001) -> None:
        """``episode_s``: the episode's length (ft-drift reaches its full bias there); ``tick_s``:
        the control period (state-latency delays by whole ticks)."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario '{name}'; choose from {', '.join(SCENARIOS)}")
        self.name = name
        self.config = config
        self._episode_s = episode_s
        self._latency_ticks = int(round(config.state_latency_s / tick_s))
        self._seen: deque[tuple[TickState, np.ndarray, np.ndarray]] = deque(maxlen=self._latency_ticks + 1)
        self._bias_direction = np.zeros(3)
        self._noise = np.random.default_rng(0)
        self._nominal_peg: tuple[float, np.ndarray] | None = None
        self._start_s = np.inf
        self._direction = np.zeros(2)
        self._hole_xy = np.zeros(2)
        self._done = False
        self._nominal_friction: np.ndarray | None = None

    def reset(self, sim: ArmSim, rng: np.random.Generator) -> None:
        """Draw this episode's event and restore anything the last episode changed."""
        if self._nominal_friction is None:
            self._nominal_friction = sim.model.geom_friction[:, 0].copy()
        sim.model.geom_friction[:, 0] = self._nominal_friction
        if self.name == "friction":
            sim.model.geom_friction[:, 0] = self._nominal_friction * self.config.friction_scale
        self._start_s = uniform_in(rng, self.config.event_window_s)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        self._direction = np.array([np.cos(angle), np.sin(angle)])
        self._hole_xy = sim.layout.fixture_m[:2].copy()
        self._done = False
        sim.data.xfrc_applied[:] = 0.0
        self._set_payload(sim, self.config.payload_kg if self.name == "payload" else 0.0)
        if self.name == "ft-drift":
            direction = rng.normal(size=3)
            self._bias_direction = direction / np.linalg.norm(direction)
            self._noise = np.random.default_rng(rng.integers(2**63))
        self._seen.clear()

    def _set_payload(self, sim: ArmSim, extra_kg: float) -> None:
        """The peg's mass in the physics (not in the controller's model nor the sensor's tare)."""
        peg = sim.model.body(PEG_LINK).id
        if self._nominal_peg is None:
            self._nominal_peg = (float(sim.model.body_mass[peg]), sim.model.body_inertia[peg].copy())
        mass, inertia = self._nominal_peg
        sim.model.body_mass[peg] = mass + extra_kg
        sim.model.body_inertia[peg] = inertia * (mass + extra_kg) / mass
        # The arm was put at rest before this (ArmSim.reset): recompute what it reads there with
        # this episode's mass, not the last episode's, so that an episode does not depend on which
        # episode ran before it in the same environment.
        mujoco.mj_forward(sim.model, sim.data)

    def sense(self, sim: ArmSim, tick: TickState) -> TickState:
        """What the controllers see of the arm's state ``tick`` (the truth, after this tick)."""
        if self.name == "ft-drift":
            growth = min(sim.time_s / self._episode_s, 1.0)
            noise = self._noise.normal(0.0, self.config.ft_noise_n, size=3)
            return TickState(tick.force_n + self.config.ft_drift_n * growth * self._bias_direction + noise,
                             tick.torque_nm, tick.tip_position_m, tick.tip_velocity_m_per_s)
        if self.name == "state-latency":
            self._seen.append((tick, sim.q, sim.dq))
            return self._seen[0][0]
        return tick

    def seen_joints(self, sim: ArmSim) -> tuple[np.ndarray, np.ndarray]:
        """The joint angles (rad) and velocities (rad/s) as the controllers last saw them."""
        if self.name == "state-latency" and self._seen:
            return self._seen[0][1], self._seen[0][2]
        return sim.q, sim.dq

    def tick(self, sim: ArmSim) -> None:
        """Apply the perturbation for the current simulated time (call before each physics tick)."""
        if self.name in ("nominal", "friction"):
            return
        progress = (sim.time_s - self._start_s) / self.config.event_duration_s
        if self.name == "hole-moves":
            if progress >= 0.0 and not self._done:  # nothing to do before or after the slide
                shift = min(progress, 1.0) * self.config.hole_shift_m
                sim.move_fixture_xy(self._hole_xy + shift * self._direction)
                self._done = progress >= 1.0
        elif self.name == "push":
            pushing = 0.0 <= progress < 1.0
            force = self.config.push_force_n * self._direction if pushing else np.zeros(2)
            sim.push_peg(np.array([force[0], force[1], 0.0]))
        elif self.name == "push-down":
            pushing = 0.0 <= progress < 1.0
            sim.push_peg(np.array([0.0, 0.0, -self.config.push_down_force_n if pushing else 0.0]))
        elif self.name == "block-rises":
            if progress >= 0.0 and not self._done:
                sim.raise_fixture(min(progress, 1.0) * self.config.block_rise_m)
                self._done = progress >= 1.0

    @property
    def direction(self) -> np.ndarray:
        """Unit horizontal direction of this episode's hole move or push."""
        return self._direction.copy()

    @property
    def event_time_s(self) -> float:
        """When this episode's event starts (s of simulated time); inf for none."""
        return self._start_s if self.name in EVENT_SCENARIOS else float("inf")


class Disturbances:
    """Generic training disturbances (config ``randomisation``), drawn per episode from its seed:
    wrench pulses on the peg in any direction (at most ``pulse_force_max_n``), and sliding
    friction and contact time constant spread over their ranges. Off unless ``enabled``."""

    def __init__(self, config: RandomisationConfig) -> None:
        self.config = config
        self.enabled = config.enabled
        self._pulses: list[tuple[float, float, np.ndarray]] = []  # start s, end s, force N
        self._nominal: tuple[np.ndarray, np.ndarray] | None = None  # friction, solref time constants

    def reset(self, sim: ArmSim, rng: np.random.Generator) -> None:
        """Draw this episode's disturbances (call after the scenario's reset)."""
        if not self.enabled:
            return
        cfg = self.config
        if self._nominal is None:
            self._nominal = (sim.model.geom_friction[:, 0].copy(), sim.model.geom_solref[:, 0].copy())
        friction, timeconst = self._nominal
        sim.model.geom_friction[:, 0] = friction * uniform_in(rng, cfg.friction_scale_range)
        contact = timeconst > 0.0
        sim.model.geom_solref[contact, 0] = uniform_in(rng, cfg.contact_timeconst_range_s)
        self._pulses = []
        if rng.random() < cfg.pulse_episode_fraction:
            lo, hi = (int(v) for v in cfg.pulses_per_episode)
            for _ in range(int(rng.integers(lo, hi + 1))):
                start = float(rng.uniform(0.0, PULSE_WINDOW_S))
                direction = rng.normal(size=3)
                force = rng.uniform(0.0, cfg.pulse_force_max_n) * direction / np.linalg.norm(direction)
                self._pulses.append((start, start + uniform_in(rng, cfg.pulse_duration_s), force))

    def tick(self, sim: ArmSim) -> None:
        """Apply the pulses due now (call before each physics tick)."""
        if not self._pulses:
            return
        now = sim.time_s
        force = np.zeros(3)
        for start, end, pulse in self._pulses:
            if start <= now < end:
                force += pulse
        norm = float(np.sqrt(force @ force))
        if norm > self.config.pulse_force_max_n:  # overlapping pulses stay within the bound too
            force *= self.config.pulse_force_max_n / norm
        sim.push_peg(force)

    @property
    def pulses(self) -> list[tuple[float, float, np.ndarray]]:
        """This episode's pulses: (start s, end s, force N)."""
        return list(self._pulses)


PULSE_WINDOW_S = 8.0  # pulses start in the first 8 s: where insertions happen
