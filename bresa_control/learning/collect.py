"""Offline risk data: scripted and random impedance actions in the peg scene, every control tick.

File format (``.npz``, written atomically; ``np.load(path)``):

============  ==============  =============================================================
array         shape, dtype    meaning
============  ==============  =============================================================
features      (N, 20) f32     critic input at tick k: state then executed-action features,
                              layout in ``meta["feature_layout"]`` (risk_features.py)
cost          (N,) u1         1 if the tick after k violated a constraint (force, torque,
                              workspace), else 0
episode       (N,) i4         episode index; tick k+1 follows k when both share an episode
decision_*                    the same episodes aggregated to decisions (10 Hz), for the
                              Recovery RL baseline's critic (safety/recovery_rl.py):
  _observation (M, 22) f32    the policy's observation before the decision (contract.py)
  _action     (M, 7) f32      the environment action of the decision
  _cost       (M,) u1         1 if any tick of the decision violated a constraint
  _episode    (M,) i4         episode index, as ``episode``
  _reward     (M,) f32        the environment's reward of the decision (format 4)
  _next_observation (M, 22) f32  the observation after it (format 4)
  _terminated (M,) u1         1 if the episode ended there: inserted or an arm fault (format 4;
                              a row cut off by the step limit is 0)
  _base_action (M, 7) f32     the configured spiral search's action at that decision, whatever
                              behaviour ran (format 5): the input the SAC task policies get
                              beside the observation (policies/residual.py), for FISOR
  _next_base_action (M, 7) f32  the same after the decision, from ``_next_observation`` (format 5)
meta          () str          JSON: format, seed, command, config, behaviour per episode,
                              counts, ``complete`` (false if the run was interrupted)
============  ==============  =============================================================

Behaviours (drawn per episode from the seed), for the task of ``--task`` (default peg insertion):
``nominal`` is the task's scripted controller as configured (the spiral search: safe insertions, so
the critic learns what normal contact looks like); ``scripted`` is the same with randomised gains,
speeds and force (``Task.randomised_scripted``); ``random`` holds uniformly drawn actions
(biased downward, toward the fixture) for a few decisions each; ``policy`` (only with
``--policy-dir`` and ``--policy-fraction``) a trained task policy with noise on its actions. All
run with the reflex off, in the training environment
(:func:`~bresa_control.learning.settings.training_config`: wrench pulses of at most 10 N in half
the episodes, friction and contact stiffness spread), so the critic has seen the world push back
without seeing an evaluation scenario.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bresa_control.common.config import BresaConfig, config_to_dict
from bresa_control.common.files import atomic_output
from bresa_control.contract import Controller
from bresa_control.learning.settings import training_config
from bresa_control.safety.risk_features import FEATURE_SIZE, FeatureMap
from bresa_control.simulation.env import TaskEnv
from bresa_control.tasks import DEFAULT_TASK

FORMAT = "bresa-risk-data/5"  # /2 added the decision_* arrays; /3 the training disturbances; /4 the recorded ones
# /4 and /5 add arrays only: the same seed gives the same rows as /3
READABLE_FORMATS = ("bresa-risk-data/3", "bresa-risk-data/4", FORMAT)
DECISION_ARRAYS = ("decision_observation", "decision_action", "decision_cost", "decision_episode")
RECORDED_ARRAYS = ("decision_reward", "decision_next_observation", "decision_terminated")  # format 4
BASE_ARRAYS = ("decision_base_action", "decision_next_base_action")  # format 5


class RandomImpedance:
    """Uniform random actions, each held for 1-5 decisions, z biased toward the fixture."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.action = np.zeros(7, dtype=np.float32)
        self.hold = 0

    def reset(self) -> None:
        self.hold = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        if self.hold <= 0:
            self.action = self.rng.uniform(-1.0, 1.0, size=7).astype(np.float32)
            self.action[2] = self.rng.uniform(-1.0, 0.3)
            self.hold = int(self.rng.integers(1, 6))
        self.hold -= 1
        return self.action


