"""The controllers of the comparison, built: a task policy, the reflex it runs with, and its
environment (:data:`~bresa_control.learning.registry.CONTROLLERS` says what each is made of).

What evaluation (``app/evaluate.py``), the comparison and the Ray workers (``app/sweep.py``) build a
controller with, so that a result does not depend on where it ran.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from bresa_control.common.cards import UNNAMED_TASK
from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller
from bresa_control.learning.registry import controller
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.reflex import ForceGuardRisk, RecoveryModel, RiskModel, SoftenGains
from bresa_control.simulation.env import TaskEnv
from bresa_control.tasks import DEFAULT_TASK, make_task
from bresa_control.tasks.base import Task


@dataclass
class ControllerSetup:
    """A policy plus the reflex it runs with."""

    policy: Controller
    config: BresaConfig
    critic: RiskModel | None
    recovery: RecoveryModel | None


def make_controller(name: str, config: BresaConfig, models_dir: str | Path | None = None,
                    task: Task | None = None) -> ControllerSetup:
    """Build a named controller (:data:`~bresa_control.learning.registry.CONTROLLERS`) for ``task``
    (default peg insertion) from the shipped (or given) models; nothing is trained here."""
    spec = controller(name)
    mode = "control-rate" if spec.reflex != "off" else "off"
    config = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, mode=mode, gate=spec.gate))
    policy = spec.load_policy(config, models_dir, task)
    critic: RiskModel | None = None
    recovery: RecoveryModel | None = None
    if spec.reflex == "rule":
        critic, recovery = ForceGuardRisk(config.reflex.force_guard_fraction), SoftenGains()
    elif spec.reflex == "learned":
        critic, recovery, _ = load_reflex_models(config, spec.policy_folder(models_dir),
                                                 task.name if task is not None else UNNAMED_TASK)
    return ControllerSetup(policy, config, critic, recovery)


def policy_folder(name: str, models_dir: str | Path | None = None) -> Path | None:
    """Where a controller's trained task policy and its card are (None: it runs the spiral search)."""
    return controller(name).policy_folder(models_dir)


def model_files(controller_name: str) -> list[str]:
    """The files (relative to the models folder) a controller loads: what a Ray worker is sent."""
    return controller(controller_name).model_files()


def build(
    controller_name: str, config: BresaConfig, scenario: str, models_dir: str | Path | None,
    task: str = DEFAULT_TASK,
) -> tuple[TaskEnv, Controller]:
    """The environment of ``task`` (with the controller's safety layer) and the policy of one
    controller. Torch runs one thread, wherever this runs, so that a result does not depend on
    where it ran."""
    torch.set_num_threads(1)
    the_task = make_task(task, config)
    setup = make_controller(controller_name, config, models_dir, the_task)
    env = TaskEnv(setup.config, setup.critic, setup.recovery, scenario=scenario, task=the_task)
    return env, setup.policy
