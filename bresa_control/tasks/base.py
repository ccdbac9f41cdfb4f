"""What a contact-rich task provides to the stack: the interface every task implements.

The stack (simulated arm, gymnasium environment, reflex, nodes, training and evaluation commands)
asks a :class:`Task` everything that depends on the task, and nothing else: which task it is never
matters outside the task's own module. A task provides

* **its fixture**: convex boxes in the fixture's frame (:meth:`Task.fixture_boxes`), which both
  MuJoCo scenes (the simulated Panda's and the Franka protocol simulator's) build, in a body named
  :data:`FIXTURE_BODY` placed on the table;
* **the start and goal distributions**: :meth:`Task.draw_episode`, per episode from its seed: where
  the fixture truly is, where the robot believes it is, and where the tip starts;
* **the observation's origin**: :meth:`Task.observation_origin_m`, the point the task policy's
  observation measures the tip from (``tip_x_rel_m`` ...: the contract's 22 values, the same for
  every task);
* **reward, success and progress**: :meth:`Task.goal_distance_m`, :meth:`Task.succeeded`,
  :meth:`Task.progress_m`;
* **the critic's task-specific feature**: :meth:`Task.surface_height_m`, the height of the surface
  the tip approaches (the critic sees the tip's height above it);
* **a scripted baseline**: :meth:`Task.scripted`, the classical controller the learned ones are
  compared with.

Violations are the stack's, the same for every task: a wrist force above ``safety.max_force_n``, a
torque above ``safety.max_torque_nm``, or the tip outside the workspace box.

This module imports numpy and the package's config and contract only: a robot PC's nodes ask the
task for the observation's origin and the surface height without any simulator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller

FIXTURE_BODY = "hole_block"  # the fixture's MuJoCo body (its name predates the task interface)

Boxes = dict[str, tuple[list[float], list[float]]]  # name -> (centre, half sizes), m, fixture frame


@dataclass(frozen=True)
class EpisodeDraw:
    """The random part of an episode (m, base frame): where the fixture's reference point truly is,
    where the robot believes it is, where the tip starts, and which of the task's fixture variants
    (a maze's layout) stands there: the robot knows the variant, not the exact pose."""

    fixture_m: np.ndarray
    fixture_estimate_m: np.ndarray
    start_tip_m: np.ndarray
    variant: int = 0


@dataclass(frozen=True)
class ComparisonTargets:
    """What ``bresa compare`` checks ``bresa`` against on a task (its ``target.md``): the targets
    of the issue that brought the task. Rates are fractions of episodes."""

    #: in every scenario, ``bresa`` has no more violations than each of these: every other
    #: controller, ``scripted`` included ("all"), or the other learned controllers ("learned")
    fewest_violations_among: str = "all"
    #: nominal: no violation in any episode
    nominal_no_violation: bool = True
    #: nominal: at least this fraction of episodes succeed without a violation
    nominal_min_clean_success: float = 0.97
    #: nominal: mean time to success at most this fraction of ``scripted``'s
    nominal_max_time_fraction: float = 0.75
    #: every scenario: success at most this far below the best learned controller's (None: not asked)
    success_within: float | None = 0.03
    #: every scenario whose next best controller violates at least this often: ``bresa``'s 95 %
    #: interval lies wholly below that controller's (None: not asked)
    apart_when_next_best_at_least: float | None = 0.10

    def __post_init__(self) -> None:
        if self.fewest_violations_among not in ("all", "learned"):
            raise ValueError(f"fewest_violations_among is {self.fewest_violations_among!r}; "
                             "expected 'all' or 'learned'")


def uniform_in(rng: np.random.Generator, interval: tuple[float, ...]) -> float:
    """One draw from a [low, high] pair of the config."""
    low, high = interval
    return float(rng.uniform(low, high))


def draw_gains(rng: np.random.Generator, config: BresaConfig) -> tuple[tuple[float, ...], float]:
    """Stiffness (x y z, N/m, over the action's range) and a damping ratio (0.5-2) drawn from
    ``rng``, in that order: the gains of a randomised scripted behaviour."""
    k_lo, k_hi = config.env.action_stiffness_range_n_per_m
    stiffness = tuple(float(v) for v in rng.uniform(k_lo, k_hi, size=3))
    return stiffness, float(rng.uniform(0.5, 2.0))


class Task(ABC):
    """A contact-rich task: fixture, episodes, observation origin, reward, success, critic feature
    and scripted baseline. One instance per config; it holds no episode state."""

    #: the task's name on the command line (``--task``)
    name: str = ""
    #: the gymnasium id (``gymnasium.make``)
    env_id: str = ""
    #: what a succeeded episode is called in messages and tables (peg insertion: "inserted")
    success_word: str = "succeeded"
    #: the mean time to success's column name (peg insertion: "insertion time")
    time_label: str = "time to success"
    #: the task's models folder, under the package's data: training seed 0 of every method, laid out
    #: as ``models/`` is (``models/README.md``); seeds 1 and 2 in its ``seeds/``. What the stack,
    #: ``bresa evaluate`` and ``bresa compare`` load when no ``--models-dir`` is given
    shipped_models: str = "models"
    #: what ``bresa compare`` checks ``bresa`` against (``target.md``)
    comparison_targets: ComparisonTargets = ComparisonTargets()
    #: the axes (0 x, 1 y, 2 z of the base frame) along which the tip meets the task's surfaces:
    #: the reflex's brake stops the tip along these (peg insertion: the face below it)
    brake_axes: tuple[int, ...] = (2,)

    def __init__(self, config: BresaConfig) -> None:
        self.config = config

    @abstractmethod
    def fixture_boxes(self, variant: int = 0) -> Boxes:
        """Fixture variant ``variant`` as convex boxes in its own frame (origin at the reference
        point's x, y on the table top): name -> (centre, half sizes) in m."""

    def fixture_variants(self) -> list[Boxes]:
        """Every variant's boxes (a scene that serves many episodes builds them all and lets one
        touch the peg per episode): by default one variant."""
        return [self.fixture_boxes(0)]

    def parameters(self) -> dict[str, Any]:
        """The task's own parameters, outside the shared config (what a comparison cell's
        fingerprint must cover): by default none."""
        return {}

    def max_episode_steps(self) -> int:
        """Decisions before an episode is cut off: by default ``env.max_episode_steps``."""
        return self.config.env.max_episode_steps

    @abstractmethod
    def fixture_height_m(self) -> float:
        """The reference point's height above the fixture frame's origin (m): the table top
        carries the fixture, so a reference point at ``(x, y)`` is at ``z = fixture_height_m``."""

    @abstractmethod
    def draw_episode(self, rng: np.random.Generator) -> EpisodeDraw:
        """One episode's fixture pose, the robot's estimate of it and the tip's start, from ``rng``."""

    @abstractmethod
    def succeeded(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> bool:
        """Whether the true tip ``tip_m`` has done the task, the fixture's reference point being
        truly at ``fixture_m`` (m, base frame)."""

    @abstractmethod
    def goal_distance_m(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> float:
        """How far the true tip is from done (m): the reward's distance term."""

    @abstractmethod
    def progress_m(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> float:
        """How far the tip has got (m; negative before it started): logged per decision as
        ``insertion_depth_m``."""

    def observation_origin_m(self, fixture_estimate_m: np.ndarray, tip_m: np.ndarray, variant: int = 0) -> np.ndarray:
        """The point the task policy's observation measures the tip from (m, base frame), from what
        the robot believes: by default the estimated reference point."""
        return np.asarray(fixture_estimate_m, dtype=float)

    def surface_height_m(self, fixture_estimate_m: np.ndarray) -> float:
        """The height (m) of the surface the critic measures the tip's height above: by default
        the estimated reference point's."""
        return float(fixture_estimate_m[2])

    def believed_done(self, tip_m: np.ndarray, fixture_estimate_m: np.ndarray, variant: int = 0) -> bool:
        """Whether the robot, knowing only its estimate, may stop sending decisions (the
        ``task_policy`` node's stop): by default never."""
        return False

    @abstractmethod
    def scripted(self) -> Controller:
        """The classical controller of this task (``--controller scripted``)."""

    def randomised_scripted(self, rng: np.random.Generator) -> Controller:
        """The scripted controller with its gains and speeds drawn wide from ``rng`` (some too
        aggressive): one of ``bresa collect``'s behaviours. By default the scripted controller."""
        return self.scripted()
