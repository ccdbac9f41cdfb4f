"""``bresa train-sac-lagrangian``: the constrained-RL baseline, SAC with a learned Lagrange multiplier.

The task is the one ``bresa`` learns (the residual on the spiral search, :class:`ResidualTask`),
with no reflex and no critic: safety comes only from the training objective, the Lagrangian
relaxation of "maximise return subject to expected episode cost <= ``cost_limit``":

    max_pi min_{lambda >= 0}  E[sum r] - lambda (E[sum c] - cost_limit)

with the environment's per-decision cost ``c`` (``info["cost"]``: 1 if the wrist force, wrist
torque or workspace constraint was violated during the decision, else 0).

* **Policy step**: SAC on the Lagrangian reward ``r - lambda c``. The replay buffer keeps reward and
  cost apart (:class:`CostReplayBuffer`) and hands SAC ``r - lambda c`` with the *current* lambda at
  every sample, so old transitions never carry a stale multiplier. (OmniSafe's SAC-Lag learns a
  separate cost critic instead; with a slow dual step the two agree, and this keeps SB3's SAC
  unchanged.)
* **Dual step** (:class:`LagrangeMultiplier`, an SB3 callback): after every episode,
  ``lambda <- max(0, lambda + lagrange_lr (mean cost of the last cost_window episodes - cost_limit))``.
* Checkpoint selection, progress and the card as ``bresa train-policy`` (:mod:`policy_training`):
  selection runs the policy alone (no reflex), as it is deployed.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from bresa_control.common.cards import POLICY_FILE, SAC_LAGRANGIAN_DIR, write_card
from bresa_control.common.config import BresaConfig
from bresa_control.common.files import atomic_output
from bresa_control.learning.policy_training import BestCheckpoint, ProgressBar, make_sac, policy_card
from bresa_control.learning.residual_task import ResidualTask
from bresa_control.learning.settings import SacLagrangianTraining, training_config
from bresa_control.simulation.env import TaskEnv


class CostReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, also keeping each transition's cost; samples carry ``r - lagrange * c``
    with the multiplier as it is when they are drawn. One environment only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError(f"CostReplayBuffer takes one environment, got {self.n_envs}")
        self.costs = np.zeros((self.buffer_size, 1), dtype=np.float32)
        self.lagrange = 0.0

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store a transition and its cost (``info["cost"]``, 0 if absent)."""
        self.costs[self.pos, 0] = float(infos[0].get("cost", 0.0))
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> ReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        cost = self.to_torch(self.costs[batch_inds, 0].reshape(-1, 1))
        return samples._replace(rewards=samples.rewards - self.lagrange * cost)


class LagrangeMultiplier(BaseCallback):
    """The dual step: after each episode, move lambda by ``lr * (recent mean episode cost - limit)``,
    never below zero; the replay buffer uses the new value from its next sample on."""

    def __init__(self, cost_limit: float, lr: float, initial: float, window: int) -> None:
        super().__init__()
        self.cost_limit, self.lr = cost_limit, lr
        self.value = initial
        self.episode_costs: deque[float] = deque(maxlen=window)
        self._episode_cost = 0.0
        self.history: list[tuple[int, float, float]] = []  # (timestep, mean episode cost, lambda)

    def _on_training_start(self) -> None:
        self._buffer().lagrange = self.value

    def _buffer(self) -> Any:
        """SAC's replay buffer (a :class:`LagrangianReplayBuffer`): it reads lambda at sampling."""
        return cast(SAC, self.model).replay_buffer

    def _on_step(self) -> bool:
        self._episode_cost += float(self.locals["infos"][0].get("cost", 0.0))
        if self.locals["dones"][0]:
            self.end_episode(self._episode_cost)
            self._episode_cost = 0.0
        return True

    def end_episode(self, cost: float) -> None:
        """One episode ended with total ``cost``: take the dual step."""
        self.episode_costs.append(cost)
        mean_cost = float(np.mean(self.episode_costs))
        self.value = max(0.0, self.value + self.lr * (mean_cost - self.cost_limit))
        self._buffer().lagrange = self.value
        self.history.append((self.num_timesteps, mean_cost, self.value))
        self.logger.record("lagrange/lambda", self.value)
        self.logger.record("lagrange/episode_cost_mean", mean_cost)


def train_sac_lagrangian(
    config: BresaConfig,
    models_dir: str | Path,
    settings: SacLagrangianTraining,
    tensorboard_dir: str | None = "runs",
    progress: bool = True,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Train SAC-Lagrangian and write its best checkpoint (held-out selection, no reflex) and card
    to ``models_dir/sac_lagrangian/``; returns the card."""
    folder = Path(models_dir) / SAC_LAGRANGIAN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="off"))
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    started = time.monotonic()
    env = Monitor(ResidualTask(TaskEnv(training_config(config), task=settings.task), settings.residual_scale))
    model = make_sac(env, settings, tensorboard_dir, replay_buffer_class=CostReplayBuffer)
    dual = LagrangeMultiplier(settings.cost_limit, settings.lagrange_lr, settings.lagrange_initial,
                              settings.cost_window)
    selection = BestCheckpoint(TaskEnv(config, task=settings.task), settings.select_every,
                               settings.select_episodes, settings.residual_scale)
    callbacks: list[BaseCallback] = [dual, selection] + ([ProgressBar("train-sac-lagrangian")] if progress else [])
    model.learn(total_timesteps=settings.timesteps, callback=callbacks, tb_log_name="sac_lagrangian")
    with atomic_output(folder / POLICY_FILE, suffix=".zip") as tmp:
        model.save(tmp)
    card = policy_card(settings, config, command, started, selection, "SAC-Lagrangian (stable-baselines3 SAC on "
                       "r - lambda c, dual ascent on lambda), residual on the spiral search, no reflex",
                       reflex="off", selected_with="the policy alone (no reflex)")
    card["lagrange"] = {"final": dual.value, "history_every_episode": dual.history}
    write_card(folder / POLICY_FILE, card)
    return card
