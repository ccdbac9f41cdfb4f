"""Risk critic ``Q_risk`` and recovery policy ``pi_recovery``: networks, offline training, export.

Critic (design brief 1): ``Q_risk(s, a)`` is the discounted probability of a future violation,
twin heads with a sigmoid, trained by TD on recorded ticks::

    y = c + (1 - c) * gamma_risk * max(Q1', Q2')(s', a')

with target networks (Polyak averaging) and the *executed* next action ``a'`` from the data.
``gamma_risk`` is per control tick: 0.99 at 1 kHz is a 100 ms horizon. Deployment uses the
pessimistic ``max(Q1, Q2)``.

Recovery policy: ``pi_recovery(s)`` outputs action features (setpoint offset, stiffness, damping)
and is trained to minimise ``Q_risk(s, pi_recovery(s))`` with the critic frozen.
"""

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bresa_control.learning.settings import CriticTraining
from bresa_control.safety.risk_features import (
    ACTION_SIZE,
    FEATURE_SIZE,
    RECOVERY_HIGH,
    RECOVERY_KEPT_MASK,
    RECOVERY_LOW,
    STATE_SIZE,
)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs)
    )


class TwinRiskCritic(nn.Module):
    """Two independent heads; ``forward`` returns the pessimistic risk max(Q1, Q2) in [0, 1]."""

    def __init__(self, input_size: int = FEATURE_SIZE, hidden: int = 256) -> None:
        super().__init__()
        self.input_size = input_size
        self.q1 = _mlp(input_size, hidden, 1)
        self.q2 = _mlp(input_size, hidden, 1)

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-sigmoid outputs of both heads, shape (batch,)."""
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2 = self.logits(x)
        return torch.sigmoid(torch.maximum(l1, l2))


class RecoveryPolicy(nn.Module):
    """State features -> recovery action features, inside the box [low, high] whatever the critic
    would prefer (the reflex's: the recovery box RECOVERY_LOW..RECOVERY_HIGH, soft, damped, backed
    off; Recovery RL's: the whole action space)."""

    def __init__(self, input_size: int = STATE_SIZE, hidden: int = 256, output_size: int = ACTION_SIZE,
                 low: tuple[float, ...] = RECOVERY_LOW, high: tuple[float, ...] = RECOVERY_HIGH) -> None:
        super().__init__()
        self.input_size = input_size
        self.net = _mlp(input_size, hidden, output_size)
        self.register_buffer("low", torch.tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = 0.5 * (torch.tanh(self.net(x)) + 1.0)
        return self.low + unit * (self.high - self.low)


@dataclass
class Transitions:
    """Indexed view of recorded ticks: tick i's successor is i + 1 unless ``terminal[i]``."""

    features: torch.Tensor
    cost: torch.Tensor
    terminal: torch.Tensor
    label: np.ndarray  # 1 if a violation happens within the horizon (for AUROC and sampling)
    episode: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], horizon_ticks: int) -> "Transitions":
        """Index recorded arrays (features, cost, episode); label ticks by ``horizon_ticks``."""
        episode = arrays["episode"]
        terminal = np.ones(len(episode), dtype=bool)
        terminal[:-1] = episode[1:] != episode[:-1]
        return cls(
            features=torch.as_tensor(arrays["features"], dtype=torch.float32),
            cost=torch.as_tensor(arrays["cost"], dtype=torch.float32),
            terminal=torch.as_tensor(terminal),
            label=violation_within(arrays["cost"], episode, horizon_ticks),
            episode=episode,
        )


    def sample(
        self, rng: np.random.Generator, indices: np.ndarray, positives: np.ndarray, batch_size: int,
        positive_fraction: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch (x, c, x', terminal) from ``indices``, part of it from ``positives`` (ticks
        that precede a violation) so the rare violations are seen often."""
        n_pos = int(batch_size * positive_fraction) if len(positives) else 0
        idx = np.concatenate([rng.choice(positives, n_pos), rng.choice(indices, batch_size - n_pos)])
        index = torch.as_tensor(idx)
        successor = torch.clamp(index + 1, max=len(self.cost) - 1)
        return self.features[index], self.cost[index], self.features[successor], self.terminal[index]


class RiskTD:
    """TD learning of the twin critic: y = c + (1 - c) gamma max(Q1', Q2')(s', a'), target
    networks by Polyak averaging. Used offline and for online refinement alike."""

    def __init__(self, critic: TwinRiskCritic, settings: CriticTraining) -> None:
        self.critic = critic
        self.settings = settings
        self.target = TwinRiskCritic(critic.input_size, settings.hidden)
        self.target.load_state_dict(critic.state_dict())
        self.optimiser = torch.optim.Adam(critic.parameters(), lr=settings.learning_rate)
        self._bce = nn.BCEWithLogitsLoss()

    def update(self, x: torch.Tensor, c: torch.Tensor, x_next: torch.Tensor, terminal: torch.Tensor) -> float:
        """One gradient step on a batch; returns the loss."""
        with torch.no_grad():
            future = self.target(x_next) * (~terminal).float()
            y = c + (1.0 - c) * self.settings.gamma_risk * future
        l1, l2 = self.critic.logits(x)
        loss = self._bce(l1, y) + self._bce(l2, y)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        with torch.no_grad():
            tau = self.settings.polyak
            for p, p_target in zip(self.critic.parameters(), self.target.parameters()):
                p_target.mul_(1.0 - tau).add_(tau * p)
        return float(loss.item())


def violation_within(cost: np.ndarray, episode: np.ndarray, horizon_ticks: int) -> np.ndarray:
    """1 where a violation occurs at this tick or within the next ``horizon_ticks - 1`` ticks of
    the same episode."""
    label = np.zeros(len(cost), dtype=np.uint8)
    for tick in np.flatnonzero(cost):
        start = max(0, tick - horizon_ticks + 1)
        same = episode[start : tick + 1] == episode[tick]
        label[start : tick + 1][same] = 1
    return label


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); NaN if one class."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Average the ranks of tied scores.
    unique, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for s, n in zip(start[counts > 1], counts[counts > 1]):
        ranks[order[s : s + n]] = s + (n + 1) / 2.0
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def split_episodes(episode: np.ndarray, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tick indices of training and held-out episodes (whole episodes go to one side)."""
    episodes = np.unique(episode)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(episodes, size=max(1, int(len(episodes) * holdout_fraction)), replace=False).tolist())
    mask = np.isin(episode, list(held))
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass
class TickSplit:
    """Recorded ticks as transitions, split by episode into training and held-out ticks."""

    data: Transitions
    train: np.ndarray
    held: np.ndarray
    horizon_ticks: int  # a tick is labelled positive if a violation follows within this many

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray], gamma: float, holdout_fraction: float, seed: int) -> "TickSplit":
        """The split of a data file's ticks; the label horizon is the discount's, ``1 / (1 - gamma)``."""
        horizon = int(round(1.0 / (1.0 - gamma)))
        data = Transitions.from_arrays(arrays, horizon)
        train, held = split_episodes(data.episode, holdout_fraction, seed)
        return cls(data, train, held, horizon)


