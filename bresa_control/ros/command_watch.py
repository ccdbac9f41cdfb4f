"""Who else publishes the arm's command topic (``bresa/impedance_command``).

Anyone on the ROS domain can publish that topic, and a message on it would reach the motors
without passing the critic. The arm node checks the ROS graph once a second
(:meth:`CommandWatch.check`):

* **composed** (the critic in the arm's loop): the arm takes commands only from its own critic and
  publishes the topic for the bag and for anyone listening. Any other publisher is foreign: it is
  named in a warning (log and ``diagnostics``), and while one is there the arm subscribes to the
  topic only to count what it sends (messages whose publisher GID is not the arm's own); none of
  it is ever applied. Without a foreign publisher the arm does not subscribe at all (its own 1 kHz
  messages would otherwise come back to it). The counting subscription belongs to a helper node
  that no executor serves (``<arm>_command_watch``): the arm takes its messages with their
  publisher's GID between ticks (:meth:`CommandWatch.drain`; rclpy's EventsExecutor cannot hand a
  callback the message info).
* **separate** (the critic its own process): the arm follows the topic; a second publisher beside
  the critic is named in a warning. The arm cannot tell which one is the critic: keep the topic
  private (README: ``ROS_AUTOMATIC_DISCOVERY_RANGE``, the domain id, SROS2 permissions).
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from bresa_control import contract
from bresa_control.ros import messages
from bresa_control.ros.node_base import BresaNode


class CommandWatch:
    """The publishers of ``bresa/impedance_command`` other than those this arm expects."""

    def __init__(self, node: BresaNode, composed: bool) -> None:
        """``composed``: the arm publishes the topic itself and expects no one else; else it
        expects one publisher (the critic)."""
        self._node = node
        self._composed = composed
        self.foreign: list[str] = []  # the other publishers' nodes (composed), or all of them when > 1
        self.foreign_messages = 0  # messages from foreign publishers, counted while one was there
        self._own_gids: set[bytes] = set()
        self._counter: Any = None  # subscription that counts foreign messages (composed, while any)
        self._counter_node: Node | None = None  # its node, which no executor serves

    def check(self) -> None:
        """Look at the graph; log a warning when the set of foreign publishers changes."""
        node = self._node
        infos = node.get_publishers_info_by_topic(contract.IMPEDANCE_COMMAND)
        if self._composed:
            own = [i for i in infos if i.node_name == node.get_name() and i.node_namespace == node.get_namespace()]
            self._own_gids = {bytes(i.endpoint_gid) for i in own}
            others = [i for i in infos if bytes(i.endpoint_gid) not in self._own_gids]
            if len(own) > 1:  # another node with this arm's name: cannot be told apart, so foreign too
                others = infos
        else:
            others = infos if len(infos) > 1 else []
        foreign = sorted(_name(i.node_namespace, i.node_name) for i in others)
        if foreign != self.foreign:
            self.foreign = foreign
            if foreign:
                node.get_logger().warning(self.warning)
            else:
                node.get_logger().info(f"{contract.IMPEDANCE_COMMAND}: no foreign publisher any more")
        if self._composed:
            self._count_while_foreign()

    def _count_while_foreign(self) -> None:
        if self.foreign and self._counter is None:
            node = self._node
            self._counter_node = Node(f"{node.get_name()}_command_watch", namespace=node.get_namespace(),
                                      context=node.context)
            self._counter = self._counter_node.create_subscription(
                Float64MultiArray, contract.IMPEDANCE_COMMAND, lambda _msg: None, messages.COUNT_QOS)
        elif not self.foreign and self._counter is not None:
            self.drain()
            assert self._counter_node is not None
            self._counter_node.destroy_node()
            self._counter = self._counter_node = None

    def drain(self) -> None:
        """Count the messages waiting in the counting subscription; none are applied."""
        if self._counter is None:
            return
        while (taken := messages.take_with_info(self._counter)) is not None:
            gid = messages.publisher_gid(taken[1])
            if gid is not None and gid not in self._own_gids:
                self.foreign_messages += 1

    def close(self) -> None:
        """Destroy the helper node, if any (at shutdown)."""
        if self._counter_node is not None:
            self._counter_node.destroy_node()
            self._counter = self._counter_node = None

    @property
    def active(self) -> bool:
        """Whether foreign messages are being counted (the arm then calls :meth:`drain` per tick)."""
        return self._counter is not None

    @property
    def warning(self) -> str:
        """One line for the log and ``diagnostics``; empty when there is nothing to warn about."""
        if not self.foreign:
            return ""
        names = ", ".join(self.foreign)
        if self._composed:
            return (f"ignoring {len(self.foreign)} foreign publisher(s) of {contract.IMPEDANCE_COMMAND} ({names}; "
                    f"{self.foreign_messages} messages counted): this arm takes commands only from the critic in its "
                    "loop")
        return (f"{contract.IMPEDANCE_COMMAND} has {len(self.foreign)} publishers ({names}): only the safety critic "
                "may command the arm, and this arm follows whichever message is newest; keep the topic private "
                "(README)")

    def fields(self) -> dict[str, Any]:
        """What ``diagnostics`` and the summary report."""
        return {"foreign_command_publishers": ", ".join(self.foreign),
                "foreign_command_messages": self.foreign_messages}


def _name(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('/')}/{name}"
