"""``bresa doctor``: is this machine ready to run the arm's 1 kHz loop? Each check prints one line,
OK, WARN or FAIL, and for WARN and FAIL what to do about it.

    bresa doctor [--robot-ip IP] [--config FILE] [--json FILE]
    python -m bresa_control.runtime.doctor ...     (the same, without the rest of the bresa command)

The exit status is 0 when nothing blocks a run (warnings allowed), 1 when a check failed. What
each check wants, and the worst it gives:

- ``kernel`` (WARN): a PREEMPT_RT kernel, ``/sys/kernel/realtime`` = 1 (the file libfranka reads)
  or PREEMPT_RT in ``uname -v``. Without one the loop runs with more jitter and ``franka_arm``
  needs ``realtime:=false`` (libfranka's ``kEnforce`` refuses such a kernel): it runs, less robustly.
- ``rtprio`` (WARN): RLIMIT_RTPRIO at least ``runtime.realtime_priority``, or CAP_SYS_NICE. Else
  :func:`~bresa_control.runtime.realtime.apply_realtime` is refused SCHED_FIFO and the loop runs
  on at normal priority.
- ``memlock`` (WARN): RLIMIT_MEMLOCK unlimited (or at least 4 GiB), or CAP_IPC_LOCK. Else
  ``mlockall`` is refused and a page fault may stall a tick.
- ``governor`` (WARN): every CPU's cpufreq governor is ``performance``; none readable is a WARN too.
- ``cores`` (FAIL): the CPUs this process may use. Fewer than 2 cannot run the arm loop beside the
  task policy (FAIL); 2-3 run it with missed robot ticks (WARN, docs/sim-to-real.md); 4 or more.
- ``pinning`` (FAIL): ``runtime.realtime_cpus``. A CPU the machine lacks makes ``apply_realtime``
  raise, so the arm node stops at start (FAIL); one outside this process's CPU set is refused
  with a warning (WARN).
- ``pylibfranka`` (FAIL): installed, within bresa_control's own requirement on it (setup.py, read
  from the installed package's metadata). Missing or another version: FAIL with ``--robot-ip``
  (the real arm needs it), else WARN.
- ``robot`` (FAIL), with ``--robot-ip``: libfranka connects as ``franka_arm`` does
  (:func:`~bresa_control.runtime.franka_robot.connect`, one try of at most ``--timeout`` s,
  real-time not enforced: ``kernel`` says that), which also checks that the robot speaks this
  libfranka's protocol version.

Every check takes what it reads (paths, limits, capabilities, the ``uname`` string, the connect
call) as arguments, so tests can give it another machine. ROS-free; no simulator or training code.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import re
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bresa_control.common.config import ConfigError, load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.runtime.realtime import FIFO_PRIORITY_MAX, MEMLOCK_FIX, RTPRIO_FIX

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MEMLOCK_ENOUGH_BYTES = 4 << 30  # mlockall counts the process's whole virtual size (1-2 GiB with torch and rclpy)
CAP_IPC_LOCK, CAP_SYS_NICE = 14, 23  # capability bits (linux/capability.h)
REALTIME_FILE = Path("/sys/kernel/realtime")
CPU_ROOT = Path("/sys/devices/system/cpu")
STATUS_FILE = Path("/proc/self/status")
PYLIBFRANKA_INSTALL = "pip install 'pylibfranka{spec}'"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # OK, WARN or FAIL
    message: str
    fix: str = ""  # what to do (WARN, FAIL)

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def check_kernel(realtime_file: Path = REALTIME_FILE, uname_version: str | None = None) -> Check:
    """A PREEMPT_RT kernel: ``/sys/kernel/realtime`` = 1 (what libfranka reads) or PREEMPT_RT in
    ``uname -v``."""
    version = os.uname().version if uname_version is None else uname_version
    try:
        flag = realtime_file.read_text().strip()
    except OSError:
        flag = None
    if flag == "1":
        return Check("kernel", OK, f"PREEMPT_RT ({realtime_file} = 1)")
    if "PREEMPT_RT" in version or "PREEMPT RT" in version:
        return Check("kernel", WARN, f"PREEMPT_RT by uname -v ({version}), but {realtime_file} is "
                                     f"{repr(flag) if flag is not None else 'absent'}: libfranka's kEnforce reads "
                                     "that file and refuses, so franka_arm needs realtime:=false",
                     f"boot a PREEMPT_RT kernel that provides {realtime_file} (CONFIG_PREEMPT_RT=y)")
    return Check(
        "kernel", WARN,
        f"not a PREEMPT_RT kernel (uname -v: {version}; {realtime_file} "
        f"{'= ' + flag if flag is not None else 'absent'}): the loop runs with more jitter, and franka_arm "
        "needs realtime:=false (libfranka's kEnforce refuses this kernel)",
        "boot a PREEMPT_RT kernel (Ubuntu: 'sudo pro enable realtime-kernel'; Debian: linux-image-rt-amd64)")


def check_rtprio(priority: int, limit: int | None = None, hard_limit: int | None = None,
                 cap_sys_nice: bool | None = None) -> Check:
    """The rtprio limit (soft; ``hard_limit`` only for the advice) allows ``priority``, or the
    process holds CAP_SYS_NICE."""
    if priority == 0:
        return Check("rtprio", OK, "real-time priority not asked (runtime.realtime_priority 0)")
    if limit is None:
        limit, own_hard = _rlimit("RLIMIT_RTPRIO")
        hard_limit = own_hard if hard_limit is None else hard_limit
    cap = _has_capability(CAP_SYS_NICE) if cap_sys_nice is None else cap_sys_nice
    shown = _shown(limit)
    if cap:
        return Check("rtprio", OK, f"CAP_SYS_NICE held: SCHED_FIFO {priority} allowed (rtprio limit {shown})")
    if limit is not None and (limit == resource.RLIM_INFINITY or limit >= priority):
        return Check("rtprio", OK, f"rtprio limit {shown} allows SCHED_FIFO {priority}")
    fix = RTPRIO_FIX[0].upper() + RTPRIO_FIX[1:]
    if hard_limit is not None and (hard_limit == resource.RLIM_INFINITY or hard_limit >= priority):
        fix += f"; the hard limit ({_shown(hard_limit)}) already allows it: 'ulimit -r {priority}' before starting"
    return Check("rtprio", WARN,
                 f"rtprio limit {shown} < runtime.realtime_priority {priority}: SCHED_FIFO is refused and the "
                 "loop runs at normal priority", fix)


def check_memlock(limit: int | None = None, cap_ipc_lock: bool | None = None) -> Check:
    """The memlock limit is unlimited or large, or the process holds CAP_IPC_LOCK."""
    if limit is None:
        limit, _hard = _rlimit("RLIMIT_MEMLOCK")
    cap = _has_capability(CAP_IPC_LOCK) if cap_ipc_lock is None else cap_ipc_lock
    shown = _bytes(limit)
    if cap:
        return Check("memlock", OK, f"CAP_IPC_LOCK held: mlockall allowed (memlock limit {shown})")
    if limit is not None and (limit == resource.RLIM_INFINITY or limit >= MEMLOCK_ENOUGH_BYTES):
        return Check("memlock", OK, f"memlock limit {shown}")
    return Check("memlock", WARN,
                 f"memlock limit {shown}: mlockall (which counts the process's whole virtual size, 1-2 GiB "
                 "with torch) is refused, and a page fault may stall a tick", MEMLOCK_FIX[0].upper() + MEMLOCK_FIX[1:])


def check_governor(cpu_root: Path = CPU_ROOT) -> Check:
    """Every CPU's frequency governor is ``performance``."""
    governors: dict[str, list[int]] = {}
    for path in sorted(cpu_root.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            governor = path.read_text().strip()
        except OSError:
            continue
        governors.setdefault(governor, []).append(int(path.parent.parent.name[3:]))
    if not governors:
        return Check("governor", WARN,
                     f"cannot read the CPU frequency governor (no {cpu_root}/cpu*/cpufreq/scaling_governor: "
                     "a VM, a container without /sys, or no cpufreq driver)",
                     "make sure the CPUs run at full speed (BIOS: performance profile, deep C-states off)")
    others = {g: sorted(cpus) for g, cpus in governors.items() if g != "performance"}
    if not others:
        return Check("governor", OK, f"performance on all {len(governors['performance'])} CPUs")
    listed = "; ".join(f"{g} on CPUs {_cpus(cpus)}" for g, cpus in sorted(others.items()))
    return Check("governor", WARN, f"{listed}: frequency changes add latency to the loop",
                 "sudo cpupower frequency-set -g performance (or: echo performance | "
                 f"sudo tee {cpu_root}/cpu*/cpufreq/scaling_governor)")


def check_cores(available: Sequence[int] | None = None) -> Check:
    """Enough CPUs for the arm loop, the critic and the task policy (the CPUs this process may use)."""
    cpus = sorted(_available_cpus() if available is None else available)
    n = len(cpus)
    fix_more = "give the stack more cores (docker --cpus / --cpuset-cpus, the VM's CPU count)"
    if n < 2:
        return Check("cores", FAIL, f"{n} CPU: the 1 kHz arm loop and the 10 Hz task policy cannot both keep time",
                     fix_more)
    if n < 4:
        return Check("cores", WARN, f"{n} CPUs ({_cpus(cpus)}): enough to run, with missed robot ticks when the "
                                    "processes compete (docs/sim-to-real.md); 4 or more recommended", fix_more)
    return Check("cores", OK, f"{n} CPUs ({_cpus(cpus)})")


def check_pinning(wanted: Sequence[int], available: Sequence[int] | None = None, count: int | None = None) -> Check:
    """``runtime.realtime_cpus`` names CPUs this machine has and this process may use."""
    if not wanted:
        return Check("pinning", OK, "no CPU pinning (runtime.realtime_cpus empty)")
    total = (os.cpu_count() or 1) if count is None else count
    allowed = sorted(_available_cpus() if available is None else available)
    missing = sorted({c for c in wanted if not 0 <= c < total})
    if missing:
        return Check("pinning", FAIL, f"runtime.realtime_cpus names CPUs {_cpus(missing)}, which this machine "
                                      f"lacks (CPUs 0-{total - 1}): the arm node stops at start",
                     f"set runtime.realtime_cpus to CPUs among {_cpus(allowed)}, or [] for no pinning")
    outside = sorted({c for c in wanted if c not in allowed})
    if outside:
        return Check("pinning", WARN, f"runtime.realtime_cpus {_cpus(sorted(wanted))}: CPUs {_cpus(outside)} are "
                                      f"outside this process's CPU set ({_cpus(allowed)}): pinning is refused",
                     "allow them (docker --cpuset-cpus, the cgroup's cpuset) or pick CPUs from the set")
    return Check("pinning", OK, f"the arm loop pinned to CPUs {_cpus(sorted(set(wanted)))}")


_UNSET: Any = object()


def check_pylibfranka(real_arm: bool, installed: str | None = _UNSET, requirement: str | None = _UNSET) -> Check:
    """pylibfranka is installed within bresa_control's own requirement on it (setup.py, read from the
    installed package's metadata). ``real_arm``: a problem blocks (FAIL) rather than warns."""
    if installed is _UNSET:
        installed = _installed_version("pylibfranka")
    if requirement is _UNSET:
        requirement = _own_requirement("pylibfranka")
    bad = FAIL if real_arm else WARN
    spec = _specifier(requirement)
    install = PYLIBFRANKA_INSTALL.format(spec=spec or "")
    if installed is None:
        return Check("pylibfranka", bad, "pylibfranka is not installed: franka_arm cannot drive a real arm", install)
    if requirement is None:
        return Check("pylibfranka", WARN, f"pylibfranka {installed}; bresa_control's requirement on it is unknown "
                                          "(bresa_control not installed as a package: cannot compare)",
                     "pip install -e . (or colcon build) in the repository")
    try:
        from packaging.requirements import Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return Check("pylibfranka", WARN, f"pylibfranka {installed}; cannot compare it with {requirement} "
                                          "(the 'packaging' module is missing)", "pip install packaging")
    try:
        fits = Requirement(requirement).specifier.contains(Version(installed), prereleases=True)
    except (InvalidVersion, ValueError) as exc:
        return Check("pylibfranka", WARN, f"pylibfranka {installed} against {requirement}: cannot compare ({exc})",
                     install)
    if not fits:
        return Check("pylibfranka", bad, f"pylibfranka {installed} is outside bresa_control's {spec}: another "
                                         "libfranka speaks another protocol version than the robot this was made for",
                     install)
    return Check("pylibfranka", OK, f"pylibfranka {installed} (bresa_control wants {spec}); the robot's protocol "
                                    "version is checked on connecting (--robot-ip)")


def check_robot(robot_ip: str, timeout_s: float = 3.0, connect: Callable[[str], Any] | None = None) -> Check:
    """The robot at ``robot_ip`` answers and libfranka accepts it, connecting as ``franka_arm`` does
    (:func:`~bresa_control.runtime.franka_robot.connect`, one try, real-time not enforced: the
    kernel check says that). ``connect``: ip -> robot, for tests."""
    fix = (f"check the cable and the address (ping {robot_ip}), that FCI is activated in Desk and the brakes "
           "are open, that no other program holds the robot, and that the robot's system version matches "
           "this libfranka (Franka's compatibility table)")
    if connect is None:
        try:
            from bresa_control.runtime import franka_robot
        except ImportError as exc:
            return Check("robot", FAIL, f"cannot connect to {robot_ip}: pylibfranka does not import ({exc})",
                         PYLIBFRANKA_INSTALL.format(spec=_specifier(_own_requirement("pylibfranka")) or ""))

        def connect(ip: str) -> Any:
            return franka_robot.connect(ip, realtime=False, timeout_s=timeout_s)

    try:
        robot = connect(robot_ip)
    except Exception as exc:  # every way of not getting a robot is a report here
        return Check("robot", FAIL, str(exc) or type(exc).__name__, fix)
    try:
        mode = f", mode {robot.read_once().robot_mode}"
    except Exception:  # the connection is the check; the mode is extra
        mode = ""
    del robot  # pylibfranka disconnects when the Robot goes
    return Check("robot", OK, f"the robot at {robot_ip} answers and accepts this libfranka{mode}")


def run_checks(priority: int, cpus: Sequence[int], robot_ip: str | None = None, timeout_s: float = 3.0) -> list[Check]:
    """Every check of this machine (and of the robot at ``robot_ip``, if given)."""
    if not 0 <= priority <= FIFO_PRIORITY_MAX:
        raise ValueError(f"real-time priority {priority} is outside 0..{FIFO_PRIORITY_MAX}")
    checks = [check_kernel(), check_rtprio(priority), check_memlock(), check_governor(), check_cores(),
              check_pinning(cpus), check_pylibfranka(real_arm=robot_ip is not None)]
    if robot_ip is not None:
        checks.append(check_robot(robot_ip, timeout_s))
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing blocks a run (WARNs allowed), 1 when a check failed."""
    return 1 if any(check.status == FAIL for check in checks) else 0


def format_checks(checks: Sequence[Check]) -> str:
    """The report: one line per check, its fix indented below, and the verdict."""
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.status:<4}  {check.name:<{width}}  {check.message}")
        if check.fix and check.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = [check.name for check in checks if check.status == FAIL]
    warned = sum(check.status == WARN for check in checks)
    warnings = f"{warned} warning{'s' if warned != 1 else ''}"
    lines.append(f"blocked by: {', '.join(failed)} ({warnings})" if failed else f"nothing blocks a run ({warnings})")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``bresa doctor``'s options."""
    parser.add_argument("--robot-ip", help="also check that the robot at this address answers (libfranka connects)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S",
                        help="how long to wait for the robot to answer (s, default 3)")
    parser.add_argument("--config", help="YAML file laid over config/peg_insertion.yaml (runtime.realtime_*)")
    parser.add_argument("--json", metavar="FILE", help="also write the checks here")


def run(args: argparse.Namespace) -> int:
    """``bresa doctor``: print every check; 0 when nothing blocks a run, 1 otherwise."""
    config = load_config(args.config)
    checks = run_checks(config.runtime.realtime_priority, config.runtime.realtime_cpus, args.robot_ip, args.timeout)
    print(f"bresa doctor: this machine for the arm's 1 kHz loop (SCHED_FIFO {config.runtime.realtime_priority}, "
          f"CPUs {_cpus(config.runtime.realtime_cpus) or 'not pinned'})")
    print(format_checks(checks))
    code = exit_code(checks)
    if args.json:
        write_json_atomic(args.json, {"exit_code": code, "checks": [check.as_dict() for check in checks]})
        print(f"wrote {args.json}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bresa_control.runtime.doctor``: the same as ``bresa doctor``."""
    parser = argparse.ArgumentParser(prog="bresa doctor", description=__doc__.split("\n")[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except ConfigError as exc:
        print(f"bresa doctor: config error: {exc}", file=sys.stderr)
        return 2


# ---- what the checks read by default ----------------------------------------------------------


def _rlimit(name: str) -> tuple[int | None, int | None]:
    try:
        return resource.getrlimit(getattr(resource, name))
    except (AttributeError, OSError, ValueError):
        return None, None


def _has_capability(bit: int, status_file: Path = STATUS_FILE) -> bool:
    """Whether the process holds capability ``bit`` (CapEff of /proc/self/status)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def _available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _own_requirement(distribution: str) -> str | None:
    """bresa_control's requirement on ``distribution`` as its metadata declares it (setup.py)."""
    try:
        requires = importlib.metadata.requires("bresa_control") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        match = _REQUIREMENT.match(line)
        if match and ";" not in line and _normal(match["name"]) == _normal(distribution):
            return line.strip()
    return None


_REQUIREMENT = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<spec>[^;]*)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _specifier(requirement: str | None) -> str:
    """'>=0.21,<0.22' of 'pylibfranka<0.22,>=0.21' (its comparisons, lowest version first)."""
    match = _REQUIREMENT.match(requirement or "")
    if not match:
        return ""
    parts = [part.strip() for part in match["spec"].split(",") if part.strip()]
    return ",".join(sorted(parts, key=lambda part: part.lstrip("<>=!~ ")))


def _shown(limit: int | None) -> str:
    if limit is None:
        return "unknown"
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def _bytes(limit: int | None) -> str:
    if limit is None or limit == resource.RLIM_INFINITY:
        return _shown(limit)
    return f"{limit // 1024} KiB" if limit < 1 << 30 else f"{limit / (1 << 30):g} GiB"


def _cpus(cpus: Sequence[int]) -> str:
    return ", ".join(str(c) for c in cpus)


if __name__ == "__main__":
    sys.exit(main())
