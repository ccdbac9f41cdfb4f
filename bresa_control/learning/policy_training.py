"""``bresa train-policy``: SAC with the reflex in the loop and the risk critic refined online.

* The environment runs Bresa (``reflex.mode: control-rate``) with the shipped critic and
  recovery policy: exploration is filtered by the reflex at every control tick.
* Action relabelling: SAC's replay buffer stores the residual the policy *proposed* (what
  ``env.step`` received); the critic's buffer stores the command that was *executed* at each tick
  (recorded by the environment after the reflex).
* Every ``refine_every`` decisions the critic gets ``refine_steps`` TD updates on the offline data
  plus everything recorded online (:class:`~bresa_control.learning.critic.RiskTD`, the same learner as
  offline training); the reflex uses the refined critic immediately.
* Checkpoint selection: every ``select_every`` decisions the deterministic policy runs a fixed set
  of held-out episodes (seeds from :data:`SELECTION_SEED_BASE`, never used by ``bresa evaluate``'s
  seeds 0..N) with the shipped critic, as deployed; the weights that inserted most often (ties:
  fastest) are the ones written. SAC's performance drifts within a run, so the last weights are
  often not the best ones.
* TensorBoard logs (SB3's plus ``risk/*`` and ``selection/*``) and a progress bar. The policy and
  the refined critic are written only at the end, atomically.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback
from stable_baselines3.common.monitor import Monitor
from tqdm import tqdm

from bresa_control.common.cards import (
    FEASIBILITY_FILE,
    FEASIBILITY_POLICY_DIR,
    POLICY_FILE,
    RECOVERY_FILE,
    REFINED_CRITIC_FILE,
    models_folder,
    write_card,
)
from bresa_control.common.config import BresaConfig, config_to_dict
from bresa_control.common.files import atomic_output
from bresa_control.contract import Controller
from bresa_control.learning import collect
from bresa_control.learning.critic import RiskTD, Transitions, TwinRiskCritic, export
from bresa_control.learning.residual_task import ResidualTask
from bresa_control.learning.settings import CriticTraining, PolicyTraining, SacTraining, training_config
from bresa_control.policies.residual import RESIDUAL_SCALE, ResidualController
from bresa_control.safety.models import TorchRisk, load_reflex_models
from bresa_control.safety.risk_features import FEATURE_SIZE
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.rollout import run_episode, summarise

# Episode seeds of checkpoint selection: far from bresa evaluate's (0, 1, ...), so the figures a
# policy is reported with come from episodes its selection never saw.
SELECTION_SEED_BASE = 1_000_000


class CriticRefinement(BaseCallback):
    """Refines a risk critic by TD every ``refine_every`` env steps on the offline data plus what
    :meth:`record` received since training began (executed actions: ticks for Bresa's critic,
    decisions for Recovery RL's); ``after_refine`` gets the combined rows (a recovery fit)."""

    def __init__(
        self, learner: RiskTD, offline: dict[str, np.ndarray], refine_every: int, refine_steps: int, seed: int,
        after_refine: Callable[[torch.Tensor], None] | None = None,
    ) -> None:
        super().__init__()
        self.learner = learner
        self.offline = offline
        self.refine_every = refine_every
        self.refine_steps = refine_steps
        self.rng = np.random.default_rng(seed)
        self.features: list[np.ndarray] = []
        self.cost: list[float] = []
        self.episode: list[int] = []
        self.current_episode = int(offline["episode"].max()) + 1 if len(offline["episode"]) else 0
        self.online_violations = 0
        self.after_refine = after_refine

    def record(self, features: np.ndarray, cost: float) -> None:
        """One executed step (critic features, cost of what followed)."""
        self.features.append(features)
        self.cost.append(cost)
        self.episode.append(self.current_episode)
        self.online_violations += int(cost > 0)

    def _on_step(self) -> bool:
        if np.any(self.locals["dones"]):
            self.current_episode += 1
        if self.num_timesteps % self.refine_every == 0 and self.cost:
            self.refine()
        return True

    def refine(self) -> None:
        """TD updates on offline + online ticks."""
        arrays = {
            "features": np.concatenate([self.offline["features"], np.asarray(self.features, np.float32)]),
            "cost": np.concatenate([self.offline["cost"], np.asarray(self.cost, np.uint8)]),
            "episode": np.concatenate([self.offline["episode"], np.asarray(self.episode, np.int32)]),
        }
        settings = self.learner.settings
        data = Transitions.from_arrays(arrays, int(round(1.0 / (1.0 - settings.gamma_risk))))
        indices = np.arange(len(data.cost))
        positives = np.flatnonzero(data.label)
        self.learner.critic.train()
        losses = [
            self.learner.update(*data.sample(self.rng, indices, positives, settings.batch_size,
                                             settings.positive_fraction))
            for _ in range(self.refine_steps)
        ]
        self.learner.critic.eval()
        if self.after_refine is not None:
            self.after_refine(data.features)
        self.logger.record("risk/td_loss", float(np.mean(losses)))
        self.logger.record("risk/online_ticks", len(self.cost))
        self.logger.record("risk/online_violating_ticks", self.online_violations)


class BestCheckpoint(BaseCallback):
    """Every ``every`` decisions, and at the end, runs the deterministic policy on the same
    ``episodes`` held-out episodes in ``env`` and keeps the weights with the fewest violations and
    then the highest mean return (:func:`_rank`); at the end of training the model holds them."""

    def __init__(self, env: TaskEnv, every: int, episodes: int, residual_scale: float = RESIDUAL_SCALE,
                 wrap: Callable[[Controller], Controller] = lambda controller: controller) -> None:
        super().__init__()
        self.env = env
        self.wrap = wrap  # what runs around the task policy as deployed (Recovery RL's layer)
        self.every = every
        self.residual_scale = residual_scale
        self.seeds = [SELECTION_SEED_BASE + i for i in range(episodes)]
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self._best_weights: dict[str, Any] | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["timestep"] != self.num_timesteps:
            self.evaluate()
        if self._best_weights is not None:
            self.model.policy.load_state_dict(self._best_weights)

    def evaluate(self) -> None:
        """Score the current weights; remember them if they are the best so far."""
        controller = self.wrap(ResidualController(self.model, self.env.config, self.residual_scale,
                                                  self.env.task.scripted()))
        results = [run_episode(self.env, controller, s) for s in self.seeds]
        summary = summarise("selection", "nominal", results)
        time_s = summary["insertion_time_s_mean"]
        row = {"timestep": self.num_timesteps, "success_rate": summary["success_rate"],
               "violation_rate": summary["violation_rate"],
               "safe_success_rate": sum(r.inserted and not r.violation for r in results) / len(results),
               "mean_return": float(np.mean([r.episode_return for r in results])),
               "insertion_time_s": time_s if np.isfinite(time_s) else None}
        self.history.append(row)
        self.logger.record("selection/success_rate", row["success_rate"])
        if row["insertion_time_s"] is not None:
            self.logger.record("selection/insertion_time_s", row["insertion_time_s"])
        if self.best is None or _rank(row) > _rank(self.best):
            self.best = row
            self._best_weights = copy.deepcopy(self.model.policy.state_dict())


def _rank(row: dict[str, Any]) -> tuple[float, float]:
    """Order of checkpoints: fewer violations first, then the higher mean return of the task's
    reward (success, distance, force and time together: what the policy was trained for).

    Success first, then time (the rule before) chose a slow early checkpoint that inserted 20 of
    20 over ones that inserted 19 of 20 in three quarters of its time: on 20 episodes one episode
    decided, and the time the issue asks for was never weighed against it."""
    return -row["violation_rate"], row["mean_return"]


class ProgressBar(ProgressBarCallback):
    """SB3's progress bar, drawn with plain tqdm when stderr is not a terminal (a log file, CI):
    there rich's live bar would show nothing until training ends."""

    def __init__(self, desc: str = "train-policy") -> None:
        super().__init__()
        self.desc = desc

    def _on_training_start(self) -> None:
        if sys.stderr.isatty():
            super()._on_training_start()
        else:
            total = self.locals["total_timesteps"] - self.model.num_timesteps
            self.pbar = tqdm(total=total, desc=self.desc, unit="step", mininterval=10.0)


def train_task_policy(
    config: BresaConfig,
    models_dir: str | Path | None,
    data_path: str | Path,
    settings: PolicyTraining,
    tensorboard_dir: str | None = "runs",
    progress: bool = True,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Train the residual SAC policy with Bresa in the loop; write the best checkpoint of the policy
    (see :class:`BestCheckpoint`) as ``task_policy.zip`` and the refined critic as
    ``safety_critic_refined.pt``: the shipped critic is never written over. Under ``reflex.gate:
    feasibility`` the loop runs the feasibility critic as shipped: it is not refined online."""
    folder = models_folder(models_dir)
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="control-rate"))
    shipped_critic, recovery, critic_card = load_reflex_models(config, folder, settings.task)
    refines = config.reflex.gate == "q-risk"
    critic = _eager_critic(shipped_critic.module, critic_card) if refines else None
    offline = collect.load(data_path)[0] if refines else None

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    started = time.monotonic()
    base_env = TaskEnv(training_config(config), TorchRisk(critic) if critic is not None else shipped_critic,
                            recovery, task=settings.task)
    env = Monitor(ResidualTask(base_env, settings.residual_scale))
    callbacks: list[BaseCallback] = []
    refinement = None
    if critic is not None and offline is not None:
        critic_settings = CriticTraining(**{**critic_card["training"], "gamma_risk": config.reflex.gamma_risk})
        refinement = CriticRefinement(RiskTD(critic, critic_settings), offline, settings.refine_every,
                                      settings.refine_steps, settings.seed)
        base_env.tick_recorder = refinement.record
        callbacks.append(refinement)
    model = make_sac(env, settings, tensorboard_dir)
    # Selection runs what is deployed: the shipped (offline) critic, not the one refined here.
    deployed = TaskEnv(config, shipped_critic, recovery, task=settings.task)
    selection = BestCheckpoint(deployed, settings.select_every, settings.select_episodes, settings.residual_scale)
    callbacks += [selection] + ([ProgressBar()] if progress else [])
    model.learn(total_timesteps=settings.timesteps, callback=callbacks, tb_log_name="sac_bresa")

    with atomic_output(folder / POLICY_FILE, suffix=".zip") as tmp:
        model.save(tmp)
    if critic is not None and refinement is not None:
        write_refined_critic(folder, critic, critic_card, refinement, settings, command)
    card = policy_card(settings, config, command, started, selection, "SAC (stable-baselines3), residual on the task's "
                       "scripted controller", reflex="control-rate",
                       selected_with=f"bresa (shipped critic of gate {config.reflex.gate}, control-rate)")
    write_card(folder / POLICY_FILE, card)
    return card


def train_feasibility_gated_policy(
    config: BresaConfig, models_dir: str | Path | None, data_path: str | Path, settings: PolicyTraining,
    tensorboard_dir: str | None = "runs", progress: bool = True, command: Sequence[str] = (),
) -> dict[str, Any]:
    """``bresa-feasibility``'s task policy: :func:`train_task_policy` with ``reflex.gate:
    feasibility`` (the reflex scores with ``feasibility_critic.pt``), in ``models_dir/bresa_feasibility/``
    beside copies of the feasibility critic and the recovery of ``models_dir`` (so that it does not
    write over Bresa's ``task_policy.zip`` there)."""
    from bresa_control.learning.seeds import copy_reflex_models

    folder = models_folder(models_dir) / FEASIBILITY_POLICY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    copy_reflex_models(models_folder(models_dir), folder, (FEASIBILITY_FILE, RECOVERY_FILE))
    gated = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, gate="feasibility"))
    return train_task_policy(gated, folder, data_path, settings, tensorboard_dir, progress, command)


def write_refined_critic(folder: Path, critic: TwinRiskCritic, critic_card: dict[str, Any],
                         refinement: CriticRefinement, settings: PolicyTraining, command: Sequence[str]) -> None:
    """``safety_critic_refined.pt`` and its card: the critic as refined online (never shipped)."""
    refined_path = folder / REFINED_CRITIC_FILE
    with atomic_output(refined_path) as tmp:
        export(critic.eval(), tmp)
    # The held-out figures describe the critic before refinement: keep them, under a name that says so.
    offline_card = {k: v for k, v in critic_card.items() if k not in ("format", "evaluation")}
    write_card(refined_path, {
        **offline_card,
        "kind": "safety_critic_refined",
        "evaluation_before_online_refinement": critic_card.get("evaluation"),
        "online_refinement": {"command": list(command), **dataclasses.asdict(settings),
                              "online_ticks": len(refinement.cost),
                              "online_violating_ticks": refinement.online_violations},
    })


def make_sac(env: Any, settings: SacTraining, tensorboard_dir: str | None, **extra: Any) -> SAC:
    """stable-baselines3's SAC on the residual task with the settings' hyperparameters (``extra``:
    more of SAC's arguments, such as a replay buffer class)."""
    return SAC(
        "MlpPolicy", env, seed=settings.seed, device="cpu", learning_starts=settings.learning_starts,
        buffer_size=settings.replay_size, batch_size=settings.batch_size, gamma=settings.gamma,
        train_freq=settings.train_freq, gradient_steps=settings.gradient_steps, tensorboard_log=tensorboard_dir,
        policy_kwargs={"net_arch": list(settings.net_arch)}, verbose=0, **extra,
    )


def policy_card(settings: SacTraining, config: BresaConfig, command: Sequence[str], started_s: float,
                selection: BestCheckpoint, algorithm: str, reflex: str, selected_with: str) -> dict[str, Any]:
    """A task policy's card: how it was made (command, every setting, config, wall time, the reflex
    during training) and which checkpoint the held-out selection kept."""
    return {
        "kind": "task_policy", "algorithm": algorithm, "task": settings.task,
        "residual_scale": settings.residual_scale, "observation": "env observation (22) + scripted action (7)",
        "seed": settings.seed, "timesteps": settings.timesteps, "command": list(command),
        "settings": {**dataclasses.asdict(settings), "net_arch": list(settings.net_arch)},
        "reflex_during_training": reflex, "config": config_to_dict(config),
        "training_wall_time_s": round(time.monotonic() - started_s, 1), "threads": settings.threads,
        "checkpoint_selection": {
            "every_timesteps": settings.select_every, "episodes": settings.select_episodes,
            "seeds": [selection.seeds[0], selection.seeds[-1]], "controller": selected_with,
            "selected": selection.best, "history": selection.history,
        },
    }


def _eager_critic(scripted: torch.jit.ScriptModule, card: dict[str, Any]) -> TwinRiskCritic:
    """The shipped TorchScript critic's weights in an eager module, to keep training it."""
    critic = TwinRiskCritic(FEATURE_SIZE, card["training"]["hidden"])
    critic.load_state_dict(scripted.state_dict())
    return critic.eval()