class TickLearner(Protocol):
    """A TD learner on ticks (:class:`RiskTD`, the feasibility gate's ``ReachabilityTD``)."""

    def update(self, x: torch.Tensor, c: torch.Tensor, x_next: torch.Tensor, terminal: torch.Tensor) -> float:
        """One gradient step on a batch; returns the loss."""


def fit_on_ticks(learner: TickLearner, split: TickSplit, steps: int, batch_size: int, positive_fraction: float,
                 rng: np.random.Generator, desc: str, progress: bool) -> None:
    """``steps`` updates on batches of the training ticks, ``positive_fraction`` of each from ticks
    before a violation (the rare violations are seen often), with a progress bar."""
    data, train = split.data, split.train
    train_pos = train[data.label[train] == 1]
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        for step in range(steps):
            loss = learner.update(*data.sample(rng, train, train_pos, batch_size, positive_fraction))
            if step % 500 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)


def held_out_figures(score: nn.Module, split: TickSplit, fires_above: float) -> dict[str, Any]:
    """A tick critic's figures: AUROC of its score against a violation within the horizon, held
    out and on training ticks, and the true- and false-positive rates of ``score > fires_above``."""
    data, train, held = split.data, split.train, split.held
    with torch.no_grad():
        held_scores = score(data.features[torch.as_tensor(held)]).numpy()
        train_scores = score(data.features[torch.as_tensor(train)]).numpy()
    return {
        "horizon_ticks": split.horizon_ticks,
        "auroc_holdout": auroc(held_scores, data.label[held]),
        "auroc_train": auroc(train_scores, data.label[train]),
        "holdout_ticks": int(len(held)),
        "holdout_positive_ticks": int(data.label[held].sum()),
        "holdout_episodes": int(len(np.unique(data.episode[held]))),
        "train_ticks": int(len(train)),
        **threshold_rates(held_scores, data.label[held], fires_above),
    }


