"""Recovery RL (Thananjeyan et al., 2021), the baseline: a safety layer at the *decision* rate.

The task policy proposes an action ``a`` once per decision (10 Hz). A risk critic
``Q_risk(s, a)`` of its own, trained on decision-level pairs, scores it once; above ``eps_risk``
the recovery policy's action ``pi_rec(s)`` runs for the whole decision instead:

    a_executed = a                if Q_risk(s, a) <= eps_risk
                 pi_rec(s)        otherwise

``s`` is the task policy's observation (contract.OBSERVATION_LABELS) normalised by
:class:`DecisionFeatures`, ``a`` is the environment action in [-1, 1]^7; ``gamma_risk`` is per
decision (``recovery_rl.gamma_risk``). Nothing here runs between decisions: that is Bresa's
reflex (reflex.py), the method this baseline is compared against.

Models live in ``models/recovery_rl/`` (``bresa train-recovery-rl``) and load with the same
fail-closed checks as the reflex's (:func:`load_recovery_rl`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.common.cards import CRITIC_FILE, RECOVERY_FILE, RECOVERY_RL_DIR, models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.contract import OBSERVATION_LABELS, POLICY_ACTION_SIZE, Controller
from bresa_control.safety.models import TorchPolicy, TorchRisk, load_model
from bresa_control.safety.reflex import RiskModel
from bresa_control.safety.risk_features import DISTANCE_CLIP, DISTANCE_SCALE_M, VELOCITY_SCALE_M_PER_S

DECISION_STATE_SIZE = len(OBSERVATION_LABELS)
DECISION_FEATURE_SIZE = DECISION_STATE_SIZE + POLICY_ACTION_SIZE
ROTATION_SCALE_RAD = 0.1
CRITIC_KIND = "recovery_rl_critic"
RECOVERY_KIND = "recovery_rl_recovery"


class DecisionFeatures:
    """The observation scaled to order one (positions by 1 cm and clipped at 5 cm, velocities by
    0.1 m/s, rotations by 0.1 rad, wrench by the limits; the previous action as it is)."""

    def __init__(self, config: BresaConfig) -> None:
        safety = config.safety
        self._force_scale = safety.max_force_n
        self._torque_scale = safety.max_torque_nm
        self._scale = np.concatenate([
            np.full(3, DISTANCE_SCALE_M), np.full(3, VELOCITY_SCALE_M_PER_S), np.full(3, ROTATION_SCALE_RAD),
            np.full(3, safety.max_force_n), np.full(3, safety.max_torque_nm), np.ones(POLICY_ACTION_SIZE),
        ])

    def state(self, observation: np.ndarray) -> np.ndarray:
        """State features (float32, :data:`DECISION_STATE_SIZE`) of one observation or a batch."""
        scaled = np.asarray(observation, dtype=np.float64) / self._scale
        scaled[..., 0:3] = np.clip(scaled[..., 0:3], -DISTANCE_CLIP, DISTANCE_CLIP)
        return scaled.astype(np.float32)

    def features(self, observation: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Critic input: state features then the action (float32, :data:`DECISION_FEATURE_SIZE`)."""
        state = self.state(observation)
        return np.concatenate([state, np.asarray(action, np.float32)], axis=-1)

    def layout(self) -> dict[str, Any]:
        """Input layout and normalisation, as stored in the model cards."""
        return {"state_labels": list(OBSERVATION_LABELS), "action": "environment action in [-1, 1]^7",
                "distance_scale_m": DISTANCE_SCALE_M, "distance_clip": DISTANCE_CLIP,
                "velocity_scale_m_per_s": VELOCITY_SCALE_M_PER_S, "rotation_scale_rad": ROTATION_SCALE_RAD,
                "force_scale_n": self._force_scale, "torque_scale_nm": self._torque_scale}


@dataclass(frozen=True)
class ShieldDecision:
    """What the layer did with one proposed action."""

    action: np.ndarray  # what runs
    risk: float  # Q_risk of the proposed action (1.0 if it or its input was not finite)
    recovered: bool  # the recovery's action replaced the proposed one


class DecisionShield:
    """The switch between task and recovery action, once per decision."""

    def __init__(self, config: BresaConfig, critic: RiskModel, recovery: TorchPolicy) -> None:
        self.features = DecisionFeatures(config)
        self.eps_risk = config.recovery_rl.eps_risk
        self.critic = critic
        self.recovery = recovery

    def filter(self, observation: np.ndarray, action: np.ndarray) -> ShieldDecision:
        """The action to execute for the task policy's ``action`` in ``observation``. A
        non-finite risk or input counts as certain risk: the recovery runs."""
        features = self.features.features(observation, action)
        risk = float(self.critic.risk(features))
        if not (math.isfinite(risk) and math.isfinite(float(features.sum()))):
            risk = 1.0
        if risk <= self.eps_risk:
            return ShieldDecision(np.asarray(action, np.float32), risk, False)
        state = np.nan_to_num(features[:DECISION_STATE_SIZE], nan=0.0, posinf=DISTANCE_CLIP, neginf=-DISTANCE_CLIP)
        recovery = np.clip(self.recovery(state), -1.0, 1.0).astype(np.float32)
        return ShieldDecision(recovery, risk, True)


class RecoveryRLController:
    """A task policy behind the decision-level layer, as a :class:`~bresa_control.contract.Controller`
    (what ``bresa evaluate --controller recovery-rl`` runs)."""

    def __init__(self, task: Controller, shield: DecisionShield) -> None:
        self.task = task
        self.shield = shield
        self.recoveries = 0  # decisions the recovery ran, since the last reset

    def reset(self) -> None:
        """Start of an episode."""
        self.task.reset()
        self.recoveries = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The task action, or the recovery's where the critic finds the task action risky."""
        decision = self.shield.filter(observation, self.task.act(observation))
        self.recoveries += int(decision.recovered)
        return decision.action


def model_expectations(config: BresaConfig) -> dict[str, Any]:
    """What the layer's model cards must say to be loaded under ``config``."""
    return {"rate_hz": 1.0 / config.env.decision_period_s, "gamma_risk": config.recovery_rl.gamma_risk,
            "feature_layout": DecisionFeatures(config).layout()}


def load_recovery_rl(config: BresaConfig, models_dir: str | Path | None = None) -> DecisionShield:
    """The layer from ``<models>/recovery_rl/`` (critic and recovery), checked against their cards
    and this config; any mismatch raises :class:`~bresa_control.common.cards.ModelError`."""
    folder = models_folder(models_dir) / RECOVERY_RL_DIR
    expected = model_expectations(config)
    critic, _ = load_model(folder / CRITIC_FILE, CRITIC_KIND, DECISION_FEATURE_SIZE, (), config, expected)
    recovery, _ = load_model(folder / RECOVERY_FILE, RECOVERY_KIND, DECISION_STATE_SIZE, (POLICY_ACTION_SIZE,),
                             config, expected)
    return DecisionShield(config, TorchRisk(critic, DECISION_FEATURE_SIZE), TorchPolicy(recovery, DECISION_STATE_SIZE))
