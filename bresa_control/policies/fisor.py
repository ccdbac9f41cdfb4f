"""FISOR at run time: a diffusion policy whose sampled actions are chosen by learned critics.

FISOR (Zheng et al., "Safe Offline Reinforcement Learning with Feasibility-Guided Diffusion
Model", ICLR 2024) learns offline, from this project's decision rows (``learning/fisor.py``):

- ``Q_h(s, a)``, ``V_h(s)``: Hamilton-Jacobi reachability of a violation. ``V_h(s) <= 0`` is the
  feasible region (some action of the data keeps the peg out of a violation from ``s``); above
  0, a violation is reachable whatever the data did. Twin ``Q_h`` heads, pessimistic ``max``.
- ``Q_r(s, a)``, ``V_r(s)``: the reward critics (IQL). Twin ``Q_r`` heads, ``min``.
- a DDPM (5 denoising steps) over the 7-value action, conditioned on the state: behaviour
  cloning weighted by reward advantage inside the feasible region and by how much an action lowers
  ``Q_h`` outside it.

The state every network sees (:data:`STATE_LABELS`) is the task policy's observation and the
task's scripted action at this decision (peg insertion: the configured spiral search's): what the
SAC task policies see (``policies/residual.py``). The observation alone does not tell where the
spiral search is in its spiral, so a policy cloned from it cannot follow the data's inserting
behaviour; with the scripted action beside it, the scripted controller is the identity on that
part of the state.

At each decision :class:`FisorPolicy` draws ``samples`` actions from the diffusion model and keeps
one by the critics (``selection``): ``min-qh`` (the reference code's setting: the lowest ``Q_h``,
whether the state is feasible or not), ``max-qr`` (the highest ``Q_r``) or ``feasible-max-qr``
(the highest ``Q_r`` among the samples with ``Q_h <= 0``, the lowest ``Q_h`` when there is none).

This module imports torch, numpy and ``bresa_control.common``/``contract`` only: the robot PC's
``task_policy`` node may load it. The model file (``models/fisor/fisor_policy.pt``) is a torch
state dict with its architecture (``torch.load(..., weights_only=True)``, no pickled code) and a
JSON card beside it; :func:`load_fisor` fails closed (:class:`ModelError` naming the file and the
mismatch) on a missing file or card, a card of another kind, observation layout or action size,
and a card whose architecture disagrees with the file's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bresa_control.common.cards import ModelError, card_path, read_card
from bresa_control.common.config import BresaConfig
from bresa_control.contract import OBSERVATION_LABELS, POLICY_ACTION_SIZE, Controller
from bresa_control.policies.scripted import SpiralSearch

FISOR_DIR = "fisor"  # under the models folder
FISOR_FILE = "fisor_policy.pt"
FISOR_KIND = "fisor_policy"
FILE_FORMAT = "bresa-fisor/2"  # /2: the state holds the scripted action
SELECTIONS = ("min-qh", "max-qr", "feasible-max-qr")
# the task's scripted action (peg insertion: the spiral search's), in control.actions' order
SCRIPTED_ACTION_LABELS = tuple(f"scripted_action_{i}" for i in range(POLICY_ACTION_SIZE))
STATE_LABELS = (*OBSERVATION_LABELS, *SCRIPTED_ACTION_LABELS)
STATE_SIZE = len(STATE_LABELS)
STD_FLOOR = 1e-3  # observation scaling: no feature is divided by less (1 mm, 1 mN, 1 mrad)


@dataclass(frozen=True)
class FisorArchitecture:
    """Sizes of the networks; stored in the model file and on its card, and checked at load."""

    observation_size: int = STATE_SIZE  # the state's size (:data:`STATE_LABELS`)
    action_size: int = POLICY_ACTION_SIZE
    critic_hidden: tuple[int, ...] = (256, 256)
    actor_hidden: int = 256
    actor_blocks: int = 3
    actor_dropout: float = 0.1
    actor_layer_norm: bool = True
    time_features: int = 64
    time_hidden: tuple[int, ...] = (128, 128)
    diffusion_steps: int = 5

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FisorArchitecture:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on unknown or missing keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(values) != names:
            raise ValueError(f"architecture keys {sorted(values)} differ from {sorted(names)}")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)


def mlp(inputs: int, hidden: Sequence[int], outputs: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers with ``activation`` between them, none after the last."""
    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two independent heads ``Q(s, a)``; ``forward`` returns both, shape (batch, 2)."""

    def __init__(self, observation_size: int, action_size: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.q1 = mlp(observation_size + action_size, hidden, 1)
        self.q2 = mlp(observation_size + action_size, hidden, 1)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([state, action], dim=-1)
        return torch.cat([self.q1(x), self.q2(x)], dim=-1)


class StateValue(nn.Module):
    """``V(s)``, shape (batch,)."""

    def __init__(self, observation_size: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp(observation_size, hidden, 1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state).squeeze(-1)


class FourierTime(nn.Module):
    """Learnable Fourier features of the diffusion step: ``[cos(2 pi t W), sin(2 pi t W)]``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(0.2 * torch.randn(features // 2, 1))

    def forward(self, time: torch.Tensor) -> torch.Tensor:
        f = 2.0 * math.pi * time @ self.kernel.T
        return torch.cat([torch.cos(f), torch.sin(f)], dim=-1)


class ResidualBlock(nn.Module):
    """``x + W2 mish(W1 norm(dropout(x)))``, 4x wide inside (the reference's MLPResNet block)."""

    def __init__(self, features: int, dropout: float, layer_norm: bool) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.norm = nn.LayerNorm(features) if layer_norm else nn.Identity()
        self.inner = nn.Sequential(nn.Linear(features, 4 * features), nn.Mish(), nn.Linear(4 * features, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(self.norm(self.dropout(x)))


class NoiseModel(nn.Module):
    """``eps(s, a_t, t)``: the noise in a noisy action, from the (scaled) observation, the noisy
    action and the step's time embedding (Fourier features through a small MLP)."""

    def __init__(self, arch: FisorArchitecture) -> None:
        super().__init__()
        self.time = FourierTime(arch.time_features)
        self.condition = mlp(arch.time_features, arch.time_hidden[:-1], arch.time_hidden[-1], nn.Mish)
        inputs = arch.action_size + arch.observation_size + arch.time_hidden[-1]
        self.inp = nn.Linear(inputs, arch.actor_hidden)
        self.blocks = nn.Sequential(*[ResidualBlock(arch.actor_hidden, arch.actor_dropout, arch.actor_layer_norm)
                                      for _ in range(arch.actor_blocks)])
        self.out = nn.Sequential(nn.Mish(), nn.Linear(arch.actor_hidden, arch.action_size))

    def forward(self, state: torch.Tensor, action: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        condition = self.condition(self.time(time.reshape(-1, 1).to(action.dtype)))
        return self.out(self.blocks(self.inp(torch.cat([action, state, condition], dim=-1))))


def vp_betas(steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> torch.Tensor:
    """The discrete variance-preserving noise schedule (the reference's ``vp``), ``steps`` values."""
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    alpha = torch.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / steps**2)
    return (1.0 - alpha).float()


class DiffusionPolicy(nn.Module):
    """A DDPM over actions in [-1, 1]: ``loss`` trains the noise model by (weighted) denoising,
    ``sample`` runs the reverse chain from Gaussian noise, clipped to [-1, 1] at every step."""

    def __init__(self, noise_model: NoiseModel, steps: int, temperature: float = 1.0, clip: bool = True) -> None:
        super().__init__()
        self.noise_model = noise_model
        self.steps = int(steps)
        self.temperature = float(temperature)
        self.clip = bool(clip)
        betas = vp_betas(self.steps)
        alphas = 1.0 - betas
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_hats", torch.cumprod(alphas, dim=0))

    def loss(self, state: torch.Tensor, action: torch.Tensor, weight: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over the batch of ``weight * |eps - eps(s, a_t, t)|^2`` with a random step ``t``
        per row and ``a_t = sqrt(abar_t) a + sqrt(1 - abar_t) eps``."""
        batch = action.shape[0]
        t = torch.randint(0, self.steps, (batch,), generator=generator, device=action.device)
        noise = torch.randn(action.shape, generator=generator, device=action.device, dtype=action.dtype)
        abar = self.alpha_hats[t].unsqueeze(-1)
        noisy = abar.sqrt() * action + (1.0 - abar).sqrt() * noise
        error = ((self.noise_model(state, noisy, t) - noise) ** 2).sum(dim=-1)
        return (error if weight is None else error * weight).mean()

    def sample(self, state: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` actions per state in [-1, 1]: (n, action) for one state (observation,), (batch,
        n, action) for a batch of states."""
        single = state.dim() == 1
        states = state.reshape(-1, state.shape[-1])
        rows = states.repeat_interleave(n, dim=0)
        action_size = self.noise_model.out[-1].out_features
        x = torch.randn((rows.shape[0], action_size), generator=generator, dtype=rows.dtype)
        for step in range(self.steps - 1, -1, -1):
            t = torch.full((rows.shape[0],), step, dtype=torch.long)
            eps = self.noise_model(rows, x, t)
            x = (x - (1.0 - self.alphas[step]) / (1.0 - self.alpha_hats[step]).sqrt() * eps) / self.alphas[step].sqrt()
            if step > 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                x = x + self.betas[step].sqrt() * self.temperature * z
            if self.clip:
                x = x.clamp(-1.0, 1.0)
        x = x.clamp(-1.0, 1.0)
        return x.reshape(n, action_size) if single else x.reshape(states.shape[0], n, action_size)


class ObservationScale(nn.Module):
    """``(observation - mean) / std``, the statistics of the training rows (buffers)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def fit(self, observations: torch.Tensor) -> None:
        """Set mean and std (floored at :data:`STD_FLOOR`) from rows of observations."""
        self.mean.copy_(observations.mean(dim=0))
        self.std.copy_(observations.std(dim=0).clamp_min(STD_FLOOR))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return (observation - self.mean) / self.std


class FisorNetworks(nn.Module):
    """Everything FISOR runs: the observation scaling, the diffusion policy (its EMA weights after
    training), the target critics ``Q_h`` and ``Q_r`` that choose among samples, and ``V_h``
    (feasibility) and ``V_r``. Every network takes the *scaled* observation."""

    def __init__(self, arch: FisorArchitecture, ddpm_temperature: float = 1.0) -> None:
        super().__init__()
        self.arch = arch
        self.scale = ObservationScale(arch.observation_size)
        self.policy = DiffusionPolicy(NoiseModel(arch), arch.diffusion_steps, ddpm_temperature)
        self.q_h = TwinQ(arch.observation_size, arch.action_size, arch.critic_hidden)
        self.q_r = TwinQ(arch.observation_size, arch.action_size, arch.critic_hidden)
        self.v_h = StateValue(arch.observation_size, arch.critic_hidden)
        self.v_r = StateValue(arch.observation_size, arch.critic_hidden)

    def score(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pessimistic ``Q_h`` (max of the heads) and ``Q_r`` (min) of actions (n, action) at one
        scaled state (observation,), each of shape (n,)."""
        states = state.reshape(1, -1).expand(actions.shape[0], -1)
        return self.q_h(states, actions).amax(dim=-1), self.q_r(states, actions).amin(dim=-1)


def select_action(q_h: torch.Tensor, q_r: torch.Tensor, selection: str) -> int:
    """Index of the sample to run (:data:`SELECTIONS`; the module docstring says what each does)."""
    if selection == "min-qh":
        return int(torch.argmin(q_h))
    if selection == "max-qr":
        return int(torch.argmax(q_r))
    if selection == "feasible-max-qr":
        feasible = q_h <= 0.0
        if bool(feasible.any()):
            return int(torch.argmax(torch.where(feasible, q_r, torch.full_like(q_r, -math.inf))))
        return int(torch.argmin(q_h))
    raise ValueError(f"selection {selection!r} must be one of: {', '.join(SELECTIONS)}")


def payload(networks: FisorNetworks) -> dict[str, Any]:
    """What the model file holds (``torch.save``; readable with ``weights_only=True``)."""
    return {"format": FILE_FORMAT, "architecture": networks.arch.to_dict(),
            "ddpm_temperature": networks.policy.temperature,
            "state_dict": {k: v.detach().clone() for k, v in networks.state_dict().items()}}


def load_fisor(folder: str | Path) -> tuple[FisorNetworks, dict[str, Any]]:
    """The networks of ``folder/fisor_policy.pt`` and its card, checked; raises :class:`ModelError`."""
    path = Path(folder) / FISOR_FILE
    card = read_card(path)  # a missing model file or card raises ModelError
    where = card_path(path)
    if card.get("kind") != FISOR_KIND:
        raise ModelError(f"model card {where} is for a {card.get('kind')!r}, expected {FISOR_KIND!r}")
    if card.get("observation_labels") != list(STATE_LABELS):
        raise ModelError(f"model card {where} has state labels {card.get('observation_labels')}, expected this "
                         f"contract's observation and the scripted action, {STATE_SIZE} values: {list(STATE_LABELS)}")
    if card.get("observation_size") != STATE_SIZE or card.get("action_size") != POLICY_ACTION_SIZE:
        raise ModelError(f"model card {where} has state and action sizes ({card.get('observation_size')}, "
                         f"{card.get('action_size')}), expected ({STATE_SIZE}, {POLICY_ACTION_SIZE})")
    if card.get("selection") not in SELECTIONS or not isinstance(card.get("samples"), int) or card["samples"] < 1:
        raise ModelError(f"model card {where} has selection {card.get('selection')!r} and samples "
                         f"{card.get('samples')!r}: expected one of {SELECTIONS} and a positive integer")
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises many types
        raise ModelError(f"cannot read the FISOR model {path}: {exc}") from None
    if not isinstance(stored, dict) or stored.get("format") != FILE_FORMAT:
        found = stored.get("format") if isinstance(stored, dict) else type(stored).__name__
        raise ModelError(f"model {path} has format {found!r}, expected {FILE_FORMAT!r}")
    if card.get("architecture") != stored["architecture"]:
        theirs, ours = card.get("architecture") or {}, stored["architecture"]
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ModelError(f"model card {where} disagrees with the model {path} on the architecture: "
                         + "; ".join(f"{k}: card {theirs.get(k)!r}, model {ours.get(k)!r}" for k in differ))
    try:
        arch = FisorArchitecture.from_dict(stored["architecture"])
        networks = FisorNetworks(arch, float(stored["ddpm_temperature"]))
        networks.load_state_dict(stored["state_dict"], strict=True)
    except Exception as exc:  # shape or key mismatches
        raise ModelError(f"cannot load the FISOR networks from {path}: {exc}") from None
    if (arch.observation_size, arch.action_size) != (STATE_SIZE, POLICY_ACTION_SIZE):
        raise ModelError(f"model {path} has state and action sizes ({arch.observation_size}, "
                         f"{arch.action_size}), expected ({STATE_SIZE}, {POLICY_ACTION_SIZE})")
    networks.eval()
    with torch.inference_mode():
        probe = networks.policy.sample(torch.zeros(STATE_SIZE), 2, torch.Generator().manual_seed(0))
        q_h, q_r = networks.score(torch.zeros(STATE_SIZE), probe)
    if probe.shape != (2, POLICY_ACTION_SIZE) or not bool(torch.isfinite(torch.cat([probe.flatten(), q_h, q_r])).all()):
        raise ModelError(f"model {path} gives non-finite or misshapen outputs on a probe observation")
    return networks, card


class FisorPolicy:
    """FISOR as a controller (``reset`` / ``act``): ``samples`` actions from the diffusion model,
    one kept by ``selection``. Deterministic given ``seed``: every episode (``reset``) starts the
    noise generator from it, so an episode's actions do not depend on which episodes ran before.

    ``last`` holds the critics' view of the latest decision (``v_h``, the chosen sample's ``q_h``
    and ``q_r``, ``feasible_samples``): what a feasibility gate or a log would read.
    """

    def __init__(self, folder: str | Path, config: BresaConfig, seed: int = 0, samples: int | None = None,
                 selection: str | None = None, base: Controller | None = None) -> None:
        """``base``: the task's scripted controller, the other half of the state (a fresh one;
        default peg insertion's spiral search)."""
        self.networks, self.card = load_fisor(folder)
        self.scripted = base if base is not None else SpiralSearch(config)
        self.samples = int(samples if samples is not None else self.card["samples"])
        self.selection = selection if selection is not None else str(self.card["selection"])
        if self.samples < 1 or self.selection not in SELECTIONS:
            raise ValueError(f"samples must be at least 1 and selection one of {SELECTIONS}, got "
                             f"{self.samples}, {self.selection!r}")
        self.seed = int(seed)
        self.generator = torch.Generator()
        self.last: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Start of an episode: the noise generator starts over from the seed."""
        self.generator.manual_seed(self.seed)
        self.scripted.reset()
        self.last = {}

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The chosen action, float32, (7,) in [-1, 1]."""
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (len(OBSERVATION_LABELS),) or not np.all(np.isfinite(obs)):
            raise ValueError(f"observation must be {len(OBSERVATION_LABELS)} finite values, got shape {obs.shape}")
        state_values = np.concatenate([obs, self.scripted.act(obs)]).astype(np.float32)
        with torch.inference_mode():
            state = self.networks.scale(torch.from_numpy(state_values))
            actions = self.networks.policy.sample(state, self.samples, self.generator)
            q_h, q_r = self.networks.score(state, actions)
            index = select_action(q_h, q_r, self.selection)
            v_h = float(self.networks.v_h(state.reshape(1, -1))[0])
        self.last = {"v_h": v_h, "q_h": float(q_h[index]), "q_r": float(q_r[index]),
                     "feasible_samples": float((q_h <= 0.0).sum())}
        return np.clip(actions[index].numpy(), -1.0, 1.0).astype(np.float32)
