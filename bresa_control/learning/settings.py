"""The settings of the learning commands, each in one documented dataclass (CleanRL's ``Args``).

``bresa train-critic`` and ``bresa train-policy`` make their flags and defaults from these fields
(:func:`bresa_control.app.commands.common.add_settings`), and the model cards record them, so a card says
exactly how to make its model again. Imports no stable-baselines3 and no simulator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bresa_control.common.config import BresaConfig
from bresa_control.policies.fisor import SELECTIONS, FisorArchitecture
from bresa_control.policies.residual import RESIDUAL_SCALE
from bresa_control.tasks import DEFAULT_TASK, TASKS


def training_config(config: BresaConfig) -> BresaConfig:
    """The config of every training environment (``bresa collect`` and the task policies of every
    learned method alike): ``config`` with the generic disturbances on (``randomisation``), so all
    methods train in the same randomised world. Checkpoint selection and evaluation use ``config``
    itself: nominal."""
    return dataclasses.replace(config, randomisation=dataclasses.replace(config.randomisation, enabled=True))


def _setting(default: Any, help: str) -> Any:
    """A settings field: its default and what it means (the command line's help text)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SacTraining:
    """The settings every SAC task policy shares (``bresa train-policy``, ``bresa
    train-sac-lagrangian``): the run, the checkpoint selection, the residual and SAC's own."""

    timesteps: int = _setting(50_000, "decision steps of SAC training")
    seed: int = _setting(0, "seed of SAC, torch and the episodes")
    select_every: int = _setting(2500, "decisions between checkpoint evaluations (the best is written)")
    select_episodes: int = _setting(20, "held-out episodes per checkpoint evaluation")
    residual_scale: float = _setting(RESIDUAL_SCALE, "environment action = scripted + scale * residual")
    learning_starts: int = _setting(500, "SAC: random decisions before the first update")
    buffer_size: int = _setting(0, "SAC: replay buffer size; 0 means max(timesteps, 1000)")
    batch_size: int = _setting(256, "SAC: minibatch size")
    gamma: float = _setting(0.98, "SAC: discount per decision (10 Hz: ~5 s horizon)")
    train_freq: int = _setting(1, "SAC: decisions between updates")
    gradient_steps: int = _setting(1, "SAC: gradient steps per update")
    net_arch: tuple[int, ...] = _setting((256, 256), "SAC: hidden units of actor and critic")
    threads: int = _setting(1, "torch threads (1 is fastest for per-tick critic calls on 2 cores)")
    task: str = _setting(DEFAULT_TASK, f"the task: {', '.join(TASKS)} (docs/adding-a-task.md); the critic and "
                                       "recovery it trains with must be trained for it")
    COMMAND: ClassVar[str] = "training"  # the command these settings are for, in error messages

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.COMMAND} setting task = {self.task!r} must be one of: {', '.join(TASKS)}")
        self._at_least_one("timesteps", "select_every", "select_episodes", "batch_size", "train_freq",
                           "gradient_steps", "threads")
        if not 0.0 < self.gamma < 1.0 or self.residual_scale <= 0.0:
            raise ValueError(f"{self.COMMAND} settings need 0 < gamma < 1 and residual_scale > 0, got gamma "
                             f"{self.gamma}, residual_scale {self.residual_scale}")

    def _at_least_one(self, *names: str) -> None:
        """A clear error naming the first of ``names`` that is below 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{self.COMMAND} setting {name} = {getattr(self, name)} must be at least 1")

    @property
    def replay_size(self) -> int:
        """The replay buffer's size in decisions."""
        return self.buffer_size or max(self.timesteps, 1000)


@dataclass(frozen=True)
class PolicyTraining(SacTraining):
    """Every setting of ``bresa train-policy`` (Bresa's task policy: SAC with the reflex in the loop
    and the risk critic refined online), SAC's included, in one place (CleanRL's ``Args``).

    The command line's flags and defaults are made from these fields, and the policy's card
    records all of them, so a card says exactly how to make its policy again.
    """

    refine_every: int = _setting(2000, "decisions between rounds of online critic refinement")
    refine_steps: int = _setting(100, "TD updates of the critic per refinement round")
    COMMAND: ClassVar[str] = "train-policy"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._at_least_one("refine_every", "refine_steps")


