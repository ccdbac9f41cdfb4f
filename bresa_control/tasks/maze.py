"""The maze: the arm slides the peg's tip through a walled corridor from the entrance to the exit.

The headline contact-rich task of Bresa and of its predecessor SRL-VIC: contact with the walls is
the hazard, sliding along them is expected. The fixture is a floor plate with walls on it; the
corridor is cut out of a square grid whose pitch is the peg's side plus a clearance on each side.
Several layouts (``config/maze.yaml``), one drawn per episode from its seed; the maze's position
is known to the robot within ``pose_error_m``, its layout exactly. The tip starts just inside the
entrance at ``work_height_m`` above the floor and must pass ``exit_margin_m`` beyond the exit.

Geometry: the maze frame has its origin at the grid's centre on the floor plate's top (the
fixture's reference point; the boxes are built in the fixture's frame, ``floor_thickness_m`` lower,
on the table top); a layout's rows run from +y to -y, its columns from -x to +x. The
centre line is a polyline at ``work_height_m``: from the entrance's opening, through the centre of
every cell where the corridor turns, to ``exit_margin_m`` beyond the exit's opening.

What the policies see: the contract's 22 values, with the tip measured from the point of the
estimated centre line ``lookahead_m`` ahead of it (:meth:`MazeTask.observation_origin_m`; at most
the exit point), so that a policy knows where to go next in any layout; a short look-ahead keeps
the straight line to that point inside the corridor at a corner. The critic measures the tip's height above
the floor. Violations are the stack's: wrist force, torque, workspace.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bresa_control.common.config import BresaConfig, ConfigError, load_section
from bresa_control.common.config import config_key as _key
from bresa_control.common.paths import find_data
from bresa_control.contract import Controller
from bresa_control.control.actions import ActionMap
from bresa_control.tasks.base import Boxes, ComparisonTargets, EpisodeDraw, Task, draw_gains

WALL, CORRIDOR, ENTRANCE, EXIT = "#", ".", "E", "X"
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (row, column) neighbours


@dataclass(frozen=True)
class MazeConfig:
    """The maze's parameters (``config/maze.yaml``: what each means and its default)."""

    clearance_m: float = _key(0.0005, 0.01, "m", "corridor width - peg side, per side")
    wall_height_m: float = _key(0.005, 0.1, "m", "walls above the floor plate")
    floor_thickness_m: float = _key(0.001, 0.05, "m", "the floor plate")
    layouts: tuple[str, ...] = _key(doc="grid pictures: # wall, . corridor, E entrance, X exit")
    max_episode_steps: int = _key(1, 100000, "", "decisions before an episode is cut off")
    nominal_position_m: tuple[float, ...] = _key(-1.0, 1.0, "m", "the maze's centre on the table (x y)")
    position_range_m: float = _key(0.0, 0.1, "m", "true centre within +- this of nominal")
    pose_error_m: float = _key(0.0, 0.02, "m", "the robot's estimate off by up to this")
    work_height_m: float = _key(0.0, 0.1, "m", "the centre line above the floor")
    start_inset_m: float = _key(0.0, 0.1, "m", "the start inside the entrance")
    exit_margin_m: float = _key(0.0, 0.1, "m", "success beyond the exit's opening")
    lookahead_m: float = _key(0.0, 0.05, "m", "the observation's origin: the centre line this far ahead")
    scripted_speed_m_per_s: float = _key(0.001, 0.2, "m/s", "along the centre line")
    scripted_stiffness_n_per_m: tuple[float, ...] = _key(10.0, 3000.0, "N/m", "Kx Ky Kz")
    scripted_damping_ratio: float = _key(0.1, 3.0)
    scripted_wall_force_n: float = _key(0.0, 30.0, "N", "lateral force that reads as a wall")
    scripted_wall_correction_m_per_n: float = _key(-0.01, 0.01, "m/N", "target off the wall per newton")

    def __post_init__(self) -> None:
        if len(self.nominal_position_m) != 2 or len(self.scripted_stiffness_n_per_m) != 3:
            raise ConfigError("maze: nominal_position_m needs 2 values and scripted_stiffness_n_per_m 3")
        if not self.layouts:
            raise ConfigError("maze: layouts must hold at least one layout")


def load_maze_config(path: str | Path | None = None) -> MazeConfig:
    """The maze's parameters from ``path`` (default: the shipped ``config/maze.yaml``)."""
    return load_section(MazeConfig, path if path is not None else find_data("config/maze.yaml"))


