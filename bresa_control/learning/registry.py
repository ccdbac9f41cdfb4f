"""One registry of the learned methods and of the controllers the comparison runs.

Everything that lists methods or controllers iterates over these two tables: the command line
(``bresa train-<method>``, ``train-seeds --method``, ``evaluate --controller``, ``compare
--controllers``), the comparison's cells and training seeds (``app/compare.py``), evaluation
(``app/evaluate.py``) and the Ray sweeps (``app/sweep.py``). Adding a method is one
:class:`Method` entry (its settings dataclass, its trainer, where its models go) plus one
:class:`ControllerSpec` per way it runs, with the algorithm in its own modules.

Trainers are named as ``"module:function"`` and imported only when called, so listing the
methods imports neither stable-baselines3 nor a trainer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bresa_control.common.cards import (
    CRITIC_FILE,
    FEASIBILITY_FILE,
    FEASIBILITY_POLICY_DIR,
    POLICY_FILE,
    RECOVERY_FILE,
    RECOVERY_RL_DIR,
    SAC_LAGRANGIAN_DIR,
    card_path,
    check_task,
    models_folder,
    read_card,
)
from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller
from bresa_control.learning.settings import FisorTraining, PolicyTraining, RecoveryRLTraining, SacLagrangianTraining
from bresa_control.policies.by_name import load_policy
from bresa_control.policies.fisor import FISOR_DIR, FISOR_FILE
from bresa_control.tasks.base import Task


@dataclass(frozen=True)
class Method:
    """A learned method: how one seed of it is trained, and where its models go.

    The trainer is called as ``trainer(config, models_dir, [data_path,] settings, tensorboard_dir,
    progress, command)`` (``data_path`` only when ``uses_data``) and returns the card of the model
    the method's controllers load; it writes its models under ``models_dir / policy_dir``.
    """

    name: str
    help: str
    command: str  # its own training command: ``bresa <command>``
    settings: type  # its settings dataclass (learning/settings.py): flags, defaults, what its card records
    trainer: str  # "module:function"
    policy_dir: str  # under a models folder, where the task policy and its card are ("": the folder itself)
    uses_data: bool  # trains on ``bresa collect``'s offline data
    reflex_files: tuple[str, ...] = ()  # the reflex's models its seeds train (and run) with, copied into each seed
    models_dir_help: str = "where the models and their cards are written"
    describe: Callable[[dict[str, Any]], str] = lambda card: ""  # one line on a finished card

    def train(self, config: BresaConfig, models_dir: str | Path, settings: Any, data_path: str | Path,
              tensorboard_dir: str | None, progress: bool, command: Sequence[str]) -> dict[str, Any]:
        """Train one model of this method into ``models_dir``; returns its card."""
        if not isinstance(settings, self.settings):
            raise ValueError(f"{self.name} trains with {self.settings.__name__}, got {type(settings).__name__}")
        module, function = self.trainer.split(":")
        train = getattr(importlib.import_module(module), function)
        data = (data_path,) if self.uses_data else ()
        card: dict[str, Any] = train(config, models_dir, *data, settings, tensorboard_dir, progress, command)
        return card


@dataclass(frozen=True)
class ControllerSpec:
    """A controller of the comparison: a task policy and the safety layer it runs with.

    ``method`` is the learned method whose models (and training seeds) it runs, None for one with
    nothing trained. ``policy`` is a name of :mod:`bresa_control.policies.by_name`, or
    ``recovery-rl`` (a SAC policy behind Recovery RL's decision-level layer). ``reflex``: ``off``,
    ``rule`` (the force guard) or ``learned`` (Bresa's critic and recovery at every tick).
    ``gate``: what the learned reflex scores with (``reflex.gate``). ``files`` are what it loads,
    relative to its method's ``policy_dir``.
    """

    name: str
    help: str
    method: str | None
    policy: str
    reflex: str = "off"
    files: tuple[str, ...] = ()
    gate: str = "q-risk"

    def policy_folder(self, models_dir: str | Path | None) -> Path | None:
        """Where its task policy and card are, under ``models_dir`` (None: nothing trained)."""
        if self.method is None:
            return None
        return models_folder(models_dir) / METHODS[self.method].policy_dir

    def model_files(self) -> list[str]:
        """Every file it loads (models and their cards), relative to the models folder: what a
        Ray worker is sent and what a comparison cell's fingerprint hashes."""
        if self.method is None:
            return []
        folder = Path(METHODS[self.method].policy_dir)
        return [str(folder / path) for name in self.files for path in (Path(name), card_path(name))]

    def load_policy(self, config: BresaConfig, models_dir: str | Path | None, task: Task | None = None) -> Controller:
        """Its task policy for ``task`` (default peg insertion), from ``models_dir`` (checked against
        its card: a model trained for another task is refused, :class:`ModelError`)."""
        scripted = task.scripted if task is not None else None
        folder = self.policy_folder(models_dir)
        if task is not None and folder is not None and self.files:
            check_task(read_card(folder / self.files[0]), folder / self.files[0], task.name)
        if self.policy == "recovery-rl":
            from bresa_control.safety.recovery_rl import RecoveryRLController, load_recovery_rl

            return RecoveryRLController(load_policy("sac", config, self.policy_folder(models_dir), scripted),
                                        load_recovery_rl(config, models_dir))
        return load_policy(self.policy, config, self.policy_folder(models_dir), scripted)


def _selected(card: dict[str, Any]) -> str:
    """The checkpoint a SAC training card says was selected, and how it did."""
    best = card["checkpoint_selection"]["selected"]
    return (f"checkpoint of step {best['timestep']}, {best['success_rate']:.0%} success in "
            f"{card['checkpoint_selection']['episodes']} held-out episodes")


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("bresa", "train the SAC task policy with the reflex in the loop", "train-policy", PolicyTraining,
           "bresa_control.learning.policy_training:train_task_policy", "", uses_data=True,
           reflex_files=(CRITIC_FILE, RECOVERY_FILE), models_dir_help="critic and recovery in; task_policy.zip "
           "and safety_critic_refined.pt out",
           describe=lambda card: f"the {_selected(card)} with the reflex"),
    Method("bresa-feasibility", "train the SAC task policy with the reflex gated by the feasibility critic",
           "train-policy-feasibility", PolicyTraining,
           "bresa_control.learning.policy_training:train_feasibility_gated_policy", FEASIBILITY_POLICY_DIR,
           uses_data=True,
           reflex_files=(FEASIBILITY_FILE, RECOVERY_FILE), models_dir_help="feasibility critic and recovery in "
           f"(bresa train-feasibility, train-critic); {FEASIBILITY_POLICY_DIR}/ (its task policy, a copy of both) out",
           describe=lambda card: f"the {_selected(card)} with the feasibility-gated reflex"),
    Method("recovery-rl", "train the Recovery RL baseline: its own critic and recovery, then its task policy",
           "train-recovery-rl", RecoveryRLTraining, "bresa_control.learning.recovery_rl:train_recovery_rl",
           RECOVERY_RL_DIR, uses_data=True, models_dir_help=f"writes {RECOVERY_RL_DIR}/ (three models, their "
           "cards) here",
           describe=lambda card: f"critic held-out AUROC {card['recovery_rl']['critic_auroc_holdout']:.3f}; the "
                                 f"policy {_selected(card)} behind the layer"),
    Method("sac-lagrangian", "train the SAC-Lagrangian baseline (no reflex; a learned multiplier on the cost)",
           "train-sac-lagrangian", SacLagrangianTraining, "bresa_control.learning.sac_lagrangian:train_sac_lagrangian",
           SAC_LAGRANGIAN_DIR, uses_data=False, models_dir_help=f"writes {SAC_LAGRANGIAN_DIR}/task_policy.zip and "
           "its card here",
           describe=lambda card: f"the {_selected(card)}; final lambda {card['lagrange']['final']:.3g}"),
    Method("fisor", "train FISOR offline: reachability and reward critics, a feasibility-guided diffusion policy",
           "train-fisor", FisorTraining, "bresa_control.learning.fisor:train_and_export", FISOR_DIR,
           uses_data=True, models_dir_help=f"writes {FISOR_DIR}/{FISOR_FILE} and its card here",
           describe=lambda card: (f"V_h held-out AUROC {card['holdout']['v_h_auroc_holdout']:.3f}; "
                                  f"{card['selection_episodes']['success_rate']:.0%} success, "
                                  f"{card['selection_episodes']['violation_rate']:.0%} violated in "
                                  f"{card['selection_episodes']['episodes']} held-out episodes")),
)}

