"""The environment as the residual SAC policy sees it while it trains (policies/residual.py)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from bresa_control.contract import POLICY_ACTION_SIZE
from bresa_control.policies.residual import POLICY_OBSERVATION_SIZE, RESIDUAL_SCALE, residual_action
from bresa_control.simulation.env import TaskEnv
from bresa_control.tasks.base import Task


class ResidualTask(gym.Wrapper):
    """The environment seen by the residual policy (observation + the task's scripted action;
    residual action)."""

    def __init__(self, env: TaskEnv, residual_scale: float = RESIDUAL_SCALE) -> None:
        super().__init__(env)
        task: Task = env.unwrapped.task  # type: ignore[attr-defined]  # TaskEnv, under any wrapper
        self.base = task.scripted()
        self.residual_scale = residual_scale
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(POLICY_OBSERVATION_SIZE,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(POLICY_ACTION_SIZE,), dtype=np.float32)
        self._base_action = np.zeros(POLICY_ACTION_SIZE, dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.base.reset()
        return self._augment(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        combined = self.combine(action)
        obs, reward, terminated, truncated, info = self.env.step(combined)
        info["executed_action"] = combined
        return self._augment(obs), float(reward), terminated, truncated, info

    def combine(self, residual: np.ndarray) -> np.ndarray:
        """The environment action for a residual, given the last observation's scripted action."""
        return residual_action(self._base_action, residual, self.residual_scale)

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        self._base_action = self.base.act(obs)
        return np.concatenate([obs, self._base_action]).astype(np.float32)
