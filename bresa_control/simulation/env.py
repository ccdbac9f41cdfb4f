"""``TaskEnv``: the gymnasium environment the task policy learns in.

It drives the same :class:`~bresa_control.simulation.simulator.ArmSim` (MuJoCo + impedance controller) that
the ``mujoco_sim`` node runs, so what is trained is what is deployed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from bresa_control.common.config import BresaConfig, load_config
from bresa_control.contract import OBSERVATION_LABELS, observation
from bresa_control.control.actions import ACTION_SIZE, ActionMap
from bresa_control.control.impedance import ImpedanceCommand
from bresa_control.safety.reflex import RecoveryModel, Reflex, RiskModel
from bresa_control.safety.risk_features import TickState
from bresa_control.simulation.scenarios import Disturbances, Scenario
from bresa_control.simulation.simulator import ArmSim
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import Task


@dataclass
class StepStats:
    """What happened during the control ticks of one decision step."""

    peak_force_n: float = 0.0
    peak_torque_nm: float = 0.0
    reflex_ticks: int = 0
    reflex_fired: int = 0
    max_risk: float = 0.0
    force_violation: bool = False
    torque_violation: bool = False
    workspace_violation: bool = False
    fault: bool = False
    ticks: int = 0

    @property
    def cost(self) -> float:
        """c = 1 if any constraint was violated during the step, else 0."""
        return float(self.force_violation or self.torque_violation or self.workspace_violation)


class TaskEnv(gym.Env):
    """A contact-rich task for a Franka Panda holding a peg: ``task`` (:mod:`bresa_control.tasks`)
    gives the fixture, the episodes, the reward's distance, success and the scripted baseline; peg
    insertion by default (insert a square peg into a hole known to +-2 mm), or the maze. What
    follows is the same for every task.

    **Timing.** One ``step`` is one decision (10 Hz by default): the action becomes an impedance
    command; each of the ``env.ticks_per_decision`` ticks of 1 ms turns it into an intermediate
    action (setpoint moving from the tip toward the target, gains ramping), passes it through the
    reflex (:mod:`bresa_control.safety.reflex`, mode from ``reflex.mode``) and runs controller and physics.

    **Action** (7, float32, [-1, 1]): see :mod:`bresa_control.control.actions`: tip displacement from its
    current position (up to ``env.max_step_m`` per axis), translational stiffness (log scale)
    and damping ratio. Orientation is held pointing down with fixed rotational gains.

    **Observation** (22, float32, SI units, in :data:`OBSERVATION_LABELS` order):
    tip position relative to the robot's *estimate* of the hole's top centre (m, base frame; the
    true hole is within ``perception_error_m`` of it), tip linear velocity (m/s), tip rotation
    error from the target orientation (rotation vector, rad), wrist force (N) and torque (Nm)
    that the environment applies to the peg (base frame, gravity-tared), and the previous action.

    **Reward**: ``-distance_reward_weight * |tip - goal|`` (goal: the true hole's axis at
    ``success_depth_m`` below its top face), ``-force_reward_weight * peak |F| / F_max`` (the
    step's peak wrist force: pressing harder does not help the search), ``-time_reward_weight``
    per step (a slow insertion costs), plus ``success_reward`` on the insertion step.

    **Scenario**: ``nominal`` or a perturbation never seen in training (hole moves, push,
    push down, block rises, doubled friction, and the sensing faults: a drifting F/T reading, state seen 5 ms late, a
    heavier tool): :mod:`bresa_control.simulation.scenarios`. The critic and the policy see the
    state through the scenario; the constraints are always scored on the truth. With
    ``randomisation.enabled`` (training only, nominal only) generic disturbances are drawn per
    episode: wrench pulses of at most 10 N and a spread of friction and contact stiffness
    (:class:`~bresa_control.simulation.scenarios.Disturbances`).

    **Termination**: the peg is inserted (tip at least ``success_depth_m`` deep inside the hole),
    or the wrist force reached ``arm_fault_force_n`` (the real arm would stop with an error).
    **Truncation**: after ``max_episode_steps`` decisions.

    **info**: ``cost`` (1.0 if during this step the wrist force exceeded ``max_force_n``, the wrist
    torque exceeded ``max_torque_nm`` or the tip left the workspace box, else 0.0), the three
    flags ``force_violation``, ``torque_violation``, ``workspace_violation``, ``fault``,
    ``peak_force_n`` and ``peak_torque_nm`` of this step, ``reflex_ticks`` (ticks the recovery
    action ran), ``reflex_fired`` (times the reflex switched on), ``max_risk``, ``inserted``, ``insertion_depth_m``
    (true tip depth below the top face, negative above it) and ``time_s``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: BresaConfig | None = None,
        critic: RiskModel | None = None,
        recovery: RecoveryModel | None = None,
        scenario: str = "nominal",
        task: Task | str = DEFAULT_TASK,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else load_config()
        self.task = make_task(task, self.config) if isinstance(task, str) else task
        self.sim = ArmSim(self.config, self.task)
        timing = self.config.env
        self.max_episode_steps = self.task.max_episode_steps()
        self.scenario = Scenario(scenario, self.config.scenarios, self.max_episode_steps * timing.decision_period_s,
                                 timing.control_period_s)
        if self.config.randomisation.enabled and scenario != "nominal":
            raise ValueError(f"training randomisation (randomisation.enabled) runs in the nominal scenario only, "
                             f"not '{scenario}': evaluation scenarios are never trained on")
        self.disturbances = Disturbances(self.config.randomisation)
        self.reflex = Reflex(self.config, critic, recovery, self.task.brake_axes)
        self.actions = ActionMap(self.config)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(ACTION_SIZE,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, shape=(len(OBSERVATION_LABELS),), dtype=np.float32
        )
        safety = self.config.safety
        self._workspace = (np.array(safety.workspace_min_m), np.array(safety.workspace_max_m))
        self._prev_action = np.zeros(ACTION_SIZE, dtype=np.float32)
        self._steps = 0
        # Called every tick with (critic features of the state and the executed command, cost of
        # the tick that followed); data collection and online critic refinement set it.
        self.tick_recorder: Callable[[np.ndarray, float], None] | None = None
        # Called every tick with (time s, wrist force N, risk, commanded stiffness, reflex active,
        # reflex fired); plots set it (bresa_control.app.plots.TickTrace).
        self.tick_observer: Callable[[float, float, float, np.ndarray, bool, bool], None] | None = None
        self.command: ImpedanceCommand | None = None  # the task policy's proposed command
        self.applied: ImpedanceCommand | None = None  # what the controller ran at the last tick
        self._seen: TickState | None = None  # the arm's state as the critic and the policy see it

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: new hole position, perception error and start pose."""
        super().reset(seed=seed)
        self.sim.reset(self.np_random)
        self.scenario.reset(self.sim, self.np_random)
        self.disturbances.reset(self.sim, self.np_random)
        self.reflex.reset()
        self.applied = None
        self._steps = 0
        self._prev_action = np.zeros(ACTION_SIZE, dtype=np.float32)
        self._seen = self.scenario.sense(self.sim, self.sim.tick_state())
        return self._observation(), {"layout": self.sim.layout}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One decision: build the impedance command, run the control ticks, score the result."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (ACTION_SIZE,):
            raise ValueError(f"action must have shape ({ACTION_SIZE},), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        q = self.sim.q
        tip = self.sim.robot.frame_pose(q).position_m
        self.command = self.actions.to_command(action, tip, self.sim.robot.cartesian_inertia(q))
        stats = self.run_ticks(self.command)
        self._steps += 1
        self._prev_action = np.clip(action, -1.0, 1.0)

        depth = self.sim.progress_m()
        inserted = self.sim.succeeded()
        layout = self.sim.layout
        distance_m = self.task.goal_distance_m(self.sim.tip_position(), layout.fixture_m, layout.variant)
        reward = -self.config.env.distance_reward_weight * distance_m
        reward -= self.config.env.force_reward_weight * stats.peak_force_n / self.config.safety.max_force_n
        reward -= self.config.env.time_reward_weight
        reward += self.config.env.success_reward if inserted else 0.0
        terminated = inserted or stats.fault
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {
            "cost": stats.cost,
            "force_violation": stats.force_violation,
            "torque_violation": stats.torque_violation,
            "workspace_violation": stats.workspace_violation,
            "fault": stats.fault,
            "peak_force_n": stats.peak_force_n,
            "peak_torque_nm": stats.peak_torque_nm,
            "reflex_ticks": stats.reflex_ticks,
            "reflex_fired": stats.reflex_fired,
            "max_risk": stats.max_risk,
            "inserted": inserted,
            "insertion_depth_m": depth,
            "time_s": self.sim.time_s,
        }
        return self._observation(), float(reward), terminated, truncated, info

    def run_ticks(self, command: ImpedanceCommand) -> StepStats:
        """Run one decision period of 1 ms ticks toward ``command``, through the reflex, watching
        the constraints."""
        safety = self.config.safety
        face_z = self.task.surface_height_m(self.sim.layout.fixture_estimate_m)
        stats = StepStats()
        seen = self._seen if self._seen is not None else self.sim.tick_state()
        self.reflex.begin_decision(command, seen, face_z, self.applied)
        for _ in range(self.config.env.ticks_per_decision):
            decision = self.reflex.step(seen, face_z)
            self.scenario.tick(self.sim)
            self.disturbances.tick(self.sim)
            if self.tick_recorder is not None:
                features = np.concatenate([self.reflex.features.state(seen, face_z),
                                           self.reflex.features.action(decision.command, seen.tip_position_m)])
            self.sim.tick(decision.command)
            self.applied = decision.command
            stats.ticks += 1
            stats.reflex_ticks += int(decision.active)
            stats.reflex_fired += int(decision.fired)
            stats.max_risk = max(stats.max_risk, decision.risk)
            tick = self.sim.tick_state()  # the truth: constraints are scored on it
            seen = self._seen = self.scenario.sense(self.sim, tick)
            force, torque = tick.force_n, tick.torque_nm
            force_n = float(np.sqrt(force @ force))
            torque_nm = float(np.sqrt(torque @ torque))
            stats.peak_force_n = max(stats.peak_force_n, force_n)
            stats.peak_torque_nm = max(stats.peak_torque_nm, torque_nm)
            stats.force_violation |= force_n > safety.max_force_n
            stats.torque_violation |= torque_nm > safety.max_torque_nm
            tip = tick.tip_position_m
            outside = bool((tip < self._workspace[0]).any() or (tip > self._workspace[1]).any())
            stats.workspace_violation |= outside
            if self.tick_observer is not None:
                self.tick_observer(self.sim.time_s, force_n, decision.risk, decision.command.stiffness,
                                   decision.active, decision.fired)
            if self.tick_recorder is not None:
                violated = force_n > safety.max_force_n or torque_nm > safety.max_torque_nm or outside
                self.tick_recorder(features, float(violated))
            if force_n >= safety.arm_fault_force_n:
                stats.fault = True
                break
        return stats

    def _observation(self) -> np.ndarray:
        """The policy's observation of the state the controllers last saw (the truth, unless a
        sensing-fault scenario runs)."""
        seen = self._seen if self._seen is not None else self.sim.tick_state()
        q, dq = self.scenario.seen_joints(self.sim)
        pose = self.sim.robot.frame_pose(q)
        velocity = self.sim.robot.frame_jacobian(q) @ dq
        layout = self.sim.layout
        origin = self.task.observation_origin_m(layout.fixture_estimate_m, pose.position_m, layout.variant)
        return observation(pose.position_m, pose.rotation, velocity, self.sim.target_rotation, origin, seen.force_n,
                           seen.torque_nm, self._prev_action)



PegInsertion = TaskEnv  # the name before tasks (gymnasium id bresa_control/PegInsertion-v0 is peg insertion's)
