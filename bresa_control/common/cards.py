"""Model files and their cards: where models live, and reading and writing the JSON card beside
each one.

Every model file ``models/<name>.<ext>`` has a card ``models/<name>.json``: what the model is, the
command and seed that made it, its input layout and its evaluation figures. A missing or malformed
card is a :class:`ModelError`: nothing runs on a model it cannot vouch for.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bresa_control.common.files import write_json_atomic
from bresa_control.common.paths import find_data

CRITIC_FILE = "safety_critic.pt"
# The task a model was trained for is its card's "task"; a card without one predates tasks: peg insertion's.
UNNAMED_TASK = "peg-insertion"
POLICY_FILE = "task_policy.zip"
RECOVERY_FILE = "recovery_policy.pt"
# The reachability value Q_h the reflex scores with under reflex.gate: feasibility (bresa train-feasibility).
FEASIBILITY_FILE = "feasibility_critic.pt"
# What train-policy refines online; never shipped, never loaded by the reflex (docs/architecture.md).
REFINED_CRITIC_FILE = "safety_critic_refined.pt"
SAC_LAGRANGIAN_DIR = "sac_lagrangian"  # under the models folder: the SAC-Lagrangian baseline's policy and card
# under the models folder: bresa-feasibility's task policy, beside copies of the feasibility critic and recovery
FEASIBILITY_POLICY_DIR = "bresa_feasibility"
RECOVERY_RL_DIR = "recovery_rl"  # under the models folder: the Recovery RL baseline's critic, recovery and policy
CARD_FORMAT = "bresa-model-card/1"
# Where `bresa evaluate --record-in-card` adds its figures, keyed controller/scenario (a card's own
# "evaluation" holds what training measured).
RECORDED_EVALUATIONS = "recorded_evaluations"


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


def record_evaluation(models_dir: str | Path, summary: dict[str, Any], command: list[str]) -> Path:
    """Add an evaluation's figures (``app.evaluate.summarise``) to the task policy's card, under
    :data:`RECORDED_EVALUATIONS` keyed ``controller/scenario``, with the command that made them."""
    path = Path(models_dir) / POLICY_FILE
    card = read_card(path)
    card.setdefault(RECORDED_EVALUATIONS, {})[f"{summary['controller']}/{summary['scenario']}"] = {
        "command": list(command), **summary}
    write_card(path, {k: v for k, v in card.items() if k != "format"})
    return card_path(path)


def model_file_digest(path: Path) -> bytes:
    """SHA-256 of a model file or card, as a result's fingerprint counts it: a card's recorded
    evaluations are results of the model, not what makes it, so recording one leaves the digest
    (and every result made with the model) as it was."""
    raw = path.read_bytes()
    if path.suffix == ".json":
        card = json.loads(raw)
        if isinstance(card, dict) and RECORDED_EVALUATIONS in card:
            del card[RECORDED_EVALUATIONS]
            raw = (json.dumps(card, indent=2) + "\n").encode()  # write_card's form without them
    return hashlib.sha256(raw).digest()


def check_task(card: dict[str, Any], where: str | Path, task: str) -> None:
    """Raise :class:`ModelError` unless the model of ``card`` (at ``where``) was trained for ``task``."""
    trained_for = card.get("task", UNNAMED_TASK)
    if trained_for != task:
        raise ModelError(f"the model {where} was trained for the {trained_for} task, not {task}: give models trained "
                         f"for {task} (--models-dir, or the models_dir parameter)")