@dataclass(frozen=True)
class MazeLayout:
    """One layout, parsed: its wall boxes (maze frame, m) and its centre line (polyline, maze frame
    at the work height, m; from the entrance's opening to ``exit_margin_m + lookahead_m`` beyond
    the exit's) with the arc length at each vertex; the goal is ``goal_arc_m`` along it."""

    boxes: Boxes
    centre_line_m: np.ndarray  # (n, 3)
    arc_m: np.ndarray  # (n,)
    goal_arc_m: float


def parse_layout(picture: str, pitch_m: float, cfg: MazeConfig, index: int = 0) -> MazeLayout:
    """A layout picture (``config/maze.yaml``) as wall boxes and the centre line; raises
    ``ConfigError`` naming the layout and what is wrong with it."""
    rows = [line.strip() for line in picture.strip().splitlines()]
    where = f"maze layout {index}"
    if not rows or len({len(r) for r in rows}) != 1 or set("".join(rows)) - {WALL, CORRIDOR, ENTRANCE, EXIT}:
        raise ConfigError(f"{where}: rows of equal length of '#', '.', 'E' and 'X' expected, got {rows}")
    grid = np.array([list(r) for r in rows])
    n_rows, n_cols = grid.shape

    def centre(cell: tuple[int, int]) -> np.ndarray:
        r, c = cell
        return np.array([(c - (n_cols - 1) / 2.0) * pitch_m, ((n_rows - 1) / 2.0 - r) * pitch_m])

    ends = {}
    for mark in (ENTRANCE, EXIT):
        found = list(zip(*np.nonzero(grid == mark)))
        if len(found) != 1:
            raise ConfigError(f"{where}: exactly one '{mark}' expected, found {len(found)}")
        r, c = (int(v) for v in found[0])
        if r not in (0, n_rows - 1) and c not in (0, n_cols - 1):
            raise ConfigError(f"{where}: '{mark}' must be on the border")
        ends[mark] = (r, c)
    inner = np.zeros(grid.shape, dtype=bool)
    inner[1:-1, 1:-1] = True
    if ((grid == CORRIDOR) & ~inner).any():
        raise ConfigError(f"{where}: only 'E' and 'X' may be on the border (a corridor there has no outer wall)")
    path = _walk(grid, ends[ENTRANCE], ends[EXIT], where)
    points = [centre(path[0]) + 0.5 * pitch_m * _outward(ends[ENTRANCE], grid.shape)]
    for before, cell, after in zip(path, path[1:], path[2:]):
        if (cell[0] - before[0], cell[1] - before[1]) != (after[0] - cell[0], after[1] - cell[1]):
            points.append(centre(cell))  # a turn
    beyond = 0.5 * pitch_m + cfg.exit_margin_m + cfg.lookahead_m  # the point ahead of the goal is on the line too
    points.append(centre(path[-1]) + beyond * _outward(ends[EXIT], grid.shape))
    line = np.array([[x, y, cfg.work_height_m] for x, y in points])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    if len(points) < 4:
        raise ConfigError(f"{where}: the corridor must turn at least twice, it turns {len(points) - 2} times")
    return MazeLayout(_wall_boxes(grid, pitch_m, cfg), line, arc, float(arc[-1] - cfg.lookahead_m))


def _walk(grid: np.ndarray, start: tuple[int, int], goal: tuple[int, int], where: str) -> list[tuple[int, int]]:
    """The corridor's cells from the entrance to the exit; it must be one path with no branch."""
    path, previous = [start], None
    while path[-1] != goal:
        r, c = path[-1]
        nexts = [(r + dr, c + dc) for dr, dc in _STEPS
                 if 0 <= r + dr < grid.shape[0] and 0 <= c + dc < grid.shape[1] and grid[r + dr, c + dc] != WALL
                 and (r + dr, c + dc) != previous]
        if len(nexts) != 1:
            raise ConfigError(f"{where}: the corridor must be one path from E to X with no branch or dead end; at "
                              f"row {r}, column {c} it goes on {len(nexts)} ways")
        previous = path[-1]
        path.append(nexts[0])
    if len(path) != int((grid != WALL).sum()):
        raise ConfigError(f"{where}: corridor cells off the path from E to X")
    return path


