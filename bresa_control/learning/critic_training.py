"""``bresa train-critic``: offline critic + recovery training on collected data, then export.

Writes ``safety_critic.pt`` and ``recovery_policy.pt`` (TorchScript) with their JSON cards. Files
are written only after training finishes, each atomically: an interrupted run leaves the previous
models in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bresa_control.common.cards import CRITIC_FILE, RECOVERY_FILE, UNNAMED_TASK, write_card
from bresa_control.common.config import BresaConfig
from bresa_control.common.files import atomic_output
from bresa_control.learning import collect
from bresa_control.learning.critic import export, settings_dict, train_critic, train_recovery
from bresa_control.learning.settings import CriticTraining
from bresa_control.safety.risk_features import (
    ACTION_SIZE,
    FEATURE_SIZE,
    RECOVERY_HIGH,
    RECOVERY_KEEPS,
    RECOVERY_LOW,
    STATE_SIZE,
    FeatureMap,
)


def train_and_export(
    config: BresaConfig,
    data_path: str | Path,
    out_dir: str | Path,
    seed: int,
    settings: CriticTraining,
    progress: bool = True,
    command: Sequence[str] = (),
) -> str:
    """Train both models, export them with cards, and return a one-paragraph summary."""
    arrays, meta, layout = load_ticks(config, data_path, settings.gamma_risk)
    eps_safe = config.reflex.eps_safe
    critic, metrics = train_critic(arrays, settings, seed, eps_safe, progress)
    recovery, recovery_metrics = train_recovery(critic, arrays, settings, seed, progress)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "feature_layout": layout,
        "eps_safe": eps_safe,
        "gamma_risk": settings.gamma_risk,
        "rate_hz": 1.0 / config.env.control_period_s,
        "horizon_ms": 1000.0 * config.env.control_period_s / (1.0 - settings.gamma_risk),
        "seed": seed,
        "command": list(command),
        "task": meta.get("task", UNNAMED_TASK),  # the data's: a critic is trained for the task it saw
        "data": data_record(data_path, meta),
        "training": settings_dict(settings),
        "torch": torch.__version__,
    }
    save_model(critic, out / CRITIC_FILE, {
        "kind": "safety_critic", "input_size": FEATURE_SIZE,
        "output": "pessimistic risk max(Q1, Q2) in [0, 1]: discounted probability of a violation",
        "evaluation": metrics, **common,
    })
    save_model(recovery, out / RECOVERY_FILE, {
        "kind": "recovery_policy", "input_size": STATE_SIZE, "output_size": ACTION_SIZE,
        "output": "recovery action features (risk_features.ACTION_LABELS) inside the recovery box",
        "recovery_low": list(RECOVERY_LOW), "recovery_high": list(RECOVERY_HIGH),
        "kept_from_replaced_action": list(RECOVERY_KEEPS),
        "evaluation": recovery_metrics, **common,
    })
    return (
        f"critic: held-out AUROC {metrics['auroc_holdout']:.3f} (violation within "
        f"{metrics['horizon_ticks']} ticks; train {metrics['auroc_train']:.3f}); at eps_safe "
        f"{eps_safe}: TPR {metrics['true_positive_rate']:.2f}, FPR {metrics['false_positive_rate']:.3f}\n"
        f"recovery: mean risk on held-out risky ticks {recovery_metrics['mean_risk_of_recorded_action']:.3f} "
        f"(recorded action) -> {recovery_metrics['mean_risk_of_recovery_action']:.3f} (recovery action)\n"
        f"wrote {out / CRITIC_FILE}, {out / RECOVERY_FILE} and their cards"
    )


def load_ticks(config: BresaConfig, data_path: str | Path,
               gamma_risk: float) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A data file's arrays, meta and feature layout for a tick critic trained under ``config``:
    a ``ValueError`` if the data was collected with another feature layout, or if ``gamma_risk``
    is not the config's ``reflex.gamma_risk`` (the critic must be trained for the rate it runs at)."""
    arrays, meta = collect.load(data_path)
    layout = FeatureMap(config).layout()
    if meta["feature_layout"] != layout:
        raise ValueError(f"{data_path} was collected with a different feature layout or normalisation than this "
                         "config produces; collect it again with this config")
    if gamma_risk != config.reflex.gamma_risk:
        raise ValueError(f"the settings have gamma_risk {gamma_risk}, the config reflex.gamma_risk "
                         f"{config.reflex.gamma_risk}: the critic must be trained for the rate it runs at")
    return arrays, meta, layout


def data_record(data_path: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What a model card says of the data it was trained on (its name, and how it was made)."""
    return {"file": Path(data_path).name, **{k: meta[k] for k in ("seed", "command", "episodes", "ticks",
                                                             "violating_episodes", "violating_ticks")}}


def save_model(module: torch.nn.Module, path: Path, card: dict[str, Any]) -> None:
    """Export ``module`` as TorchScript at ``path`` (atomically) and write its card beside it."""
    with atomic_output(path) as tmp:
        export(module, tmp)
    write_card(path, card)
