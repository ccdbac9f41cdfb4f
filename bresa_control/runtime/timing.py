"""Loop timing statistics: achieved rate, tick period and per-tick compute time.

The 1 kHz nodes record every tick here and report the figures in ``diagnostics`` and in their
summary file; ``bench/bench_stack.py`` reads them. Only the most recent ``window`` ticks are kept
for percentiles (memory stays bounded on a long run); the rate is over the whole run.
:class:`TraceRing` keeps the reflex-latency traces bounded the same way.
:func:`machine_info` says which machine a benchmark's figures belong to.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

# numpy's first percentile call sets up ~7 ms of machinery: pay it at import, not inside the first
# 1 kHz tick that reports its timing (it showed as one 9-14 ms stall, 1 s into every franka_arm run).
np.percentile(np.zeros(2), [50.0, 99.0])

def machine_info() -> dict[str, str | int | float | None]:
    """The machine a benchmark ran on: CPU model and count, OS, Python (timing figures depend on
    all of them; the same code met the stack's targets on one 2-core machine and not on another)."""
    fields = _cpuinfo_fields(("model name", "cpu MHz"))
    return {"cpu_model": fields.get("model name") or platform.processor() or None,
            "cpu_mhz": float(fields["cpu MHz"]) if "cpu MHz" in fields else None,  # a VM's model name may be bare
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _cpuinfo_fields(names: tuple[str, ...]) -> dict[str, str]:
    """The first value of each named field of /proc/cpuinfo (empty where there is none)."""
    cpuinfo = Path("/proc/cpuinfo")
    out: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        if key.strip() in names and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


class LoopStats:
    """Record tick start times and compute durations (s, monotonic clock)."""

    def __init__(self, window: int = 120_000) -> None:
        self._periods = np.zeros(window)
        self._compute = np.zeros(window)
        self._n = 0  # ticks recorded
        self._first_s: float | None = None
        self._last_s: float | None = None
        self._recent_period_max_s = 0.0  # since the last recent() call
        self._recent_compute_max_s = 0.0

    def record(self, start_s: float, compute_s: float) -> None:
        """One tick that started at ``start_s`` and took ``compute_s`` of work."""
        i = self._n % len(self._compute)
        self._compute[i] = compute_s
        if compute_s > self._recent_compute_max_s:
            self._recent_compute_max_s = compute_s
        if self._last_s is not None:
            period_s = start_s - self._last_s
            self._periods[(self._n - 1) % len(self._periods)] = period_s
            if period_s > self._recent_period_max_s:
                self._recent_period_max_s = period_s
        else:
            self._first_s = start_s
        self._last_s = start_s
        self._n += 1

    def recent(self) -> dict[str, float]:
        """What a loop can report without leaving its tick budget: ticks, the rate over the run and
        the longest period and compute (ms) since the last call, all kept up tick by tick (no
        sorting). Percentiles are :meth:`summary`'s, for a timer or the end of the run."""
        out = {"ticks": float(self._n), "period_max_ms_recent": self._recent_period_max_s * 1e3,
               "compute_max_ms_recent": self._recent_compute_max_s * 1e3}
        if self._n >= 2 and self._first_s is not None and self._last_s is not None and self._last_s > self._first_s:
            out["rate_hz"] = (self._n - 1) / (self._last_s - self._first_s)
        self._recent_period_max_s = self._recent_compute_max_s = 0.0
        return out

    @property
    def ticks(self) -> int:
        """Ticks recorded so far."""
        return self._n

    def summary(self, last: int | None = None) -> dict[str, float]:
        """rate_hz over the run; period and compute p50/p99/max in ms over the window, or over the
        ``last`` ticks only. Percentiles sort: over the whole 120,000-tick window that takes ~13 ms,
        so a 1 kHz loop reports ``last=1000`` (the last second) in its diagnostics and the whole
        window only at shutdown."""
        if self._n < 2 or self._first_s is None or self._last_s is None:
            return {"ticks": float(self._n)}
        periods = self._latest(self._periods, self._n - 1, last) * 1e3
        compute = self._latest(self._compute, self._n, last) * 1e3
        return {
            "ticks": float(self._n),
            "rate_hz": (self._n - 1) / (self._last_s - self._first_s),
            "period_p50_ms": float(np.percentile(periods, 50)),
            "period_p99_ms": float(np.percentile(periods, 99)),
            "period_max_ms": float(periods.max()),
            "compute_p50_ms": float(np.percentile(compute, 50)),
            "compute_p99_ms": float(np.percentile(compute, 99)),
        }

    @staticmethod
    def _latest(ring: np.ndarray, count: int, last: int | None) -> np.ndarray:
        """The newest ``last`` of ``count`` values written round ``ring`` (all held, if None)."""
        held = min(count, len(ring))
        if last is None or last >= held:
            return ring[:held]
        end = count % len(ring)
        return ring[end - last:end] if end >= last else np.concatenate([ring[end - last:], ring[:end]])


class TraceRing:
    """The newest ``capacity`` rows of two numbers each (a tick's state stamp and the tick's number,
    a command's CRC and the tick that first applied it), for the reflex-latency traces: a loop that
    runs for hours keeps a bounded record (at 1 kHz the default holds the last two minutes)."""

    def __init__(self, capacity: int = 120_000) -> None:
        if capacity < 1:
            raise ValueError(f"a trace ring holds at least one row, got capacity {capacity}")
        self._rows = np.zeros((capacity, 2))
        self._n = 0  # rows recorded

    def record(self, first: float, second: float) -> None:
        """Append a row; the oldest goes once the ring is full."""
        row = self._rows[self._n % len(self._rows)]
        row[0], row[1] = first, second
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, len(self._rows))

    def rows(self) -> list[list[float]]:
        """The rows held, oldest first (plain lists: for a JSON summary)."""
        capacity = len(self._rows)
        if self._n <= capacity:
            return self._rows[: self._n].tolist()
        start = self._n % capacity
        return np.concatenate([self._rows[start:], self._rows[:start]]).tolist()