@dataclass(frozen=True)
class RecoveryRLTraining(PolicyTraining):
    """Every setting of ``bresa train-recovery-rl``: the Recovery RL baseline's layer (its critic and
    recovery, trained offline on decision-level data with :class:`CriticTraining`'s defaults and
    ``recovery_rl.gamma_risk``), then its task policy with that layer in the loop, the critic and the
    recovery refined online every ``refine_every`` decisions (:mod:`bresa_control.learning.recovery_rl`)."""

    critic_steps: int = _setting(20000, "offline gradient steps of the layer's critic (Bresa's critic: the same)")
    recovery_steps: int = _setting(3000, "offline gradient steps of the layer's recovery (Bresa's: the same)")
    critic_hidden: int = _setting(256, "units per hidden layer of the layer's critic and recovery")
    COMMAND: ClassVar[str] = "train-recovery-rl"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._at_least_one("critic_steps", "recovery_steps", "critic_hidden")


@dataclass(frozen=True)
class SacLagrangianTraining(SacTraining):
    """Every setting of ``bresa train-sac-lagrangian``: SAC on ``r - lambda c`` with lambda learned by
    dual ascent against a limit on the expected episode cost (:mod:`bresa_control.learning.sac_lagrangian`)."""

    cost_limit: float = _setting(0.1, "allowed expected cost per episode: decisions with a violation (0.1: about "
                                      "one episode in ten with one violating decision)")
    lagrange_lr: float = _setting(0.05, "dual step size: lambda += lr * (mean episode cost - cost_limit)")
    lagrange_initial: float = _setting(1.0, "lambda at the start (the cost's weight in the reward)")
    cost_window: int = _setting(20, "episodes in the mean episode cost of the dual step")
    COMMAND: ClassVar[str] = "train-sac-lagrangian"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cost_limit < 0.0 or self.lagrange_lr <= 0.0 or self.lagrange_initial < 0.0 or self.cost_window < 1:
            raise ValueError("train-sac-lagrangian settings need cost_limit >= 0, lagrange_lr > 0, "
                             f"lagrange_initial >= 0 and cost_window >= 1, got {self.cost_limit}, {self.lagrange_lr}, "
                             f"{self.lagrange_initial}, {self.cost_window}")


@dataclass(frozen=True)
class CriticTraining:
    """Every setting of ``bresa train-critic``: offline TD training of the twin risk critic, then the
    recovery policy against it. ``gamma_risk`` comes from the config (``reflex.gamma_risk``)."""

    gamma_risk: float = _setting(0.99, "critic discount per control tick (from reflex.gamma_risk)")
    steps: int = _setting(20000, "critic gradient steps")
    recovery_steps: int = _setting(3000, "recovery policy gradient steps")
    batch_size: int = _setting(1024, "ticks per minibatch")
    hidden: int = _setting(256, "units per hidden layer (critic and recovery)")
    learning_rate: float = _setting(3e-4, "Adam learning rate")
    polyak: float = _setting(0.005, "target critic update rate")
    holdout_fraction: float = _setting(0.2, "share of episodes held out for the AUROC")
    positive_fraction: float = _setting(0.1, "share of each batch drawn from ticks before a violation")


