"""The one registry of methods and controllers: everything that lists them reads it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bresa_control.app import compare
from bresa_control.app.cli import build_parser
from bresa_control.learning import registry
from bresa_control.learning.registry import CONTROLLERS, METHODS, ControllerSpec


def _choices(argv: list[str], option: str) -> list[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    sub = commands[argv[0]]
    return list(next(a for a in sub._actions if a.dest == option).choices)


def test_every_method_has_its_training_command_and_every_controller_a_known_method() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    for method in METHODS.values():
        assert method.command in commands
        assert {f.name for f in dataclasses.fields(method.settings)} >= {"seed"}
        assert dataclasses.is_dataclass(method.settings)
    for spec in CONTROLLERS.values():
        assert spec.method is None or spec.method in METHODS
        assert spec.reflex in ("off", "rule", "learned")
    assert _choices(["train-seeds"], "method") == list(METHODS)
    assert _choices(["evaluate"], "controller") == list(CONTROLLERS)
    assert _choices(["compare"], "controllers") == list(CONTROLLERS)


def test_a_registered_controller_is_planned_hashed_and_checked_by_the_comparison(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One entry is all a new controller needs: the comparison plans its training seeds, sends and
    hashes the files it names, and refuses to start while they are missing."""
    spec = ControllerSpec("fisor-more-samples", "FISOR, another entry", "fisor", "fisor", files=("fisor_policy.pt",))
    monkeypatch.setitem(registry.CONTROLLERS, spec.name, spec)
    cells = compare.plan([spec.name, "scripted"], ["nominal"], [0, 1])
    assert [(c.controller, c.training_seed) for c in cells] == [(spec.name, 0), (spec.name, 1), ("scripted", None)]
    assert spec.model_files() == ["fisor/fisor_policy.pt", "fisor/fisor_policy.json"]
    missing = compare.missing_models(cells, tmp_path / "shipped", tmp_path / "seeds")
    assert len(missing) == 2 and "fisor/fisor_policy.pt" in missing[0] and "seeds/fisor/seed1" in missing[1]
    assert "fisor" in compare.LEARNED_BASELINES and "scripted" not in compare.LEARNED_BASELINES


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown method 'ppo'; choose from bresa, "):
        registry.method("ppo")
    with pytest.raises(ValueError, match="unknown controller 'ppo'"):
        registry.controller("ppo")
    with pytest.raises(ValueError, match="trains with FisorTraining"):
        METHODS["fisor"].train(None, "x", METHODS["bresa"].settings(), "d", None, False, [])  # type: ignore[arg-type]
