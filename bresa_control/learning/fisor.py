"""FISOR, offline, from this project's decision rows: critics, feasibility-guided diffusion policy, export.

FISOR (Zheng et al., ICLR 2024; reference code: github.com/ZhengYinan-AIR/FISOR, JAX on jaxrl5)
turns safe offline RL into three supervised problems. What the reference does, and this module
does the same unless it says otherwise:

- **Labels.** ``h = +cost_scale`` (25) on a violating step, ``-1`` otherwise.
- **Reachability critic.** Twin ``Q_h`` toward ``(1 - gamma) h + gamma max(h, V_h(s'))`` (``h`` on a
  terminal step), mean squared error over both heads; target networks by Polyak averaging
  (0.005). ``V_h`` by expectile regression toward the pessimistic ``max(Q_h1, Q_h2)`` of the
  target network with weight 0.9 where ``Q_h < V_h``: the *lower* expectile, so that ``V_h``
  approximates the minimum over the data's actions (``expectile_loss(q_h - v_h, 1 - 0.9)``).
  ``V_h(s) <= 0``: feasible.
- **Reward critics (IQL).** Twin ``Q_r`` toward ``r + gamma V_r(s')``; ``V_r`` by the upper
  expectile (0.9) of ``min(Q_r1, Q_r2)`` of the target network. Rewards scaled so that the
  spread of episode returns equals the episode length (the reference's ``normalize_returns``).
- **Policy.** A DDPM (5 steps, the ``vp`` schedule, noise model: an MLP-ResNet of 3 blocks with
  layer norm and dropout 0.1, conditioned on the observation and learnable Fourier features of
  the step) trained by weighted denoising (:func:`policy_weights`): where ``V_h > 0`` the weight
  is ``clip(exp(cost_temperature (V_h - Q_h)), 0, 150)`` (actions that lower ``Q_h``), where
  ``V_h <= 0`` and ``Q_h <= 0`` it is ``clip(exp(reward_temperature (Q_r - V_r)), 0, 100)``
  (advantage), and 0 where ``V_h <= 0 < Q_h`` (a feasible state, an action that leaves the
  feasible region). Weights use the target critics. The policy that runs is an exponential
  moving average of the trained one (rate 0.001).
- **Action selection** (``policies/fisor.py``): 16 samples, the lowest ``Q_h`` kept.

Differences, and why: every network sees the observation and the configured spiral search's action
at the decision (``policies/fisor.py``'s ``STATE_LABELS``, ``bresa collect`` format 5), as the SAC
task policies do: the data's inserting behaviour follows the spiral's phase, which the observation
alone does not hold (the first runs, docs/fisor/README.md); observations are scaled by the training
rows' mean and standard deviation (the reference feeds the benchmarks' raw observations; here
metres, newtons and the previous action differ by three orders of magnitude); the default number of
steps is far below the reference's 1e6 (a 2-core CPU, 19k rows instead of 1M), and so is the
policy's batch (256 rows once a step, not 2048 in two halves: a step takes a sixth of the time); the
reward must be rebuilt from the decision rows (:func:`decision_reward`) where ``bresa collect`` did
not record it (format 3); a truncated episode's last row is left out of the critics' updates (the
reference counts time-outs as terminal, which would make the cut-off rows of this data's
120-decision episodes look safe and cheap); the critics' batches are drawn apart from the policy's
(the reference takes the first 256 rows of the policy's batch); layers keep torch's default
initialisation (the reference: Xavier uniform).

Data: ``bresa collect``'s ``decision_*`` rows. Row ``i + 1`` follows row ``i`` within an episode;
the last row of an episode has no successor in the file. Such a row is *terminal* when the
episode ended before its step limit (an insertion, told by the depth of the tip, or an arm fault)
and is then trained toward ``r`` and ``h`` alone; a truncated episode's last row has no target and
is left out of the critics' updates (the policy still clones it). When the file holds
``decision_reward``, ``decision_next_observation`` and ``decision_terminated`` (``bresa collect``
records them since format 4), they are used instead of these approximations.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bresa_control.common.cards import UNNAMED_TASK, read_card, write_card
from bresa_control.common.config import BresaConfig, config_to_dict, load_config
from bresa_control.common.files import atomic_output
from bresa_control.common.paths import portable
from bresa_control.contract import OBSERVATION_LABELS, POLICY_ACTION_SIZE
from bresa_control.learning import collect
from bresa_control.learning.critic import auroc, split_episodes, violation_within
from bresa_control.learning.settings import FisorTraining
from bresa_control.policies.fisor import (
    FISOR_FILE,
    FISOR_KIND,
    STATE_LABELS,
    STATE_SIZE,
    DiffusionPolicy,
    FisorArchitecture,
    FisorNetworks,
    NoiseModel,
    StateValue,
    TwinQ,
    payload,
)

__all__ = [
    "DecisionTransitions", "DiffusionPolicy", "FisorArchitecture", "FisorModels", "FisorNetworks",
    "FisorTraining", "NoiseModel", "RewardTerms", "StateValue", "TwinQ", "decision_reward",
    "decision_transitions", "expectile_loss", "export_fisor", "h_labels", "load_decisions", "policy_weights",
    "reachability_target", "train_fisor",
]  # fmt: skip

# What ``bresa collect`` records since format 4: used instead of the approximations when present.
RECORDED_ARRAYS = collect.RECORDED_ARRAYS
CRITICS = ("v_r", "q_r", "v_h", "q_h")  # in the order of an update
DEPTH_TOLERANCE_M = 1e-6  # float32 observations: -0.02 reads as -0.0199999996
TIP = slice(OBSERVATION_LABELS.index("tip_x_rel_m"), OBSERVATION_LABELS.index("tip_z_rel_m") + 1)
FORCE = slice(OBSERVATION_LABELS.index("force_x_n"), OBSERVATION_LABELS.index("force_z_n") + 1)


# ---- the method's pieces -------------------------------------------------------------------


def h_labels(cost: np.ndarray, cost_scale: float) -> np.ndarray:
    """FISOR's constraint label per row: ``+cost_scale`` where ``cost > 0``, else ``-1``."""
    return np.where(np.asarray(cost) > 0, float(cost_scale), -1.0).astype(np.float32)


