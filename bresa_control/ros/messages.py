"""Message <-> array conversion for the topic contract (:mod:`bresa_control.contract`).

- ``joint_states`` (sensor_msgs/JointState, 1 kHz, arm -> critic, policy): panda_joint1..7 in
  rad, rad/s, Nm.
- ``ft_sensor/wrench`` (geometry_msgs/WrenchStamped, 1 kHz, arm -> critic, policy): the wrench the
  environment applies to the peg (N, Nm), tared, at the flange, in the base frame ``panda_link0``.
- ``bresa/task_action`` (std_msgs/Float64MultiArray, 19 values, 10 Hz, policy -> critic).
- ``bresa/impedance_command`` (std_msgs/Float64MultiArray, 19 values, 1 kHz, critic -> arm).
- ``bresa/reflex`` (std_msgs/Float64MultiArray, ``contract.REFLEX_LABELS``, critic -> anyone): at every
  change of the reflex state, else at 100 Hz.
- ``diagnostics`` (diagnostic_msgs/DiagnosticArray, 1 Hz, every node).
- ``/clock`` (rosgraph_msgs/Clock, simulators only: ``mujoco_sim``, ``franky_sim``): simulated
  time, every :data:`CLOCK_EVERY_TICKS` ticks; ``task_policy`` decides on it (``sim_clock``) so
  that a simulator falling behind the wall clock on a loaded machine slows the decisions with it.

The 19 values are :data:`~bresa_control.contract.COMMAND_LABELS` (position m, quaternion xyzw,
stiffness N/m and Nm/rad, damping Ns/m and Nms/rad); ``layout.dim[0].label`` lists them. Header
stamps are wall-clock time of the sample (every node runs on one clock: the robot PC's; in
simulation the task policy's decision timer alone runs on ``/clock``).
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import WrenchStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from bresa_control.contract import ARM_JOINTS, BASE_FRAME, COMMAND_LABELS

# 1 kHz streams. Readers on the control path take them best effort (FAST_QOS): only the newest
# sample matters, and a lost one must never arrive late as a resend. Writers offer them reliably
# with one second of history (FAST_PUB_QOS), so a reader that asks for every sample (the bag
# recorder) gets each one even after falling behind for a moment; a best-effort reader costs such
# a writer nothing extra (no acknowledgements, no resends). Decisions and reflex events: reliable
# both ways; bresa/reflex (100 Hz, bursts on every change) is also written with FAST_PUB_QOS, since
# ten messages of history (RELIABLE_QOS) lasted less than a recorder's occasional 0.1 s stall and
# the bag lost some. Diagnostics also keep their last ten for readers that join late (a recorder
# discovered after a node's first status, a monitoring tool started mid-run), as /rosout does.
FAST_QOS = qos_profile_sensor_data
# Counting what others publish on the command topic (ros/command_watch.py): best effort, with
# room for a tick's worth of the arm's own messages and a fast outsider's between two takes.
COUNT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
FAST_PUB_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
RELIABLE_QOS = QoSProfile(depth=10)
DIAGNOSTICS_QOS = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /clock: best effort, the newest only (as rclpy's time source reads it); published every 5
# simulated ms, so that task_policy's decisions (node_base.SimClock) fall within 5 ms of their period.
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
CLOCK_TOPIC = "/clock"
CLOCK_EVERY_TICKS = 5

LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR}


def stamp(time_s: float) -> Time:
    """Seconds (wall clock) -> builtin_interfaces/Time."""
    sec = math.floor(time_s)
    return Time(sec=int(sec), nanosec=int((time_s - sec) * 1e9))


def clock(time_s: float, msg: Clock) -> Clock:
    """Simulated seconds -> rosgraph_msgs/Clock (``msg`` reused)."""
    msg.clock = stamp(time_s)
    return msg


def seconds(time_msg: Any) -> float:
    """builtin_interfaces/Time -> seconds."""
    return time_msg.sec + time_msg.nanosec * 1e-9


def labelled_array(labels: tuple[str, ...], name: str) -> Float64MultiArray:
    """An empty Float64MultiArray whose one dimension lists ``labels`` (comma-separated)."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=f"{name}: {','.join(labels)}", size=len(labels), stride=len(labels))]
    return msg


def command_message() -> Float64MultiArray:
    """A reusable message for ``bresa/task_action`` / ``bresa/impedance_command``."""
    return labelled_array(COMMAND_LABELS, "impedance_command")


