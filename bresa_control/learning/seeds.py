"""``bresa train-seeds``: one learned method's task policy, trained once per seed, by its own command.

Seed N of method M goes to ``<out>/M/seedN/``, a models folder laid out as the shipped one
(``bresa compare`` reads it as training seed N; seed 0 is the shipped ``models/``), the method's
models under its ``policy_dir`` (:mod:`bresa_control.learning.registry`): ``bresa``'s
``task_policy.zip`` beside a copy of the critic and recovery it was trained with,
``sac_lagrangian/``, ``recovery_rl/``, ``fisor/``.

Seeds run one after another; each writes its models only when it finishes, so an interrupted run
keeps every finished seed and no half-written one.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bresa_control.common.cards import card_path, models_folder
from bresa_control.common.config import BresaConfig
from bresa_control.learning.registry import method as method_named


def seed_folder(out: str | Path, method: str, seed: int) -> Path:
    """Where seed ``seed`` of ``method`` is written."""
    return Path(out) / method / f"seed{seed}"


def train_seed(
    method: str, seed: int, config: BresaConfig, out: str | Path, settings: Any, data_path: str | Path,
    models_dir: str | Path | None = None, tensorboard_dir: str | None = "runs", progress: bool = True,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Train one seed of one method (:data:`~bresa_control.learning.registry.METHODS`) into
    :func:`seed_folder`; returns its model's card."""
    entry = method_named(method)
    folder = seed_folder(out, method, seed)
    folder.mkdir(parents=True, exist_ok=True)
    source = models_folder(models_dir)
    if entry.reflex_files:
        copy_reflex_models(source, folder, entry.reflex_files)
    card = entry.train(config, folder, settings, data_path, tensorboard_dir, progress, command)
    if entry.reflex_files and entry.policy_dir and source.resolve() != folder.resolve():
        # The method keeps its own copies beside its policy (bresa-feasibility's bresa_feasibility/):
        # the ones in the seed's folder were only the trainer's input, and two copies invite confusion.
        for name in reflex_model_files(entry.reflex_files):
            (folder / name).unlink(missing_ok=True)
    return card


def reflex_model_files(names: Sequence[str]) -> list[str]:
    """The reflex's models a method's seeds train with (``Method.reflex_files``) and their cards."""
    return [path.name for name in names for path in (Path(name), card_path(name))]


def copy_reflex_models(source: Path, folder: Path, names: Sequence[str]) -> None:
    """The reflex's models ``names`` (and cards) from ``source`` into a seed's folder: its task
    policy trains with them and is evaluated with them."""
    for name in reflex_model_files(names):
        if not (source / name).is_file():
            raise ValueError(f"{source / name} does not exist: this method's seeds train with the reflex's models "
                             f"{', '.join(names)} of that folder (--models-dir)")
        if (source / name).resolve() != (folder / name).resolve():
            shutil.copy2(source / name, folder / name)
