"""Real-time scheduling of the 1 kHz loop where the OS allows it, as ros2_control's realtime_tools do.

:func:`apply_realtime` asks for SCHED_FIFO, pins the thread to CPUs, locks the process's memory
(``mlockall``) and keeps Python's garbage collector out of the loop (``gc.freeze``). A right the
OS refuses (no rtprio or memlock limit, no CAP_SYS_NICE / CAP_IPC_LOCK, another OS) gives one
warning naming the limit to raise, and the loop runs on without it: this never raises for a
refused right, only (:class:`ValueError`) for arguments that cannot be right anywhere.
``bresa doctor`` (:mod:`bresa_control.runtime.doctor`) checks the same rights before a run.

ROS-free; imports nothing of MuJoCo, gymnasium or the training code.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import logging
import os
import platform
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FIFO_PRIORITY_MAX = 99  # Linux's SCHED_FIFO range is 1..99; 0 here means "do not ask"

# What to raise where a right is missing (the same advice ``bresa doctor`` prints).
RTPRIO_FIX = "raise rtprio (limits.conf '@realtime - rtprio 99' or docker --cap-add=sys_nice --ulimit rtprio=99)"
MEMLOCK_FIX = "raise memlock (limits.conf '- memlock unlimited' or docker --ulimit memlock=-1)"

# mlockall's flags (<sys/mman.h>): 1 and 2 on x86, arm and most others; powerpc and sparc differ.
_MCL_FLAGS = {"ppc": (0x2000, 0x4000), "sparc": (0x2000, 0x4000)}

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealtimeReport:
    """What :func:`apply_realtime` got: each field says what is in force now, not what was asked."""

    fifo_priority: int | None  # SCHED_FIFO priority of the calling thread; None: not asked or refused
    cpus: tuple[int, ...] | None  # the CPUs the calling thread is pinned to; None: not asked or refused
    memory_locked: bool  # mlockall(MCL_CURRENT | MCL_FUTURE) succeeded
    gc_frozen: bool  # gc.collect() + gc.freeze() done
    warnings: tuple[str, ...]  # one line per refused right, naming the limit to raise

    def as_dict(self) -> dict[str, Any]:
        """Plain data for diagnostics and the demo's JSON."""
        return {"fifo_priority": self.fifo_priority, "cpus": None if self.cpus is None else list(self.cpus),
                "memory_locked": self.memory_locked, "gc_frozen": self.gc_frozen, "warnings": list(self.warnings)}


def apply_realtime(
    priority: int,
    cpus: Sequence[int] | None,
    lock_memory: bool = True,
    freeze_gc: bool = True,
    *,
    log: Callable[[str], Any] | None = None,
) -> RealtimeReport:
    """Real-time scheduling for the calling thread and its process, where the OS allows it.

    - ``priority`` 1-99: SCHED_FIFO at that priority for the calling thread (Linux applies
      ``sched_setscheduler(0, ...)`` to the calling thread; threads it starts later inherit it, so
      call this from the loop's thread once the other threads are started); 0: do not ask.
    - ``cpus``: pin the calling thread to these CPUs (``sched_setaffinity``); None: no pinning.
    - ``lock_memory``: ``mlockall(MCL_CURRENT | MCL_FUTURE)`` for the whole process, so no page
      fault stalls a tick. The memlock limit then bounds the process's whole virtual size: under
      a finite limit a later allocation beyond it fails; ``unlimited`` is the setting to use.
    - ``freeze_gc``: ``gc.collect(); gc.freeze()`` for the whole process: everything allocated so far
      moves to the permanent generation, so later collections (20-100 ms pauses with torch loaded)
      stay short. **Call this once, after start-up allocations are done** (models loaded, messages
      and buffers built), right before the loop starts; what is allocated later is collected as usual.

    A refused right (EPERM, a limit, an OS without the call) gives exactly one warning per right,
    sent to ``log`` (default: this module's :mod:`logging` logger; a ROS node passes its own
    logger's ``warn``) and kept in the report, and the loop runs on without it. Raises
    :class:`ValueError` for a ``priority`` outside 0..99 or an empty or unknown CPU set.
    """
    priority, cpu_set = _checked(priority, cpus)
    warn = log if log is not None else _log.warning
    warnings: list[str] = []

    def refused(message: str) -> None:
        warnings.append(message)
        warn(message)

    fifo: int | None = None
    if priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            fifo = priority
        except (OSError, AttributeError) as exc:  # AttributeError: an OS without SCHED_FIFO
            refused(f"SCHED_FIFO {priority} refused ({_cause(exc)}{_rtprio_now()}): {RTPRIO_FIX}; "
                    "the loop runs at normal priority")

    pinned: tuple[int, ...] | None = None
    if cpu_set is not None:
        try:
            os.sched_setaffinity(0, cpu_set)
            pinned = cpu_set
        except (OSError, AttributeError) as exc:
            refused(f"pinning to CPUs {list(cpu_set)} refused ({_cause(exc)}): give the process those CPUs "
                    f"(docker --cpuset-cpus, the cgroup's cpuset) or pick from {_allowed_cpus()}; "
                    "the loop runs unpinned")

    locked = False
    if lock_memory:
        try:
            _mlockall()
            locked = True
        except (OSError, AttributeError) as exc:
            refused(f"mlockall refused ({_cause(exc)}{_memlock_now()}): {MEMLOCK_FIX}; "
                    "memory stays unlocked and a page fault may stall a tick")

    if freeze_gc:
        gc.collect()
        gc.freeze()
    return RealtimeReport(fifo, pinned, locked, freeze_gc, tuple(warnings))


