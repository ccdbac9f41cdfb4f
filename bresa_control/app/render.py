"""Render an insertion to an animated GIF, offscreen on the CPU (MuJoCo with ``MUJOCO_GL=osmesa``).

The episode is the evaluation's (same controller, scenario and seed as ``bresa evaluate``); a frame
is taken every ``frame_period_s`` of simulated time from one of the scene's cameras
(``sim/peg_insertion.xml``: ``side`` or ``close``). GIF needs nothing beyond Pillow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.common.files import atomic_output

CAMERAS = ("close", "side")


def render_episode(
    name: str,
    config: BresaConfig,
    out: str | Path,
    seed: int = 0,
    scenario: str = "nominal",
    camera: str = "close",
    size: tuple[int, int] = (480, 360),
    frame_period_s: float = 0.05,
    models_dir: str | Path | None = None,
) -> tuple[Path, int, bool]:
    """Run one episode of controller ``name`` and write the GIF; returns (path, frames, inserted)."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # takes effect only if mujoco is not imported yet
    import mujoco
    from mujoco.rendering.classic import gl_context
    from PIL import Image

    from bresa_control.app.controllers import make_controller
    from bresa_control.simulation.env import TaskEnv

    if camera not in CAMERAS:
        raise ValueError(f"camera {camera!r} is not in the scene; choose from {', '.join(CAMERAS)}")
    if getattr(gl_context, "GLContext", None) is None:
        raise RuntimeError("MuJoCo has no offscreen OpenGL context: run with MUJOCO_GL=osmesa set before "
                           "mujoco is imported (bresa render does this) and libosmesa6 installed")
    setup = make_controller(name, config, models_dir)
    env = TaskEnv(setup.config, setup.critic, setup.recovery, scenario=scenario)
    width, height = size
    renderer = mujoco.Renderer(env.sim.model, height=height, width=width)
    frames: list[np.ndarray] = []
    next_frame_s = 0.0

    def grab(time_s: float, *_: object) -> None:
        nonlocal next_frame_s
        if time_s >= next_frame_s:
            renderer.update_scene(env.sim.data, camera=camera)
            frames.append(renderer.render().copy())
            next_frame_s += frame_period_s

    env.tick_observer = grab
    observation, _ = env.reset(seed=seed)
    setup.policy.reset()
    grab(0.0)
    info: dict = {}
    while True:
        observation, _, terminated, truncated, info = env.step(setup.policy.act(observation))
        if terminated or truncated:
            break
    renderer.close()
    images = [Image.fromarray(frame) for frame in frames]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(frame_period_s * 1000), loop=0)
    return out, len(images), bool(info.get("inserted"))
