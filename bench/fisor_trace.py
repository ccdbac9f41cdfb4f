"""Did FISOR's own feasibility value see its violations coming? One line per violating episode.

    python bench/fisor_trace.py --cell docs/comparison/cells/fisor_push-down_seed0.json
    python bench/fisor_trace.py --cell docs/comparison/cells/fisor_*.json   (then totals by scenario)
    python bench/fisor_trace.py --scenario push-down --seeds 3,7,12 [--models-dir models]

FISOR calls a state feasible where ``V_h <= 0`` (a violation can be avoided from it, as far as the
data shows) and runs, of its sampled actions, the one with the lowest ``Q_h``. A hard constraint
holds only if the violating episodes left the feasible region *before* the violation, with time
to act. For each episode (``--cell``: that comparison cell's violating episodes, with its
scenario and models) this reruns it and prints: the decision at which the wrist force first
passed F_max, the highest ``V_h`` in the ``--window`` decisions before it, the chosen action's
``Q_h`` and how many of the samples ``Q_h`` called feasible at the decision before it; then what
the episodes have in common. With several cells, each cell's lines under a ``== cell`` header,
then the same totals by scenario and over all of them.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bresa_control.app.controllers import make_controller
from bresa_control.common.config import BresaConfig, load_config
from bresa_control.policies.fisor import FisorPolicy
from bresa_control.simulation.env import TaskEnv
from bresa_control.simulation.scenarios import SCENARIOS


@dataclass(frozen=True)
class Violation:
    """What FISOR's critics said before one episode's first violating decision."""

    seed: int
    decision: int  # the first decision whose ticks passed a limit
    peak_force_n: float
    max_v_h_before: float  # highest V_h in the window before it
    q_h_before: float  # the chosen action's Q_h at the decision before it
    feasible_samples_before: int  # samples with Q_h <= 0 there
    samples: int
    infeasible_share: float  # of all the episode's decisions, those with V_h > 0


def trace(policy: FisorPolicy, env: TaskEnv, seed: int, window: int) -> Violation | None:
    """Rerun one episode; None if it did not violate."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    rows: list[dict[str, float]] = []
    while True:
        action = policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        rows.append({**policy.last, "cost": info["cost"], "peak_force_n": info["peak_force_n"]})
        if terminated or truncated:
            break
    first = next((k for k, row in enumerate(rows) if row["cost"] > 0), None)
    if first is None:
        return None
    before = rows[max(0, first - window): first] or rows[:1]
    v_h = np.array([row["v_h"] for row in rows])
    return Violation(seed, first, max(row["peak_force_n"] for row in rows), max(row["v_h"] for row in before),
                     before[-1]["q_h"], int(before[-1]["feasible_samples"]), policy.samples, float(np.mean(v_h > 0)))


def line(v: Violation, window: int) -> str:
    """One episode as a line."""
    return (f"seed {v.seed}: first violating decision {v.decision} (peak {v.peak_force_n:.1f} N); max V_h in the "
            f"{window} decisions before {v.max_v_h_before:+.2f}; at the decision before: chosen Q_h "
            f"{v.q_h_before:+.2f}, {v.feasible_samples_before} of {v.samples} samples feasible; V_h > 0 at "
            f"{v.infeasible_share:.0%} of the episode's decisions")


def totals(found: list[Violation], window: int) -> str:
    """What the violating episodes have in common."""
    if not found:
        return "no violating episode"
    seen = sum(v.max_v_h_before > 0 for v in found)
    all_feasible = sum(v.feasible_samples_before == v.samples for v in found)
    return (f"{len(found)} violating episodes: V_h > 0 (the state judged infeasible) within the {window} decisions "
            f"before the violation in {seen}; every sample judged feasible (Q_h <= 0) at the decision before in "
            f"{all_feasible}; median peak {np.median([v.peak_force_n for v in found]):.1f} N")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cell", nargs="+", help="fisor cells of bresa compare: their violating episodes, "
                                                  "scenario and models")
    source.add_argument("--seeds", help="comma-separated episode seeds")
    parser.add_argument("--scenario", choices=SCENARIOS, default="nominal", help="with --seeds")
    parser.add_argument("--models-dir", help="with --seeds: the models folder (default models/)")
    parser.add_argument("--window", type=int, default=5, help="decisions looked at before the violation (0.1 s each)")
    parser.add_argument("--config", help="YAML laid over config/peg_insertion.yaml")
    parser.add_argument("--jobs", type=int, default=1, help="with --cell: cells traced at once, one process each "
                                                            "(the same output)")
    args = parser.parse_args()

    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    config = load_config(args.config)
    if not args.cell:
        print(totals(run(config, args.scenario, args.models_dir, [int(s) for s in args.seeds.split(",")],
                         args.window, print_lines=True)[1], args.window))
        return
    cells = [(path, json.loads(Path(path).read_text())) for path in args.cell]
    for path, cell in cells:
        if cell.get("controller") != "fisor":
            parser.error(f"{path} is a cell of {cell.get('controller')!r}, expected one of fisor")
    as_they_come = len(cells) == 1  # one cell: each episode's line as it is traced; several: cell by cell
    jobs = [(config, cell["scenario"], cell["models_dir"], [e["seed"] for e in cell["per_episode"] if e["violation"]],
             args.window, as_they_come) for _, cell in cells]
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else nullcontext() as pool:
        results = (pool.map if pool is not None else map)(run, *zip(*jobs))
        by_scenario: dict[str, list[Violation]] = {}
        for (path, cell), (lines, found) in zip(cells, results):
            if not as_they_come:
                print("\n".join([f"== {Path(path).stem}", *lines]), flush=True)
            print(totals(found, args.window), flush=True)
            by_scenario.setdefault(cell["scenario"], []).extend(found)
    if len(cells) > 1:
        print("== by scenario")
        for scenario, found in by_scenario.items():
            print(f"{scenario}: {totals(found, args.window)}")
        print(f"all: {totals([v for found in by_scenario.values() for v in found], args.window)}")


def run(config: BresaConfig, scenario: str, models_dir: str | None, seeds: list[int], window: int,
        print_lines: bool = False) -> tuple[list[str], list[Violation]]:
    """Rerun FISOR's episodes ``seeds`` in ``scenario``: a line each (printed as they come with
    ``print_lines``) and the violating ones."""
    setup = make_controller("fisor", config, models_dir)
    assert isinstance(setup.policy, FisorPolicy)
    env = TaskEnv(setup.config, scenario=scenario)
    lines, found = [], []
    for seed in seeds:
        violation = trace(setup.policy, env, seed, window)
        lines.append(line(violation, window) if violation else f"seed {seed}: no violation")
        if print_lines:
            print(lines[-1], flush=True)
        found += [violation] if violation else []
    return lines, found


if __name__ == "__main__":
    main()
