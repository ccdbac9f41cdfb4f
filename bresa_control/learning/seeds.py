"""``bresa train-seeds``: one learned method's task policy, trained once per seed, by its own command.

Seed N of method M goes to ``<out>/M/seedN/``, a models folder laid out as the shipped one
(``bresa compare`` reads it as training seed N; seed 0 is the shipped ``models/``):

* ``bresa``: ``task_policy.zip`` beside a copy of the critic and recovery it was trained with;
* ``sac-lagrangian``: ``sac_lagrangian/task_policy.zip``;
* ``recovery-rl``: ``recovery_rl/`` (its critic, recovery and task policy).

Seeds run one after another; each writes its models only when it finishes, so an interrupted run
keeps every finished seed and no half-written one.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bresa_control.common.cards import CRITIC_FILE, RECOVERY_FILE, card_path, models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.learning.settings import PolicyTraining, RecoveryRLTraining, SacLagrangianTraining, SacTraining

SETTINGS: dict[str, type[SacTraining]] = {"bresa": PolicyTraining, "recovery-rl": RecoveryRLTraining,
                                          "sac-lagrangian": SacLagrangianTraining}


def seed_folder(out: str | Path, method: str, seed: int) -> Path:
    """Where seed ``seed`` of ``method`` is written."""
    return Path(out) / method / f"seed{seed}"


def train_seed(
    method: str, seed: int, config: BresaConfig, out: str | Path, settings: SacTraining, data_path: str | Path,
    models_dir: str | Path | None = None, tensorboard_dir: str | None = "runs", progress: bool = True,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Train one seed of one method into :func:`seed_folder`; returns its task policy's card."""
    if method not in SETTINGS:
        raise ValueError(f"unknown method '{method}'; choose from {', '.join(SETTINGS)}")
    if not isinstance(settings, SETTINGS[method]):
        raise ValueError(f"{method} trains with {SETTINGS[method].__name__}, got {type(settings).__name__}")
    folder = seed_folder(out, method, seed)
    folder.mkdir(parents=True, exist_ok=True)
    if method == "bresa":
        from bresa_control.learning.policy_training import train_task_policy

        copy_reflex_models(models_folder(models_dir), folder)
        return train_task_policy(config, folder, data_path, settings, tensorboard_dir,  # type: ignore[arg-type]
                                 progress, command)
    if method == "recovery-rl":
        from bresa_control.learning.recovery_rl import train_recovery_rl

        return train_recovery_rl(config, folder, data_path, settings, tensorboard_dir,  # type: ignore[arg-type]
                                 progress, command)
    from bresa_control.learning.sac_lagrangian import train_sac_lagrangian

    return train_sac_lagrangian(config, folder, settings, tensorboard_dir, progress, command)  # type: ignore[arg-type]


def reflex_model_files() -> list[str]:
    """Bresa's critic and recovery and their cards: what a seed of ``bresa`` trains with."""
    return [path.name for name in (CRITIC_FILE, RECOVERY_FILE) for path in (Path(name), card_path(name))]


def copy_reflex_models(source: Path, folder: Path) -> None:
    """Bresa's critic and recovery (and cards) from ``source`` into a seed's folder: its task policy
    trains with them and is evaluated with them."""
    for name in reflex_model_files():
        if not (source / name).is_file():
            raise ValueError(f"{source / name} does not exist: bresa's seeds train with the shipped critic and "
                             "recovery")
        if (source / name).resolve() != (folder / name).resolve():
            shutil.copy2(source / name, folder / name)