def train_critic(
    arrays: dict[str, np.ndarray], settings: CriticTraining, seed: int, eps_safe: float = 0.5,
    progress: bool = True,
) -> tuple[TwinRiskCritic, dict[str, Any]]:
    """TD-train the twin critic on recorded ticks; returns it and its held-out figures (AUROC,
    and true/false-positive rates of ``risk > eps_safe``)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    split = TickSplit.of(arrays, settings.gamma_risk, settings.holdout_fraction, seed)
    critic = TwinRiskCritic(split.data.features.shape[1], settings.hidden)
    fit_on_ticks(RiskTD(critic, settings), split, settings.steps, settings.batch_size, settings.positive_fraction,
                 rng, "critic", progress)
    critic.eval()
    return critic, {**held_out_figures(critic, split, eps_safe), "eps_safe": eps_safe}


def threshold_rates(scores: np.ndarray, labels: np.ndarray, eps_safe: float) -> dict[str, float]:
    """True- and false-positive rates of ``risk > eps_safe`` against violation-within-horizon."""
    labels = np.asarray(labels).astype(bool)
    fired = np.asarray(scores) > eps_safe
    return {
        "true_positive_rate": float(fired[labels].mean()) if labels.any() else float("nan"),
        "false_positive_rate": float(fired[~labels].mean()) if (~labels).any() else float("nan"),
    }


class RecoveryFit:
    """Gradient steps of a recovery policy against a frozen critic: minimise the critic's risk of
    the recovery's action over recorded states. Features in ``kept_mask`` stay those of the
    recorded action (the reflex's recovery keeps the lateral gains: RECOVERY_KEEPS)."""

    def __init__(self, policy: RecoveryPolicy, critic: TwinRiskCritic, learning_rate: float,
                 kept_mask: np.ndarray = RECOVERY_KEPT_MASK) -> None:
        self.policy = policy
        self.critic = critic
        self.kept = torch.as_tensor(kept_mask)
        self.optimiser = torch.optim.Adam(policy.parameters(), lr=learning_rate)

    def features(self, rows: torch.Tensor) -> torch.Tensor:
        """Critic input with the recovery's action in place of the recorded one."""
        s = rows[:, : self.policy.input_size]
        return torch.cat([s, torch.where(self.kept, rows[:, self.policy.input_size:], self.policy(s))], dim=-1)

    def update(self, rows: torch.Tensor) -> float:
        """One step on a batch of recorded critic inputs; returns the mean risk."""
        frozen = [p.requires_grad for p in self.critic.parameters()]
        for p in self.critic.parameters():
            p.requires_grad_(False)
        loss = self.critic(self.features(rows)).mean()
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        for p, flag in zip(self.critic.parameters(), frozen):
            p.requires_grad_(flag)
        return float(loss.item())


def train_recovery(
    critic: TwinRiskCritic, arrays: dict[str, np.ndarray], settings: CriticTraining, seed: int,
    progress: bool = True, policy: RecoveryPolicy | None = None, kept_mask: np.ndarray = RECOVERY_KEPT_MASK,
) -> tuple[RecoveryPolicy, dict[str, Any]]:
    """Train pi_recovery (default: the reflex's, in the recovery box) to minimise the frozen
    critic's risk over recorded states."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    horizon = int(round(1.0 / (1.0 - settings.gamma_risk)))
    data = Transitions.from_arrays(arrays, horizon)
    train, held = split_episodes(data.episode, settings.holdout_fraction, seed)
    policy = RecoveryPolicy(STATE_SIZE, settings.hidden) if policy is None else policy
    fit = RecoveryFit(policy, critic, settings.learning_rate, kept_mask)
    with tqdm(total=settings.recovery_steps, desc="recovery", unit="step", disable=not progress) as bar:
        for _ in range(settings.recovery_steps):
            fit.update(data.features[torch.as_tensor(rng.choice(train, settings.batch_size))])
            bar.update(1)
    policy.eval()
    risky = held[data.label[held] == 1]
    with torch.no_grad():
        rows = data.features[torch.as_tensor(risky if len(risky) else held)]
        behaviour = critic(rows).mean().item()
        recovered = critic(fit.features(rows)).mean().item()
    metrics = {
        "holdout_risky_ticks": int(len(risky)),
        "mean_risk_of_recorded_action": behaviour,
        "mean_risk_of_recovery_action": recovered,
    }
    return policy, metrics


def export(module: nn.Module, path: str) -> torch.jit.ScriptModule:
    """Save ``module`` as TorchScript at ``path`` and return the scripted module."""
    with warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated; it is still the format the 1 kHz node loads.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
        scripted = torch.jit.script(module)
    scripted.save(path)
    return scripted


def settings_dict(settings: CriticTraining) -> dict[str, Any]:
    """Hyper-parameters for the model card."""
    return dataclasses.asdict(settings)
