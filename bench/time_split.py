"""Where does an insertion's time go, and where was the peg when the push came? Traces for the
comparison's target (README, "Against the fair baselines issue's target").

    python bench/time_split.py --scenario nominal --episodes 30 --training-seeds 0,1,2
    python bench/time_split.py --scenario push --episodes 50 --controllers scripted,bresa,sac

Each episode is split by the true tip depth below the hole's top face into three phases:
**approach** (start until the tip first comes within ``--contact-mm`` of the top face's height),
**search** (until it is ``--in-hole-mm`` deep, which it can only be inside the hole) and
**descent** (until inserted, ``env.success_depth_m`` deep). Per controller: the mean of each
phase over inserted episodes, the share of each phase's ticks the reflex held, and the mean
commanded stiffness, and how far below the tip the approach's setpoints were (how fast it asked
to go down). With a push or a hole move, also the phase each episode was in when the
event began, and the violation rate by that phase (the same episode seeds meet the same event
for every controller). Prints a table and writes every episode to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bresa_control.app.compare import seed_models_dir
from bresa_control.app.controllers import build
from bresa_control.common.config import load_config
from bresa_control.contract import Controller
from bresa_control.learning.registry import CONTROLLERS
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.rollout import run_episode
from bresa_control.simulation.scenarios import SCENARIOS

PHASES = ("approach", "search", "descent")


@dataclass
class PhaseTrace:
    """Per tick of one episode: the phase it is in (by the true tip depth), and per phase the
    ticks, the ticks the reflex held and the commanded stiffness summed."""

    env: TaskEnv
    contact_m: float
    in_hole_m: float
    phase: int = 0
    start_s: list[float] = field(default_factory=lambda: [0.0, np.nan, np.nan])
    ticks: np.ndarray = field(default_factory=lambda: np.zeros(3))
    reflex_ticks: np.ndarray = field(default_factory=lambda: np.zeros(3))
    stiffness_sum: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    setpoint_below_sum_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    peak_force_n: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __call__(self, time_s: float, force_n: float, risk: float, stiffness: np.ndarray,
                 active: bool, fired: bool) -> None:
        depth_m = self.env.sim.progress_m()
        if self.phase == 0 and depth_m >= -self.contact_m:
            self.phase, self.start_s[1] = 1, time_s
        if self.phase == 1 and depth_m >= self.in_hole_m:
            self.phase, self.start_s[2] = 2, time_s
        p = self.phase
        self.ticks[p] += 1
        self.reflex_ticks[p] += active
        self.stiffness_sum[p] += stiffness[:3]  # translational
        self.setpoint_below_sum_m[p] += self.env.sim.tip_position()[2] - self.env.applied.position_m[2]
        self.peak_force_n[p] = max(self.peak_force_n[p], force_n)

    def phase_at(self, time_s: float) -> str:
        """The phase the episode was in at ``time_s`` (after it ended: the last one reached)."""
        reached = [p for p, start in enumerate(self.start_s) if not np.isnan(start) and start <= time_s]
        return PHASES[reached[-1]]


@dataclass
class EpisodeSplit:
    """One episode's outcome and its phases."""

    controller: str
    training_seed: int
    seed: int
    inserted: bool
    violation: bool
    insertion_time_s: float | None
    phase_s: list[float | None]
    reflex_share: list[float | None]
    mean_stiffness_n_per_m: list[list[float] | None]
    mean_setpoint_below_tip_m: list[float | None]
    peak_force_n: list[float]
    event_time_s: float | None
    phase_at_event: str | None


def split_episode(env: TaskEnv, policy: Controller, controller: str, training_seed: int, seed: int,
                  contact_m: float, in_hole_m: float) -> EpisodeSplit:
    """Run one episode with a :class:`PhaseTrace` watching every tick."""
    trace = PhaseTrace(env, contact_m, in_hole_m)
    env.tick_observer = trace
    result = run_episode(env, policy, seed)
    ends = [*trace.start_s[1:], result.insertion_time_s]
    phase_s = [None if np.isnan(s) or e is None or np.isnan(e) else float(e - s)
               for s, e in zip(trace.start_s, ends, strict=True)] if result.inserted else [None] * 3
    event = env.scenario.event_time_s
    ran = trace.ticks > 0
    return EpisodeSplit(
        controller, training_seed, seed, result.inserted, result.violation, result.insertion_time_s, phase_s,
        [float(r / t) if t else None for r, t in zip(trace.reflex_ticks, trace.ticks, strict=True)],
        [(trace.stiffness_sum[p] / trace.ticks[p]).tolist() if ran[p] else None for p in range(3)],
        [float(trace.setpoint_below_sum_m[p] / trace.ticks[p]) if ran[p] else None for p in range(3)],
        trace.peak_force_n.tolist(),
        float(event) if np.isfinite(event) else None,
        trace.phase_at(event) if np.isfinite(event) and event <= env.sim.time_s else None,
    )


