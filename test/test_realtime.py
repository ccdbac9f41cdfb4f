"""Real-time scheduling (runtime/realtime.py): what is applied, one warning per refused right, the
loop runs on; bad arguments fail. The OS calls are mocked: SCHED_FIFO on the test process would
starve the 2-core machine, and mlockall would pin the whole test process in memory."""

from __future__ import annotations

import errno
import gc
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from bresa_control.common.config import ConfigError, load_config
from bresa_control.runtime import realtime
from bresa_control.runtime.realtime import RealtimeReport, apply_realtime


class FakeOS:
    """Records the scheduling calls; ``refuse`` maps a call's name to the error it raises."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **refuse: OSError) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.refuse = refuse
        monkeypatch.setattr(os, "sched_setscheduler", self._call("sched_setscheduler"))
        monkeypatch.setattr(os, "sched_setaffinity", self._call("sched_setaffinity"))
        monkeypatch.setattr(realtime, "_mlockall", self._call("mlockall"))

    def _call(self, name: str) -> Any:
        def call(*args: Any) -> None:
            self.calls.append((name, *args))
            if name in self.refuse:
                raise self.refuse[name]
        return call

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def _eperm() -> OSError:
    return PermissionError(errno.EPERM, "Operation not permitted")


@pytest.fixture(autouse=True)
def unfreeze_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_everything_permitted_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOS(monkeypatch)
    lines: list[str] = []
    report = apply_realtime(80, [0], log=lines.append)
    assert report == RealtimeReport(fifo_priority=80, cpus=(0,), memory_locked=True, gc_frozen=True, warnings=())
    assert lines == []
    name, pid, policy, param = fake.calls[0]
    assert (name, pid, policy, param.sched_priority) == ("sched_setscheduler", 0, os.SCHED_FIFO, 80)
    assert fake.calls[1:] == [("sched_setaffinity", 0, (0,)), ("mlockall",)]
    assert gc.get_freeze_count() > 0
    assert report.as_dict() == {"fifo_priority": 80, "cpus": [0], "memory_locked": True, "gc_frozen": True,
                                "warnings": []}


def test_refused_fifo_gives_one_warning_naming_the_limit_and_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeOS(monkeypatch, sched_setscheduler=_eperm())
    lines: list[str] = []
    report = apply_realtime(80, None, log=lines.append)
    assert report.fifo_priority is None and report.memory_locked and report.gc_frozen and report.cpus is None
    assert len(lines) == 1 and report.warnings == tuple(lines)
    line = lines[0]
    assert line.startswith("SCHED_FIFO 80 refused (EPERM")
    for fragment in ("raise rtprio", "limits.conf '@realtime - rtprio 99'", "--cap-add=sys_nice --ulimit rtprio=99",
                     "normal priority"):
        assert fragment in line, line


@pytest.mark.parametrize("error", [_eperm(), OSError(errno.ENOMEM, "Cannot allocate memory")])
def test_refused_mlockall_gives_one_warning_naming_the_limit_and_runs_on(
    monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    FakeOS(monkeypatch, mlockall=error)
    lines: list[str] = []
    report = apply_realtime(80, None, log=lines.append)
    assert report.fifo_priority == 80 and not report.memory_locked and report.gc_frozen
    assert len(lines) == 1 and report.warnings == tuple(lines)
    assert error.errno is not None and lines[0].startswith(f"mlockall refused ({errno.errorcode[error.errno]}")
    for fragment in ("raise memlock", "limits.conf '- memlock unlimited'", "--ulimit memlock=-1"):
        assert fragment in lines[0], lines[0]


def test_every_right_refused_gives_one_warning_each(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeOS(monkeypatch, sched_setscheduler=_eperm(), sched_setaffinity=OSError(errno.EINVAL, "Invalid argument"),
           mlockall=_eperm())
    lines: list[str] = []
    report = apply_realtime(50, [0], log=lines.append)
    assert (report.fifo_priority, report.cpus, report.memory_locked, report.gc_frozen) == (None, None, False, True)
    assert [line.split(" ")[0] for line in lines] == ["SCHED_FIFO", "pinning", "mlockall"]
    assert "refused (EINVAL)" in lines[1] and "unpinned" in lines[1]


def test_an_os_without_the_calls_warns_and_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_setscheduler")
    monkeypatch.setattr(os, "sched_setaffinity", lambda *args: None)
    monkeypatch.setattr(realtime, "_mlockall", lambda: None)
    lines: list[str] = []
    report = apply_realtime(80, None, log=lines.append)
    assert report.fifo_priority is None and len(lines) == 1 and "not available here" in lines[0]


def test_warnings_go_to_logging_by_default(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    FakeOS(monkeypatch, mlockall=_eperm())
    with caplog.at_level(logging.WARNING, logger=realtime.__name__):
        report = apply_realtime(80, None)
    assert [record.getMessage() for record in caplog.records] == list(report.warnings)
    assert len(report.warnings) == 1


def test_nothing_asked_nothing_called(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOS(monkeypatch)
    report = apply_realtime(0, None, lock_memory=False, freeze_gc=False)
    assert fake.calls == []
    assert report == RealtimeReport(None, None, False, False, ())


def test_gc_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeOS(monkeypatch)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert apply_realtime(0, None).gc_frozen
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize(
    ("priority", "cpus", "message"),
    [
        (-1, None, "outside 0..99"),
        (100, None, "outside 0..99"),
        (True, None, "must be an integer"),
        (50.0, None, "must be an integer"),
        (50, [], "empty CPU set"),
        (50, [os.cpu_count()], "do not exist on this machine"),
        (50, [-1], "do not exist on this machine"),
        (50, "0", "list of CPU numbers"),
        (50, [0.0], "list of CPU numbers"),
    ],
)
def test_invalid_arguments_raise_and_apply_nothing(
    monkeypatch: pytest.MonkeyPatch, priority: Any, cpus: Any, message: str
) -> None:
    fake = FakeOS(monkeypatch)
    with pytest.raises(ValueError, match=message):
        apply_realtime(priority, cpus)
    assert fake.calls == []


def test_cpus_are_deduplicated_and_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOS(monkeypatch)
    cpus = sorted(os.sched_getaffinity(0))
    assert apply_realtime(0, [*reversed(cpus), cpus[0]], lock_memory=False).cpus == tuple(cpus)
    assert fake.calls == [("sched_setaffinity", 0, tuple(cpus))]


def test_the_arm_nodes_call_with_the_shipped_config_works(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOS(monkeypatch)
    config = load_config()
    assert (config.runtime.realtime_priority, config.runtime.realtime_cpus) == (80, ())
    report = apply_realtime(config.runtime.realtime_priority, config.runtime.realtime_cpus or None)
    assert (report.fifo_priority, report.cpus, report.memory_locked) == (80, None, True)
    assert fake.names() == ["sched_setscheduler", "mlockall"]
    pinned = load_config(overrides={"runtime": {"realtime_cpus": [0]}})
    assert apply_realtime(pinned.runtime.realtime_priority, pinned.runtime.realtime_cpus or None).cpus == (0,)


def test_realtime_config_keys_are_range_checked() -> None:
    assert load_config(overrides={"runtime": {"realtime_cpus": [1, 0]}}).runtime.realtime_cpus == (1, 0)
    cpus = load_config(overrides={"runtime": {"realtime_cpus": [1]}}).runtime.realtime_cpus
    assert cpus == (1,) and isinstance(cpus[0], int)
    # ROS's parameter-file parser reads an empty list as "not set": that is no pinning too.
    assert load_config(overrides={"runtime": {"realtime_cpus": None}}).runtime.realtime_cpus == ()
    for overrides, fragments in [
        ({"realtime_priority": 100}, ["runtime.realtime_priority", "[0, 99]"]),
        ({"realtime_priority": 80.5}, ["runtime.realtime_priority", "must be an integer"]),
        ({"realtime_cpus": [0.5]}, ["runtime.realtime_cpus[0]", "must be an integer"]),
        ({"realtime_cpus": [-1]}, ["runtime.realtime_cpus[0]", "[0, 1023]"]),
        ({"realtime_cpus": 3}, ["runtime.realtime_cpus", "must be a list"]),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(overrides={"runtime": overrides})
        assert all(fragment in str(info.value) for fragment in fragments), str(info.value)


def test_mlockall_asks_libc_for_current_and_future_and_raises_its_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    class Libc:
        def mlockall(self, flags: int) -> int:
            asked.append(flags)
            return -1

    monkeypatch.setattr(realtime.ctypes, "CDLL", lambda *args, **kwargs: Libc())
    monkeypatch.setattr(realtime.ctypes, "get_errno", lambda: errno.EPERM)
    monkeypatch.setattr(realtime.platform, "machine", lambda: "x86_64")
    with pytest.raises(PermissionError):
        realtime._mlockall()
    assert asked == [3]  # MCL_CURRENT | MCL_FUTURE
