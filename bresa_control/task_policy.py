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
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from bresa_control.actions import ACTION_SIZE
from bresa_control.config import BresaConfig
from bresa_control.env import PegInsertion
from bresa_control.scripted import SpiralSearch

RESIDUAL_SCALE = 0.5


class ResidualTask(gym.Wrapper):
    """PegInsertion seen by the residual policy (observation + scripted action; residual action)."""

    def __init__(self, env: PegInsertion, residual_scale: float = RESIDUAL_SCALE) -> None:
        super().__init__(env)
        self.base = SpiralSearch(env.config)
        self.residual_scale = residual_scale
        inner = env.observation_space.shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(inner + ACTION_SIZE,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(ACTION_SIZE,), dtype=np.float32)
        self._base_action = np.zeros(ACTION_SIZE, dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.base.reset()
        return self._augment(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        combined = self.combine(action)
        obs, reward, terminated, truncated, info = self.env.step(combined)
        info["executed_action"] = combined
        return self._augment(obs), reward, terminated, truncated, info

    def combine(self, residual: np.ndarray) -> np.ndarray:
        """The environment action for a residual, given the last observation's scripted action."""
        return residual_action(self._base_action, residual, self.residual_scale)

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        self._base_action = self.base.act(obs)
        return np.concatenate([obs, self._base_action]).astype(np.float32)


class ResidualController:
    """A trained residual policy as an evaluation controller (``reset`` / ``act`` on env obs)."""

    def __init__(self, model: Any, config: BresaConfig, residual_scale: float = RESIDUAL_SCALE) -> None:
        self.model = model
        self.base = SpiralSearch(config)
        self.residual_scale = residual_scale

    def reset(self) -> None:
        self.base.reset()

    def act(self, observation: np.ndarray) -> np.ndarray:
        base = self.base.act(observation)
        residual, _ = self.model.predict(np.concatenate([observation, base]), deterministic=True)
        return residual_action(base, residual, self.residual_scale)


def residual_action(base: np.ndarray, residual: np.ndarray, scale: float) -> np.ndarray:
    """clip(base + scale * clip(residual)) in [-1, 1], float32."""
    residual = np.clip(np.asarray(residual, dtype=np.float32), -1.0, 1.0)
    return np.clip(base + scale * residual, -1.0, 1.0).astype(np.float32)