class NoisyPolicy:
    """A trained task policy (``--policy-dir``) with Gaussian noise of ``noise`` on every action
    value: behaviour that acts on the observation alone, for methods that clone the data (FISOR)."""

    def __init__(self, policy: Controller, noise: float, rng: np.random.Generator) -> None:
        self.policy = policy
        self.noise = noise
        self.rng = rng

    def reset(self) -> None:
        self.policy.reset()

    def act(self, observation: np.ndarray) -> np.ndarray:
        action = self.policy.act(observation) + self.rng.normal(0.0, self.noise, size=7)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


@dataclass
class RiskData:
    """Ticks collected so far."""

    features: list[np.ndarray] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    episode: list[int] = field(default_factory=list)
    behaviours: list[str] = field(default_factory=list)
    violating_episodes: int = 0
    # obs, action, cost, episode, reward, next obs, terminated, spiral's action, the same after
    decisions: list[tuple[np.ndarray, np.ndarray, float, int, float, np.ndarray, bool, np.ndarray, np.ndarray]] = field(
        default_factory=list)


def collect(
    config: BresaConfig,
    episodes: int,
    seed: int,
    max_steps: int,
    random_fraction: float = 0.35,
    nominal_fraction: float = 0.3,
    progress: bool = True,
    data: RiskData | None = None,
    scenario: str = "nominal",
    policy: Controller | None = None,
    policy_fraction: float = 0.0,
    policy_noise: float = 0.2,
    task: str = DEFAULT_TASK,
) -> RiskData:
    """Run ``episodes`` behaviour episodes and record every tick into ``data``: in the training
    environment (nominal, generic disturbances on), or in an evaluation ``scenario`` as it is (to
    test a critic on what it never trained on: bench/critic_scenarios.py). With ``policy`` and a
    ``policy_fraction`` above 0, that share of the episodes runs it with noise (:class:`NoisyPolicy`);
    at 0 the data is what it was without it, row for row."""
    fractions = random_fraction + nominal_fraction + policy_fraction
    if min(random_fraction, nominal_fraction, policy_fraction) < 0.0 or fractions > 1.0:
        raise ValueError(f"behaviour shares must be at least 0 and sum to at most 1, got random {random_fraction}, "
                         f"nominal {nominal_fraction}, policy {policy_fraction}")
    if policy_fraction > 0.0 and policy is None:
        raise ValueError("a policy share above 0 needs the policy (bresa collect --policy-dir)")
    world = training_config(config) if scenario == "nominal" else config
    config = dataclasses.replace(world, reflex=dataclasses.replace(config.reflex, mode="off"))
    env = TaskEnv(config, scenario=scenario, task=task)
    data = RiskData() if data is None else data
    rng = np.random.default_rng(seed)
    current = {"episode": 0}

    def record(features: np.ndarray, cost: float) -> None:
        data.features.append(features)
        data.cost.append(cost)
        data.episode.append(current["episode"])

    env.tick_recorder = record
    spiral = env.task.scripted()  # watches every episode, acts in none: it draws nothing from rng
    with tqdm(total=episodes, desc="collect", unit="ep", disable=not progress) as bar:
        for i in range(episodes):
            current["episode"] = i
            draw = rng.random()
            behaviour: Controller
            if draw < random_fraction:
                behaviour, name = RandomImpedance(rng), "random"
            elif draw < random_fraction + nominal_fraction:
                behaviour, name = env.task.scripted(), "nominal"
            elif draw < fractions and policy is not None:
                behaviour, name = NoisyPolicy(policy, policy_noise, rng), "policy"
            else:
                behaviour, name = env.task.randomised_scripted(rng), "scripted"
            data.behaviours.append(name)
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            behaviour.reset()
            spiral.reset()
            base = spiral.act(obs)
            violated = False
            for _ in range(max_steps):
                action = behaviour.act(obs)
                before, base_before = obs, base
                obs, reward, terminated, truncated, info = env.step(action)
                # the spiral's next action; after the episode's last decision, from a copy (nothing follows)
                base = (spiral if not (terminated or truncated) else copy.deepcopy(spiral)).act(obs)
                data.decisions.append((before, np.asarray(action, np.float32), info["cost"], i, float(reward), obs,
                                       bool(terminated), base_before, base))
                violated |= info["cost"] > 0
                if terminated or truncated:
                    break
            data.violating_episodes += int(violated)
            bar.update(1)
            bar.set_postfix(violating=f"{data.violating_episodes / (i + 1):.0%}")
    return data


