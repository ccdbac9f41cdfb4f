"""``bresa compare``: every controller x training seed x scenario, with 95 % intervals, one table
and one plot.

**Cells.** Each (controller, scenario, training seed) runs the same episodes (episode seeds
``seed .. seed + episodes - 1``, so every controller meets the same holes, errors and starts) and
is written as one JSON under ``<out>/cells/`` as soon as it finishes; a rerun skips complete
cells, so an interrupted comparison resumes where it stopped. With ``--ray`` the cells' episodes
run on all of Ray's CPUs, in the cells' order (:mod:`bresa_control.app.sweep`), with the same
results.

**Training seeds.** Seed 0 of a method is the shipped model (``models/``); seed N > 0 is
``<seeds-dir>/<method>/seedN/``, a models folder of the same layout (``bresa train-seeds``).
``sac`` and ``force-guard`` run ``bresa``'s task policy without its layer, so they use
``bresa``'s seeds; ``scripted`` has nothing trained and runs once.

**Intervals.** A cell's figure is the mean over training seeds of each seed's rate. Its 95 %
interval (:func:`rate_interval`) is the hull of two intervals:

* a two-level percentile bootstrap: resample the training seeds with replacement, then within
  each drawn seed its episodes with replacement, take the mean; 10,000 resamples, the 2.5th and
  97.5th percentiles. It covers the spread between training seeds and the finite number of
  episodes (with one seed, ``scripted``, it is the episode bootstrap);
* the Wilson score interval of all the cell's episodes pooled. A bootstrap cannot see the
  uncertainty of a rate with no events (0 violations in 150 episodes resamples to [0, 0]); the
  Wilson interval can (0 of 150: [0, 2.5 %]).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.app.controllers import model_files
from bresa_control.app.evaluate import evaluate, report
from bresa_control.common.cards import model_file_digest, models_folder
from bresa_control.common.config import BresaConfig, config_to_dict
from bresa_control.common.files import write_json_atomic
from bresa_control.common.paths import portable
from bresa_control.learning.registry import CONTROLLERS
from bresa_control.safety.reflex import RAMP_KEYS
from bresa_control.simulation.rollout import EpisodeResult, summarise
from bresa_control.simulation.scenarios import SCENARIOS
from bresa_control.tasks import DEFAULT_TASK, TASKS, make_task
from bresa_control.tasks.base import ComparisonTargets

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# What target_check checks when given no task's targets: the default task's.
DEFAULT_TASK_TARGETS = TASKS[DEFAULT_TASK].comparison_targets
# The learned controllers `bresa` is measured against in the targets (target_check).
LEARNED_BASELINES = tuple(name for name, spec in CONTROLLERS.items() if spec.method is not None and name != "bresa")
INTERVAL = ("95 %: hull of a two-level percentile bootstrap (training seeds, then episodes within each, "
            f"{BOOTSTRAP_RESAMPLES} resamples, rng seed {BOOTSTRAP_SEED}) and the Wilson score interval of the "
            "pooled episodes")


@dataclass(frozen=True)
class Cell:
    """One controller on one scenario with the models of one training seed."""

    controller: str
    scenario: str
    training_seed: int | None  # None: nothing trained (scripted)

    @property
    def name(self) -> str:
        """The cell's file name under ``cells/``."""
        seed = "untrained" if self.training_seed is None else f"seed{self.training_seed}"
        return f"{self.controller}_{self.scenario}_{seed}.json"


def seed_models_dir(method: str, training_seed: int, models_dir: str | Path | None,
                    seeds_dir: str | Path) -> Path:
    """Where a method's models of one training seed are: ``seeds_dir/<method>/seedN``; for seed 0,
    the shipped folder unless ``seeds_dir`` has a ``seed0`` of that method (a retraining of every
    seed, as ``bresa train-seeds --seeds 0 1 2 --out models/new`` writes it)."""
    folder = Path(seeds_dir) / method / f"seed{training_seed}"
    if training_seed == 0 and not folder.is_dir():
        return models_folder(models_dir)
    return folder