def _mean(values: list) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def print_tables(splits: list[EpisodeSplit]) -> None:
    """The time split per controller, then (for an event scenario) violations by phase at the event."""
    by_controller: dict[str, list[EpisodeSplit]] = defaultdict(list)
    for s in splits:
        by_controller[s.controller].append(s)
    print("controller      episodes  inserted  time (s)  approach  search  descent   reflex share a/s/d"
          "     Kxy / Kz in search (N/m)  setpoint below tip in approach (mm)")
    for name, rows in by_controller.items():
        done = [r for r in rows if r.inserted]
        phases = [_mean([r.phase_s[p] for r in done]) for p in range(3)]
        share = [_mean([r.reflex_share[p] for r in rows]) for p in range(3)]
        k = [r.mean_stiffness_n_per_m[1] for r in rows if r.mean_stiffness_n_per_m[1] is not None]
        kxy, kz = (float(np.mean([v[0:2] for v in k])), float(np.mean([v[2] for v in k]))) if k else (np.nan, np.nan)
        time_s = _mean([r.insertion_time_s for r in done])
        print(f"{name:15s} {len(rows):8d}  {len(done) / len(rows):7.0%}  {time_s:8.2f}"
              f"  {phases[0]:8.2f}  {phases[1]:6.2f}  {phases[2]:7.2f}   "
              f"{share[0]:5.1%} {share[1]:5.1%} {share[2]:5.1%}   {kxy:8.0f} / {kz:5.0f}"
              f"  {1e3 * _mean([r.mean_setpoint_below_tip_m[0] for r in rows]):10.1f}")
    if not any(s.event_time_s is not None for s in splits):
        return
    print("\nviolations by the phase the episode was in when the event began (episodes: violated / in phase)")
    for name, rows in by_controller.items():
        cells = []
        for phase in (*PHASES, None):
            hit = [r for r in rows if r.phase_at_event == phase]
            label = phase or "over before it"
            cells.append(f"{label} {sum(r.violation for r in hit)}/{len(hit)}")
        print(f"{name:15s} " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controllers", default="scripted,sac,bresa,sac-lagrangian",
                        help=f"comma-separated, of {', '.join(CONTROLLERS)}")
    parser.add_argument("--scenario", choices=SCENARIOS, default="nominal")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed (bench/compare.sh uses 0)")
    parser.add_argument("--training-seeds", default="0",
                        help="comma-separated: N = SEEDS_DIR/<method>/seedN (0: models/ unless SEEDS_DIR has a seed0)")
    parser.add_argument("--seeds-dir", default="models/seeds", help="the training seeds, as bresa compare's")
    parser.add_argument("--contact-mm", type=float, default=0.5)
    parser.add_argument("--in-hole-mm", type=float, default=1.0)
    parser.add_argument("--config", help="YAML laid over config/peg_insertion.yaml")
    parser.add_argument("--out", default="results/time_split.json")
    args = parser.parse_args()
    names = args.controllers.split(",")
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        parser.error(f"unknown controller(s) {unknown}; choose from {', '.join(CONTROLLERS)}")

    config = load_config(args.config)
    splits: list[EpisodeSplit] = []
    for name in names:
        method = {"sac": "bresa", "force-guard": "bresa"}.get(name, name)
        for training_seed in [0] if name == "scripted" else [int(s) for s in args.training_seeds.split(",")]:
            models_dir = seed_models_dir(method, training_seed, None, args.seeds_dir)
            env, policy = build(name, config, args.scenario, models_dir)
            for seed in range(args.seed, args.seed + args.episodes):
                splits.append(split_episode(env, policy, name, training_seed, seed,
                                            args.contact_mm / 1e3, args.in_hole_mm / 1e3))
            print(f"{name} training seed {training_seed}: {args.episodes} episodes done", flush=True)
    print(f"\n{args.scenario}, episode seeds {args.seed}..{args.seed + args.episodes - 1}, "
          f"training seeds {args.training_seeds} (simulated time)")
    print_tables(splits)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": vars(args), "episodes": [asdict(s) for s in splits]}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
