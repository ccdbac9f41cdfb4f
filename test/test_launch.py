"""The launch file builds the same node set as ``bresa demo``.

ROS 2 ``launch`` and ``launch_ros`` cannot be installed from PyPI, so this test loads
``launch/peg_insertion.launch.py`` against minimal stand-ins of the four launch classes it uses
(recording their arguments) and checks the wiring: arguments declared, the nodes, executables and
parameters are those of :func:`bresa_control.ros.bringup.node_set`, composed by default (the critic
in the arm's process) and separate with ``compose:=false``, ``use_sim:=false`` leaves the simulator
out and passes ``wrench_topic`` to ``franka_arm``. It does not test ``launch`` itself.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bresa_control.ros.bringup import config_files, node_set

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "peg_insertion.launch.py"


class _Recorder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


@pytest.fixture()
def launch_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    fakes = {
        "launch": {"LaunchDescription": _Recorder},
        "launch.actions": {"DeclareLaunchArgument": _Recorder, "OpaqueFunction": _Recorder},
        "launch.substitutions": {"LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorder},
    }
    for name, attributes in fakes.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("peg_insertion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(launch_module: types.ModuleType, **overrides: str) -> list[_Recorder]:
    description = launch_module.generate_launch_description()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if "default_value" in e.kwargs}
    opaque = [e for e in entities if "function" in e.kwargs]
    assert len(opaque) == 1
    return opaque[0].kwargs["function"]({**declared, **overrides})


def test_launch_declares_use_sim_compose_config_log_level_and_wrench_topic(launch_module: types.ModuleType) -> None:
    entities = launch_module.generate_launch_description().args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if "default_value" in e.kwargs}
    assert {"use_sim", "compose", "config", "log_level", "wrench_topic"} <= set(declared)
    assert declared["compose"] == "true" and declared["wrench_topic"] == ""  # composed unless asked otherwise


@pytest.mark.parametrize(("compose", "names"), [
    ("true", ["mujoco_sim", "task_policy"]),  # the critic in the arm's process: the default
    ("false", ["mujoco_sim", "safety_critic", "task_policy"]),
])
def test_launch_starts_the_node_set_of_bresa_demo(launch_module: types.ModuleType, compose: str,
                                                  names: list[str]) -> None:
    nodes = _run(launch_module, seed="3", log_level="debug", compose=compose)
    specs = node_set(None, seed=3, compose=compose == "true")
    assert [n.kwargs["name"] for n in nodes] == [s.name for s in specs] == names
    for node, spec in zip(nodes, specs):
        assert node.kwargs["package"] == "bresa_control" and node.kwargs["executable"] == spec.executable
        assert node.kwargs["parameters"] == [*config_files(None), spec.parameters]
        assert node.kwargs["arguments"] == ["--ros-args", "--log-level", "debug"]
    arm, policy = nodes[0].kwargs["parameters"][-1], nodes[-1].kwargs["parameters"][-1]
    assert arm["compose"] is (compose == "true") and arm["seed"] == 3
    if compose == "true":  # the arm runs the critic: its parameters go to the arm
        assert arm["reflex.mode"] == "control-rate" and arm["fixture_estimate_m"] == policy["fixture_estimate_m"]
        assert policy["wait_for_subscribers"] == 1  # the arm (with the critic) reads bresa/task_action
    else:
        assert "reflex.mode" not in arm and nodes[1].kwargs["parameters"][-1]["reflex.mode"] == "control-rate"


def test_launch_on_the_real_arm_starts_franka_arm_and_needs_the_robot_and_the_hole(
    launch_module: types.ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="fixture estimate must be given"):
        _run(launch_module, use_sim="false", robot_ip="172.16.0.2")
    with pytest.raises(ValueError, match="robot's address must be given: robot_ip"):
        _run(launch_module, use_sim="false", fixture_estimate="0.5,0.1,0.04")
    overrides = tmp_path / "mine.yaml"
    overrides.write_text("/**:\n  ros__parameters:\n    safety:\n      max_force_n: 25.0\n")
    real_arm = {"use_sim": "false", "robot_ip": "172.16.0.2", "fixture_estimate": "0.5,0.1,0.04",
                "config": str(overrides), "robot_urdf": "/robot/fr3.urdf", "flange_link": "fr3_link8",
                "wrench_topic": "/wrist/ft"}
    nodes = _run(launch_module, **real_arm, compose="false")
    assert [n.kwargs["name"] for n in nodes] == ["franka_arm", "safety_critic", "task_policy"]
    arm, critic, policy = (n.kwargs["parameters"][2] for n in nodes)
    assert nodes[0].kwargs["executable"] == "franka_arm" and arm["robot_ip"] == "172.16.0.2"
    assert arm["realtime"] is True and arm["connect_wait_s"] == 0.0  # a robot PC: real-time, no waiting
    assert arm["wrench_topic"] == "/wrist/ft"  # the README's launch argument reaches the arm
    for params in (arm, critic, policy):  # every node computes kinematics from the same model
        assert params["robot.urdf_path"] == "/robot/fr3.urdf" and params["robot.flange_link"] == "fr3_link8"
    assert nodes[1].kwargs["parameters"][1] == str(overrides)  # the user's file after the defaults
    assert critic["fixture_estimate_m"] == [0.5, 0.1, 0.04] and critic["wait_for_subscribers"] == 1
    # Composed (the default), franka_arm runs the critic with the same parameters.
    nodes = _run(launch_module, **real_arm)
    assert [n.kwargs["name"] for n in nodes] == ["franka_arm", "task_policy"]
    arm = nodes[0].kwargs["parameters"][2]
    assert arm["compose"] is True and arm["wrench_topic"] == "/wrist/ft" and arm["realtime"] is True
    assert arm["fixture_estimate_m"] == [0.5, 0.1, 0.04] and arm["reflex.mode"] == "control-rate"
    assert arm["robot.urdf_path"] == "/robot/fr3.urdf"
