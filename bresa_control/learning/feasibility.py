"""The feasibility gate's critic: FISOR's reachability value, learned on the reflex's 1 kHz ticks.

``reflex.gate: feasibility`` scores every intermediate action with ``Q_h`` instead of ``Q_risk``
and fires where ``Q_h > 0``: the action takes the state out of the largest region from which the
data shows that a violation can be avoided (Hamilton-Jacobi reachability, as in FISOR; Zheng et
al., ICLR 2024). On the same ticks as the risk critic (``bresa collect``'s ``features``, ``cost``,
``episode``), with FISOR's pieces (:mod:`bresa_control.learning.fisor`):

- ``h = +cost_scale`` on a tick followed by a violation (the data's ``cost``), ``-1`` otherwise;
- twin ``Q_h(s, a)`` on the critic's features, toward ``(1 - gamma) h + gamma max(h, V_h(s'))``
  (``h`` on an episode's last tick), mean squared error; target network by Polyak averaging;
- ``V_h(s)`` on the state features, the lower expectile of the target's ``max(Q_h1, Q_h2)``: it
  tends to the best the data's actions did from ``s``, so ``V_h(s) <= 0`` is the feasible region;
- ``gamma`` is ``reflex.gamma_risk`` (0.99 per tick: ~100 ms), the risk critic's.

The recovery is Bresa's (``recovery_policy.pt``, trained against ``Q_risk``): the gate changes when
the reflex fires, not what it does. The exported model (TorchScript) answers ``max(Q_h1, Q_h2)``
for a row of features, with the same card fields as the risk critic, so the reflex, the nodes and
the loaders treat it alike (:func:`bresa_control.safety.models.load_reflex_models`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bresa_control.common.cards import FEASIBILITY_FILE, UNNAMED_TASK
from bresa_control.common.config import BresaConfig
from bresa_control.learning.critic import TickSplit, auroc, fit_on_ticks, held_out_figures
from bresa_control.learning.critic_training import data_record, load_ticks, save_model
from bresa_control.learning.fisor import expectile_loss, reachability_target
from bresa_control.learning.settings import FeasibilityTraining
from bresa_control.safety.risk_features import FEATURE_SIZE, STATE_SIZE


def _mlp(inputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class FeasibilityCritic(nn.Module):
    """Twin ``Q_h`` on the critic's features and ``V_h`` on their state part; ``forward`` is the
    pessimistic ``max(Q_h1, Q_h2)``, what the gate reads (feasible at or below 0)."""

    def __init__(self, input_size: int = FEATURE_SIZE, hidden: int = 64, state_size: int = STATE_SIZE) -> None:
        super().__init__()
        self.input_size = input_size
        self.state_size = state_size
        self.q1 = _mlp(input_size, hidden)
        self.q2 = _mlp(input_size, hidden)
        self.v = _mlp(state_size, hidden)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both ``Q_h`` heads, shape (batch,)."""
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``V_h`` of the state part of feature rows, shape (batch,)."""
        return self.v(x[:, : self.state_size]).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q1, q2 = self.heads(x)
        return torch.maximum(q1, q2)


class ReachabilityTD:
    """One update of ``Q_h`` and ``V_h`` on a batch of ticks (module docstring)."""

    def __init__(self, critic: FeasibilityCritic, settings: FeasibilityTraining) -> None:
        self.critic = critic
        self.settings = settings
        self.target = FeasibilityCritic(critic.input_size, settings.hidden, critic.state_size)
        self.target.load_state_dict(critic.state_dict())
        self.optimiser = torch.optim.Adam(critic.parameters(), lr=settings.learning_rate)

    def update(self, x: torch.Tensor, c: torch.Tensor, x_next: torch.Tensor, terminal: torch.Tensor) -> float:
        """One gradient step; returns the summed loss."""
        s = self.settings
        h = torch.where(c > 0, s.cost_scale, -1.0)
        with torch.no_grad():
            y = reachability_target(h, self.critic.value(x_next), s.gamma_risk, terminal)
            q_target = self.target(x)
        q1, q2 = self.critic.heads(x)
        loss = ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()
        loss = loss + expectile_loss(q_target - self.critic.value(x), 1.0 - s.cost_expectile)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        with torch.no_grad():
            for p, p_target in zip(self.critic.parameters(), self.target.parameters()):
                p_target.mul_(1.0 - s.polyak).add_(s.polyak * p)
        return float(loss.item())


def train_feasibility(
    arrays: dict[str, np.ndarray], settings: FeasibilityTraining, seed: int, progress: bool = True,
) -> tuple[FeasibilityCritic, dict[str, Any]]:
    """Train on recorded ticks; returns the critic and its held-out figures: the AUROC of ``Q_h``
    (and of ``V_h``) against a violation within the horizon, the rates of ``Q_h > 0`` (the gate
    firing) on ticks before a violation and on the others, and the feasible share ``V_h <= 0``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    split = TickSplit.of(arrays, settings.gamma_risk, settings.holdout_fraction, seed)
    critic = FeasibilityCritic(split.data.features.shape[1], settings.hidden)
    fit_on_ticks(ReachabilityTD(critic, settings), split, settings.steps, settings.batch_size,
                 settings.positive_fraction, rng, "feasibility", progress)
    critic.eval()
    with torch.no_grad():
        held = split.data.features[torch.as_tensor(split.held)]
        v_h = critic.value(held).numpy()
    metrics = {**held_out_figures(critic, split, 0.0), "fires_above": 0.0,
               "v_h_auroc_holdout": auroc(v_h, split.data.label[split.held]),
               "feasible_fraction_holdout": float((v_h <= 0.0).mean())}
    return critic, metrics


def train_and_export(
    config: BresaConfig, data_path: str | Path, out_dir: str | Path, seed: int, settings: FeasibilityTraining,
    progress: bool = True, command: Sequence[str] = (),
) -> str:
    """``bresa train-feasibility``: train and write ``feasibility_critic.pt`` and its card into
    ``out_dir`` (beside the recovery it runs with); returns a summary."""
    arrays, meta, layout = load_ticks(config, data_path, settings.gamma_risk)
    critic, metrics = train_feasibility(arrays, settings, seed, progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_model(critic, out / FEASIBILITY_FILE, {
        "kind": "feasibility_critic", "input_size": FEATURE_SIZE, "feature_layout": layout,
        "output": "pessimistic reachability value max(Q_h1, Q_h2): above 0 the action leaves the feasible region",
        "gamma_risk": settings.gamma_risk, "rate_hz": 1.0 / config.env.control_period_s,
        "seed": seed, "command": list(command), "task": meta.get("task", UNNAMED_TASK),
        "data": data_record(data_path, meta), "training": dataclasses.asdict(settings), "evaluation": metrics,
        "torch": torch.__version__,
    })
    return (f"feasibility critic: held-out AUROC of Q_h {metrics['auroc_holdout']:.3f} (violation within "
            f"{metrics['horizon_ticks']} ticks), of V_h {metrics['v_h_auroc_holdout']:.3f}; Q_h > 0 on "
            f"{metrics['true_positive_rate']:.2f} of the ticks before a violation, "
            f"{metrics['false_positive_rate']:.3f} of the others; feasible (V_h <= 0): "
            f"{metrics['feasible_fraction_holdout']:.3f} of held-out ticks\n"
            f"wrote {out / FEASIBILITY_FILE} and its card")