def _outward(cell: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """The unit direction (maze frame x, y) out of the grid through a border cell's open side."""
    r, c = cell
    if c == 0:
        return np.array([-1.0, 0.0])
    if c == shape[1] - 1:
        return np.array([1.0, 0.0])
    return np.array([0.0, 1.0]) if r == 0 else np.array([0.0, -1.0])


def _wall_boxes(grid: np.ndarray, pitch_m: float, cfg: MazeConfig) -> Boxes:
    """The floor plate and the walls (each row's runs of '#' as one box), in the fixture's frame:
    origin on the table top under the grid's centre, so the floor's top is at ``floor_thickness_m``
    (the reference point's height) and the walls stand on it."""
    n_rows, n_cols = grid.shape
    half_floor = cfg.floor_thickness_m / 2.0
    boxes: Boxes = {"maze_floor": ([0.0, 0.0, half_floor],
                                   [n_cols * pitch_m / 2.0, n_rows * pitch_m / 2.0, half_floor])}
    for r in range(n_rows):
        c = 0
        while c < n_cols:
            if grid[r, c] != WALL:
                c += 1
                continue
            run = c
            while run < n_cols and grid[r, run] == WALL:
                run += 1
            x = ((c + run - 1) / 2.0 - (n_cols - 1) / 2.0) * pitch_m
            y = ((n_rows - 1) / 2.0 - r) * pitch_m
            boxes[f"maze_wall_r{r}_c{c}"] = ([x, y, cfg.floor_thickness_m + cfg.wall_height_m / 2.0],
                                             [(run - c) * pitch_m / 2.0, pitch_m / 2.0, cfg.wall_height_m / 2.0])
            c = run
    return boxes


def project(line_m: np.ndarray, arc_m: np.ndarray, point_m: np.ndarray) -> tuple[float, float]:
    """The arc length (m) of the point of the polyline nearest ``point_m`` (x, y only), and the
    distance to it (m)."""
    a, b = line_m[:-1, :2], line_m[1:, :2]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", np.asarray(point_m[:2]) - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
    nearest = a + t[:, None] * ab
    distance = np.linalg.norm(nearest - np.asarray(point_m[:2]), axis=1)
    i = int(np.argmin(distance))
    return float(arc_m[i] + t[i] * (arc_m[i + 1] - arc_m[i])), float(distance[i])


class MazeTask(Task):
    """The walled maze (``--task maze``)."""

    name = "maze"
    env_id = "bresa_control/Maze-v0"
    success_word = "at the exit"
    time_label = "time to the exit"
    shipped_models = "models/maze"
    # The issue "The second scene": at the exit in at least 90 % of nominal episodes with no
    # violation, the fewest violations of the learned controllers everywhere, faster than scripted.
    comparison_targets = ComparisonTargets(
        fewest_violations_among="learned", nominal_no_violation=False, nominal_min_clean_success=0.90,
        nominal_max_time_fraction=1.0, success_within=None, apart_when_next_best_at_least=None)
    # The walls stand beside the tip and the floor below it: a push sends the tip along a
    # corridor into its end wall (README "Tasks"), so the brake stops it along every axis.
    brake_axes = (0, 1, 2)

    def __init__(self, config: BresaConfig, maze: MazeConfig | None = None) -> None:
        super().__init__(config)
        self.maze = maze if maze is not None else load_maze_config()
        self.pitch_m = config.scene.peg.side_m + 2.0 * self.maze.clearance_m
        self.layouts = [parse_layout(p, self.pitch_m, self.maze, i) for i, p in enumerate(self.maze.layouts)]

    def fixture_variants(self) -> list[Boxes]:
        """One set of boxes per layout."""
        return [layout.boxes for layout in self.layouts]

    def fixture_boxes(self, variant: int = 0) -> Boxes:
        """The floor plate and walls of layout ``variant``."""
        return self.layouts[variant].boxes

    def parameters(self) -> dict[str, Any]:
        """Every key of ``config/maze.yaml``."""
        return dataclasses.asdict(self.maze)

    def max_episode_steps(self) -> int:
        """``max_episode_steps`` of ``config/maze.yaml``."""
        return self.maze.max_episode_steps

    def fixture_height_m(self) -> float:
        """The floor plate's top."""
        return self.maze.floor_thickness_m

    def draw_episode(self, rng: np.random.Generator) -> EpisodeDraw:
        """A layout, the maze's position, the robot's estimate of it, the tip just inside the
        estimated entrance."""
        m = self.maze
        variant = int(rng.integers(len(self.layouts)))
        xy = np.array(m.nominal_position_m) + rng.uniform(-m.position_range_m, m.position_range_m, size=2)
        truth = np.array([*xy, m.floor_thickness_m])
        estimate = truth + np.array([*rng.uniform(-m.pose_error_m, m.pose_error_m, size=2), 0.0])
        line = self.layouts[variant].centre_line_m
        inward = line[1] - line[0]
        start = estimate + line[0] + m.start_inset_m * inward / np.linalg.norm(inward)
        return EpisodeDraw(truth, estimate, start, variant)

    def succeeded(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> bool:
        """The tip at the end of the centre line (``exit_margin_m`` beyond the exit)."""
        layout = self.layouts[variant]
        arc, _ = project(layout.centre_line_m, layout.arc_m, np.asarray(tip_m) - fixture_m)
        return arc >= layout.goal_arc_m

    def believed_done(self, tip_m: np.ndarray, fixture_estimate_m: np.ndarray, variant: int = 0) -> bool:
        """The tip past the goal, by the estimate, by the estimate's worst error in the plane too: then
        it is past the true goal whatever that error, and the ``task_policy`` node may hold."""
        layout = self.layouts[variant]
        arc, _ = project(layout.centre_line_m, layout.arc_m, np.asarray(tip_m) - fixture_estimate_m)
        return bool(arc >= layout.goal_arc_m + np.sqrt(2.0) * self.maze.pose_error_m)

    def goal_distance_m(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> float:
        """The centre line still ahead of the tip, plus how far the tip is off it."""
        layout = self.layouts[variant]
        relative = np.asarray(tip_m) - fixture_m
        arc, off = project(layout.centre_line_m, layout.arc_m, relative)
        height = relative[2] - self.maze.work_height_m
        return float(max(layout.goal_arc_m - arc, 0.0) + np.hypot(off, height))

    def progress_m(self, tip_m: np.ndarray, fixture_m: np.ndarray, variant: int = 0) -> float:
        """How far along the centre line the tip is."""
        layout = self.layouts[variant]
        return project(layout.centre_line_m, layout.arc_m, np.asarray(tip_m) - fixture_m)[0]

    def observation_origin_m(self, fixture_estimate_m: np.ndarray, tip_m: np.ndarray, variant: int = 0) -> np.ndarray:
        """The point of the estimated centre line ``lookahead_m`` ahead of the tip (at most its end)."""
        layout = self.layouts[variant]
        arc, _ = project(layout.centre_line_m, layout.arc_m, np.asarray(tip_m) - fixture_estimate_m)
        ahead = min(arc + self.maze.lookahead_m, float(layout.arc_m[-1]))
        point = np.array([np.interp(ahead, layout.arc_m, layout.centre_line_m[:, i]) for i in range(3)])
        return np.asarray(fixture_estimate_m, dtype=float) + point

    def surface_height_m(self, fixture_estimate_m: np.ndarray) -> float:
        """The floor's top: the critic sees the tip's height above it."""
        return float(fixture_estimate_m[2])

    def scripted(self) -> Controller:
        """Follow the centre line, slide off the walls."""
        return CorridorFollower(self.config, self.maze)

    def randomised_scripted(self, rng: np.random.Generator) -> Controller:
        """The corridor follower with its gains, speed and wall reaction drawn wide (some too
        aggressive, some pressing into the walls)."""
        stiffness, ratio = draw_gains(rng, self.config)
        maze = dataclasses.replace(
            self.maze, scripted_stiffness_n_per_m=stiffness, scripted_damping_ratio=ratio,
            scripted_speed_m_per_s=float(rng.uniform(0.02, 0.2)),
            scripted_wall_force_n=float(rng.uniform(0.5, 10.0)),
            scripted_wall_correction_m_per_n=float(rng.uniform(-0.0005, 0.001)),  # below 0: pushes into the wall
        )
        return CorridorFollower(self.config, maze)


class CorridorFollower:
    """The maze's scripted baseline: move toward the point of the centre line just ahead (the
    observation's origin) at a steady speed with compliant gains; where the wrist feels a wall
    (lateral force above ``scripted_wall_force_n``), move the target off it in proportion. It sees
    only what a policy sees."""

    def __init__(self, config: BresaConfig, maze: MazeConfig) -> None:
        self.maze = maze
        self.step_m = maze.scripted_speed_m_per_s * config.env.decision_period_s
        self.actions = ActionMap(config)
        self.stiffness = np.array(maze.scripted_stiffness_n_per_m)

    def reset(self) -> None:
        """Nothing is kept between decisions."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Normalised action for this decision step."""
        ahead = -observation[0:3].astype(float)  # the centre line just ahead, relative to the tip
        lateral = np.hypot(ahead[0], ahead[1])
        move = np.zeros(3)
        if lateral > 1e-9:
            move[:2] = ahead[:2] / lateral * min(self.step_m, lateral)
        move[2] = ahead[2]
        force_xy = observation[9:11].astype(float)  # the environment on the peg: away from the wall
        magnitude = float(np.hypot(*force_xy))
        if magnitude > self.maze.scripted_wall_force_n:
            excess = magnitude - self.maze.scripted_wall_force_n
            move[:2] += force_xy / magnitude * excess * self.maze.scripted_wall_correction_m_per_n
        return self.actions.to_action(move, self.stiffness, self.maze.scripted_damping_ratio)
