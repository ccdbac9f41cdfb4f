"""Re-stamp the comparison's cells that a config change left valid, so that `bresa compare` reuses
them instead of running them again.

A cell's fingerprint (``bresa_control.app.compare.fingerprint``) holds the config its controller
reads. When keys are added to the config that a controller does not read (for example the reflex's
brake settings, for a controller without the reflex), its finished cells are still right, but
their stored fingerprints, made over the config as it was, no longer match. For each complete cell
whose controller does not read any of the keys named with ``--added`` (those the change added),
this script recomputes the fingerprint the cell was made with: today's whole config less those
keys. Only where that equals the stored fingerprint, which proves the cell was made with today's
values of every other key and with today's model files, is the cell's fingerprint replaced by
today's. Every other cell is left as it is, and runs again.

    .venv/bin/python bench/restamp_cells.py --seeds-dir models/seeds \\
        --added reflex.brake_lift_per_load_m_per_n reflex.brake_max_lift_m ...

The other change it follows is a section the fingerprint held whole and no longer reads
(``--was-read``, for example ``randomisation``, which evaluation never turns on): the cell's
fingerprint is recomputed with that section as today's config has it, and re-stamped where it
matches.

    .venv/bin/python bench/restamp_cells.py --cells docs/comparison-maze/cells \\
        --seeds-dir models/maze/seeds --models-dir models/maze --was-read randomisation

Prints one line per cell (re-stamped, already current, or left to run again).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from bresa_control.app.compare import Cell, config_read_by, fingerprint, fingerprint_of_settings
from bresa_control.common.config import BresaConfig, config_to_dict, load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.tasks import DEFAULT_TASK


def parent_of(settings: dict[str, Any], dotted: str, strict: bool) -> tuple[dict[str, Any], str]:
    """The section that holds ``section.key`` in ``settings``, and the key's name; a missing
    section is an error when ``strict``, else an empty section."""
    *path, key = dotted.split(".")
    node = settings
    for part in path:
        node = node[part] if strict else node.get(part, {})
    return node, key


def has_any(settings: dict[str, Any], dotted_keys: list[str]) -> bool:
    """Whether ``settings`` holds one of the named keys (``section.key``)."""
    return any(key in node for node, key in (parent_of(settings, d, strict=False) for d in dotted_keys))


def without(settings: dict[str, Any], dotted_keys: list[str]) -> dict[str, Any]:
    """``settings`` less the named keys (``section.key``); a name that is not there is an error."""
    trimmed = copy.deepcopy(settings)
    for dotted in dotted_keys:
        node, key = parent_of(trimmed, dotted, strict=True)
        if key not in node:
            raise SystemExit(f"--added {dotted}: no such key in today's config")
        del node[key]
    return trimmed


def with_whole(settings: dict[str, Any], whole: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """``settings`` with each named top-level section as ``whole`` (the whole config) holds it; a
    name that is not a section of the config is an error."""
    restored = copy.deepcopy(settings)
    for section in sections:
        if section not in whole:
            raise SystemExit(f"--was-read {section}: no such section in today's config")
        restored[section] = copy.deepcopy(whole[section])
    return restored


def made_with(controller: str, config: BresaConfig, added: list[str], was_read: list[str]) -> dict[str, Any]:
    """The config part of the fingerprint a cell of ``controller`` was made with, if it was made
    with today's values: before ``added`` keys existed (then the whole config was hashed), or while
    the ``was_read`` sections were hashed whole."""
    whole = config_to_dict(config)
    if added:
        return without(whole, added)
    return with_whole(config_read_by(controller, config), whole, was_read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="docs/comparison/cells", help="the cells' folder")
    parser.add_argument("--seeds-dir", default="models/seeds", help="as the comparison's --seeds-dir")
    parser.add_argument("--models-dir", default=None, help="as the comparison's --models-dir")
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--added", nargs="+", default=[], help="config keys added since the cells were made")
    change.add_argument("--was-read", nargs="+", default=[],
                        help="config sections the fingerprint held whole when the cells were made")
    args = parser.parse_args()
    config = load_config()
    whole = config_to_dict(config)
    without(whole, args.added)  # a name that is not in today's config is refused before any cell is read
    with_whole({}, whole, args.was_read)
    counts = {"re-stamped": 0, "current": 0, "left": 0}
    for path in sorted(Path(args.cells).glob("*.json")):
        document = json.loads(path.read_text())
        cell = Cell(document["controller"], document["scenario"], document["training_seed"])
        episodes, seed, task = len(document["per_episode"]), document["seed"], document.get("task", DEFAULT_TASK)
        today = fingerprint(cell, config, episodes, seed, args.models_dir, args.seeds_dir, task)
        if document.get("fingerprint") == today:
            verdict = "current"
        elif has_any(config_read_by(cell.controller, config), args.added):
            verdict = "left"  # its controller reads what was added: it must run again
        elif document.get("complete") and document.get("fingerprint") == fingerprint_of_settings(
                cell, made_with(cell.controller, config, args.added, args.was_read), episodes, seed,
                args.models_dir, args.seeds_dir, task, config):
            write_json_atomic(path, {**document, "fingerprint": today})
            verdict = "re-stamped"
        else:
            verdict = "left"
        counts[verdict] += 1
        print(f"{path.name}: {verdict}")
    print(", ".join(f"{n} {verdict}" for verdict, n in counts.items()))


if __name__ == "__main__":
    main()