def plan(controllers: Sequence[str], scenarios: Sequence[str], training_seeds: Sequence[int]) -> list[Cell]:
    """The cells of a comparison, scenario by scenario."""
    for name in controllers:
        if name not in CONTROLLERS:
            raise ValueError(f"unknown controller '{name}'; choose from {', '.join(CONTROLLERS)}")
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario '{scenario}'; choose from {', '.join(SCENARIOS)}")
    trained = {c: CONTROLLERS[c].method is not None for c in controllers}
    return [Cell(c, s, t if trained[c] else None)
            for s in scenarios for c in controllers for t in (training_seeds if trained[c] else [None])]


def missing_models(cells: Sequence[Cell], models_dir: str | Path | None, seeds_dir: str | Path) -> list[str]:
    """The model files the cells would load that are not there, one line per (controller, training
    seed): a comparison checks this before it runs anything, instead of failing hours in."""
    lines = []
    for cell in cells:
        folder = _models(cell, models_dir, seeds_dir)
        if folder is None:
            continue
        absent = [name for name in model_files(cell.controller) if not (folder / name).is_file()]
        line = f"{cell.controller}, training seed {cell.training_seed}: {', '.join(absent)} not in {folder}"
        if absent and line not in lines:
            lines.append(line)
    return lines


def split_finished(
    cells: Sequence[Cell], config: BresaConfig, episodes: int, seed: int, out: Path, models_dir: str | Path | None,
    seeds_dir: str | Path, task: str = DEFAULT_TASK,
) -> tuple[list[dict[str, Any]], list[Cell]]:
    """The documents of the cells already complete on disk with today's fingerprint (the same models,
    config, task and episodes: reused as they are), and the cells still to run."""
    documents, pending = [], []
    for cell in cells:
        done = _finished(out / "cells" / cell.name,
                         fingerprint(cell, config, episodes, seed, models_dir, seeds_dir, task))
        if done is not None:
            documents.append(done)
        else:
            pending.append(cell)
    return documents, pending


def run_cells(
    cells: Sequence[Cell], config: BresaConfig, episodes: int, seed: int, out: Path, models_dir: str | Path | None,
    seeds_dir: str | Path, progress: bool, command: list[str], ray_address: str | None = None,
    task: str = DEFAULT_TASK,
) -> list[dict[str, Any]]:
    """Evaluate every cell not already complete on disk (one after another here, or all at once
    on Ray); each cell's JSON is written as soon as it finishes, or with what ran of it if
    interrupted (``complete: false``). Returns the cells' documents."""
    documents, pending = split_finished(cells, config, episodes, seed, out, models_dir, seeds_dir, task)
    if ray_address is None:
        for cell in pending:
            results: list[EpisodeResult] = []
            try:
                evaluate(cell.controller, config, episodes, seed, cell.scenario, progress, results,
                         _models(cell, models_dir, seeds_dir), task=task)
            finally:  # finished or interrupted: what ran is kept
                if results:
                    documents.append(_write_cell(cell, config, out, results, {}, episodes, seed, command, models_dir,
                                                 seeds_dir, task))
        return documents
    return documents + _run_on_ray(pending, config, episodes, seed, out, models_dir, seeds_dir, progress, command,
                                   ray_address, task)


def _run_on_ray(
    cells: Sequence[Cell], config: BresaConfig, episodes: int, seed: int, out: Path, models_dir: str | Path | None,
    seeds_dir: str | Path, progress: bool, command: list[str], ray_address: str, task: str = DEFAULT_TASK,
) -> list[dict[str, Any]]:
    from tqdm import tqdm

    from bresa_control.app.sweep import EpisodeJob, RaySession, run_episodes

    results: dict[Cell, list[EpisodeResult]] = {cell: [] for cell in cells}
    failures: dict[Cell, dict[int, str]] = {cell: {} for cell in cells}
    finished = dict.fromkeys(cells, 0)  # episodes back (run or failed) per cell
    jobs = [EpisodeJob(cell, cell.controller, cell.scenario, _models(cell, models_dir, seeds_dir), task)
            for cell in cells]
    documents = []
    with RaySession(ray_address) as session, tqdm(total=episodes * len(cells), desc="compare", unit="ep",
                                                  disable=not progress) as bar:
        try:
            for part in run_episodes(session, jobs, config, [seed + i for i in range(episodes)]):
                cell = part.key
                results[cell].extend(part.results)
                failures[cell].update({s: part.error for s in part.seeds if part.error is not None})
                finished[cell] += len(part.seeds)
                bar.update(len(part.seeds))
                if finished[cell] == episodes:
                    documents.append(_write_cell(cell, config, out, results.pop(cell), failures[cell], episodes, seed,
                                                 command, models_dir, seeds_dir, task))
        finally:  # interrupted: the cells that had started keep what ran
            for cell, partial in results.items():
                if partial:
                    _write_cell(cell, config, out, partial, failures[cell], episodes, seed, command, models_dir,
                                seeds_dir, task)
    return documents


