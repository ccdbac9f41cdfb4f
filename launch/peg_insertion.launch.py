"""Bring up the Bresa stack: peg insertion, or another task with ``task:=``.

    ros2 launch bresa_control peg_insertion.launch.py
    ros2 launch bresa_control peg_insertion.launch.py task:=maze
    ros2 launch bresa_control peg_insertion.launch.py use_sim:=false robot_ip:=172.16.0.2 \
        fixture_estimate:="0.55,0.0,0.035" robot_urdf:=/path/fr3.urdf flange_link:=fr3_link8
    ros2 launch bresa_control peg_insertion.launch.py config:=/path/my_overrides.yaml log_level:=debug
    ros2 launch bresa_control peg_insertion.launch.py compose:=false    # the critic as a process of its own

The node set (names, executables, parameters) comes from ``bresa_control.ros.bringup.node_set``, the
same description ``bresa demo`` runs without the ``ros2`` CLI: by default (``compose:=true``) the
safety critic runs in the arm's process and 1 kHz loop (``mujoco_sim`` or ``franka_arm``) beside
``task_policy``; ``compose:=false`` starts it as the ``safety_critic`` process between them. Every
node reads the shipped ``config/peg_insertion.yaml`` and then the file given as ``config`` (only
the keys it changes).

One launch file for every task, ``task:=maze`` choosing the maze, rather than a ``maze.launch.py``:
the nodes, their topics and the contract are the same for every task (the task is a parameter each
node reads), so a second file would repeat every argument here and drift from this one. The file
keeps its name so that existing commands keep working.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from bresa_control.ros.bringup import DEMO_SEED, PACKAGE, config_files, node_set

ARGUMENTS = {
    "use_sim": ("true", "true: start mujoco_sim as the arm; false: franka_arm drives the Franka at robot_ip"),
    "compose": ("true", "true: the safety critic runs in the arm's process and loop; false: as a process of its own"),
    "robot_ip": ("", "real arm only: the address of the robot's FCI"),
    "robot_urdf": ("", "real arm only: the arm's URDF (empty: robot.urdf_path of the config)"),
    "flange_link": ("", "real arm only: the URDF link the peg is fixed to (empty: robot.flange_link of the config)"),
    "config": ("", "YAML file laid over config/peg_insertion.yaml (empty: the defaults)"),
    "log_level": ("info", "debug, info, warn or error"),
    "task": ("peg-insertion", "the task: peg-insertion or maze (docs/adding-a-task.md)"),
    "seed": (str(DEMO_SEED), "simulation only: episode seed (fixture pose and variant, perception error, start pose)"),
    "policy": ("sac", "sac (trained residual policy), fisor (FISOR's diffusion policy) or scripted (spiral search)"),
    "fixture_estimate": ("", "real arm only: x,y,z of the task's fixture in the base frame (m): the hole's top centre, "
                          "the maze's grid centre on its floor"),
    "fixture_variant": ("0", "real arm only: which of the task's fixture variants stands there (the maze's layout)"),
    "wrench_topic": ("", "real arm only: relay a wrist F/T sensor's WrenchStamped from this topic "
                         "(empty: the robot's own estimate)"),
}


def _nodes(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    def flag(name):
        return arg(name).strip().lower() in ("true", "1", "yes")

    config = arg("config") or None
    hole = [float(v) for v in arg("fixture_estimate").split(",")] if arg("fixture_estimate") else None
    specs = node_set(config, use_sim=flag("use_sim"), seed=int(arg("seed")), fixture_estimate_m=hole,
                     task=arg("task"), fixture_variant=int(arg("fixture_variant")), policy=arg("policy"),
                     robot_ip=arg("robot_ip"), robot_urdf=arg("robot_urdf"), flange_link=arg("flange_link"),
                     compose=flag("compose"), wrench_topic=arg("wrench_topic"))
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            parameters=[*config_files(config), spec.parameters],
            arguments=["--ros-args", "--log-level", arg("log_level")],
        )
        for spec in specs
    ]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)]
    )
