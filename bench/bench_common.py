"""What the stack benchmarks share: a core kept busy on request, and target checks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """Keep one core busy with another process (``yes > /dev/null``) while the block runs, as a
    robot PC's drivers and visualisation would."""
    busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if enabled else None
    try:
        yield
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def meets(value: float | None, op: str, bound: float) -> bool:
    """Whether a figure meets a target ``op bound`` (``>=`` or ``<=``); a missing figure does not."""
    return value is not None and (value >= bound if op == ">=" else value <= bound)