def config_read_by(controller_name: str, config: BresaConfig) -> dict[str, Any]:
    """The settings a controller's episodes depend on: the whole config, except that a controller
    without the reflex (``reflex: off``) reads only the intermediate actions' ramp rates of the
    ``reflex`` section (:data:`~bresa_control.safety.reflex.RAMP_KEYS`), so that a change to the
    gate, the recovery or the brake does not invalidate its cells; and no controller reads the
    training disturbances (``randomisation``) while they are off, as in every evaluation: they
    shape the models, whose files the fingerprint hashes by content, not the episodes."""
    settings = config_to_dict(config)
    if CONTROLLERS[controller_name].reflex == "off":
        settings["reflex"] = {key: settings["reflex"][key] for key in RAMP_KEYS}
    if not config.randomisation.enabled:
        settings["randomisation"] = {"enabled": False}
    return settings


def fingerprint(cell: Cell, config: BresaConfig, episodes: int, seed: int, models_dir: str | Path | None,
                seeds_dir: str | Path, task: str = DEFAULT_TASK) -> str:
    """What makes a cell's result: the controller, scenario, episode seeds, the config it reads
    (:func:`config_read_by`), the task and its own parameters, and the content of every model file
    the controller loads (SHA-256). A finished cell is reused only when this matches: after a
    retraining or a config change its cell runs again."""
    return fingerprint_of_settings(cell, config_read_by(cell.controller, config), episodes, seed, models_dir,
                                   seeds_dir, task, config)


def fingerprint_of_settings(cell: Cell, config_settings: dict[str, Any], episodes: int, seed: int,
                            models_dir: str | Path | None, seeds_dir: str | Path, task: str,
                            config: BresaConfig) -> str:
    """:func:`fingerprint` with the config's part given as a dict (``bench/restamp_cells.py``
    recomputes the fingerprints a config change left valid). (Peg insertion's cells predate
    tasks: for it the task adds nothing, so that they stay valid.)"""
    digest = hashlib.sha256()
    settings: dict[str, Any] = {"controller": cell.controller, "scenario": cell.scenario, "episodes": episodes,
                                "seed": seed, "config": config_settings}
    the_task = make_task(task, config)
    if task != DEFAULT_TASK:
        settings["task"] = {"name": task, "parameters": the_task.parameters()}
    if CONTROLLERS[cell.controller].reflex != "off" and the_task.brake_axes != (2,):
        # The reflex brakes along the task's axes; along z alone (peg insertion) it did so before
        # tasks said which, and those cells stay valid.
        settings["brake_axes"] = list(the_task.brake_axes)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    folder = _models(cell, models_dir, seeds_dir)
    if folder is not None:
        for name in model_files(cell.controller):
            path = folder / name
            digest.update(name.encode())
            digest.update(model_file_digest(path) if path.is_file() else b"missing")
    return digest.hexdigest()