def reachability_target(h: torch.Tensor, v_h_next: torch.Tensor, gamma: float, terminal: torch.Tensor) -> torch.Tensor:
    """The discounted reachability Bellman target of ``Q_h``: ``(1 - gamma) h + gamma max(h,
    V_h(s'))``, and ``h`` on a terminal row. Its fixed point on a chain of safe rows (h = -1)
    ``n`` rows before a violation followed by safe rows is ``-1 + gamma^n (cost_scale + 1)``."""
    running = (1.0 - gamma) * h + gamma * torch.maximum(h, v_h_next)
    return torch.where(terminal.bool(), h, running)


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean of ``|tau - 1(diff < 0)| diff^2``: ``tau`` > 0.5 pulls the fit up toward the larger
    targets (``diff = target - prediction``), < 0.5 down; 0.5 is half the mean squared error."""
    weight = torch.where(diff > 0, tau, 1.0 - tau)
    return (weight * diff**2).mean()


def policy_weights(
    q_r: torch.Tensor, v_r: torch.Tensor, q_h: torch.Tensor, v_h: torch.Tensor,
    reward_temperature: float = 3.0, cost_temperature: float = 5.0,
    reward_clip: float = 100.0, cost_clip: float = 150.0,
) -> torch.Tensor:
    """Per-row weights of the behaviour cloning. Infeasible state (``V_h > 0``):
    ``clip(exp(cost_temperature (V_h - Q_h)), 0, cost_clip)``. Feasible state and an action that
    stays feasible (``V_h <= 0``, ``Q_h <= 0``): ``clip(exp(reward_temperature (Q_r - V_r)), 0,
    reward_clip)``. Feasible state, action leaving the region (``Q_h > 0``): 0."""
    infeasible = v_h > 0.0
    stays = (~infeasible) & (q_h <= 0.0)
    # exp of a large argument is inf, clipped to the bound; masked rows are replaced, not multiplied
    cost_w = torch.exp(cost_temperature * (v_h - q_h)).clamp(0.0, cost_clip)
    reward_w = torch.exp(reward_temperature * (q_r - v_r)).clamp(0.0, reward_clip)
    zero = torch.zeros_like(q_r)
    return torch.where(infeasible, cost_w, torch.where(stays, reward_w, zero))


# ---- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardTerms:
    """The environment's reward weights and limits (``env.*``, ``safety.*`` of the config)."""

    distance_weight: float
    force_weight: float
    time_weight: float
    success_reward: float
    success_depth_m: float
    max_force_n: float
    fault_force_n: float

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> RewardTerms:
        """From a config as a dict (a data file's ``meta["config"]``)."""
        env, safety = config["env"], config["safety"]
        return cls(float(env["distance_reward_weight"]), float(env["force_reward_weight"]),
                   float(env["time_reward_weight"]), float(env["success_reward"]), float(env["success_depth_m"]),
                   float(safety["max_force_n"]), float(safety["arm_fault_force_n"]))

    @classmethod
    def from_config(cls, config: BresaConfig) -> RewardTerms:
        """From a loaded config."""
        return cls.from_config_dict(config_to_dict(config))