def set_values(msg: Float64MultiArray, values: np.ndarray) -> Float64MultiArray:
    """Fill a Float64MultiArray from a float array (fast path for 1 kHz)."""
    msg.data = array.array("d", np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return msg


def values(msg: Float64MultiArray) -> np.ndarray:
    """A Float64MultiArray's data as a float64 array (any length: the receiver checks it)."""
    return np.frombuffer(msg.data, dtype=np.float64) if isinstance(msg.data, array.array) else np.asarray(
        msg.data, dtype=np.float64)


def take(subscription: Any) -> Any:
    """The oldest message waiting in a subscription's queue, or None; without an executor.

    For the ``franka_arm`` loop, which cannot hand the GIL to an executor thread between ticks
    (pylibfranka keeps it while waiting). rclpy has no public call for this; it is what rclpy's own
    executors do to take a message (``Executor._take_subscription``).
    """
    with subscription.handle:
        taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    return None if taken is None else taken[0]


def take_with_info(subscription: Any) -> tuple[Any, Mapping[str, Any]] | None:
    """:func:`take`, with the message's info (``publisher_gid`` among others), or None."""
    with subscription.handle:
        taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    return None if taken is None else (taken[0], taken[1])


def publisher_gid(info: Mapping[str, Any]) -> bytes | None:
    """The GID of the publisher of a received message (from its message info), or None."""
    gid = info.get("publisher_gid")
    return bytes(gid["data"]) if gid else None


class JointReader:
    """Pull the seven arm joints out of a JointState, in the model's order, whatever the message's
    order; a message missing a joint or with mismatched lengths raises ``ValueError``."""

    def __init__(self) -> None:
        self._names: list[str] | None = None
        self._index: np.ndarray | None = None

    def __call__(self, msg: JointState) -> tuple[np.ndarray, np.ndarray]:
        names = list(msg.name)
        if names != self._names:
            missing = [j for j in ARM_JOINTS if j not in names]
            if missing:
                raise ValueError(f"joint_states lacks {', '.join(missing)}")
            self._names, self._index = names, np.array([names.index(j) for j in ARM_JOINTS])
        position = np.asarray(msg.position, dtype=float)
        velocity = np.asarray(msg.velocity, dtype=float)
        if len(position) != len(names) or len(velocity) != len(names):
            raise ValueError(
                f"joint_states has {len(names)} names but {len(position)} positions and {len(velocity)} velocities"
            )
        return position[self._index], velocity[self._index]


def joint_state(q: np.ndarray, dq: np.ndarray, tau: np.ndarray, time_s: float, msg: JointState) -> JointState:
    """Fill a reusable JointState (rad, rad/s, Nm)."""
    msg.header.stamp = stamp(time_s)
    if not msg.name:  # a reused message keeps its names
        msg.name = list(ARM_JOINTS)
    msg.position = array.array("d", q.tobytes())
    msg.velocity = array.array("d", dq.tobytes())
    msg.effort = array.array("d", np.ascontiguousarray(tau, dtype=np.float64).tobytes())
    return msg


def wrench(force_n: np.ndarray, torque_nm: np.ndarray, time_s: float, msg: WrenchStamped) -> WrenchStamped:
    """Fill a reusable WrenchStamped (N, Nm, base frame)."""
    msg.header.stamp = stamp(time_s)
    msg.header.frame_id = BASE_FRAME
    f, t = msg.wrench.force, msg.wrench.torque
    f.x, f.y, f.z = (float(v) for v in force_n)
    t.x, t.y, t.z = (float(v) for v in torque_nm)
    return msg


def wrench_arrays(msg: WrenchStamped) -> tuple[np.ndarray, np.ndarray]:
    """(force N, torque Nm) of a WrenchStamped."""
    f, t = msg.wrench.force, msg.wrench.torque
    return np.array([f.x, f.y, f.z]), np.array([t.x, t.y, t.z])


def diagnostics(node_name: str, level: str, message: str, fields: Mapping[str, Any], time_s: float) -> DiagnosticArray:
    """One DiagnosticStatus named after the node, numbers formatted to 4 significant digits."""
    return diagnostic_array([(node_name, level, message, fields)], time_s)


def diagnostic_array(statuses: Sequence[tuple[str, str, str, Mapping[str, Any]]], time_s: float) -> DiagnosticArray:
    """A DiagnosticArray of (name, level, message, fields) statuses (an arm with the critic in its
    loop reports both), numbers formatted to 4 significant digits."""
    out = DiagnosticArray()
    for name, level, message, fields in statuses:
        status = DiagnosticStatus(level=LEVELS[level], name=name, message=message, hardware_id="bresa_control")
        status.values = [KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v))
                         for k, v in fields.items()]
        out.status.append(status)
    out.header.stamp = stamp(time_s)
    return out


def diagnostic_fields(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """{status name: {key: value}} of a DiagnosticArray, with ``level`` and ``message`` added."""
    out = {}
    for status in msg.status:
        level = {v: k for k, v in LEVELS.items()}.get(status.level, str(status.level))
        out[status.name] = {"level": level, "message": status.message, **{kv.key: kv.value for kv in status.values}}
    return out