@dataclass(frozen=True)
class FeasibilityTraining:
    """Every setting of ``bresa train-feasibility``: the feasibility gate's reachability critic on
    the 1 kHz ticks (:mod:`bresa_control.learning.feasibility`). ``gamma_risk`` comes from the
    config (``reflex.gamma_risk``), as for the risk critic."""

    gamma_risk: float = _setting(0.99, "discount per control tick (from reflex.gamma_risk)")
    steps: int = _setting(20000, "gradient steps")
    batch_size: int = _setting(1024, "ticks per minibatch")
    hidden: int = _setting(64, "units per hidden layer of Q_h (twin) and V_h: the 1 kHz cost of the candidate "
                               "64-wide risk critic")
    learning_rate: float = _setting(3e-4, "Adam learning rate")
    polyak: float = _setting(0.005, "target network update rate")
    holdout_fraction: float = _setting(0.2, "share of episodes held out for the figures")
    positive_fraction: float = _setting(0.1, "share of each batch drawn from ticks before a violation")
    cost_scale: float = _setting(25.0, "h = +cost_scale on a tick followed by a violation, -1 otherwise (FISOR's)")
    cost_expectile: float = _setting(0.9, "V_h: weight of Q_h < V_h in the expectile regression (FISOR's), so V_h "
                                          "tends to the best the data's actions did")
    COMMAND: ClassVar[str] = "train-feasibility"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.COMMAND} setting {name} = {getattr(self, name)} must be at least 1")
        checks = {"gamma_risk": 0.0 < self.gamma_risk < 1.0, "polyak": 0.0 < self.polyak <= 1.0,
                  "holdout_fraction": 0.0 < self.holdout_fraction < 1.0, "cost_scale": self.cost_scale > 0.0,
                  "positive_fraction": 0.0 <= self.positive_fraction < 1.0,
                  "cost_expectile": 0.0 < self.cost_expectile < 1.0, "learning_rate": self.learning_rate > 0.0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"{self.COMMAND} settings out of range: "
                             + ", ".join(f"{n} = {getattr(self, n)!r}" for n in bad))


