"""Tasks: what a contact-rich task gives the stack (:class:`~bresa_control.tasks.base.Task`), and
the tasks there are. ``docs/adding-a-task.md`` walks through adding one."""

from __future__ import annotations

from pathlib import Path

from bresa_control.common.cards import UNNAMED_TASK
from bresa_control.common.config import BresaConfig
from bresa_control.common.paths import find_data
from bresa_control.tasks.base import Task
from bresa_control.tasks.maze import MazeTask
from bresa_control.tasks.peg_insertion import PegInsertionTask

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (PegInsertionTask, MazeTask)}
DEFAULT_TASK = PegInsertionTask.name
assert DEFAULT_TASK == UNNAMED_TASK  # a model card without a task is peg insertion's


def shipped_models(name: str) -> Path | None:
    """Task ``name``'s models folder (:attr:`Task.shipped_models`), found in the source tree or the
    installed share/; None where it has none (then a learned controller's models are refused by
    name: the shipped peg-insertion ones were trained for another task)."""
    try:
        return find_data(_task_class(name).shipped_models)
    except FileNotFoundError:
        return None


def make_task(name: str, config: BresaConfig) -> Task:
    """The task called ``name`` for ``config``; ``ValueError`` naming the tasks there are otherwise."""
    return _task_class(name)(config)


def _task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]
