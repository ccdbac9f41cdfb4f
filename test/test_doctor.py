"""``bresa doctor`` (runtime/doctor.py): each check on fake machines (sysfs trees, limits,
capabilities, uname strings, a fake robot), the exit status, and the command on this machine."""

from __future__ import annotations

import importlib.metadata
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bresa_control.app import cli
from bresa_control.runtime import doctor
from bresa_control.runtime.doctor import FAIL, OK, WARN, Check

UNLIMITED = resource.RLIM_INFINITY
NAMES = ("kernel", "rtprio", "memlock", "governor", "cores", "pinning", "pylibfranka")
NOBODY = "127.0.0.97"  # a loopback address nothing listens on (franky-sim tests use 127.0.0.1)


def test_kernel(tmp_path: Path) -> None:
    flag = tmp_path / "realtime"
    flag.write_text("1\n")
    assert doctor.check_kernel(flag, "#1 SMP PREEMPT_DYNAMIC").status == OK
    absent = tmp_path / "absent"
    plain = doctor.check_kernel(absent, "#1 SMP PREEMPT_DYNAMIC Thu Jan 1")
    assert plain.status == WARN and "not a PREEMPT_RT kernel" in plain.message and "realtime:=false" in plain.message
    assert "PREEMPT_RT" in plain.fix
    rt_by_name = doctor.check_kernel(absent, "#1 SMP PREEMPT_RT Thu Jan 1")
    assert rt_by_name.status == WARN and str(absent) in rt_by_name.message  # libfranka reads the file
    flag.write_text("0\n")
    assert doctor.check_kernel(flag, "#1 SMP PREEMPT_DYNAMIC").status == WARN


def test_rtprio() -> None:
    assert doctor.check_rtprio(0, limit=0, hard_limit=0, cap_sys_nice=False).status == OK
    refused = doctor.check_rtprio(80, limit=0, hard_limit=0, cap_sys_nice=False)
    assert refused.status == WARN and "rtprio limit 0 < runtime.realtime_priority 80" in refused.message
    assert "limits.conf '@realtime - rtprio 99'" in refused.fix and "--ulimit rtprio=99" in refused.fix
    assert "ulimit -r" not in refused.fix
    assert "'ulimit -r 80'" in doctor.check_rtprio(80, limit=0, hard_limit=99, cap_sys_nice=False).fix
    assert doctor.check_rtprio(80, limit=50, hard_limit=50, cap_sys_nice=False).status == WARN
    assert doctor.check_rtprio(80, limit=99, hard_limit=99, cap_sys_nice=False).status == OK
    assert doctor.check_rtprio(80, limit=UNLIMITED, hard_limit=UNLIMITED, cap_sys_nice=False).status == OK
    assert doctor.check_rtprio(80, limit=0, hard_limit=0, cap_sys_nice=True).status == OK


def test_memlock() -> None:
    small = doctor.check_memlock(limit=8 << 20, cap_ipc_lock=False)
    assert small.status == WARN and "8192 KiB" in small.message
    assert "limits.conf '- memlock unlimited'" in small.fix and "--ulimit memlock=-1" in small.fix
    assert doctor.check_memlock(limit=UNLIMITED, cap_ipc_lock=False).status == OK
    assert doctor.check_memlock(limit=8 << 30, cap_ipc_lock=False).status == OK
    assert doctor.check_memlock(limit=0, cap_ipc_lock=True).status == OK


def _cpu_tree(root: Path, governors: list[str]) -> Path:
    for cpu, governor in enumerate(governors):
        folder = root / f"cpu{cpu}" / "cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_governor").write_text(governor + "\n")
    (root / "cpufreq").mkdir(parents=True, exist_ok=True)  # sysfs has this beside cpu0..N
    (root / "cpuidle").mkdir(exist_ok=True)
    return root


def test_governor(tmp_path: Path) -> None:
    fast = doctor.check_governor(_cpu_tree(tmp_path / "fast", ["performance"] * 4))
    assert fast.status == OK and "all 4 CPUs" in fast.message
    mixed = doctor.check_governor(_cpu_tree(tmp_path / "mixed", ["performance", "performance", "powersave",
                                                                 "powersave"]))
    assert mixed.status == WARN and "powersave on CPUs 2, 3" in mixed.message and "cpupower" in mixed.fix
    unreadable = doctor.check_governor(_cpu_tree(tmp_path / "vm", []))
    assert unreadable.status == WARN and "cannot read" in unreadable.message


def test_cores_and_pinning() -> None:
    assert doctor.check_cores([0]).status == FAIL
    assert doctor.check_cores([0, 1]).status == WARN
    assert doctor.check_cores([0, 1, 2, 3]).status == OK
    assert doctor.check_pinning([], available=[0, 1], count=2).status == OK
    assert doctor.check_pinning([1], available=[0, 1], count=2).status == OK
    missing = doctor.check_pinning([5], available=[0, 1, 2, 3], count=4)
    assert missing.status == FAIL and "lacks" in missing.message and "0, 1, 2, 3" in missing.fix
    outside = doctor.check_pinning([3], available=[0, 1], count=4)
    assert outside.status == WARN and "outside this process's CPU set" in outside.message


