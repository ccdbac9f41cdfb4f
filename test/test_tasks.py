"""The task interface: peg insertion and the maze behind one :class:`Task`, the maze's layouts and
scene, and its scripted baseline reaching the exit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from bresa_control.app.cli import main
from bresa_control.common.config import ConfigError, load_config, load_section
from bresa_control.common.paths import find_data
from bresa_control.simulation.env import TaskEnv
from bresa_control.tasks import TASKS, make_task, shipped_models
from bresa_control.tasks.base import Task
from bresa_control.tasks.maze import MazeConfig, MazeTask, load_maze_config, parse_layout, project
from bresa_control.tasks.peg_insertion import PegInsertionTask


def test_every_task_implements_the_interface_and_unknown_names_are_refused() -> None:
    config = load_config()
    assert set(TASKS) == {"peg-insertion", "maze"}
    for name in TASKS:
        task = make_task(name, config)
        assert isinstance(task, Task) and task.name == name and task.env_id.startswith("bresa_control/")
        draw = task.draw_episode(np.random.default_rng(0))
        assert 0 <= draw.variant < len(task.fixture_variants())
        assert task.fixture_boxes(draw.variant) and task.scripted() is not None
    with pytest.raises(ValueError, match="unknown task 'drawer'; choose from peg-insertion, maze"):
        make_task("drawer", config)


def test_peg_insertion_through_the_interface() -> None:
    task = PegInsertionTask(load_config())
    top = np.array([0.55, 0.0, task.fixture_height_m()])
    assert task.succeeded(top - [0.0, 0.0, 0.021], top) and not task.succeeded(top - [0.0, 0.0, 0.019], top)
    assert not task.succeeded(top + [0.011, 0.0, -0.03], top)  # deep enough, but beside the hole
    assert task.progress_m(top - [0.0, 0.0, 0.005], top) == pytest.approx(0.005)
    assert task.goal_distance_m(top, top) == pytest.approx(0.02)
    np.testing.assert_array_equal(task.observation_origin_m(top, top + 0.1), top)
    assert set(task.fixture_boxes()) == {"hole_floor", "hole_wall_px", "hole_wall_nx", "hole_wall_py", "hole_wall_ny"}


def _maze() -> MazeTask:
    return MazeTask(load_config())


def test_maze_layouts_turn_twice_and_the_centre_line_stays_clear_of_the_walls() -> None:
    task = _maze()
    half_pitch = task.pitch_m / 2.0
    assert task.pitch_m == pytest.approx(0.02 + 2 * task.maze.clearance_m)
    assert len(task.layouts) >= 2
    for layout in task.layouts:
        assert len(layout.centre_line_m) >= 4  # entrance, two turns at least, beyond the exit
        # every point of the centre line is at least half a corridor from every wall box
        points = np.concatenate([np.linspace(a, b, 50) for a, b in zip(layout.centre_line_m, layout.centre_line_m[1:])])
        for name, (centre, half) in layout.boxes.items():
            if name == "maze_floor":
                # the floor stands on the table, its top at the reference height
                assert centre[2] - half[2] == pytest.approx(0.0)
                assert centre[2] + half[2] == pytest.approx(task.fixture_height_m())
                continue
            gap = np.maximum(np.abs(points[:, :2] - centre[:2]) - half[:2], 0.0)
            assert np.linalg.norm(gap, axis=1).min() >= half_pitch - 1e-9, name
        assert layout.goal_arc_m == pytest.approx(layout.arc_m[-1] - task.maze.lookahead_m)


@pytest.mark.parametrize(("picture", "message"), [
    ("###\nE.X\n###", "turn at least twice"),
    ("#####\nE...#\n#.#.#\n#...X\n#####", "one path from E to X"),
    ("#E###\n#..##\n##.##\n##..X\n#####", None),  # entrance on the top border: fine
    ("#####\n#E..#\n###.#\n###.X\n#####", "must be on the border"),
    ("####\nE..X\nE..#", "exactly one 'E'"),
    ("###\nE.\n###", "rows of equal length"),
])
def test_bad_maze_layouts_are_refused_by_name(picture: str, message: str | None) -> None:
    cfg = load_maze_config()
    if message is None:
        assert len(parse_layout(picture, 0.025, cfg).centre_line_m) >= 4
        return
    with pytest.raises(ConfigError, match=message):
        parse_layout(picture, 0.025, cfg, index=3)


def test_observation_origin_is_the_centre_line_just_ahead() -> None:
    task = _maze()
    layout = task.layouts[0]
    estimate = np.array([0.5, 0.1, task.fixture_height_m()])
    start = estimate + layout.centre_line_m[0]
    origin = task.observation_origin_m(estimate, start, 0)
    assert np.linalg.norm(origin - start) == pytest.approx(task.maze.lookahead_m)
    arc, off = project(layout.centre_line_m, layout.arc_m, origin - estimate)
    assert arc == pytest.approx(task.maze.lookahead_m) and off == pytest.approx(0.0, abs=1e-12)
    end = estimate + layout.centre_line_m[-1]
    np.testing.assert_allclose(task.observation_origin_m(estimate, end, 0), end)  # never beyond the end
    assert task.succeeded(end, estimate, 0) and not task.succeeded(start, estimate, 0)
    assert task.goal_distance_m(end, estimate, 0) == pytest.approx(0.0)


def test_the_robot_believes_the_maze_done_only_past_the_true_exit() -> None:
    """The stack's policy holds once it believes the tip is through (task_policy's stop; the demo
    ends there): at the end of the centre line whatever the estimate's error, and never while the
    tip is short of the true goal."""
    task = _maze()
    error = task.maze.pose_error_m
    for variant, layout in enumerate(task.layouts):
        truth = np.array([0.5, 0.1, task.fixture_height_m()])
        for dx, dy in ((error, error), (-error, error), (error, -error), (-error, -error), (0.0, 0.0)):
            estimate = truth + np.array([dx, dy, 0.0])
            points = [truth + p for p in np.linspace(layout.centre_line_m[-2], layout.centre_line_m[-1], 60)]
            believed = [task.believed_done(p, estimate, variant) for p in points]
            assert believed[-1], (variant, dx, dy)  # the line's end: done by any estimate within the error
            assert all(task.succeeded(p, truth, variant) for p, b in zip(points, believed) if b)
            assert not task.believed_done(truth + layout.centre_line_m[0], estimate, variant)


def test_maze_scene_lets_only_the_episode_layout_touch_the_peg() -> None:
    env = gymnasium.make("bresa_control/Maze-v0").unwrapped
    assert isinstance(env, TaskEnv) and env.task.name == "maze"
    seen = set()
    for seed in range(12):
        env.reset(seed=seed)
        layout = env.sim.layout
        seen.add(layout.variant)
        model = env.sim.model
        for k, boxes in enumerate(env.task.fixture_variants()):
            ids = [model.geom(f"v{k}_{name}").id for name in boxes]
            assert (model.geom_contype[ids] != 0).all() == (k == layout.variant)
        tip = env.sim.tip_position()
        arc, off = project(env.task.layouts[layout.variant].centre_line_m, env.task.layouts[layout.variant].arc_m,
                           tip - layout.fixture_m)
        assert off <= env.task.maze.pose_error_m * np.sqrt(2) + 1e-4  # in the corridor, where the estimate says
    assert seen == set(range(len(env.task.layouts)))  # every layout drawn


def test_the_scripted_follower_reaches_the_exit_without_violation() -> None:
    config = load_config()
    env = TaskEnv(config, task="maze")
    follower = env.task.scripted()
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        follower.reset()
        done, violations = False, 0.0
        while not done:
            obs, _, terminated, truncated, info = env.step(follower.act(obs))
            violations += info["cost"]
            done = terminated or truncated
        assert info["inserted"] and violations == 0.0, (seed, info)


def test_maze_parameters_are_checked() -> None:
    shipped = find_data("config/maze.yaml")
    with pytest.raises(ConfigError, match="at least one layout"):
        dataclasses.replace(load_maze_config(), layouts=())
    with pytest.raises(ConfigError, match=r"'clearance_m' = 0.5 is outside the allowed range \[0.0005, 0.01\] m"):
        load_section(MazeConfig, shipped, {"clearance_m": 0.5})
    with pytest.raises(ConfigError, match="unknown config key 'clearence_m'"):
        load_section(MazeConfig, shipped, {"clearence_m": 0.002})
    assert MazeTask(load_config(), load_maze_config(shipped)).maze.clearance_m == pytest.approx(0.0025)


def test_evaluate_runs_the_maze_and_refuses_models_of_another_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bresa evaluate --task maze: the scripted follower runs through the command line (the task
    recorded in the JSON); by default a learned controller runs the maze's own models (models/maze/),
    and its first episode is replayed on the maze for the plot;
    the shipped peg-insertion models are refused by name for the maze."""
    out = tmp_path / "maze.json"
    assert main(["evaluate", "--task", "maze", "--controller", "scripted", "--episodes", "1", "--no-progress",
                 "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["task"] == "maze" and document["success_rate"] == 1.0
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 2\n")
    learned = tmp_path / "learned.json"
    assert main(["evaluate", "--task", "maze", "--controller", "sac-lagrangian", "--episodes", "1", "--no-progress",
                 "--config", str(short), "--json", str(learned)]) == 0
    assert learned.with_suffix(".png").stat().st_size > 10_000  # its first episode replayed on the maze, plotted
    assert main(["evaluate", "--task", "maze", "--controller", "sac-lagrangian", "--episodes", "1", "--no-progress",
                 "--models-dir", str(find_data("models"))]) != 0
    assert "task_policy.zip was trained for the peg-insertion task, not maze" in capsys.readouterr().err


def test_a_task_without_models_of_its_own_gets_a_refusal_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed without the maze's folder, a learned controller on the maze is refused by name
    (the peg-insertion models it falls back to were trained for another task), not a traceback."""
    monkeypatch.setattr(MazeTask, "shipped_models", "models/no-such-folder")
    assert shipped_models("maze") is None
    assert main(["evaluate", "--task", "maze", "--controller", "sac-lagrangian", "--episodes", "1",
                 "--no-progress"]) == 2
    assert "task_policy.zip was trained for the peg-insertion task, not maze" in capsys.readouterr().err


def test_the_bringup_gives_every_node_the_task_and_the_drawn_layout() -> None:
    from bresa_control.ros.bringup import node_set

    specs = node_set(task="maze", seed=5, compose=False)
    draw = MazeTask(load_config()).draw_episode(np.random.default_rng(5))
    assert {spec.name: spec.parameters["task"] for spec in specs} == {
        "mujoco_sim": "maze", "safety_critic": "maze", "task_policy": "maze"}
    policy = next(spec for spec in specs if spec.name == "task_policy")
    assert policy.parameters["fixture_variant"] == draw.variant
    # Each task's nodes load that task's models unless told otherwise.
    assert {spec.parameters["models_dir"] for spec in specs if "models_dir" in spec.parameters} == {
        str(shipped_models("maze"))} and shipped_models("maze").name == "maze"
    peg = next(spec for spec in node_set(seed=5) if spec.name == "task_policy")
    assert Path(peg.parameters["models_dir"]) == shipped_models("peg-insertion") == find_data("models")
    np.testing.assert_allclose(policy.parameters["fixture_estimate_m"], draw.fixture_estimate_m)
    with pytest.raises(ValueError, match="unknown task 'drawer'"):
        node_set(task="drawer")
    with pytest.raises(ValueError, match="fixture_variant must be from 0 to 3 for the maze task, got 4"):
        node_set(task="maze", use_sim=False, robot_ip="192.0.2.1", fixture_estimate_m=(0.5, 0.0, 0.005),
                 fixture_variant=4)


def test_reflex_models_of_another_task_are_refused() -> None:
    from bresa_control.common.cards import ModelError
    from bresa_control.safety.models import load_reflex_models

    config = load_config()
    load_reflex_models(config, None, "peg-insertion")  # the shipped models: peg insertion's (no task on their card)
    with pytest.raises(ModelError, match=r"safety_critic.pt was trained for the peg-insertion task, not maze"):
        load_reflex_models(config, None, "maze")


def test_offline_data_of_the_maze_records_its_task_and_scripted_actions(tmp_path: Path) -> None:
    from bresa_control.learning import collect
    from bresa_control.learning.settings import PolicyTraining

    config = load_config()
    data = collect.collect(config, episodes=2, seed=0, max_steps=4, progress=False, random_fraction=0.0,
                           nominal_fraction=1.0, task="maze")
    assert data.behaviours == ["nominal", "nominal"]
    assert all(np.array_equal(d[1], d[7]) for d in data.decisions)  # the follower acted: its action is the base
    out = tmp_path / "maze.npz"
    collect.save(out, data, collect.metadata(config, data, 0, ["bresa", "collect", "--task", "maze"], True, "maze"))
    assert collect.load(out)[1]["task"] == "maze"
    wide = collect.collect(config, episodes=3, seed=1, max_steps=3, progress=False, random_fraction=0.0,
                           nominal_fraction=0.0, task="maze")
    assert wide.behaviours == ["scripted"] * 3  # the randomised follower
    with pytest.raises(ValueError, match="setting task = 'drawer' must be one of: peg-insertion, maze"):
        PolicyTraining(task="drawer")


def test_comparison_cells_of_another_task_are_fingerprinted_apart() -> None:
    from bresa_control.app import compare

    config = load_config()
    cell = compare.Cell("scripted", "nominal", None)
    peg = compare.fingerprint(cell, config, 5, 0, None, "models/seeds")
    assert peg == compare.fingerprint(cell, config, 5, 0, None, "models/seeds", "peg-insertion")  # as before tasks
    assert compare.fingerprint(cell, config, 5, 0, None, "models/seeds", "maze") != peg


def test_a_cell_with_the_reflex_is_fingerprinted_with_the_axes_its_brake_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maze brakes along x, y and z, peg insertion along z: a change of a task's brake axes
    reruns the cells of the controllers that run the reflex (bresa, force-guard), not the others',
    and peg insertion's cells (z, as before tasks said which) keep their fingerprints."""
    from bresa_control.app import compare

    config = load_config()
    cells = {name: compare.Cell(name, "push", 1) for name in ("bresa", "force-guard", "sac")}
    before = {name: compare.fingerprint(cell, config, 5, 0, None, "models/maze/seeds", "maze")
              for name, cell in cells.items()}
    peg = compare.fingerprint(cells["bresa"], config, 5, 0, None, "models/seeds")
    monkeypatch.setattr(MazeTask, "brake_axes", (2,))
    after = {name: compare.fingerprint(cell, config, 5, 0, None, "models/maze/seeds", "maze")
             for name, cell in cells.items()}
    assert before["bresa"] != after["bresa"] and before["force-guard"] != after["force-guard"]
    assert before["sac"] == after["sac"]
    monkeypatch.setattr(PegInsertionTask, "brake_axes", (0, 1, 2))
    assert compare.fingerprint(cells["bresa"], config, 5, 0, None, "models/seeds") != peg
