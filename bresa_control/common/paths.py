"""Where the package's data folders (config/, sim/, models/) are, in a source tree or installed.

A colcon or ament install puts them in ``<prefix>/share/bresa_control``; a source checkout (pip
editable install, tests) has them beside the ``bresa_control/`` package folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "bresa_control"


def find_data(relative: str) -> Path:
    """Absolute path of a shipped file, e.g. ``find_data("config/peg_insertion.yaml")``.

    Raises ``FileNotFoundError`` listing every place that was searched.
    """
    candidates = [Path(__file__).resolve().parents[2] / relative]  # source tree: <root>/bresa_control/common/
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates += [Path(p) / "share" / PACKAGE / relative for p in prefixes + [sys.prefix]]
    for path in candidates:
        if path.exists():
            return path
    raise FileNotFoundError(
        f"cannot find {relative} of {PACKAGE}; looked in: " + ", ".join(str(p) for p in candidates)
    )