def test_pylibfranka() -> None:
    wanted = "pylibfranka<0.22,>=0.21"
    fits = doctor.check_pylibfranka(True, installed="0.21.3", requirement=wanted)
    assert fits.status == OK and ">=0.21,<0.22" in fits.message
    for real_arm, status in ((True, FAIL), (False, WARN)):
        missing = doctor.check_pylibfranka(real_arm, installed=None, requirement=wanted)
        assert missing.status == status and "not installed" in missing.message
        assert missing.fix == "pip install 'pylibfranka>=0.21,<0.22'"
        other = doctor.check_pylibfranka(real_arm, installed="0.20.5", requirement=wanted)
        assert other.status == status and "0.20.5 is outside bresa_control's >=0.21,<0.22" in other.message
    assert doctor.check_pylibfranka(True, installed="0.21.3", requirement=None).status == WARN
    here = doctor.check_pylibfranka(False)  # this environment: the version setup.py asks for
    assert here.status == OK and importlib.metadata.version("pylibfranka") in here.message


class FakeRobot:
    def read_once(self) -> SimpleNamespace:
        return SimpleNamespace(robot_mode="RobotMode.kIdle")


def test_robot_with_a_fake_connection() -> None:
    answered = doctor.check_robot("172.16.0.2", connect=lambda ip: FakeRobot())
    assert answered.status == OK and "172.16.0.2 answers" in answered.message and "kIdle" in answered.message

    def refuse(ip: str) -> None:
        raise RuntimeError(f"the robot at {ip} refused the connection: Incompatible library version")

    refused = doctor.check_robot("172.16.0.2", connect=refuse)
    assert refused.status == FAIL and "Incompatible library version" in refused.message and "FCI" in refused.fix


def test_robot_unreachable_on_loopback_fails_quickly() -> None:
    start = time.monotonic()
    check = doctor.check_robot(NOBODY, timeout_s=1.0)  # franka_robot.connect, as franka_arm connects
    assert check.status == FAIL and f"cannot reach the robot at {NOBODY}:1337" in check.message, check
    assert time.monotonic() - start < 5.0


def test_exit_code_and_report() -> None:
    warned = [Check("kernel", WARN, "not RT", "boot RT"), Check("cores", OK, "4 CPUs", "never shown")]
    assert doctor.exit_code(warned) == 0
    text = doctor.format_checks(warned)
    assert text.splitlines() == ["WARN  kernel  not RT", "              fix: boot RT", "OK    cores   4 CPUs",
                                 "nothing blocks a run (1 warning)"]
    failed = [*warned, Check("robot", FAIL, "cannot reach", "check the cable")]
    assert doctor.exit_code(failed) == 1
    assert doctor.format_checks(failed).splitlines()[-1] == "blocked by: robot (1 warning)"


def test_bresa_doctor_runs_here_and_prints_every_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "doctor.json"
    code = cli.main(["doctor", "--json", str(out_json)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in NAMES:
        assert any(line.split()[1:2] == [name] and line.split()[0] in (OK, WARN, FAIL) for line in lines), (name, out)
    assert "robot" not in [line.split()[1] for line in lines if line.split()[:1] in ([OK], [WARN], [FAIL])]
    failed = any(line.startswith(FAIL) for line in lines)
    assert code == (1 if failed else 0)
    assert ("blocked by:" if failed else "nothing blocks a run") in out
    written = json.loads(out_json.read_text())
    assert written["exit_code"] == code and [c["name"] for c in written["checks"]] == list(NAMES)


def test_bresa_doctor_with_an_unreachable_robot_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "--robot-ip", NOBODY, "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  robot        cannot reach the robot at {NOBODY}:1337" in out and "blocked by: robot" in out


def test_bresa_doctor_reads_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("runtime:\n  realtime_priority: 0\n  realtime_cpus: [4096]\n")
    assert cli.main(["doctor", "--config", str(mine)]) == 2  # out of range: a config error
    mine.write_text("runtime:\n  realtime_priority: 0\n  realtime_cpus: [1000]\n")
    assert cli.main(["doctor", "--config", str(mine)]) == 1  # a CPU this machine lacks
    out = capsys.readouterr().out
    assert "real-time priority not asked" in out and "FAIL  pinning" in out


def test_doctor_alone_loads_no_simulator_ros_or_training_code() -> None:
    code = ("import sys; from bresa_control.runtime import doctor; code = doctor.main([]); "
            "loaded = [m for m in ('mujoco', 'gymnasium', 'rclpy', 'torch', 'pylibfranka', 'bresa_control.simulation', "
            "'bresa_control.learning', 'bresa_control.app', 'bresa_control.ros') if m in sys.modules]; "
            "print('LOADED', loaded); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert "LOADED []" in result.stdout, result.stdout
    assert "nothing blocks a run" in result.stdout or "blocked by" in result.stdout