def _checked(priority: int, cpus: Sequence[int] | None) -> tuple[int, tuple[int, ...] | None]:
    """The arguments validated: a priority in 0..99, a non-empty set of this machine's CPUs."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"real-time priority must be an integer in 0..{FIFO_PRIORITY_MAX}, got {priority!r}")
    if not 0 <= priority <= FIFO_PRIORITY_MAX:
        raise ValueError(f"real-time priority {priority} is outside 0..{FIFO_PRIORITY_MAX} "
                         "(SCHED_FIFO's 1..99; 0: do not ask)")
    if cpus is None:
        return priority, None
    if isinstance(cpus, (str, bytes)) or not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus):
        raise ValueError(f"CPUs must be a list of CPU numbers, got {cpus!r}")
    if len(cpus) == 0:
        raise ValueError("an empty CPU set pins the loop nowhere: give CPU numbers, or None for no pinning")
    count = os.cpu_count() or 1
    unknown = sorted({c for c in cpus if not 0 <= c < count})
    if unknown:
        raise ValueError(f"CPUs {unknown} do not exist on this machine (CPUs 0..{count - 1})")
    return priority, tuple(sorted(set(cpus)))


def _mlockall() -> None:
    """``mlockall(MCL_CURRENT | MCL_FUTURE)`` through libc; raises :class:`OSError` with its errno
    (PermissionError for EPERM) and AttributeError where libc has no mlockall."""
    libc = ctypes.CDLL(None, use_errno=True)
    current, future = next((flags for arch, flags in _MCL_FLAGS.items() if platform.machine().startswith(arch)),
                           (1, 2))
    if libc.mlockall(current | future) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _cause(exc: BaseException) -> str:
    """EPERM, ENOMEM, ...: the errno's name, or what the OS lacks."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc))
    return f"not available here: {exc}"


def _rtprio_now() -> str:
    return _limit_now("RLIMIT_RTPRIO", "rtprio limit")


def _memlock_now() -> str:
    return _limit_now("RLIMIT_MEMLOCK", "memlock limit", " bytes")


def _limit_now(name: str, label: str, unit: str = "") -> str:
    """'; rtprio limit 0' (the soft limit now), or nothing where the OS has no such limit."""
    try:
        soft, _hard = resource.getrlimit(getattr(resource, name))
    except (AttributeError, OSError, ValueError):
        return ""
    return f"; {label} {'unlimited' if soft == resource.RLIM_INFINITY else f'{soft}{unit}'}"


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))
