"""Looking at runs: the force/risk/stiffness plot and the offscreen render.

What a plot shows is checked by looking at it (README); here: the files are written from real
runs, and bad input gets a clear message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bresa_control.app.evaluate import plot_episode
from bresa_control.app.plots import with_gaps
from bresa_control.common.config import BresaConfig


def test_evaluate_plots_an_episode_with_the_reflex_in_the_loop(tmp_path: Path, config: BresaConfig) -> None:
    out = plot_episode("force-guard", config, "push", seed=1, out=tmp_path / "fg.png")
    with Image.open(out) as image:
        assert image.size[0] > 800 and image.size[1] > 600


def test_bresa_plot_refuses_a_folder_that_is_not_a_bag(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bresa_control.app.cli", "plot", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"bag folder {tmp_path / 'nope'} does not exist" in result.stderr


def test_render_writes_an_animated_gif_on_the_cpu(tmp_path: Path) -> None:
    code = (
        "from bresa_control.common.config import load_config; from bresa_control.app.render import render_episode; "
        f"print(render_episode('scripted', load_config(), {str(tmp_path / 'a.gif')!r}, seed=0, "
        "size=(96, 72), frame_period_s=0.5))"
    )
    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames > 5 and gif.size == (96, 72)


def test_plot_lines_break_where_no_messages_came() -> None:
    t = np.array([0.0, 0.001, 0.002, 2.5, 2.501])
    stiffness = np.arange(15.0).reshape(5, 3)
    t_out, k_out = with_gaps(t, stiffness)
    assert len(t_out) == 6 and np.all(np.isnan(k_out[3])) and np.array_equal(k_out[4], stiffness[3])
    assert np.all(np.diff(t_out) >= 0)
    same_t, same_k = with_gaps(t[:3], stiffness[:3])
    assert np.array_equal(same_k, stiffness[:3])