_SAC = (POLICY_FILE,)
_LAYER = (POLICY_FILE, CRITIC_FILE, RECOVERY_FILE)
CONTROLLERS: dict[str, ControllerSpec] = {c.name: c for c in (
    ControllerSpec("scripted", "the spiral search, the classical baseline", None, "scripted"),
    ControllerSpec("sac", "Bresa's SAC task policy alone", "bresa", "sac", files=_SAC),
    ControllerSpec("force-guard", "Bresa's task policy, gains softened past 80 % of F_max", "bresa", "sac", "rule",
                   _SAC),
    ControllerSpec("recovery-rl", "its own policy, critic and recovery, once per decision", "recovery-rl",
                   "recovery-rl", files=_LAYER),
    ControllerSpec("bresa", "SAC task policy + learned critic and recovery at every control tick", "bresa", "sac",
                   "learned", _LAYER),
    ControllerSpec("bresa-feasibility", "its own SAC task policy + the reflex gated by the reachability value Q_h "
                   "(FISOR's) at every control tick, Bresa's recovery", "bresa-feasibility", "sac", "learned",
                   (POLICY_FILE, FEASIBILITY_FILE, RECOVERY_FILE), gate="feasibility"),
    ControllerSpec("sac-lagrangian", "SAC trained with a learned cost multiplier", "sac-lagrangian", "sac",
                   files=_SAC),
    ControllerSpec("fisor", "FISOR's diffusion policy, chosen among samples by its critics; no reflex", "fisor",
                   "fisor", files=(FISOR_FILE,)),
)}


def method(name: str) -> Method:
    """The method ``name``, or a ``ValueError`` naming the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}'; choose from {', '.join(METHODS)}")
    return METHODS[name]


def controller(name: str) -> ControllerSpec:
    """The controller ``name``, or a ``ValueError`` naming the known ones."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller '{name}'; choose from {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name]
