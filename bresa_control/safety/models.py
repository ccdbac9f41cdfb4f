"""Shipped models and their cards: writing them, and loading them so that a mismatch fails closed.

Every model file ``models/<name>.pt`` has a card ``models/<name>.json``. Loading checks that both
exist, that the card is of the expected kind, that the card's input size equals the model's and the
feature layout (normalisation included) equals what this config produces, and that a probe input
gives an output of the right shape. Anything else raises :class:`ModelError` naming the file and
the mismatch: the reflex never runs on a model it cannot vouch for.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bresa_control.common.cards import (
    CRITIC_FILE,
    FEASIBILITY_FILE,
    RECOVERY_FILE,
    UNNAMED_TASK,
    ModelError,
    card_path,
    check_task,
    models_folder,
    read_card,
)
from bresa_control.common.config import BresaConfig
from bresa_control.safety.risk_features import (
    ACTION_SIZE,
    FEATURE_SIZE,
    RECOVERY_KEEPS,
    STATE_SIZE,
    FeatureMap,
    keep_from_replaced,
)

# reflex.gate -> the model it scores with, and that model's kind (its card says which)
GATE_MODELS = {"q-risk": (CRITIC_FILE, "safety_critic"), "feasibility": (FEASIBILITY_FILE, "feasibility_critic")}
# TorchScript profiles and optimises a module on its first calls (about 1 ms each here, against
# ~30 us afterwards): run them at load, so the first reflex does not pay for them.
WARMUP_CALLS = 3


class _TorchCall:
    """One module called on one input vector at a time, at 1 kHz, with as little around the call
    as possible: a TorchScript module is frozen (its weights become constants, so no autograd
    and no grad-mode switch is needed) and its input is one tensor allocated once, filled in
    place. An eager module (a critic being refined while the policy trains) keeps its live
    weights and runs without gradients."""

    def __init__(self, module: torch.nn.Module, input_size: int) -> None:
        self.module = module  # as loaded: its state_dict stays readable
        self._input = torch.zeros(1, input_size)
        self._input_view = self._input.numpy()[0]  # shares memory with the tensor
        self._frozen: torch.jit.ScriptModule | None = None
        if isinstance(module, torch.jit.ScriptModule):
            with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still supported
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
                self._frozen = torch.jit.freeze(module.eval())

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        self._input_view[:] = x
        if self._frozen is not None:
            return self._frozen(self._input)[0]
        with torch.inference_mode():
            return self.module(self._input)[0]


class TorchRisk:
    """A TorchScript (or eager) critic as a :class:`~bresa_control.safety.reflex.RiskModel`."""

    def __init__(self, module: torch.nn.Module, input_size: int = FEATURE_SIZE) -> None:
        self.module = module
        self._call = _TorchCall(module, input_size)
        for _ in range(WARMUP_CALLS):
            self.risk(np.zeros(input_size, np.float32))

    def risk(self, features: np.ndarray) -> float:
        return float(self._call(features))


class TorchRecovery:
    """A TorchScript recovery policy as a :class:`~bresa_control.safety.reflex.RecoveryModel`."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self._call = _TorchCall(module, STATE_SIZE)
        for _ in range(WARMUP_CALLS):
            self.act(np.zeros(STATE_SIZE, np.float32), np.zeros(ACTION_SIZE, np.float32))

    def act(self, state_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
        return keep_from_replaced(self._call(state_features).numpy(), replaced_features)


class TorchPolicy:
    """A TorchScript (or eager) policy network: one input vector in, its output as an array."""

    def __init__(self, module: torch.nn.Module, input_size: int) -> None:
        self.module = module
        self._call = _TorchCall(module, input_size)
        for _ in range(WARMUP_CALLS):
            self(np.zeros(input_size, np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._call(x).numpy().copy()


def reflex_expectations(config: BresaConfig) -> dict[str, Any]:
    """What the reflex's model cards must say to be loaded under ``config``: the control rate,
    ``reflex.gamma_risk`` and the feature layout."""
    return {"rate_hz": 1.0 / config.env.control_period_s, "gamma_risk": config.reflex.gamma_risk,
            "feature_layout": FeatureMap(config).layout()}


def load_model(
    model_path: str | Path, kind: str, input_size: int, output_shape: tuple[int, ...], config: BresaConfig,
    expected: dict[str, Any] | None = None,
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load and check one TorchScript model against its card and this config; ``expected``: the
    rate, discount and feature layout its card must state (default: the reflex's)."""
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
    expected = reflex_expectations(config) if expected is None else expected
    rate_hz, gamma = expected["rate_hz"], expected["gamma_risk"]
    if card.get("rate_hz") != rate_hz or card.get("gamma_risk") != gamma:
        raise ModelError(
            f"model card {path} is for {card.get('rate_hz')} Hz with gamma_risk "
            f"{card.get('gamma_risk')}, but this config runs it at {rate_hz} Hz with gamma_risk {gamma}"
        )
    layout = expected["feature_layout"]
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
    config: BresaConfig, models_dir: str | Path | None = None, task: str = UNNAMED_TASK
) -> tuple[TorchRisk, TorchRecovery, dict[str, Any]]:
    """The shipped (or given) critic of the configured gate (``reflex.gate``: the risk critic, or
    the feasibility critic) and the recovery policy, checked (trained for ``task`` too); returns
    them and the critic's card."""
    folder = models_folder(models_dir)
    critic_file, kind = GATE_MODELS[config.reflex.gate]
    critic, card = load_model(folder / critic_file, kind, FEATURE_SIZE, (), config)
    recovery, recovery_card = load_model(folder / RECOVERY_FILE, "recovery_policy", STATE_SIZE, (ACTION_SIZE,), config)
    check_task(card, folder / critic_file, task)
    check_task(recovery_card, folder / RECOVERY_FILE, task)
    if recovery_card.get("kept_from_replaced_action") != list(RECOVERY_KEEPS):
        raise ModelError(
            f"model card {card_path(folder / RECOVERY_FILE)} was trained keeping "
            f"{recovery_card.get('kept_from_replaced_action')} from the replaced action, but this build's "
            f"reflex keeps {list(RECOVERY_KEEPS)} (risk_features.RECOVERY_KEEPS); retrain it"
        )
    return TorchRisk(critic), TorchRecovery(recovery), card
