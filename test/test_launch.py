"""The launch file builds the same node set as ``bresa demo``.

ROS 2 ``launch`` and ``launch_ros`` cannot be installed from PyPI, so this test loads
``launch/peg_insertion.launch.py`` against minimal stand-ins of the four launch classes it uses
(recording their arguments) and checks the wiring: arguments declared, the nodes, executables and
parameters are those of :func:`bresa_control.ros.bringup.node_set`, ``use_sim:=false`` leaves the
simulator out. It does not test ``launch`` itself.
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


def test_launch_declares_use_sim_config_and_log_level(launch_module: types.ModuleType) -> None:
    entities = launch_module.generate_launch_description().args[0]
    declared = {e.args[0] for e in entities if "default_value" in e.kwargs}
    assert {"use_sim", "config", "log_level"} <= declared


def test_launch_starts_the_node_set_of_bresa_demo(launch_module: types.ModuleType) -> None:
    nodes = _run(launch_module, seed="3", log_level="debug")
    specs = node_set(None, seed=3)
    names = ["mujoco_sim", "safety_critic", "task_policy"]
    assert [n.kwargs["name"] for n in nodes] == [s.name for s in specs] == names
    for node, spec in zip(nodes, specs):
        assert node.kwargs["package"] == "bresa_control" and node.kwargs["executable"] == spec.executable
        assert node.kwargs["parameters"] == [*config_files(None), spec.parameters]
        assert node.kwargs["arguments"] == ["--ros-args", "--log-level", "debug"]


def test_launch_on_the_real_arm_starts_franka_arm_and_needs_the_robot_and_the_hole(
    launch_module: types.ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="hole estimate must be given"):
        _run(launch_module, use_sim="false", robot_ip="172.16.0.2")
    with pytest.raises(ValueError, match="robot's address must be given: robot_ip"):
        _run(launch_module, use_sim="false", hole_estimate="0.5,0.1,0.04")
    overrides = tmp_path / "mine.yaml"
    overrides.write_text("/**:\n  ros__parameters:\n    safety:\n      max_force_n: 25.0\n")
    nodes = _run(launch_module, use_sim="false", robot_ip="172.16.0.2", hole_estimate="0.5,0.1,0.04",
                 config=str(overrides), robot_urdf="/robot/fr3.urdf", flange_link="fr3_link8")
    assert [n.kwargs["name"] for n in nodes] == ["franka_arm", "safety_critic", "task_policy"]
    arm, critic, policy = (n.kwargs["parameters"][2] for n in nodes)
    assert nodes[0].kwargs["executable"] == "franka_arm" and arm["robot_ip"] == "172.16.0.2"
    assert arm["realtime"] is True and arm["connect_wait_s"] == 0.0  # a robot PC: real-time, no waiting
    for params in (arm, critic, policy):  # every node computes kinematics from the same model
        assert params["robot.urdf_path"] == "/robot/fr3.urdf" and params["robot.flange_link"] == "fr3_link8"
    assert nodes[1].kwargs["parameters"][1] == str(overrides)  # the user's file after the defaults
    assert critic["hole_estimate_m"] == [0.5, 0.1, 0.04] and critic["wait_for_subscribers"] == 1
