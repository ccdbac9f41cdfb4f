"""``bresa train-recovery-rl``: the Recovery RL baseline (Thananjeyan et al., 2021) made as published.

1. **Its own critic**, offline: the collected data aggregated to decisions (``decision_*`` arrays
   of ``bresa collect``: the policy's observation, the environment action, the cost of the
   decision), features by :class:`~bresa_control.safety.recovery_rl.DecisionFeatures`; the same
   twin-head TD learner as Bresa's critic (:class:`~bresa_control.learning.critic.RiskTD`,
   pessimistic max) with ``recovery_rl.gamma_risk`` per decision. Held-out AUROC in its card.
2. **Its own recovery policy**, offline: ``pi_rec(s)`` over the whole action space, minimising the
   frozen critic's risk (the paper's model-free recovery).
3. **Its own task policy**: residual SAC trained with the layer in the loop. Action relabelling as
   in the paper: SAC's buffer keeps the action the task policy *proposed*, the critic's online
   buffer the action that *ran*. Every ``refine_every`` decisions the critic gets ``refine_steps``
   TD updates on the offline plus the online decisions, and the recovery as many steps against it.
4. Checkpoint selection and deployment use the offline layer, as Bresa's protocol does with its
   shipped critic: what is selected is what is evaluated.

Everything is written at the end, atomically, to ``<models>/recovery_rl/``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor

from bresa_control.common.cards import (
    CRITIC_FILE,
    POLICY_FILE,
    RECOVERY_FILE,
    RECOVERY_RL_DIR,
    UNNAMED_TASK,
    write_card,
)
from bresa_control.common.config import BresaConfig
from bresa_control.common.files import atomic_output
from bresa_control.contract import POLICY_ACTION_SIZE, Controller
from bresa_control.learning import collect
from bresa_control.learning.critic import (
    RecoveryFit,
    RecoveryPolicy,
    RiskTD,
    TwinRiskCritic,
    settings_dict,
    train_critic,
    train_recovery,
)
from bresa_control.learning.critic_training import save_model
from bresa_control.learning.policy_training import BestCheckpoint, CriticRefinement, ProgressBar, make_sac, policy_card
from bresa_control.learning.residual_task import ResidualTask
from bresa_control.learning.settings import CriticTraining, RecoveryRLTraining, training_config
from bresa_control.safety.models import TorchPolicy, TorchRisk
from bresa_control.safety.recovery_rl import (
    CRITIC_KIND,
    DECISION_FEATURE_SIZE,
    DECISION_STATE_SIZE,
    RECOVERY_KIND,
    DecisionFeatures,
    DecisionShield,
    RecoveryRLController,
    model_expectations,
)
from bresa_control.simulation.env import TaskEnv


def decision_arrays(arrays: dict[str, np.ndarray], config: BresaConfig) -> dict[str, np.ndarray]:
    """The decision-level rows of collected data as critic inputs (features, cost, episode)."""
    features = DecisionFeatures(config).features(arrays["decision_observation"], arrays["decision_action"])
    return {"features": features, "cost": arrays["decision_cost"], "episode": arrays["decision_episode"]}


def decision_recovery(hidden: int) -> RecoveryPolicy:
    """Recovery RL's recovery: state features to an environment action anywhere in [-1, 1]^7."""
    return RecoveryPolicy(DECISION_STATE_SIZE, hidden, POLICY_ACTION_SIZE,
                          low=(-1.0,) * POLICY_ACTION_SIZE, high=(1.0,) * POLICY_ACTION_SIZE)


def train_layer(
    config: BresaConfig, rows: dict[str, np.ndarray], settings: CriticTraining, seed: int, progress: bool = True,
) -> tuple[TwinRiskCritic, RecoveryPolicy, dict[str, Any], dict[str, Any]]:
    """Recovery RL's critic and recovery, trained offline on decision rows; returns both and their
    held-out figures (critic: AUROC of violation within the horizon, in decisions)."""
    critic, critic_metrics = train_critic(rows, settings, seed, config.recovery_rl.eps_risk, progress)
    recovery, recovery_metrics = train_recovery(critic, rows, settings, seed, progress,
                                                policy=decision_recovery(settings.hidden),
                                                kept_mask=np.zeros(POLICY_ACTION_SIZE, dtype=bool))
    return critic, recovery, critic_metrics, recovery_metrics


class ShieldedEnv(gym.Wrapper):
    """The environment behind Recovery RL's layer: each action passes the shield (the recovery's
    replaces it when risky); the executed decision and its cost go to ``recorder``."""

    def __init__(self, env: TaskEnv, shield: DecisionShield) -> None:
        super().__init__(env)
        self.shield = shield
        self.recorder: Any = None  # called with (critic features of the executed decision, its cost)
        self._observation = np.zeros(DECISION_STATE_SIZE, np.float32)

    @property
    def config(self) -> BresaConfig:
        """The environment's config (ResidualTask builds its spiral search from it)."""
        return self.env.unwrapped.config  # type: ignore[attr-defined]

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self._observation, info = self.env.reset(**kwargs)
        return self._observation, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        decision = self.shield.filter(self._observation, action)
        executed_from = self._observation
        self._observation, reward, terminated, truncated, info = self.env.step(decision.action)
        if self.recorder is not None:
            self.recorder(self.shield.features.features(executed_from, decision.action), info["cost"])
        info.update(recovered=decision.recovered, decision_risk=decision.risk)
        return self._observation, float(reward), terminated, truncated, info


