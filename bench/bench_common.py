"""What the stack benchmarks share: a core kept busy on request, and target checks."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bresa_control.ros.bringup import DEMO_SEED


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


def tick_compute_ms(result: dict[str, Any], arm_node: str, percentile: str) -> float | None:
    """The whole tick's compute (ms) at ``percentile`` (``p50``, ``p99``): the arm node's tick when
    the critic is in it; separate, the arm's plus the critic process's."""
    arm = result["nodes"][arm_node].get(f"compute_{percentile}_ms")
    if result["composed"] or arm is None:
        return arm
    critic = result["nodes"]["safety_critic"].get(f"compute_{percentile}_ms")
    return None if critic is None else arm + critic


def stack_arguments(description: str, default_json: str, clock: str) -> argparse.ArgumentParser:
    """The flags both stack benchmarks take (runs, duration on ``clock``, seed, JSON, separate, busy,
    config); a benchmark adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0, help=f"simulated seconds per run ({clock})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="run i is episode seed + i (default: the demo's)")
    parser.add_argument("--json", default=default_json)
    parser.add_argument("--separate", action="store_true",
                        help="the critic as a process of its own (compose:=false) instead of in the arm's loop")
    parser.add_argument("--busy", action="store_true", help="keep one core busy with `yes > /dev/null`")
    parser.add_argument("--config", help="YAML laid over config/peg_insertion.yaml (e.g. runtime.realtime_priority)")
    return parser
