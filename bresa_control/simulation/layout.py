"""Where things are in an episode: hole geometry, the random draw of an episode, the arm's start.

Imports no MuJoCo: the bringup uses :func:`draw_episode` to tell the nodes where the robot
believes the hole is, also on a robot PC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bresa_control.common.config import BresaConfig, HoleConfig


@dataclass(frozen=True)
class HoleGeometry:
    """Derived hole dimensions (m) in the block frame (block origin on the table top)."""

    half_side_m: float
    top_z_m: float
    floor_z_m: float


def hole_geometry(peg_side_m: float, hole: HoleConfig) -> HoleGeometry:
    """Where the hole's walls, top face and floor are, from the peg size and clearance."""
    return HoleGeometry(
        half_side_m=(peg_side_m + hole.clearance_m) / 2.0,
        top_z_m=hole.floor_thickness_m + hole.depth_m,
        floor_z_m=hole.floor_thickness_m,
    )


def hole_pieces(peg_side_m: float, hole: HoleConfig) -> dict[str, tuple[list[float], list[float]]]:
    """The hole block as five convex boxes, name -> (centre, half sizes) in m in the block frame:
    a floor plate and four walls around a square hole. Both MuJoCo scenes (the simulated Panda's and
    the Franka protocol simulator's) build the block from these."""
    geo = hole_geometry(peg_side_m, hole)
    half_w = hole.block_width_m / 2.0
    a = geo.half_side_m
    wall_z = hole.floor_thickness_m + hole.depth_m / 2.0
    half_depth = hole.depth_m / 2.0
    side_wall = (half_w - a) / 2.0  # half-thickness of each wall
    return {
        "hole_floor": ([0, 0, hole.floor_thickness_m / 2.0], [half_w, half_w, hole.floor_thickness_m / 2.0]),
        "hole_wall_px": ([a + side_wall, 0, wall_z], [side_wall, half_w, half_depth]),
        "hole_wall_nx": ([-a - side_wall, 0, wall_z], [side_wall, half_w, half_depth]),
        "hole_wall_py": ([0, a + side_wall, wall_z], [a, side_wall, half_depth]),
        "hole_wall_ny": ([0, -a - side_wall, wall_z], [a, side_wall, half_depth]),
    }


def inserted(tip_m: np.ndarray, hole_top_m: np.ndarray, half_side_m: float, success_depth_m: float) -> bool:
    """Whether a peg tip at ``tip_m`` is at least ``success_depth_m`` below the hole's top face
    and laterally inside its walls (m, base frame)."""
    lateral = np.abs(np.asarray(tip_m[:2]) - hole_top_m[:2])
    return bool(hole_top_m[2] - tip_m[2] >= success_depth_m and np.all(lateral < half_side_m))


# A comfortable elbow-up posture with the peg pointing down; IK starts every episode from it.
HOME_Q = np.array([0.0, 0.1, 0.0, -2.2, 0.0, 2.3, 0.0])


@dataclass(frozen=True)
class Layout:
    """Where things are in one episode (m, base frame).

    hole_top_m: true centre of the hole's top face; hole_estimate_m: where the robot believes it
    is (off by up to ``perception_error_m`` in x and y); start_q: initial joint angles (rad).
    """

    hole_top_m: np.ndarray
    hole_estimate_m: np.ndarray
    start_q: np.ndarray


@dataclass(frozen=True)
class EpisodeDraw:
    """The random part of an episode (m, base frame): true hole top centre, the robot's estimate
    of it, and the tip's start position."""

    hole_top_m: np.ndarray
    hole_estimate_m: np.ndarray
    start_tip_m: np.ndarray


def draw_episode(config: BresaConfig, rng: np.random.Generator) -> EpisodeDraw:
    """Hole within +-``position_range_m`` of nominal, estimate off by +-``perception_error_m``,
    tip ``start_height_m`` above and within +-``start_xy_range_m`` of the estimate. Needs no
    MuJoCo: the ROS bringup uses it to tell the nodes where the robot believes the hole is."""
    hole_cfg, scene = config.scene.hole, config.scene
    offset = rng.uniform(-hole_cfg.position_range_m, hole_cfg.position_range_m, size=2)
    error = rng.uniform(-hole_cfg.perception_error_m, hole_cfg.perception_error_m, size=2)
    hole_xy = np.array(hole_cfg.nominal_position_m) + offset
    top = np.array([*hole_xy, hole_geometry(scene.peg.side_m, hole_cfg).top_z_m])
    estimate = top + np.array([*error, 0.0])
    start = estimate + np.array(
        [*rng.uniform(-scene.start_xy_range_m, scene.start_xy_range_m, size=2), uniform_in(rng, scene.start_height_m)]
    )
    return EpisodeDraw(top, estimate, start)


def uniform_in(rng: np.random.Generator, interval: tuple[float, ...]) -> float:
    """One draw from a [low, high] pair of the config."""
    low, high = interval
    return float(rng.uniform(low, high))