class RecoveryCount(BaseCallback):
    """Counts the decisions the recovery ran during training (logged, and kept for the card)."""

    def __init__(self) -> None:
        super().__init__()
        self.recovered = 0

    def _on_step(self) -> bool:
        self.recovered += int(self.locals["infos"][0].get("recovered", False))
        self.logger.record("recovery_rl/recovered_decisions", self.recovered)
        return True


def train_recovery_rl(
    config: BresaConfig,
    models_dir: str | Path,
    data_path: str | Path,
    settings: RecoveryRLTraining,
    tensorboard_dir: str | None = "runs",
    progress: bool = True,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Train Recovery RL's layer and task policy; write all three models with cards to
    ``models_dir/recovery_rl/``; returns the task policy's card."""
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode="off"))
    arrays, meta = collect.load(data_path)
    if meta.get("task", UNNAMED_TASK) != settings.task:
        raise ValueError(f"{data_path} was collected for the {meta.get('task', UNNAMED_TASK)} task, not "
                         f"{settings.task}: collect it with bresa collect --task {settings.task}")
    rows = decision_arrays(arrays, config)
    layer_settings = CriticTraining(gamma_risk=config.recovery_rl.gamma_risk, steps=settings.critic_steps,
                                    recovery_steps=settings.recovery_steps, hidden=settings.critic_hidden)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    started = time.monotonic()
    critic, recovery, critic_metrics, recovery_metrics = train_layer(config, rows, layer_settings, settings.seed,
                                                                     progress)
    offline_critic, offline_recovery = critic.eval(), recovery.eval()

    # Training: a copy of the layer, refined online; the offline one selects and is deployed.
    live_critic, live_recovery = copy.deepcopy(critic), copy.deepcopy(recovery)
    live = DecisionShield(config, TorchRisk(live_critic, DECISION_FEATURE_SIZE),
                          TorchPolicy(live_recovery, DECISION_STATE_SIZE))
    shielded = ShieldedEnv(TaskEnv(training_config(config), task=settings.task), live)
    env = Monitor(ResidualTask(shielded, settings.residual_scale))  # type: ignore[arg-type]
    fit = RecoveryFit(live_recovery, live_critic, layer_settings.learning_rate,
                      np.zeros(POLICY_ACTION_SIZE, dtype=bool))
    rng = np.random.default_rng(settings.seed + 2)

    def refit_recovery(all_rows: torch.Tensor) -> None:
        live_recovery.train()
        for _ in range(settings.refine_steps):
            fit.update(all_rows[torch.as_tensor(rng.integers(0, len(all_rows), layer_settings.batch_size))])
        live_recovery.eval()

    refinement = CriticRefinement(RiskTD(live_critic, layer_settings), rows, settings.refine_every,
                                  settings.refine_steps, settings.seed, after_refine=refit_recovery)
    shielded.recorder = refinement.record
    deployed = DecisionShield(config, TorchRisk(offline_critic, DECISION_FEATURE_SIZE),
                              TorchPolicy(offline_recovery, DECISION_STATE_SIZE))

    def behind_layer(task: Controller) -> Controller:
        return RecoveryRLController(task, deployed)

    selection = BestCheckpoint(TaskEnv(config, task=settings.task), settings.select_every,
                               settings.select_episodes, settings.residual_scale, wrap=behind_layer)
    count = RecoveryCount()
    model = make_sac(env, settings, tensorboard_dir)
    callbacks: list[BaseCallback] = [refinement, count, selection] + (
        [ProgressBar("train-recovery-rl")] if progress else [])
    model.learn(total_timesteps=settings.timesteps, callback=callbacks, tb_log_name="sac_recovery_rl")

    folder = Path(models_dir) / RECOVERY_RL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    common = {
        **model_expectations(config), "eps_risk": config.recovery_rl.eps_risk, "seed": settings.seed,
        "command": list(command), "task": settings.task, "training": settings_dict(layer_settings),
        "torch": torch.__version__,
        "horizon_decisions": critic_metrics["horizon_ticks"],
        "data": {"file": Path(data_path).name, **{k: meta[k] for k in ("seed", "command", "episodes", "decisions")},
                 "violating_decisions": int(rows["cost"].sum())},
        "deployed": "as trained offline (online refinement shaped training only; selection used this one)",
    }
    save_model(offline_critic, folder / CRITIC_FILE, {
        "kind": CRITIC_KIND, "input_size": DECISION_FEATURE_SIZE,
        "output": "pessimistic risk max(Q1, Q2) in [0, 1] of a decision: discounted probability of a violation",
        "evaluation": {**critic_metrics, "unit": "decisions (the *_ticks fields count decisions here)"}, **common,
    })
    save_model(offline_recovery, folder / RECOVERY_FILE, {
        "kind": RECOVERY_KIND, "input_size": DECISION_STATE_SIZE, "output_size": POLICY_ACTION_SIZE,
        "output": "environment action in [-1, 1]^7 run instead of a risky task action",
        "evaluation": {**recovery_metrics, "unit": "decisions"}, **common,
    })
    with atomic_output(folder / POLICY_FILE, suffix=".zip") as tmp:
        model.save(tmp)
    card = policy_card(settings, config, command, started, selection, "SAC (stable-baselines3), residual on the "
                       "spiral search, trained behind Recovery RL's decision-level layer",
                       reflex="recovery-rl layer (own critic and recovery, refined online)",
                       selected_with="recovery-rl (the offline layer, as deployed)")
    card["recovery_rl"] = {"critic_auroc_holdout": critic_metrics["auroc_holdout"],
                           "recovered_decisions_in_training": count.recovered,
                           "online_decisions": len(refinement.cost),
                           "online_violating_decisions": refinement.online_violations}
    write_card(folder / POLICY_FILE, card)
    return card