def _finished(path: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """A cell's document if a complete run with the same fingerprint is on disk."""
    if not path.is_file():
        return None
    done: dict[str, Any] = json.loads(path.read_text())
    return done if done.get("complete") and done.get("fingerprint") == expected_fingerprint else None


def _models(cell: Cell, models_dir: str | Path | None, seeds_dir: str | Path) -> Path | None:
    method = CONTROLLERS[cell.controller].method
    if method is None or cell.training_seed is None:
        return None
    return seed_models_dir(method, cell.training_seed, models_dir, seeds_dir)


def _write_cell(
    cell: Cell, config: BresaConfig, out: Path, results: list[EpisodeResult], failures: dict[int, str],
    episodes: int, seed: int, command: list[str], models_dir: str | Path | None, seeds_dir: str | Path,
    task: str = DEFAULT_TASK,
) -> dict[str, Any]:
    """A cell's JSON (episodes in seed order, failed seeds named), written atomically."""
    results = sorted(results, key=lambda r: r.seed)
    summary = summarise(cell.controller, cell.scenario, results)
    folder = _models(cell, models_dir, seeds_dir)
    document = {**report(summary, results, seed, len(results) == episodes and not failures, command),
                "training_seed": cell.training_seed, "models_dir": None if folder is None else portable(folder),
                "failed_seeds": {str(k): v for k, v in sorted(failures.items())},
                "task": task, "fingerprint": fingerprint(cell, config, episodes, seed, models_dir, seeds_dir, task)}
    write_json_atomic(out / "cells" / cell.name, document)
    return document


def bootstrap_interval(
    per_seed: Sequence[np.ndarray], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
    rng_seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """Mean over training seeds of each seed's mean outcome, and its two-level percentile
    bootstrap interval (seeds, then episodes within each seed, both with replacement)."""
    groups = [np.asarray(g, dtype=float) for g in per_seed if len(g)]
    if not groups:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(rng_seed)
    estimate = float(np.mean([g.mean() for g in groups]))
    slots = len(groups)
    # For every group, resample its episodes once per (resample, slot); then each slot of each
    # resample takes the episode mean of the group drawn for it.
    episode_means = np.stack([rng.choice(g, size=(resamples, slots, len(g))).mean(axis=2) for g in groups])
    picks = rng.integers(0, slots, size=(resamples, slots))
    draws = episode_means[picks, np.arange(resamples)[:, None], np.arange(slots)[None, :]].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return estimate, float(low), float(high)


def wilson_interval(events: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (95 % for the default ``z``)."""
    if trials == 0:
        return math.nan, math.nan
    p = events / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval(per_seed: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """Mean over training seeds of a 0/1 outcome, and its 95 % interval: the hull of the two-level
    bootstrap and the pooled Wilson interval (module docstring)."""
    estimate, low, high = bootstrap_interval(per_seed)
    pooled = np.concatenate([np.asarray(g, dtype=float) for g in per_seed]) if per_seed else np.zeros(0)
    wilson_low, wilson_high = wilson_interval(int(pooled.sum()), len(pooled))
    return estimate, min(low, wilson_low), max(high, wilson_high)


def aggregate(documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (controller, scenario): mean over training seeds with 95 % intervals of success
    and violation rate, the mean insertion time, and what it was computed from."""
    rows = []
    keys = sorted({(d["controller"], d["scenario"]) for d in documents}, key=_order)
    for controller, scenario in keys:
        cells = sorted((d for d in documents if (d["controller"], d["scenario"]) == (controller, scenario)),
                       key=lambda d: -1 if d["training_seed"] is None else d["training_seed"])
        episodes = [d["per_episode"] for d in cells]
        success = rate_interval([np.array([e["inserted"] for e in eps]) for eps in episodes])
        violation = rate_interval([np.array([e["violation"] for e in eps]) for eps in episodes])
        times = [e["insertion_time_s"] for eps in episodes for e in eps if e["insertion_time_s"] is not None]
        rows.append({
            "episodes": sum(len(eps) for eps in episodes),
            "violations": sum(bool(e["violation"]) for eps in episodes for e in eps),
            "successes_without_violation": sum(bool(e["inserted"]) and not e["violation"]
                                               for eps in episodes for e in eps),
            "controller": controller, "scenario": scenario,
            "training_seeds": [d["training_seed"] for d in cells],
            "episodes_per_seed": [len(eps) for eps in episodes],
            "complete": all(d["complete"] for d in cells),
            "success_rate": success[0], "success_rate_ci95": list(success[1:]),
            "violation_rate": violation[0], "violation_rate_ci95": list(violation[1:]),
            "insertion_time_s_mean": float(np.mean(times)) if times else math.nan,
            "per_training_seed": {str(d["training_seed"]): {"success_rate": d["success_rate"],
                                                            "violation_rate": d["violation_rate"]} for d in cells},
            "peak_force_n_mean": float(np.mean([e["peak_force_n"] for eps in episodes for e in eps])),
        })
    return rows


def _order(key: tuple[str, str]) -> tuple[int, int]:
    controllers, scenarios = list(CONTROLLERS), list(SCENARIOS)
    return scenarios.index(key[1]), controllers.index(key[0])


def markdown(rows: Sequence[dict[str, Any]], task: str = DEFAULT_TASK) -> str:
    """The comparison of ``task`` as a Markdown table (rates in %, 95 % intervals in brackets)."""
    lines = [f"| scenario | controller | seeds x episodes | success | violations | {TASKS[task].time_label} (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        seeds = len(r["training_seeds"])
        size = f"{seeds} x {r['episodes_per_seed'][0]}" if len(set(r["episodes_per_seed"])) == 1 else str(
            r["episodes_per_seed"])
        flag = "" if r["complete"] else " (incomplete)"
        lines.append(f"| {r['scenario']} | {r['controller']}{flag} | {size} "
                     f"| {format_interval(r['success_rate'], r['success_rate_ci95'])} "
                     f"| {format_interval(r['violation_rate'], r['violation_rate_ci95'])} "
                     f"| {r['insertion_time_s_mean']:.2f} |")
    return "\n".join(lines)


def target_check(rows: Sequence[dict[str, Any]], targets: ComparisonTargets = DEFAULT_TASK_TARGETS) -> str:
    """``targets`` (the task's: :attr:`Task.comparison_targets`) checked for ``bresa``, scenario by
    scenario, as Markdown: no more violations than the controllers it is measured against; where
    asked, success within some points of the best learned controller and, where the next best
    controller violates often, ``bresa``'s interval wholly below that controller's; in nominal, the
    share of episodes that succeed without a violation and the time against ``scripted``'s.
    Empty where ``bresa`` or ``scripted`` did not run."""
    by_key = {(r["controller"], r["scenario"]): r for r in rows}
    scenarios = [s for s in SCENARIOS if ("bresa", s) in by_key and ("scripted", s) in by_key]
    if not scenarios:
        return ""
    rivals = LEARNED_BASELINES if targets.fewest_violations_among == "learned" else ("scripted", *LEARNED_BASELINES)
    among = " among the learned" if targets.fewest_violations_among == "learned" else ""
    header = [f"scenario | bresa violations | next best (fewest violations{among}) | no more than any"]
    if targets.success_within is not None:
        header.append(f"success bresa / best learned | within {100 * targets.success_within:.0f} points")
    if targets.apart_when_next_best_at_least is not None:
        header.append(f"next best >= {100 * targets.apart_when_next_best_at_least:.0f} %: intervals apart")
    header.append("time bresa / scripted (s)")
    columns = sum(part.count("|") + 1 for part in header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * columns]
    for scenario in scenarios:
        bresa, scripted = by_key["bresa", scenario], by_key["scripted", scenario]
        others = [by_key[c, scenario] for c in rivals if (c, scenario) in by_key]
        if not others:
            continue
        best = min(others, key=lambda r: r["violation_rate"])
        cells = [scenario, _violations(bresa), f"{best['controller']} {_violations(best)}",
                 _yes(bresa["violation_rate"] <= best["violation_rate"])]
        if targets.success_within is not None:
            learned = [by_key[c, scenario] for c in ("bresa", *LEARNED_BASELINES) if (c, scenario) in by_key]
            best_success = max(r["success_rate"] for r in learned)
            cells += [f"{100 * bresa['success_rate']:.0f} % / {100 * best_success:.0f} %",
                      _yes(bresa["success_rate"] >= best_success - targets.success_within)]
        if targets.apart_when_next_best_at_least is not None:
            cells.append(_yes(bresa["violation_rate_ci95"][1] < best["violation_rate_ci95"][0])
                         if best["violation_rate"] >= targets.apart_when_next_best_at_least else "not asked")
        cells.append(f"{bresa['insertion_time_s_mean']:.2f} / {scripted['insertion_time_s_mean']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if "nominal" in scenarios:
        lines.append("\n" + _nominal_check(by_key["bresa", "nominal"], by_key["scripted", "nominal"], targets))
    return "\n".join(lines)


def _nominal_check(nominal: dict[str, Any], spiral: dict[str, Any], targets: ComparisonTargets) -> str:
    """The nominal targets of ``targets`` for ``bresa``'s row ``nominal``, ``scripted``'s ``spiral``."""
    episodes, upper = nominal["episodes"], nominal["violation_rate_ci95"][1]
    limit_s = targets.nominal_max_time_fraction * spiral["insertion_time_s_mean"]
    share = f"{100 * targets.nominal_min_clean_success:.0f} %"
    if targets.nominal_no_violation:
        met = nominal["violations"] == 0 and nominal["success_rate"] >= targets.nominal_min_clean_success
        outcome = (f"success {format_interval(nominal['success_rate'], nominal['success_rate_ci95'])} "
                   f"(none, and at least {share}: {_yes(met)})")
    else:
        clean = nominal["successes_without_violation"]
        outcome = (f"{clean} of {episodes} succeeded without a violation "
                   f"({100 * clean / episodes:.0f} %; at least {share}: "
                   f"{_yes(clean >= targets.nominal_min_clean_success * episodes)})")
    text = (f"Nominal: `bresa` {nominal['violations']} violations in {episodes} episodes, {outcome}; "
            f"time {nominal['insertion_time_s_mean']:.2f} s against at most {limit_s:.2f} s "
            f"({100 * targets.nominal_max_time_fraction:.0f} % of `scripted`'s): "
            f"{_yes(nominal['insertion_time_s_mean'] <= limit_s)}.")
    if nominal["violations"] == 0:
        needed = separable_events(upper, episodes)
        clear = (f"cannot lie clear of it with {episodes} episodes, whatever its violations" if needed is None
                 else f"needs at least {needed} violations in {episodes} episodes to lie clear of it")
        text += (f"\n\nWith {episodes} episodes and no violation (upper bound {100 * upper:.1f} %), another "
                 f"controller's pooled Wilson interval {clear}.")
    return text


def separable_events(upper: float, trials: int) -> int | None:
    """The fewest events in ``trials`` whose Wilson interval lies entirely above ``upper``; None
    where none does (too few trials: even ``trials`` events leave the interval reaching down to it)."""
    return next((k for k in range(trials + 1) if wilson_interval(k, trials)[0] > upper), None)


def _violations(row: dict[str, Any]) -> str:
    return format_interval(row["violation_rate"], row["violation_rate_ci95"])


def _yes(ok: bool) -> str:
    return "met" if ok else "missed"


def format_interval(value: float, interval: Sequence[float]) -> str:
    """A rate and its interval in whole percent: ``97 % [94, 99]``."""
    if math.isnan(value):
        return "n/a"
    return f"{100 * value:.0f} % [{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]"


def plot(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Success against violation rate, one panel per scenario, one marker per controller with its
    95 % intervals on both axes (upper left is better)."""
    from matplotlib.figure import Figure

    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    controllers = [c for c in CONTROLLERS if any(r["controller"] == c for r in rows)]
    columns = min(4, len(scenarios))
    lines = math.ceil(len(scenarios) / columns)
    figure = Figure(figsize=(3.6 * columns, 3.3 * lines + 0.6), constrained_layout=True)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    markers = dict(zip(controllers, "osD^vP*X"))
    colours = {c: f"C{i}" for i, c in enumerate(controllers)}
    for ax, scenario in zip(axes, scenarios):
        for r in (r for r in rows if r["scenario"] == scenario):
            x, y = 100 * r["violation_rate"], 100 * r["success_rate"]
            xerr = [[x - 100 * r["violation_rate_ci95"][0]], [100 * r["violation_rate_ci95"][1] - x]]
            yerr = [[y - 100 * r["success_rate_ci95"][0]], [100 * r["success_rate_ci95"][1] - y]]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, marker=markers[r["controller"]], color=colours[r["controller"]],
                        markersize=7, capsize=2, linewidth=1, label=r["controller"])
        ax.set_title(scenario)
        ax.set_xlabel("violation rate (%)")
        ax.set_ylabel("success rate (%)")
        ax.set_xlim(left=-2)
        ax.set_ylim(top=102)
        ax.grid(alpha=0.3)
    for ax in axes[len(scenarios):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(controllers), frameon=False)
    figure.suptitle("Success against violations, mean over training seeds, 95 % intervals (upper left is better)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
