"""Scripted spiral-search baseline and the ``bresa evaluate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bresa_control.app import evaluate as evaluate_module
from bresa_control.app.cli import main

SUMMARY_FIELDS = {"controller", "scenario", "episodes", "success_rate", "violation_rate",
                  "peak_force_n_mean", "peak_force_n_max", "insertion_time_s_mean"}


def test_scripted_baseline_inserts_in_at_least_90_percent_of_50_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Hole offset (perception error) randomised within +-2 mm by the shipped config."""
    out = tmp_path / "scripted.json"
    code = main(["evaluate", "--controller", "scripted", "--episodes", "50", "--seed", "0",
                 "--json", str(out), "--no-progress"])
    assert code == 0
    report = json.loads(out.read_text())
    assert SUMMARY_FIELDS <= set(report)
    assert report["controller"] == "scripted" and report["episodes"] == 50
    assert report["complete"] is True and len(report["per_episode"]) == 50
    assert report["success_rate"] >= 0.9
    assert 0.0 <= report["violation_rate"] <= 1.0
    assert report["peak_force_n_max"] >= report["peak_force_n_mean"] > 0.0
    assert 0.0 < report["insertion_time_s_mean"] < 20.0
    printed = capsys.readouterr().out
    assert "| scripted | nominal | 50 |" in printed
    assert out.with_suffix(".png").stat().st_size > 10_000  # the first episode, plotted beside the JSON


def test_interrupted_evaluation_leaves_a_whole_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = evaluate_module.run_episode
    calls = {"n": 0}

    def interrupt_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "run_episode", interrupt_on_third)
    out = tmp_path / "partial.json"
    code = main(["evaluate", "--controller", "scripted", "--episodes", "10", "--json", str(out),
                 "--no-progress"])
    assert code == 130
    report = json.loads(out.read_text())
    assert report["complete"] is False
    assert report["episodes"] == 2 and len(report["per_episode"]) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left behind


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("safety:\n  max_force_n: 500\n")
    code = main(["evaluate", "--controller", "scripted", "--episodes", "1", "--config", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert "safety.max_force_n" in err and "[1.0, 100.0]" in err and "Traceback" not in err


def test_unknown_controller_is_rejected(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--controller", "nope"])
    assert info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
