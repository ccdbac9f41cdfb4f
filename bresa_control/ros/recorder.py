"""Record every contract topic of a run into a ROS 2 bag in MCAP (the ``rosbags`` library).

The recorder takes the serialized messages (CDR, no decoding), so keeping up with three 1 kHz
streams costs little; each message is stamped with its receive time, as ``ros2 bag record`` does.
The bag opens with ``rosbags`` (and with ``ros2 bag info`` / Foxglove where ROS 2 is installed).
"""

from __future__ import annotations

import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from bresa_control import contract
from bresa_control.ros import messages

# topic -> (message class, ROS type name)
CONTRACT_TOPICS: dict[str, tuple[Any, str]] = {
    contract.JOINT_STATES: (messages.JointState, "sensor_msgs/msg/JointState"),
    contract.WRENCH: (messages.WrenchStamped, "geometry_msgs/msg/WrenchStamped"),
    contract.TASK_ACTION: (messages.Float64MultiArray, "std_msgs/msg/Float64MultiArray"),
    contract.IMPEDANCE_COMMAND: (messages.Float64MultiArray, "std_msgs/msg/Float64MultiArray"),
    contract.REFLEX: (messages.Float64MultiArray, "std_msgs/msg/Float64MultiArray"),
    contract.DIAGNOSTICS: (messages.DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray"),
}
# Every contract topic is offered reliably (messages.FAST_PUB_QOS for the 1 kHz ones), so the
# recorder asks for reliable delivery and gets every message; two seconds of history at 1 kHz
# ride out a slow moment of this process. Diagnostics are also taken from before the recorder
# was discovered (their writers keep the last ten for late joiners).
RECORD_DEPTH = 2000


def record_qos(topic: str) -> QoSProfile:
    """The recorder's QoS for one contract topic."""
    late_joiner = DurabilityPolicy.TRANSIENT_LOCAL if topic == contract.DIAGNOSTICS else DurabilityPolicy.VOLATILE
    return QoSProfile(depth=RECORD_DEPTH, reliability=ReliabilityPolicy.RELIABLE, durability=late_joiner)


class BagRecorder(Node):
    """Subscribes to every contract topic and writes what arrives to ``path`` (a new folder)."""

    def __init__(self, path: Path) -> None:
        super().__init__("bresa_bag_recorder")
        self.path = path
        self.counts: Counter[str] = Counter({topic: 0 for topic in CONTRACT_TOPICS})  # every topic, even if silent
        typestore = get_typestore(Stores.ROS2_KILTED)
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        for topic, (msg_class, type_name) in CONTRACT_TOPICS.items():
            connection = self._writer.add_connection(f"/{topic}", type_name, typestore=typestore)
            self.create_subscription(msg_class, topic, partial(self._on_message, topic, connection), record_qos(topic),
                                     raw=True)

    def _on_message(self, topic: str, connection: Any, data: bytes) -> None:
        self._writer.write(connection, time.time_ns(), data)
        self.counts[topic] += 1

    def missing(self, published: dict[str, int]) -> dict[str, int]:
        """Per contract topic, how many of the messages the nodes say they published never
        reached the bag: 0 unless this process fell behind by more than a writer's history (one
        second of a 1 kHz stream) or a node could not flush its last messages at shutdown."""
        return {topic: published.get(topic, 0) - self.counts[topic] for topic in CONTRACT_TOPICS}

    def close(self) -> None:
        """Finish the bag (writes the MCAP summary and metadata.yaml)."""
        self._writer.close()