def decision_reward(
    observation: np.ndarray, next_observation: np.ndarray, cost: np.ndarray,
    terms: RewardTerms | None = None, success: np.ndarray | None = None,
) -> np.ndarray:
    """The environment's reward of decisions (rows), approximated from what the rows hold.

    The environment pays ``-w_d |tip - goal| - w_f peak|F| / F_max - w_t (+ success_reward)``
    with the goal ``success_depth_m`` below the *true* hole's top face and the *peak* force over
    the decision's ticks. The rows hold the tip relative to the *estimated* hole and the force at
    the decision's end. So: the distance is to the estimated goal ``(0, 0, -success_depth_m)``
    (the estimate is off by at most ``perception_error_m`` in x and y, 2 mm: at most 0.03 of the
    term, never in z); the peak force is the force in ``next_observation``, raised to ``F_max``
    where the row violated (``cost``; a force, torque or workspace violation alike): between the
    two it is underestimated; success (unless given) is the tip at least ``success_depth_m`` below
    the estimated top face in ``next_observation`` (the face's height is known exactly, and the tip
    can only be that low inside the hole; to within :data:`DEPTH_TOLERANCE_M`, the observation
    being float32). Arrays of shape (rows, 22), (rows, 22), (rows,).
    """
    terms = RewardTerms.from_config(load_config()) if terms is None else terms
    obs_next = np.asarray(next_observation, dtype=np.float64).reshape(-1, len(OBSERVATION_LABELS))
    tip = obs_next[:, TIP]
    goal = np.array([0.0, 0.0, -terms.success_depth_m])
    distance = np.linalg.norm(tip - goal, axis=1)
    force = np.linalg.norm(obs_next[:, FORCE], axis=1)
    violated = np.asarray(cost, dtype=np.float64).reshape(-1) > 0
    peak = np.where(violated, np.maximum(force, terms.max_force_n), force)
    inserted = tip[:, 2] <= -terms.success_depth_m + DEPTH_TOLERANCE_M if success is None else np.asarray(
        success, dtype=bool)
    reward = (-terms.distance_weight * distance - terms.force_weight * peak / terms.max_force_n
              - terms.time_weight + terms.success_reward * inserted)
    return reward.astype(np.float32)


@dataclass
class DecisionTransitions:
    """Decision rows as transitions. ``has_target``: the critics can train on the row (it has a
    successor in the file, or it ended its episode); ``terminal``: no bootstrapping."""

    observation: np.ndarray  # (M, 22)
    action: np.ndarray  # (M, 7), clipped to within 1e-5 of [-1, 1] (reference clip_to_eps)
    next_observation: np.ndarray  # (M, 22); a terminal or truncated row's own observation when not recorded
    reward: np.ndarray  # (M,)
    cost: np.ndarray  # (M,)
    terminal: np.ndarray  # (M,) bool
    has_target: np.ndarray  # (M,) bool
    episode: np.ndarray  # (M,)
    source: dict[str, str]  # per quantity: "recorded" or how it was approximated
    counts: dict[str, int]
    base_action: np.ndarray | None = None  # (M, 7): the spiral search's action (format 5), else None
    next_base_action: np.ndarray | None = None  # (M, 7): the same after the decision

    def states(self) -> tuple[np.ndarray, np.ndarray]:
        """What FISOR's networks see before and after each decision: the observation and the spiral
        search's action (:data:`~bresa_control.policies.fisor.STATE_LABELS`), as the SAC task
        policies see them. Raises ``ValueError`` if the data does not hold the spiral's action."""
        if self.base_action is None or self.next_base_action is None:
            raise ValueError("FISOR sees the scripted action beside the observation, as the SAC task policies "
                             f"do: the data needs {list(collect.BASE_ARRAYS)} (bresa collect, format "
                             f"{collect.FORMAT!r}); make it again with the command in its meta record")
        return (np.concatenate([self.observation, self.base_action], axis=1),
                np.concatenate([self.next_observation, self.next_base_action], axis=1))


