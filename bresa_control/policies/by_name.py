"""The task policies a ``task_policy`` process can run, by name: what the node's ``policy``
parameter and the comparison's controllers load.

* ``scripted``: the spiral search (nothing trained);
* ``sac``: the residual SAC policy of a folder's ``task_policy.zip`` (Bresa's, SAC-Lagrangian's or
  Recovery RL's task policy: the same kind of model);
* ``fisor``: FISOR's diffusion policy and critics, ``fisor_policy.pt`` of a folder.

Imports torch and numpy only (no stable-baselines3, no simulator): the robot PC loads this.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bresa_control.common.config import BresaConfig
from bresa_control.contract import Controller
from bresa_control.policies.fisor import FISOR_DIR, FisorPolicy
from bresa_control.policies.residual import ResidualController, load_task_policy
from bresa_control.policies.scripted import SpiralSearch

# name -> the folder under a models folder where its model is ("": the folder itself; None: no model)
POLICY_DIRS: dict[str, str | None] = {"sac": "", "scripted": None, "fisor": FISOR_DIR}
POLICIES = tuple(POLICY_DIRS)


def load_policy(name: str, config: BresaConfig, folder: str | Path | None,
                scripted: Callable[[], Controller] | None = None) -> Controller:
    """The task policy ``name`` with its model from ``folder`` (the policy's own folder: for
    ``fisor`` the one holding ``fisor_policy.pt``). ``scripted`` makes the task's scripted
    controller (``Task.scripted``; default peg insertion's spiral search): ``scripted`` itself, the
    base of ``sac``'s residual and half of ``fisor``'s state. A missing or mismatched model raises
    :class:`~bresa_control.common.cards.ModelError`; an unknown name, ``ValueError``."""
    if name not in POLICY_DIRS:
        raise ValueError(f"unknown task policy {name!r}; choose from {', '.join(POLICIES)}")
    make_scripted = scripted if scripted is not None else lambda: SpiralSearch(config)
    if name == "scripted":
        return make_scripted()
    if folder is None:
        raise ValueError(f"the {name} policy needs the folder of its model")
    if name == "fisor":
        return FisorPolicy(folder, config, base=make_scripted())
    return ResidualController(load_task_policy(folder), config, base=make_scripted())
