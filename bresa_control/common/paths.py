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


def portable(path: str | Path) -> str:
    """``path`` as a record in a card or result file may hold it: relative to the working folder
    (or to the source tree's root, for the shipped folders) when it is inside, otherwise only
    ``<outside>/`` and its last part. A file in the repository never names a folder of the machine
    that made it."""
    resolved = Path(path).resolve()
    for base in (Path.cwd().resolve(), Path(__file__).resolve().parents[2]):
        if resolved == base or base in resolved.parents:
            return resolved.relative_to(base).as_posix() or "."
    return f"<outside>/{resolved.name}"


def portable_command(argv: list[str]) -> list[str]:
    """A command line with every absolute path made :func:`portable` (``--flag=/path`` too)."""
    def one(arg: str) -> str:
        flag, equals, value = arg.partition("=")
        if equals and flag.startswith("-") and value.startswith("/"):
            return f"{flag}={portable(value)}"
        return portable(arg) if arg.startswith("/") else arg

    return [one(arg) for arg in argv]