def save(path: str | Path, data: RiskData, meta: dict[str, Any]) -> None:
    """Write ``data`` and ``meta`` atomically (an interrupted write leaves no partial file)."""
    features = np.array(data.features, dtype=np.float32).reshape(-1, FEATURE_SIZE)
    rows = list(zip(*data.decisions)) if data.decisions else [()] * 9
    observations, actions, costs, episodes, rewards, next_observations, terminated, base, next_base = rows
    with atomic_output(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            features=features,
            cost=np.array(data.cost, dtype=np.uint8),
            episode=np.array(data.episode, dtype=np.int32),
            decision_observation=np.array(observations, dtype=np.float32).reshape(len(costs), -1),
            decision_action=np.array(actions, dtype=np.float32).reshape(len(costs), -1),
            decision_cost=np.array(costs, dtype=np.uint8),
            decision_episode=np.array(episodes, dtype=np.int32),
            decision_reward=np.array(rewards, dtype=np.float32),
            decision_next_observation=np.array(next_observations, dtype=np.float32).reshape(len(costs), -1),
            decision_terminated=np.array(terminated, dtype=np.uint8),
            decision_base_action=np.array(base, dtype=np.float32).reshape(len(costs), -1),
            decision_next_base_action=np.array(next_base, dtype=np.float32).reshape(len(costs), -1),
            meta=np.array(json.dumps(meta)),
        )


def metadata(
    config: BresaConfig, data: RiskData, seed: int, command: Sequence[str], complete: bool, task: str = DEFAULT_TASK
) -> dict[str, Any]:
    """The ``meta`` record of a data file."""
    episodes = len(data.behaviours)  # an interrupted run's last episode is cut short
    return {
        "format": FORMAT,
        "task": task,
        "seed": seed,
        "command": list(command),
        "complete": complete,
        "episodes": episodes,
        "ticks": len(data.cost),
        "violating_episodes": data.violating_episodes,
        "violating_ticks": int(np.sum(data.cost)) if data.cost else 0,
        "decisions": len(data.decisions),
        "behaviours": data.behaviours[:episodes],
        "feature_layout": FeatureMap(config).layout(),
        "config": config_to_dict(config),
    }


def load(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a data file; raises ``ValueError`` if it is not in this format."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"risk data file {path} does not exist; make one with 'bresa collect'")
    with np.load(path) as archive:
        if "meta" not in archive.files:
            raise ValueError(f"{path} is not a bresa risk data file: it has no meta record")
        meta = json.loads(str(archive["meta"]))
        if meta.get("format") not in READABLE_FORMATS:
            raise ValueError(f"{path} has format {meta.get('format')!r}, expected one of {READABLE_FORMATS}; make it "
                             "again with the command in its meta record ('bresa collect ...')")
        recorded = {"bresa-risk-data/3": (), "bresa-risk-data/4": RECORDED_ARRAYS}.get(
            meta["format"], RECORDED_ARRAYS + BASE_ARRAYS)
        names = ("features", "cost", "episode", *DECISION_ARRAYS, *recorded)
        missing = set(names) - set(archive.files)
        if missing:
            raise ValueError(f"{path} is not a bresa risk data file: missing {sorted(missing)}")
        arrays = {name: archive[name] for name in names}
    if arrays["features"].shape[1:] != (FEATURE_SIZE,):
        raise ValueError(
            f"{path} has {arrays['features'].shape[1:]} features per tick, expected ({FEATURE_SIZE},)"
        )
    return arrays, meta
