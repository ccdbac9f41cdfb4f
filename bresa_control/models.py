"""Shipped models and their cards: writing them, and loading them so that a mismatch fails closed.

Every model file ``models/<name>.pt`` has a card ``models/<name>.json``. Loading checks that both
exist, that the card is of the expected kind, that the card's input size equals the model's and the
feature layout (normalisation included) equals what this config produces, and that a probe input
gives an output of the right shape. Anything else raises :class:`ModelError` naming the file and
the mismatch: the reflex never runs on a model it cannot vouch for.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bresa_control.config import BresaConfig
from bresa_control.files import write_json_atomic
from bresa_control.paths import find_data
from bresa_control.risk_features import (
    ACTION_SIZE, FEATURE_SIZE, RECOVERY_KEEPS, STATE_SIZE, FeatureMap, keep_from_replaced,
)

CRITIC_FILE = "safety_critic.pt"
POLICY_FILE = "task_policy.zip"
RECOVERY_FILE = "recovery_policy.pt"
CARD_FORMAT = "bresa-model-card/1"


def models_folder(models_dir: str | Path | None = None) -> Path:
    """``models_dir`` if given, else the shipped ``models/`` (source tree or installed share/)."""
    return Path(models_dir) if models_dir is not None else find_data("models")


class ModelError(RuntimeError):
    """A model file or its card is missing, unreadable or does not match what is expected."""


def card_path(model_path: str | Path) -> Path:
    """The card beside a model: same name, ``.json``."""
    return Path(model_path).with_suffix(".json")


def write_card(model_path: str | Path, card: dict[str, Any]) -> None:
    """Write a model card atomically."""
    write_json_atomic(card_path(model_path), {"format": CARD_FORMAT, **card})


def read_card(model_path: str | Path) -> dict[str, Any]:
    """The card of a model; raises :class:`ModelError` if it is missing or not a card."""
    path = card_path(model_path)
    if not Path(model_path).is_file():
        raise ModelError(f"model file {model_path} does not exist")
    if not path.is_file():
        raise ModelError(f"model card {path} for {model_path} does not exist")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"model card {path} is not valid JSON: {exc}") from None
    if card.get("format") != CARD_FORMAT:
        raise ModelError(f"model card {path} has format {card.get('format')!r}, expected {CARD_FORMAT!r}")
    return card


# TorchScript profiles and optimises a module on its first calls (about 1 ms each here, against
# ~30 us afterwards): run them at load, so the first reflex does not pay for them.
WARMUP_CALLS = 3


class TorchRisk:
    """A TorchScript critic as a :class:`~bresa_control.reflex.RiskModel`."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        self.module = module
        for _ in range(WARMUP_CALLS):
            self.risk(np.zeros(FEATURE_SIZE, np.float32))

    def risk(self, features: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.module(torch.from_numpy(np.ascontiguousarray(features, np.float32))[None])[0])


