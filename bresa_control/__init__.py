"""bresa_control: reflexive safe RL for contact-rich manipulation (ROS 2, MuJoCo, Franka).

The names a user needs, importable from the package itself::

    from bresa_control import load_config, TaskEnv
    env = TaskEnv(load_config())                # or: gymnasium.make("bresa_control/PegInsertion-v0")
    maze = TaskEnv(load_config(), task="maze")  # or: gymnasium.make("bresa_control/Maze-v0")

Layers, lowest first (each imports only from those below it; ``lint-imports`` checks it):
``common`` (config, files, model cards) and ``contract`` (the topic contract), ``control`` (robot
model, impedance law, actions, command guard), ``safety`` (reflex, risk features, model loading),
``policies`` (scripted search, the SAC actor), ``tasks`` (what a task gives the stack: fixture,
episodes, success, scripted baseline), ``runtime`` (the ROS-free loops the nodes run),
``simulation`` (MuJoCo scene, simulated arm, gymnasium environment), ``learning`` (data, critic,
policy training), ``ros`` (rclpy nodes, bringup) and ``app`` (the ``bresa`` command line).

Names are loaded on first use, so importing one layer (a robot-PC node importing ``runtime``) does
not pull in the others (MuJoCo, gymnasium, training code). The environment is registered with
gymnasium whenever gymnasium is imported, before or after this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import wrapt

if TYPE_CHECKING:
    from bresa_control.common.config import BresaConfig, ConfigError, load_config
    from bresa_control.control.impedance import CartesianImpedanceController, ImpedanceCommand
    from bresa_control.control.robot import RobotModel
    from bresa_control.runtime.safety_loop import SafetyLoop
    from bresa_control.safety.models import load_reflex_models
    from bresa_control.safety.reflex import Reflex, RiskGate
    from bresa_control.simulation.env import PegInsertion, TaskEnv

ENV_ID = "bresa_control/PegInsertion-v0"

_PUBLIC = {
    "load_config": "bresa_control.common.config",
    "BresaConfig": "bresa_control.common.config",
    "ConfigError": "bresa_control.common.config",
    "TaskEnv": "bresa_control.simulation.env",
    "PegInsertion": "bresa_control.simulation.env",
    "CartesianImpedanceController": "bresa_control.control.impedance",
    "ImpedanceCommand": "bresa_control.control.impedance",
    "RobotModel": "bresa_control.control.robot",
    "Reflex": "bresa_control.safety.reflex",
    "RiskGate": "bresa_control.safety.reflex",
    "load_reflex_models": "bresa_control.safety.models",
    "SafetyLoop": "bresa_control.runtime.safety_loop",
}
__all__ = [
    "ENV_ID", "load_config", "BresaConfig", "ConfigError", "TaskEnv", "PegInsertion", "CartesianImpedanceController",
    "ImpedanceCommand", "RobotModel", "Reflex", "RiskGate", "load_reflex_models", "SafetyLoop",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bresa_control' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


@wrapt.when_imported("gymnasium")
def _register_environment(gymnasium: Any) -> None:
    """``gymnasium.make(task.env_id)`` builds the environment of every task of
    :data:`bresa_control.tasks.TASKS` (``ENV_ID``: peg insertion) with the shipped config (keyword
    arguments go to its constructor: ``config``, ``critic``, ``recovery``, ``scenario``)."""
    from bresa_control.tasks import TASKS

    for name, task in TASKS.items():
        if task.env_id not in gymnasium.registry:
            gymnasium.register(id=task.env_id, entry_point="bresa_control.simulation.env:TaskEnv",
                               kwargs={"task": name})
