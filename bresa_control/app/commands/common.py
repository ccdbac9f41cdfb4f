"""What the command groups share: flags made from settings dataclasses, Ray's flag, argument types."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any


def models_for(task: str, models_dir: str | None) -> str | None:
    """``--models-dir`` as given, else the task's models folder (peg insertion: ``models/``; the
    maze: ``models/maze/``): a command never runs one task's models on another by default."""
    from bresa_control.tasks import shipped_models

    folder = shipped_models(task)
    return models_dir or (str(folder) if folder is not None else None)


def seeds_for(task: str, seeds_dir: str | None) -> str:
    """``--seeds-dir`` as given, else the task's ``seeds/`` (``models/seeds/``, ``models/maze/seeds/``)."""
    return seeds_dir or str(Path(models_for(task, None) or "models") / "seeds")


def add_ray(parser: argparse.ArgumentParser) -> None:
    """The ``--ray [ADDRESS]`` flag of a command that can run on Ray."""
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run on Ray: alone, on this machine's cores; with an ADDRESS (auto, HOST:PORT, "
                             "ray://HOST:PORT), on that cluster. Same results as without")


def add_settings(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of a settings dataclass, with its default and help text: the
    dataclass (``learning/settings.py``) is the one place the defaults live."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default {f.default})"
        parser.add_argument(flag, default=list(f.default) if isinstance(f.default, tuple) else f.default,
                            help=help_text, **flag_type(f.default))


def settings_from(args: argparse.Namespace, cls: type, **fixed: Any) -> Any:
    """The settings dataclass filled from parsed flags (see :func:`add_settings`) and ``fixed``;
    an invalid combination exits with status 2 naming the setting."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in fixed}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**values, **fixed)
    except ValueError as exc:
        print(f"bresa: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def flag_type(default: Any) -> dict[str, Any]:
    """argparse's type (and nargs) for a setting with this default."""
    if isinstance(default, bool):
        return {"type": _boolean, "metavar": "{true,false}"}
    if isinstance(default, tuple):
        return {"type": int, "nargs": "+"}
    return {"type": type(default)}


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
