"""``bresa compare`` and ``bresa train-seeds``: the intervals, the cells, resuming, the table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bresa_control.app.cli import main
from bresa_control.app.compare import (
    Cell,
    aggregate,
    bootstrap_interval,
    markdown,
    plan,
    rate_interval,
    separable_events,
    target_check,
    wilson_interval,
)
from bresa_control.common.cards import read_card, record_evaluation
from bresa_control.tasks.maze import MazeTask


def test_wilson_interval_matches_the_closed_form_at_zero_and_is_symmetric() -> None:
    low, high = wilson_interval(0, 150)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(1.959964**2 / (150 + 1.959964**2))
    low, high = wilson_interval(75, 150)
    assert 0.5 - low == pytest.approx(high - 0.5)


def test_the_interval_counts_the_spread_between_training_seeds() -> None:
    agreeing = [np.r_[np.ones(25), np.zeros(25)]] * 3  # three seeds at 50 %
    disagreeing = [np.ones(50), np.zeros(50), np.r_[np.ones(25), np.zeros(25)]]  # 100 %, 0 %, 50 %
    mean_a, low_a, high_a = rate_interval(agreeing)
    mean_d, low_d, high_d = rate_interval(disagreeing)
    assert mean_a == mean_d == 0.5
    assert high_d - low_d > 2 * (high_a - low_a)  # the same pooled rate, far less certain
    assert low_a <= 0.5 <= high_a


def test_a_rate_without_events_still_gets_an_upper_bound() -> None:
    mean, low, high = rate_interval([np.zeros(50)] * 3)
    assert (mean, low) == (0.0, 0.0) and high == pytest.approx(wilson_interval(0, 150)[1])
    assert bootstrap_interval([np.zeros(50)] * 3)[2] == 0.0  # the bootstrap alone would say [0, 0]


def test_the_plan_runs_untrained_controllers_once_and_learned_ones_per_seed() -> None:
    cells = plan(["scripted", "bresa", "sac"], ["nominal"], [0, 1, 2])
    assert Cell("scripted", "nominal", None) in cells and len(cells) == 1 + 3 + 3
    with pytest.raises(ValueError, match="unknown scenario 'wind'"):
        plan(["bresa"], ["wind"], [0])


def _cell(controller: str, scenario: str, seed: int | None, violations: int, time_s: float, failures: int = 0,
          episodes: int = 50) -> dict:
    per_episode = [{"inserted": i >= failures, "violation": i < violations, "peak_force_n": 10.0,
                    "insertion_time_s": time_s if i >= failures else None} for i in range(episodes)]
    return {"controller": controller, "scenario": scenario, "training_seed": seed, "complete": True,
            "success_rate": 1 - failures / episodes, "violation_rate": violations / episodes,
            "per_episode": per_episode}


def test_the_target_check_tells_each_target_of_the_reflex_issue() -> None:
    documents = [_cell("scripted", "nominal", None, 0, 9.0), _cell("scripted", "push", None, 2, 9.0)]
    for seed in (0, 1, 2):
        documents += [_cell("bresa", "nominal", seed, 0, 6.0, failures=1), _cell("bresa", "push", seed, 1, 8.0),
                      _cell("sac-lagrangian", "nominal", seed, 0, 8.0), _cell("sac-lagrangian", "push", seed, 20, 8.0)]
    lines = target_check(aggregate(documents)).splitlines()
    nominal, push = lines[2], lines[3]
    # Both without violations: no more than any; the next best has under 10 %: no interval asked.
    assert "| met | 98 % / 100 % | met | not asked | 6.00 / 9.00 |" in nominal
    # 2 % against the spiral search's 4 %: no more than any; the next best (scripted) is under 10 %.
    assert "| scripted 4 % [0, 13] | met |" in push and "| not asked |" in push
    assert "0 violations in 150 episodes, success 98 % [94, 100] (none, and at least 97 %: met)" in lines[5]
    assert "time 6.00 s against at most 6.75 s (75 % of `scripted`'s): met" in lines[5]
    # Where the next best violates in 10 % or more, the intervals must lie apart.
    for bresa_violations, verdict in ((1, "met"), (4, "missed")):  # 2 % [0, 6] or 8 % [4, 13] against [10, 33]
        worse = [_cell("scripted", "push", None, 10, 9.0)] + [
            _cell(c, "push", seed, v, 8.0) for seed in (0, 1, 2)
            for c, v in (("bresa", bresa_violations), ("sac-lagrangian", 25))]
        row = target_check(aggregate(worse)).splitlines()[2]
        assert "| scripted 20 % [10, 33] | met | 100 % / 100 % | met | " + verdict + " |" in row
    assert target_check(aggregate([_cell("scripted", "nominal", None, 0, 9.0)])) == ""


def test_the_maze_target_check_counts_the_learned_controllers_and_clean_exits() -> None:
    targets = MazeTask.comparison_targets
    documents = [_cell("scripted", "nominal", None, 0, 16.0), _cell("scripted", "push", None, 0, 16.0)]
    for seed in (0, 1, 2):
        documents += [_cell("bresa", "nominal", seed, 2, 9.0, failures=3), _cell("bresa", "push", seed, 1, 9.0),
                      _cell("sac-lagrangian", "nominal", seed, 0, 8.0), _cell("sac-lagrangian", "push", seed, 3, 8.0)]
    lines = target_check(aggregate(documents), targets).splitlines()
    assert lines[0] == ("| scenario | bresa violations | next best (fewest violations among the learned) "
                        "| no more than any | time bresa / scripted (s) |")
    assert lines[1] == "|---|---|---|---|---|"
    # scripted (no violation) is not a rival on the maze; sac-lagrangian is
    assert lines[2] == "| nominal | 4 % [1, 8] | sac-lagrangian 0 % [0, 2] | missed | 9.00 / 16.00 |"
    assert lines[3] == "| push | 2 % [0, 6] | sac-lagrangian 6 % [3, 11] | met | 9.00 / 16.00 |"
    # episodes 0-1 violate, 0-2 fail: 47 of 50 per seed succeed, all of them without a violation
    assert ("141 of 150 succeeded without a violation (94 %; at least 90 %: met); "
            "time 9.00 s against at most 16.00 s (100 % of `scripted`'s): met.") in lines[5]
    slow = [_cell("scripted", "nominal", None, 0, 8.5)] + [_cell("bresa", "nominal", s, 0, 9.0, failures=6)
                                                          for s in (0, 1, 2)]
    text = target_check(aggregate(slow), targets)
    assert "132 of 150 succeeded without a violation (88 %; at least 90 %: missed)" in text
    assert "time 9.00 s against at most 8.50 s (100 % of `scripted`'s): missed." in text


def test_compare_checks_the_targets_of_the_task_it_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bresa_control.app import compare

    # The cells as a finished maze run would return them (no episode is simulated here).
    cells = [_cell("scripted", "nominal", None, 0, 16.0)] + [_cell(c, "nominal", 0, 0, 9.0)
                                                             for c in ("bresa", "sac-lagrangian")]
    monkeypatch.setattr(compare, "run_cells", lambda *args, **kwargs: cells)
    out = tmp_path / "maze"
    assert main(["compare", "--task", "maze", "--controllers", "scripted", "bresa", "sac-lagrangian",
                 "--scenarios", "nominal", "--training-seeds", "0", "--episodes", "50", "--out", str(out),
                 "--no-progress"]) == 0
    target = (out / "target.md").read_text()
    assert "next best (fewest violations among the learned)" in target and "within 3 points" not in target
    assert "50 of 50 succeeded without a violation (100 %; at least 90 %: met)" in target
    assert "(100 % of `scripted`'s): met" in target
    # --summary-only, with a training seed of bresa's still to run: its row says so.
    monkeypatch.setattr(compare, "split_finished", lambda *args, **kwargs: (cells, [Cell("bresa", "nominal", 1)]))
    assert main(["compare", "--task", "maze", "--controllers", "scripted", "bresa", "sac-lagrangian",
                 "--scenarios", "nominal", "--training-seeds", "0", "1", "--episodes", "50", "--out", str(out),
                 "--summary-only", "--no-progress"]) == 0
    assert "| nominal | bresa (incomplete) | 1 x 50 |" in (out / "table.md").read_text()
    assert "| nominal | sac-lagrangian | 1 x 50 |" in (out / "table.md").read_text()
    assert not json.loads((out / "summary.json").read_text())["complete"]


def test_a_rate_with_no_events_is_separable_only_from_enough_events() -> None:
    upper = wilson_interval(0, 150)[1]
    k = separable_events(upper, 150)
    assert wilson_interval(k, 150)[0] > upper >= wilson_interval(k - 1, 150)[0]
    # with one episode per controller nothing lies clear of "none in one" (a one-episode smoke run)
    assert separable_events(wilson_interval(0, 1)[1], 1) is None


def test_the_table_names_success_time_by_the_task() -> None:
    rows = aggregate([_cell("scripted", "nominal", None, 0, 9.0)])
    assert "| insertion time (s) |" in markdown(rows).splitlines()[0]
    assert "| time to the exit (s) |" in markdown(rows, "maze").splitlines()[0]
    assert markdown(rows).splitlines()[2] == "| nominal | scripted | 1 x 50 | 100 % [93, 100] | 0 % [0, 7] | 9.00 |"


def test_the_target_check_of_a_one_episode_comparison_says_nothing_separates() -> None:
    cells = [_cell("scripted", "nominal", None, 0, 9.0, episodes=1), _cell("bresa", "nominal", 0, 0, 6.0, episodes=1)]
    text = target_check(aggregate(cells))
    assert "pooled Wilson interval cannot lie clear of it with 1 episodes, whatever its violations" in text


def test_compare_writes_cells_table_and_plot_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Training seed 1 of sac-lagrangian, made by train-seeds (tiny), against the spiral search.
    seeds = tmp_path / "seeds"
    assert main(["train-seeds", "--method", "sac-lagrangian", "--seeds", "1", "--timesteps", "30",
                 "--learning-starts", "10", "--select-every", "15", "--select-episodes", "1", "--out", str(seeds),
                 "--tensorboard", str(tmp_path / "tb"), "--no-progress"]) == 0
    card = read_card(seeds / "sac-lagrangian" / "seed1" / "sac_lagrangian" / "task_policy.zip")
    assert card["seed"] == 1 and card["command"][:2] == ["bresa", "train-seeds"]
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 4\n")
    out = tmp_path / "cmp"
    args = ["compare", "--controllers", "scripted", "sac-lagrangian", "--scenarios", "nominal", "push",
            "--training-seeds", "1", "--episodes", "2", "--seeds-dir", str(seeds), "--config", str(short),
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    cells = sorted(p.name for p in (out / "cells").glob("*.json"))
    assert cells == ["sac-lagrangian_nominal_seed1.json", "sac-lagrangian_push_seed1.json",
                     "scripted_nominal_untrained.json", "scripted_push_untrained.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and len(summary["rows"]) == 4 and "bootstrap" in summary["interval"]
    row = summary["rows"][0]
    assert row["success_rate_ci95"][0] <= row["success_rate"] <= row["success_rate_ci95"][1]
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "| nominal | scripted | 1 x 2 |" in (out / "table.md").read_text()
    # A rerun reads finished cells back instead of running them again.
    cell = out / "cells" / "scripted_push_untrained.json"
    document = json.loads(cell.read_text())
    document["marker"] = "kept"
    cell.write_text(json.dumps(document))
    assert main(args) == 0
    assert json.loads(cell.read_text())["marker"] == "kept"
    # ... but not when the models that made a cell or the config changed: then it runs again.
    learned = out / "cells" / "sac-lagrangian_nominal_seed1.json"
    for cell_file in (cell, learned):
        document = json.loads(cell_file.read_text())
        document["marker"] = "kept"
        cell_file.write_text(json.dumps(document))
    policy = seeds / "sac-lagrangian" / "seed1" / "sac_lagrangian" / "task_policy.zip"
    # An evaluation recorded in the model's card (bresa evaluate --record-in-card) is a result of the
    # model, not a new model: every cell stays finished.
    record_evaluation(policy.parent, {"controller": "sac-lagrangian", "scenario": "nominal", "success_rate": 1.0},
                      ["bresa", "evaluate"])
    capsys.readouterr()
    assert main([*args, "--plan-only"]) == 0
    assert "4 cells: 4 finished" in capsys.readouterr().out
    policy.write_bytes(policy.read_bytes() + b"\0")  # a retrained model: other bytes (zip readers skip the tail)
    # --plan-only says so and runs nothing.
    capsys.readouterr()
    assert main([*args, "--plan-only"]) == 0
    plan = capsys.readouterr().out
    assert "4 cells: 2 finished" in plan and "2 to run" in plan, plan
    assert "to run: sac-lagrangian_nominal_seed1.json" in plan and "to run: scripted" not in plan
    # --summary-only runs nothing either: it summarises the cells still finished, and says more are left.
    assert main([*args, "--summary-only"]) == 0
    assert "2 of 4 cells finished; 2 left to run" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["complete"] and {r["controller"] for r in summary["rows"]} == {"scripted"}
    assert json.loads(learned.read_text())["marker"] == "kept"
    assert main(args) == 0
    assert "marker" not in json.loads(learned.read_text())
    assert json.loads(cell.read_text())["marker"] == "kept"  # the spiral search's cell still matches
    short.write_text("env:\n  max_episode_steps: 3\n")
    assert main(args) == 0
    assert "marker" not in json.loads(cell.read_text())
    # No result names a folder of the machine that made it.
    for written in [*(out / "cells").glob("*.json"), out / "summary.json"]:
        assert str(tmp_path) not in written.read_text(), written


def test_train_seeds_for_bresa_needs_the_critic_it_trains_with(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train-seeds", "--method", "bresa", "--seeds", "1", "--timesteps", "10", "--models-dir",
                 str(tmp_path / "empty"), "--out", str(tmp_path / "seeds"), "--no-progress"])
    assert code == 2
    assert "safety_critic.pt does not exist: this method's seeds train with the reflex's models" in (
        capsys.readouterr().err)
    code = main(["train-seeds", "--method", "bresa-feasibility", "--seeds", "1", "--timesteps", "10", "--models-dir",
                 str(tmp_path / "empty"), "--out", str(tmp_path / "seeds"), "--no-progress"])
    assert code == 2 and "feasibility_critic.pt does not exist" in capsys.readouterr().err


def test_training_seed_0_comes_from_the_seeds_folder_only_when_it_has_one(tmp_path: Path) -> None:
    from bresa_control.app.compare import seed_models_dir

    shipped = tmp_path / "models"
    shipped.mkdir()
    assert seed_models_dir("bresa", 0, shipped, tmp_path / "seeds") == shipped
    assert seed_models_dir("bresa", 2, shipped, tmp_path / "seeds") == tmp_path / "seeds" / "bresa" / "seed2"
    (tmp_path / "seeds" / "bresa" / "seed0").mkdir(parents=True)
    assert seed_models_dir("bresa", 0, shipped, tmp_path / "seeds") == tmp_path / "seeds" / "bresa" / "seed0"
    assert seed_models_dir("sac-lagrangian", 0, shipped, tmp_path / "seeds") == shipped


def test_a_cell_fingerprint_follows_the_config_its_controller_reads() -> None:
    """The reflex's gate and brake settings are read only by controllers with the reflex: changing
    them reruns bresa's and force-guard's cells, not the spiral search's or sac's; the ramp of the
    intermediate actions, which every controller runs, reruns them all."""
    import dataclasses

    from bresa_control.app.compare import Cell, fingerprint
    from bresa_control.common.config import load_config

    config = load_config()
    brake = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, brake_max_s=0.1))
    ramp = dataclasses.replace(config, reflex=dataclasses.replace(config.reflex, stiffness_rate_n_per_m_per_tick=10.0))
    for controller, seed, reads_the_brake in (("scripted", None, False), ("sac", 0, False),
                                             ("force-guard", 0, True), ("bresa", 0, True)):
        cell = Cell(controller, "push-down", seed)
        today = fingerprint(cell, config, 3, 0, None, "models/seeds")
        assert (fingerprint(cell, brake, 3, 0, None, "models/seeds") != today) == reads_the_brake, controller
        assert fingerprint(cell, ramp, 3, 0, None, "models/seeds") != today, controller


def test_a_cell_fingerprint_ignores_the_training_disturbances_while_they_are_off() -> None:
    """Evaluation never turns the training disturbances on: their settings shape the models (hashed
    by content), not a cell's episodes, so changing them reruns nothing; turning them on would change
    what a nominal episode meets, and reruns it."""
    import dataclasses

    from bresa_control.app.compare import Cell, fingerprint
    from bresa_control.common.config import load_config

    config = load_config()
    assert not config.randomisation.enabled
    stronger = dataclasses.replace(config, randomisation=dataclasses.replace(config.randomisation,
                                                                             pulse_force_max_n=5.0))
    enabled = dataclasses.replace(config, randomisation=dataclasses.replace(config.randomisation, enabled=True))
    for controller, seed in (("scripted", None), ("bresa", 0)):
        cell = Cell(controller, "nominal", seed)
        today = fingerprint(cell, config, 3, 0, None, "models/seeds")
        assert fingerprint(cell, stronger, 3, 0, None, "models/seeds") == today, controller
        assert fingerprint(cell, enabled, 3, 0, None, "models/seeds") != today, controller