class TorchRecovery:
    """A TorchScript recovery policy as a :class:`~bresa_control.reflex.RecoveryModel`."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        self.module = module
        for _ in range(WARMUP_CALLS):
            self.act(np.zeros(STATE_SIZE, np.float32), np.zeros(ACTION_SIZE, np.float32))

    def act(self, state_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(state_features, np.float32))[None]
            return keep_from_replaced(self.module(x)[0].numpy(), replaced_features)


def load_model(
    model_path: str | Path, kind: str, input_size: int, output_shape: tuple[int, ...], config: BresaConfig
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load and check one TorchScript model against its card and this config."""
    card = read_card(model_path)
    path = card_path(model_path)
    if card.get("kind") != kind:
        raise ModelError(f"model card {path} is for a {card.get('kind')!r}, expected a {kind!r}")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still supported
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
            module = torch.jit.load(str(model_path), map_location="cpu")
    except Exception as exc:  # torch raises several types for a bad file
        raise ModelError(f"cannot load TorchScript model {model_path}: {exc}") from None
    module.eval()
    model_inputs = getattr(module, "input_size", None)
    if model_inputs != card.get("input_size"):
        raise ModelError(
            f"model {model_path} takes {model_inputs} inputs but its card {path} says "
            f"input_size {card.get('input_size')}"
        )
    if model_inputs != input_size:
        raise ModelError(
            f"model {model_path} takes {model_inputs} inputs, but this build's {kind} feeds "
            f"{input_size} (risk_features.py); retrain it"
        )
    rate_hz = 1.0 / config.env.control_period_s
    if card.get("rate_hz") != rate_hz or card.get("gamma_risk") != config.reflex.gamma_risk:
        raise ModelError(
            f"model card {path} is for {card.get('rate_hz')} Hz with gamma_risk "
            f"{card.get('gamma_risk')}, but this config runs at {rate_hz} Hz with gamma_risk "
            f"{config.reflex.gamma_risk}"
        )
    layout = FeatureMap(config).layout()
    if card.get("feature_layout") != layout:
        differing = sorted(k for k in layout if card.get("feature_layout", {}).get(k) != layout[k])
        raise ModelError(
            f"model card {path} was made with a different feature layout or normalisation "
            f"(differs in: {', '.join(differing) or 'keys'}); retrain the model for this config"
        )
    with torch.inference_mode():
        try:
            out = module(torch.zeros(2, input_size))
        except Exception as exc:
            raise ModelError(f"model {model_path} fails on a probe input of size {input_size}: {exc}") from None
    if tuple(out.shape) != (2, *output_shape):
        raise ModelError(
            f"model {model_path} gives outputs of shape {tuple(out.shape)[1:]}, expected {output_shape}"
        )
    return module, card


def load_reflex_models(
    config: BresaConfig, models_dir: str | Path | None = None
) -> tuple[TorchRisk, TorchRecovery, dict[str, Any]]:
    """The shipped (or given) critic and recovery policy, checked; returns them and the critic card."""
    folder = models_folder(models_dir)
    critic, card = load_model(folder / CRITIC_FILE, "safety_critic", FEATURE_SIZE, (), config)
    recovery, recovery_card = load_model(folder / RECOVERY_FILE, "recovery_policy", STATE_SIZE, (ACTION_SIZE,), config)
    if recovery_card.get("kept_from_replaced_action") != list(RECOVERY_KEEPS):
        raise ModelError(
            f"model card {card_path(folder / RECOVERY_FILE)} was trained keeping "
            f"{recovery_card.get('kept_from_replaced_action')} from the replaced action, but this build's "
            f"reflex keeps {list(RECOVERY_KEEPS)} (risk_features.RECOVERY_KEEPS); retrain it"
        )
    return TorchRisk(critic), TorchRecovery(recovery), card


def record_evaluation(models_dir: str | Path, summary: dict[str, Any], command: list[str]) -> Path:
    """Add an evaluation's figures (:func:`bresa_control.evaluate.summarise`) to the task policy's
    card, under ``evaluation`` keyed ``controller/scenario``, with the command that made them."""
    path = Path(models_dir) / POLICY_FILE
    card = read_card(path)
    card.setdefault("evaluation", {})[f"{summary['controller']}/{summary['scenario']}"] = {
        "command": list(command), **summary}
    write_card(path, {k: v for k, v in card.items() if k != "format"})
    return card_path(path)


def load_task_policy(models_dir: str | Path) -> Any:
    """The SAC task policy (stable-baselines3 zip) with its card, checked for its spaces."""
    from stable_baselines3 import SAC

    from bresa_control.actions import ACTION_SIZE as POLICY_ACTIONS
    from bresa_control.env import OBSERVATION_LABELS

    path = Path(models_dir) / POLICY_FILE
    card = read_card(path)
    if card.get("kind") != "task_policy":
        raise ModelError(f"model card {card_path(path)} is for a {card.get('kind')!r}, expected 'task_policy'")
    try:
        model = SAC.load(str(path), device="cpu")
    except Exception as exc:  # a corrupt zip raises many types
        raise ModelError(f"cannot load SAC policy {path}: {exc}") from None
    observations = len(OBSERVATION_LABELS) + POLICY_ACTIONS
    if model.observation_space.shape != (observations,) or model.action_space.shape != (POLICY_ACTIONS,):
        raise ModelError(
            f"policy {path} has observation {model.observation_space.shape} and action "
            f"{model.action_space.shape}, expected ({observations},) and ({POLICY_ACTIONS},)"
        )
    return model