def _episode_limit(meta: dict[str, Any] | None) -> int | None:
    """Decisions after which ``bresa collect`` cut an episode: the config's ``max_episode_steps``
    or the command's ``--max-steps``, the smaller (None if neither is known)."""
    if meta is None:
        return None
    limits = []
    steps = meta.get("config", {}).get("env", {}).get("max_episode_steps")
    if isinstance(steps, int):
        limits.append(steps)
    command = [str(part) for part in meta.get("command", [])]
    for i, part in enumerate(command):
        value = command[i + 1] if part == "--max-steps" and i + 1 < len(command) else (
            part.split("=", 1)[1] if part.startswith("--max-steps=") else None)
        if value is not None and value.isdigit():
            limits.append(int(value))
    return min(limits) if limits else None


def decision_transitions(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> DecisionTransitions:
    """Transitions from a data file's decision rows (``collect.load`` or :func:`load_decisions`),
    with the recorded reward, successor and termination when the file has them
    (:data:`RECORDED_ARRAYS`), else the approximations of the module docstring."""
    obs = np.asarray(arrays["decision_observation"], dtype=np.float32)
    action = np.clip(np.asarray(arrays["decision_action"], dtype=np.float32), -1.0 + 1e-5, 1.0 - 1e-5)
    cost = np.asarray(arrays["decision_cost"], dtype=np.float32)
    episode = np.asarray(arrays["decision_episode"])
    rows = len(episode)
    if obs.shape != (rows, len(OBSERVATION_LABELS)) or action.shape != (rows, POLICY_ACTION_SIZE):
        raise ValueError(f"decision rows have observations {obs.shape} and actions {action.shape}, expected "
                         f"({rows}, {len(OBSERVATION_LABELS)}) and ({rows}, {POLICY_ACTION_SIZE})")
    terms = RewardTerms.from_config_dict(meta["config"]) if meta and "config" in meta else RewardTerms.from_config(
        load_config())
    last = np.ones(rows, dtype=bool)
    last[:-1] = episode[1:] != episode[:-1]
    starts = np.flatnonzero(np.r_[True, last[:-1]])
    lengths = np.diff(np.r_[starts, rows])
    length_of_row = np.repeat(lengths, lengths)
    source: dict[str, str] = {}
    counts: dict[str, int] = {}
    if "decision_next_observation" in arrays:
        next_obs = np.asarray(arrays["decision_next_observation"], dtype=np.float32)
        source["next_observation"] = "recorded"
    else:
        next_obs = obs.copy()
        next_obs[:-1][~last[:-1]] = obs[1:][~last[:-1]]
        source["next_observation"] = "the next row of the episode; none for an episode's last row"
    if "decision_terminated" in arrays:
        terminal = np.asarray(arrays["decision_terminated"]).astype(bool)
        # without a recorded successor, a truncated episode's last row still has no target
        has_target = np.ones(rows, dtype=bool) if "decision_next_observation" in arrays else ~last | terminal
        inserted = terminal & (next_obs[:, TIP][:, 2] <= -terms.success_depth_m)
        source["terminal"] = "recorded"
    else:
        limit = _episode_limit(meta)
        early = last & (length_of_row < limit) if limit is not None else last
        # The last decision of an insertion starts with the tip within one step of the goal depth
        # (in the shipped data: 17.7-20.0 mm deep, against 20 mm); a fault ends with a violation.
        deep = obs[:, TIP][:, 2] <= -0.5 * terms.success_depth_m
        inserted = early & deep
        fault = early & ~deep & (cost > 0)
        terminal = inserted | fault
        has_target = ~last | terminal
        counts.update(inserted_episodes=int(inserted.sum()), fault_episodes=int(fault.sum()),
                      rows_without_target=int((~has_target).sum()))
        source["terminal"] = (f"an episode's last row, ended before its limit ({limit} decisions): inserted if the "
                              f"tip starts it deeper than success_depth_m / 2, else a fault if it violated")
    if "decision_reward" in arrays:
        reward = np.asarray(arrays["decision_reward"], dtype=np.float32)
        source["reward"] = "recorded"
    else:
        # An ended episode's last row has no successor in the file: an insertion ends at the goal,
        # a fault with a force of at least arm_fault_force_n (the row's own force otherwise).
        stand_in = next_obs.copy()
        ended = last & terminal if "decision_next_observation" not in arrays else np.zeros(rows, dtype=bool)
        stand_in[ended & inserted, TIP] = [0.0, 0.0, -terms.success_depth_m]
        faulted = ended & ~inserted
        stand_in[faulted, FORCE] = 0.0
        stand_in[faulted, FORCE.stop - 1] = np.maximum(np.linalg.norm(obs[faulted, FORCE], axis=1), terms.fault_force_n)
        reward = decision_reward(obs, stand_in, cost, terms, success=inserted)
        source["reward"] = "approximated from the rows (decision_reward)"
    counts.update(rows=rows, episodes=int(len(starts)), violating_rows=int((cost > 0).sum()),
                  terminal_rows=int(terminal.sum()))
    base = {name: np.asarray(arrays[name], dtype=np.float32) for name in collect.BASE_ARRAYS if name in arrays}
    if base and not all(a.shape == (rows, POLICY_ACTION_SIZE) for a in base.values()):
        raise ValueError(f"the spiral's actions have shapes {[a.shape for a in base.values()]}, expected ({rows}, "
                         f"{POLICY_ACTION_SIZE})")
    return DecisionTransitions(obs, action, next_obs, reward, cost, terminal, has_target, episode, source, counts,
                               base.get("decision_base_action"), base.get("decision_next_base_action"))


def load_decisions(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A data file's arrays and meta (``collect.load``): with :data:`RECORDED_ARRAYS` from format 4."""
    return collect.load(path)


# ---- training -------------------------------------------------------------------------------


@dataclass
class FisorModels:
    """What training produces: the run-time networks (EMA policy, target critics) and what the card
    needs."""

    networks: FisorNetworks
    settings: FisorTraining
    reward_scale: float


class _Tensors:
    """The transitions as tensors: observations scaled, rewards scaled, ``h`` labels."""

    def __init__(self, data: DecisionTransitions, networks: FisorNetworks, cost_scale: float,
                 reward_scale: float) -> None:
        state, next_state = data.states()
        with torch.no_grad():
            self.s = networks.scale(torch.as_tensor(state))
            self.s_next = networks.scale(torch.as_tensor(next_state))
        self.a = torch.as_tensor(data.action)
        self.r = torch.as_tensor(data.reward * np.float32(reward_scale))
        self.h = torch.as_tensor(h_labels(data.cost, cost_scale))
        self.terminal = torch.as_tensor(data.terminal)

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, ...]:
        i = torch.as_tensor(index)
        return self.s[i], self.a[i], self.r[i], self.h[i], self.s_next[i], self.terminal[i]


class FisorLearner:
    """The networks being trained, their targets and optimisers; one :meth:`step` is the reference's
    ``update``: the policy on ``actor_updates`` batches, then ``V_r``, ``Q_r``, ``V_h``, ``Q_h`` on
    one critic batch."""

    def __init__(self, settings: FisorTraining, generator: torch.Generator) -> None:
        self.settings = settings
        self.generator = generator
        arch = settings.architecture()
        self.live = FisorNetworks(arch, settings.ddpm_temperature)  # policy and critics being trained
        self.target = copy.deepcopy(self.live)  # EMA policy, target Q_h and Q_r
        for p in self.target.parameters():
            p.requires_grad_(False)
        actor_updates = settings.steps * settings.actor_updates
        decay = settings.actor_lr_decay * actor_updates
        self.actor_opt = torch.optim.Adam(self.live.policy.parameters(), lr=settings.actor_lr)
        self.actor_lr = torch.optim.lr_scheduler.LambdaLR(
            self.actor_opt, lambda n: 0.5 * (1.0 + math.cos(math.pi * min(n, decay) / decay)))
        self.optimisers = {name: torch.optim.Adam(getattr(self.live, name).parameters(),
                                                  lr=settings.value_lr if name.startswith("v") else settings.critic_lr)
                           for name in CRITICS}

    def weights(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The behaviour-cloning weights of rows, from the target critics and the current values."""
        st = self.settings
        with torch.no_grad():
            return policy_weights(self.target.q_r(s, a).amin(-1), self.live.v_r(s), self.target.q_h(s, a).amax(-1),
                                  self.live.v_h(s), st.reward_temperature, st.cost_temperature,
                                  st.reward_weight_max, st.cost_weight_max)

    def actor_update(self, s: torch.Tensor, a: torch.Tensor) -> tuple[float, float]:
        """One weighted denoising step; returns the loss and the mean weight."""
        w = self.weights(s, a)
        loss = self.live.policy.loss(s, a, w, self.generator)
        self.actor_opt.zero_grad()
        loss.backward()
        self.actor_opt.step()
        self.actor_lr.step()
        _polyak(self.live.policy, self.target.policy, self.settings.actor_ema)
        return float(loss.item()), float(w.mean().item())

    def critic_loss(self, name: str, s: torch.Tensor, a: torch.Tensor, r: torch.Tensor, h: torch.Tensor,
                    s_next: torch.Tensor, terminal: torch.Tensor) -> torch.Tensor:
        """One critic's loss on a batch (``v_r``, ``q_r``, ``v_h`` or ``q_h``; targets without
        gradients)."""
        st = self.settings
        with torch.no_grad():
            if name == "v_r":
                target = self.target.q_r(s, a).amin(-1)
            elif name == "q_r":
                target = r + st.gamma * (~terminal).float() * self.live.v_r(s_next)
            elif name == "v_h":
                target = self.target.q_h(s, a).amax(-1)
            else:
                target = reachability_target(h, self.live.v_h(s_next), st.gamma, terminal)
        if name == "v_r":
            return expectile_loss(target - self.live.v_r(s), st.reward_expectile)
        if name == "v_h":  # the lower expectile: weight cost_expectile where Q_h < V_h
            return expectile_loss(target - self.live.v_h(s), 1.0 - st.cost_expectile)
        critic = self.live.q_r if name == "q_r" else self.live.q_h
        return ((critic(s, a) - target.unsqueeze(-1)) ** 2).mean()

    def critic_update(self, *batch: torch.Tensor) -> dict[str, float]:
        """``V_r``, ``Q_r``, ``V_h``, ``Q_h`` in turn (the reference's order: each value is fitted
        before the critic that bootstraps from it), then the target critics."""
        out = {}
        for name in CRITICS:
            loss = self.critic_loss(name, *batch)
            optimiser = self.optimisers[name]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            out[name] = float(loss.item())
        _polyak(self.live.q_r, self.target.q_r, self.settings.polyak)
        _polyak(self.live.q_h, self.target.q_h, self.settings.polyak)
        return out

    def runtime(self, reward_scale: float) -> FisorModels:
        """The networks that run: EMA policy, target Q_h and Q_r, the current V_h and V_r."""
        networks = FisorNetworks(self.settings.architecture(), self.settings.ddpm_temperature)
        networks.scale.load_state_dict(self.live.scale.state_dict())
        networks.policy.load_state_dict(self.target.policy.state_dict())
        networks.q_h.load_state_dict(self.target.q_h.state_dict())
        networks.q_r.load_state_dict(self.target.q_r.state_dict())
        networks.v_h.load_state_dict(self.live.v_h.state_dict())
        networks.v_r.load_state_dict(self.live.v_r.state_dict())
        return FisorModels(networks.eval(), self.settings, reward_scale)


def _polyak(source: torch.nn.Module, target: torch.nn.Module, rate: float) -> None:
    with torch.no_grad():
        for p, p_target in zip(source.parameters(), target.parameters()):
            p_target.mul_(1.0 - rate).add_(rate * p)


def reward_scale(reward: np.ndarray, episode: np.ndarray, rows: np.ndarray) -> float:
    """The reference's return normalisation: ``longest episode / (max return - min return)`` over
    the episodes of ``rows`` (1 when all returns are equal)."""
    ids, inverse = np.unique(episode[rows], return_inverse=True)
    returns = np.bincount(inverse, weights=reward[rows], minlength=len(ids))
    spread = float(returns.max() - returns.min()) if len(ids) else 0.0
    longest = int(np.bincount(inverse).max()) if len(ids) else 1
    return longest / spread if spread > 1e-9 else 1.0


def train_fisor(
    arrays: dict[str, np.ndarray], settings: FisorTraining, progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> tuple[FisorModels, dict[str, Any]]:
    """Train FISOR on a data file's decision rows (``arrays``, ``meta``: :func:`load_decisions`;
    without ``meta`` the reward uses the shipped config's weights); returns the run-time models and
    the held-out figures (episodes split by :func:`~bresa_control.learning.critic.split_episodes`)."""
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        torch.manual_seed(settings.seed)
        rng = np.random.default_rng(settings.seed)
        generator = torch.Generator().manual_seed(settings.seed)
        data = decision_transitions(arrays, meta)
        train, held = split_episodes(data.episode, settings.holdout_fraction, settings.seed)
        if len(train) == 0:
            raise ValueError("FISOR needs at least two episodes: one to train on, one held out")
        learner = FisorLearner(settings, generator)
        learner.live.scale.fit(torch.as_tensor(data.states()[0][train]))
        learner.target.scale.load_state_dict(learner.live.scale.state_dict())
        scale = reward_scale(data.reward, data.episode, train) if settings.normalize_rewards else 1.0
        tensors = _Tensors(data, learner.live, settings.cost_scale, scale)
        critic_rows = train[data.has_target[train]]
        if len(critic_rows) == 0:
            raise ValueError("no training row has a critic target (every episode is a single truncated row)")
        running: dict[str, float] = {}
        with tqdm(total=settings.steps, desc="fisor", unit="step", disable=not progress,
                  mininterval=1.0 if sys.stderr.isatty() else 10.0) as bar:
            for step in range(settings.steps):
                for _ in range(settings.actor_updates):
                    idx = rng.choice(train, settings.actor_batch_size)
                    actor_loss, mean_weight = learner.actor_update(tensors.s[idx], tensors.a[idx])
                losses = learner.critic_update(*tensors.batch(rng.choice(critic_rows, settings.critic_batch_size)))
                losses.update(actor=actor_loss, weight=mean_weight)
                for k, v in losses.items():
                    running[k] = v if k not in running else 0.99 * running[k] + 0.01 * v
                if step % 200 == 0 or step == settings.steps - 1:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()})
                bar.update(1)
        models = learner.runtime(scale)
        metrics = _figures(learner, models, data, tensors, train, held, settings)
        metrics.update(train_running_losses=running, reward_scale=scale, data=data.counts, sources=data.source,
                       train_seconds=time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return models, metrics


def _figures(learner: FisorLearner, models: FisorModels, data: DecisionTransitions, tensors: _Tensors,
             train: np.ndarray, held: np.ndarray, settings: FisorTraining) -> dict[str, Any]:
    """Held-out (and training) figures of the trained networks."""
    net = models.networks
    labels = violation_within(data.cost, data.episode, settings.label_decisions)
    out: dict[str, Any] = {"label": f"violation within {settings.label_decisions} decisions of the episode",
                           "holdout_rows": int(len(held)), "train_rows": int(len(train)),
                           "holdout_episodes": int(len(np.unique(data.episode[held]))),
                           "holdout_positive_rows": int(labels[held].sum())}
    with torch.no_grad():
        for name, rows in (("holdout", held), ("train", train)):
            s, a = tensors.s[torch.as_tensor(rows)], tensors.a[torch.as_tensor(rows)]
            v_h = net.v_h(s).numpy()
            q_h = net.q_h(s, a).amax(-1).numpy()
            out[f"v_h_auroc_{name}"] = auroc(v_h, labels[rows])
            out[f"q_h_auroc_{name}"] = auroc(q_h, labels[rows])
            out[f"feasible_fraction_{name}"] = float((v_h <= 0).mean())
            if name == "holdout":
                out["v_h_confusion_holdout"] = _confusion(v_h > 0, labels[rows].astype(bool))
                weights = policy_weights(net.q_r(s, a).amin(-1), net.v_r(s), net.q_h(s, a).amax(-1), net.v_h(s),
                                         settings.reward_temperature, settings.cost_temperature,
                                         settings.reward_weight_max, settings.cost_weight_max)
                out["policy_weight_mean_holdout"] = float(weights.mean())
                out["policy_weight_zero_fraction_holdout"] = float((weights == 0).float().mean())
                out["diffusion_loss_holdout"] = float(net.policy.loss(s, a, None, torch.Generator().manual_seed(0)))
        targets = held[data.has_target[held]]
        if len(targets):
            batch = tensors.batch(targets)
            out["critic_losses_holdout"] = {name: float(learner.critic_loss(name, *batch)) for name in CRITICS}
    return out


def _confusion(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Counts and rates of ``predicted`` against ``actual`` (booleans)."""
    tp, fp = int((predicted & actual).sum()), int((predicted & ~actual).sum())
    fn, tn = int((~predicted & actual).sum()), int((~predicted & ~actual).sum())
    return {"true_positive": tp, "false_positive": fp, "false_negative": fn, "true_negative": tn,
            "true_positive_rate": tp / (tp + fn) if tp + fn else float("nan"),
            "false_positive_rate": fp / (fp + tn) if fp + tn else float("nan")}


# ---- export ---------------------------------------------------------------------------------


def export_fisor(models: FisorModels, folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``folder/fisor_policy.pt`` (state dict and architecture, atomically) and its card:
    ``card`` (command, seed, data, evaluation: relative paths only) with what the loader checks.
    Returns the model file's path."""
    absolute = [value for value in _strings(card) if os.path.isabs(value)]
    if absolute:
        raise ValueError(f"a model card holds no machine paths; found {absolute}")
    settings = models.settings
    path = Path(folder) / FISOR_FILE
    with atomic_output(path) as tmp:
        torch.save(payload(models.networks), tmp)
    write_card(path, {
        **card,
        "kind": FISOR_KIND,
        "method": "FISOR (Zheng et al., ICLR 2024): reachability critics, feasibility-guided diffusion policy",
        "observation_size": STATE_SIZE,
        "observation_labels": list(STATE_LABELS),
        "action_size": POLICY_ACTION_SIZE,
        "architecture": models.networks.arch.to_dict(),
        "samples": settings.samples,
        "selection": settings.selection,
        "feasible": "V_h(s) <= 0 (h = +cost_scale on a violation, -1 otherwise)",
        "cost_scale": settings.cost_scale,
        "gamma": settings.gamma,
        "reward_scale": models.reward_scale,
        "training": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()},
        "torch": torch.__version__,
    })
    return path


def train_and_export(
    config: BresaConfig, models_dir: str | Path, data_path: str | Path, settings: FisorTraining,
    tensorboard_dir: str | None = None, progress: bool = True, command: Sequence[str] = (),
) -> dict[str, Any]:
    """``bresa train-fisor``: train on ``data_path``'s decision rows, run the policy once on the
    held-out selection episodes (nominal, nothing chosen by them), and write
    ``models_dir/fisor/fisor_policy.pt`` with its card; returns the card. ``tensorboard_dir`` is
    accepted for the registry's common call and unused (the card holds the losses). Interrupted, it
    leaves the previous model in place."""
    from bresa_control.learning.policy_training import SELECTION_SEED_BASE
    from bresa_control.policies.fisor import FISOR_DIR, FisorPolicy
    from bresa_control.simulation.env import TaskEnv
    from bresa_control.simulation.rollout import run_episode, summarise
    from bresa_control.tasks import make_task

    started = time.monotonic()
    arrays, meta = load_decisions(data_path)
    models, metrics = train_fisor(arrays, settings, progress, meta)
    folder = Path(models_dir) / FISOR_DIR
    incoming = folder.with_name(folder.name + ".incoming")  # the model and its card go in whole, or not at all
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    task = make_task(meta.get("task", UNNAMED_TASK), config)  # the data's: its scripted actions are that task's
    card: dict[str, Any] = {
        "command": list(command), "seed": settings.seed, "task": task.name, "config": config_to_dict(config),
        "data": {"path": portable(data_path), "format": meta.get("format"), "command": meta.get("command"),
                 "complete": meta.get("complete")},
        "holdout": metrics,
    }
    path = export_fisor(models, incoming, card)
    seeds = [SELECTION_SEED_BASE + i for i in range(settings.evaluate_episodes)]
    no_reflex = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="off"))
    policy = FisorPolicy(incoming, no_reflex, seed=settings.seed, base=task.scripted())
    env = TaskEnv(no_reflex, task=task)
    results = [run_episode(env, policy, seed) for seed in tqdm(seeds, desc="fisor held-out", disable=not progress)]
    summary = summarise("fisor", "nominal", results)
    card["selection_episodes"] = {"seeds": [seeds[0], seeds[-1]], "episodes": len(seeds), **{
        k: None if math.isnan(summary[k]) else summary[k]
        for k in ("success_rate", "violation_rate", "insertion_time_s_mean", "peak_force_n_max")}}
    card["training_wall_time_s"] = round(time.monotonic() - started, 1)
    write_card(path, {**read_card(path), **card})
    if folder.exists():
        shutil.rmtree(folder)
    incoming.rename(folder)
    return read_card(folder / FISOR_FILE)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []
