"""The task policy: SAC (stable-baselines3) learning a residual on top of the spiral search.

Why a residual: the spiral search already finds a hole known to +-2 mm; a policy learned from
scratch must rediscover search from force feedback, which does not fit a 45-minute CPU budget.
SAC learns corrections to the scripted action (faster descent, other gains and offsets), the
approach of residual RL for insertion (Johannink et al., 2019). The combined action is an
ordinary variable-impedance action, so everything downstream (reflex, controller, nodes) is
unchanged.

Observation of the policy: the environment's 22 values followed by the scripted action (7).
Action of the policy: a residual in [-1, 1]^7; the environment receives
``clip(scripted + residual_scale * residual, -1, 1)``.

At run time only SAC's deterministic actor is needed: :func:`load_task_policy` reads its weights
from the stable-baselines3 zip into :class:`SacActor` (torch only), so the ``task_policy`` node on
the robot PC loads neither stable-baselines3 nor gymnasium. Training (``learning/``) uses
stable-baselines3 itself; a test checks that both give the same actions.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bresa_control.common.cards import POLICY_FILE, ModelError, card_path, read_card
from bresa_control.common.config import BresaConfig
from bresa_control.contract import OBSERVATION_LABELS, POLICY_ACTION_SIZE, Controller
from bresa_control.policies.scripted import SpiralSearch

RESIDUAL_SCALE = 0.5
POLICY_OBSERVATION_SIZE = len(OBSERVATION_LABELS) + POLICY_ACTION_SIZE  # env observation + scripted action


class DeterministicPolicy(Protocol):
    """What :class:`ResidualController` needs of a trained policy: stable-baselines3's ``predict``."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        """The action for one observation (and a recurrent state, unused here): SB3's signature."""


class ResidualController:
    """A trained residual policy as a controller (``reset`` / ``act`` on the env observation)."""

    def __init__(self, model: DeterministicPolicy, config: BresaConfig, residual_scale: float = RESIDUAL_SCALE,
                 base: Controller | None = None) -> None:
        """``base``: the task's scripted controller the residual is added to (a fresh one; default
        the spiral search of peg insertion)."""
        self.model = model
        self.base = base if base is not None else SpiralSearch(config)
        self.residual_scale = residual_scale

    def reset(self) -> None:
        """Start of an episode: the scripted base starts over."""
        self.base.reset()

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Scripted action plus the policy's residual, in [-1, 1]."""
        base = self.base.act(observation)
        residual, _ = self.model.predict(np.concatenate([observation, base]), deterministic=True)
        return residual_action(base, residual, self.residual_scale)


def residual_action(base: np.ndarray, residual: np.ndarray, scale: float) -> np.ndarray:
    """clip(base + scale * clip(residual)) in [-1, 1], float32."""
    residual = np.clip(np.asarray(residual, dtype=np.float32), -1.0, 1.0)
    return np.clip(base + scale * residual, -1.0, 1.0).astype(np.float32)


class SacActor(torch.nn.Module):
    """SAC's deterministic actor, ``tanh(mu(MLP(obs)))``: stable-baselines3's ``actor.latent_pi``
    (Linear-ReLU layers) and ``actor.mu``, with the same weights and the same operations."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        index = 0
        while f"actor.latent_pi.{index}.weight" in state_dict:
            weight = state_dict[f"actor.latent_pi.{index}.weight"]
            layers += [torch.nn.Linear(weight.shape[1], weight.shape[0]), torch.nn.ReLU()]
            index += 2
        self.latent_pi = torch.nn.Sequential(*layers)
        mu = state_dict["actor.mu.weight"]
        self.mu = torch.nn.Linear(mu.shape[1], mu.shape[0])
        prefix = "actor."
        self.load_state_dict({k[len(prefix):]: v for k, v in state_dict.items()
                              if k.startswith(("actor.latent_pi.", "actor.mu."))})
        self.eval()

    @property
    def sizes(self) -> tuple[int, int]:
        """(observation size, action size)."""
        first = self.latent_pi[0] if len(self.latent_pi) else self.mu
        return int(first.in_features), int(self.mu.out_features)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """Deterministic action in [-1, 1] (the mode of SAC's squashed Gaussian)."""
        return torch.tanh(self.mu(self.latent_pi(observation)))

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """stable-baselines3's ``predict`` for one observation (deterministic only)."""
        if not deterministic:
            raise ValueError("SacActor runs the deterministic policy only")
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(observation, dtype=np.float32)).reshape(1, -1)
            return self(x)[0].numpy(), None


def load_task_policy(models_dir: str | Path) -> SacActor:
    """The SAC task policy's actor from ``task_policy.zip`` (stable-baselines3's format), checked
    against its card and for its observation and action sizes; raises :class:`ModelError`."""
    path = Path(models_dir) / POLICY_FILE
    card = read_card(path)
    if card.get("kind") != "task_policy":
        raise ModelError(f"model card {card_path(path)} is for a {card.get('kind')!r}, expected 'task_policy'")
    try:
        with zipfile.ZipFile(path) as archive:
            weights = archive.read("policy.pth")
        state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        actor = SacActor(state_dict)
    except Exception as exc:  # a corrupt zip or foreign weights raise many types
        raise ModelError(f"cannot load the SAC policy's actor from {path}: {exc}") from None
    expected = (POLICY_OBSERVATION_SIZE, POLICY_ACTION_SIZE)
    if actor.sizes != expected:
        raise ModelError(f"policy {path} has observation and action sizes {actor.sizes}, expected {expected}")
    return actor