@dataclass(frozen=True)
class FisorTraining:
    """Every setting of FISOR's offline training (``bresa train-fisor``, :mod:`bresa_control.learning.fisor`).
    Defaults are the reference code's (``configs/train_config.py``: ``fisor``) unless the help says otherwise."""

    steps: int = _setting(20_000, "training steps (reference: 1e6 on 1M-row benchmarks; here ~19k rows, each seen "
                                  "~270 times by the critics and the policy; ~0.1 s a step on one busy CPU thread)")
    seed: int = _setting(0, "seed of torch, the batches and the held-out split")
    holdout_fraction: float = _setting(0.2, "share of episodes held out for the figures (not in the reference)")
    label_decisions: int = _setting(10, "held-out figures: a row is positive if a violation follows within this "
                                        "many decisions of its episode (10: 1 s)")
    gamma: float = _setting(0.99, "discount per decision, reward and reachability critics alike")
    polyak: float = _setting(0.005, "target critic update rate (reference tau)")
    actor_ema: float = _setting(0.001, "rate of the exponential moving average of the policy that runs "
                                       "(reference actor_tau)")
    cost_scale: float = _setting(25.0, "h = +cost_scale on a violating decision, -1 otherwise")
    reward_expectile: float = _setting(0.9, "V_r: upper expectile of Q_r (reference critic_hyperparam)")
    cost_expectile: float = _setting(0.9, "V_h: weight of Q_h < V_h in the expectile regression, so V_h tends "
                                          "to the minimum over data actions (reference cost_critic_hyperparam)")
    reward_temperature: float = _setting(3.0, "feasible region: weight exp(reward_temperature (Q_r - V_r))")
    cost_temperature: float = _setting(5.0, "infeasible region: weight exp(cost_temperature (V_h - Q_h))")
    reward_weight_max: float = _setting(100.0, "clip of the feasible region's weights")
    cost_weight_max: float = _setting(150.0, "clip of the infeasible region's weights (reference cost_ub)")
    critic_hidden: tuple[int, ...] = _setting((256, 256), "hidden units of Q_h, V_h, Q_r and V_r (ReLU)")
    actor_hidden: int = _setting(256, "width of the noise model's residual blocks (4x inside)")
    actor_blocks: int = _setting(3, "residual blocks of the noise model")
    actor_dropout: float = _setting(0.1, "dropout in the noise model's blocks while training")
    actor_layer_norm: bool = _setting(True, "layer norm in the noise model's blocks")
    time_features: int = _setting(64, "Fourier features of the diffusion step")
    time_hidden: tuple[int, ...] = _setting((128, 128), "MLP (Mish) from the step's features to the condition")
    diffusion_steps: int = _setting(5, "DDPM steps T (vp schedule)")
    ddpm_temperature: float = _setting(1.0, "scale of the noise added at each reverse step when sampling")
    samples: int = _setting(16, "actions sampled per decision at run time, one kept by the critics")
    selection: str = _setting("min-qh", "which sample runs: min-qh (reference: lowest Q_h), max-qr, or "
                                        "feasible-max-qr (highest Q_r among Q_h <= 0, else lowest Q_h)")
    actor_batch_size: int = _setting(256, "rows per policy update (reference: 2048 in two halves of 1024; here a "
                                          "sixth of the time a step on a 2-core CPU: 0.1 s, not 0.6)")
    actor_updates: int = _setting(1, "policy updates per step, each on its own rows (reference: 2)")
    critic_batch_size: int = _setting(256, "rows per critic update")
    actor_lr: float = _setting(3e-4, "Adam learning rate of the noise model, cosine-decayed")
    actor_lr_decay: float = _setting(1.5, "the cosine decay spans this many times the policy updates of the run "
                                          "(reference: 3e6 over 2e6 updates)")
    critic_lr: float = _setting(3e-4, "Adam learning rate of Q_h and Q_r")
    value_lr: float = _setting(3e-4, "Adam learning rate of V_h and V_r")
    normalize_rewards: bool = _setting(True, "scale rewards so that the spread of episode returns equals the "
                                             "longest episode's decisions (reference normalize_returns)")
    threads: int = _setting(1, "torch threads")
    evaluate_episodes: int = _setting(20, "held-out episodes (the checkpoint selection's seeds, nominal) the exported "
                                          "policy runs once, for its card; nothing is chosen by them (not in the "
                                          "reference)")
    COMMAND: ClassVar[str] = "train-fisor"

    def __post_init__(self) -> None:
        for name in ("steps", "label_decisions", "diffusion_steps", "samples", "actor_batch_size", "actor_updates",
                     "critic_batch_size", "actor_hidden", "actor_blocks", "time_features", "threads",
                     "evaluate_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.COMMAND} setting {name} = {getattr(self, name)} must be at least 1")
        checks = {
            "gamma": 0.0 < self.gamma < 1.0, "polyak": 0.0 < self.polyak <= 1.0,
            "actor_ema": 0.0 < self.actor_ema <= 1.0, "cost_scale": self.cost_scale > 0.0,
            "reward_expectile": 0.0 < self.reward_expectile < 1.0, "cost_expectile": 0.0 < self.cost_expectile < 1.0,
            "holdout_fraction": 0.0 < self.holdout_fraction < 1.0, "actor_dropout": 0.0 <= self.actor_dropout < 1.0,
            "reward_weight_max": self.reward_weight_max > 0.0, "cost_weight_max": self.cost_weight_max > 0.0,
            "actor_lr_decay": self.actor_lr_decay >= 1.0, "time_features": self.time_features % 2 == 0,
            "selection": self.selection in SELECTIONS,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            found = ", ".join(f"{n} = {getattr(self, n)!r}" for n in bad)
            raise ValueError(f"{self.COMMAND} settings out of range: {found} (selection one of {SELECTIONS}; "
                             "time_features even)")

    def architecture(self) -> FisorArchitecture:
        """The networks' sizes."""
        return FisorArchitecture(
            critic_hidden=tuple(self.critic_hidden), actor_hidden=self.actor_hidden, actor_blocks=self.actor_blocks,
            actor_dropout=self.actor_dropout, actor_layer_norm=self.actor_layer_norm,
            time_features=self.time_features, time_hidden=tuple(self.time_hidden),
            diffusion_steps=self.diffusion_steps)
