"""Every change this project makes to franky-sim's internals, in one place, for the versions it was
written against.

franky-sim (the Franka protocol simulator, :mod:`bresa_control.simulation.franka_fixture`) has no
public hooks for what the fixture needs: a robot that claims another protocol version, the
collision thresholds a client sets, the torque commands received, a UDP socket on loopback, the
robot's state with a wrench estimate and errors, and a motion aborted by the arm's reflex. The
functions here reach into its private attributes (name-mangled ``_FrankaServer__...``) to do so.
Such attributes change without notice: :func:`check_version` refuses a franky-sim outside
:data:`SUPPORTED`, with a clear error, before anything is patched. Code for this machine only.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from importlib import metadata
from typing import Any

from franky_sim.franka_robot_protocol import MoveStatus, RobotCommand, SetCollisionBehaviorCommand, UDPCommand
from franky_sim.franka_robot_server import ControlMode
from franky_sim.franka_server import (
    BaseCommand,
    Command,
    ConnectCommand,
    ConnectStatus,
    MessageHeader,
    NonBlockingReceiver,
)

SUPPORTED = ((1, 0, 4), (1, 1, 0))  # [lowest, first unsupported) versions of franky-sim (setup.py pins the same)


def check_version(version: str | None = None) -> None:
    """Raise ``RuntimeError`` unless franky-sim's installed version (or ``version``) is in
    :data:`SUPPORTED`: the patches below were written against its internals."""
    found = version if version is not None else metadata.version("franky-sim")
    parts = tuple(int(p) for p in found.split(".")[:3] if p.isdigit())
    low, high = SUPPORTED
    if not low <= parts < high:
        raise RuntimeError(f"franky-sim {found} is installed; bresa_control's fixture patches its internals and "
                           f"supports {'.'.join(map(str, low))} up to (not including) {'.'.join(map(str, high))}: "
                           "install a supported one (./run.sh setup) or port simulation/franky_patches.py")


def claim_library_version(robot_server: Any, version: int) -> None:
    """Make the server a robot of another protocol version: it answers libfranka's Connect with
    kIncompatibleLibraryVersion and that version, as a real robot does (franky-sim always accepts)."""

    class IncompatibleConnect(ConnectCommand):
        def handle(self, server: Any, command_type_struct: str = "I") -> None:
            header = MessageHeader(self.command_type, self.command_id, 8)
            # libfranka reads the reply as a packed {uint8 status; uint16 version}.
            reply = struct.pack("<BH5x", ConnectStatus.kIncompatibleLibraryVersion.value, version)
            self.client_socket.sendall(header.to_bytes(command_type_struct=command_type_struct) + reply)

    robot_server._FrankaServer__library_version = version
    robot_server._FrankaServer__command_class_map[Command.kConnect] = IncompatibleConnect


def record_collision_behavior(robot_server: Any, received: Callable[[list[float]], None]) -> None:
    """Have the server tell ``received`` the upper nominal Cartesian force thresholds (6 values)
    of every setCollisionBehavior (franky-sim acknowledges the command and simulates nothing)."""

    class RecordedCollisionBehavior(SetCollisionBehaviorCommand):
        def handle(self, server: Any) -> None:
            received(list(self.upper_force_thresholds_nominal))
            super().handle(server)

    robot_server._FrankaServer__command_class_map[RobotCommand.kSetCollisionBehavior] = RecordedCollisionBehavior


def audit_torque_commands(robot_server: Any, seen: Callable[[Any], None]) -> None:
    """Show ``seen`` every UDP command (a ``UDPCommand``) before the server handles it."""
    receive = robot_server._handle_udp_command

    def audited_receive(data: bytes) -> None:
        seen(UDPCommand.from_bytes(data))
        receive(data)

    robot_server._handle_udp_command = audited_receive


def bind_udp_to_loopback(robot_server: Any) -> None:
    """franky-sim's UDP set-up, bound to the server's own (loopback) address instead of 0.0.0.0."""

    def setup(network_udp_port: int) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((robot_server.hostname, 0))
        udp.setblocking(False)
        robot_server._FrankaServer__client_udp_port = network_udp_port
        robot_server._FrankaServer__udp_socket = udp
        robot_server._FrankaServer__udp_receiver = NonBlockingReceiver(udp)
        robot_server._FrankaServer__message_id = 0

    robot_server._setup_udp_connection = setup


def in_torque_mode(robot_server: Any) -> bool:
    """Whether the server runs a torque-controlled motion now."""
    return bool(robot_server._FrankaRobotServer__control_mode == ControlMode.TORQUE)


def report_state(robot: Any, extra_fields: Callable[[Any], dict[str, Any]]) -> None:
    """Make ``robot.state`` franky-sim's state with ``extra_fields(state)`` replaced in it."""
    base_state = type(robot).state

    class ReportingRobot(type(robot)):  # type: ignore[misc]
        @property
        def state(self) -> Any:
            state = base_state.fget(self)
            return state.replace(**extra_fields(state))

    robot.__class__ = ReportingRobot


def abort_motion_with_reflex(robot_server: Any) -> None:
    """Stop the current motion and answer its Move with kReflexAborted, as the arm's reflex does."""
    motion_id = robot_server.current_motion_id
    robot_server.stop_motion(send_preemption_signal=False)
    if motion_id:
        BaseCommand.send_response(robot_server._tcp_socket, RobotCommand.kMove, motion_id, MoveStatus.kReflexAborted)
        robot_server.reset_current_motion_id()
