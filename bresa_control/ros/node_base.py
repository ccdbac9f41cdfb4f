"""What every bresa node shares: parameters declared from the config schema, diagnostics, a
summary file at shutdown, and a ``main`` that turns startup errors into one clear line.

Parameters: every key of ``config/peg_insertion.yaml`` is a read-only ROS parameter named by its
dotted path (``safety.max_force_n``), declared with a descriptor that gives its meaning, unit and
allowed range; the defaults are the shipped file's. The whole set is validated by the same schema
as the gymnasium environment's (:mod:`bresa_control.common.config`), so an invalid value (or an unknown
key, a likely typo) stops the node at startup with the key and the reason.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import sys
import threading
import time
import typing
from collections import Counter
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.executors
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from bresa_control import contract
from bresa_control.common.cards import ModelError
from bresa_control.common.config import BresaConfig, ConfigError, config_to_dict, load_config
from bresa_control.common.files import write_json_atomic
from bresa_control.ros import messages
from bresa_control.tasks import DEFAULT_TASK, TASKS, make_task
from bresa_control.tasks.base import Task

SHUTDOWN_LINGER_S = 0.2
# At shutdown, how long a node waits for reliable readers (a bag recorder) to acknowledge what it
# published before it leaves the graph.
SHUTDOWN_FLUSH_TIMEOUT_S = 5.0


# The task the node serves (every node of a stack gets the same one from the bringup).
TASK_PARAMETER: dict[str, tuple[Any, str]] = {
    "task": (DEFAULT_TASK, f"the task: {', '.join(TASKS)} (docs/adding-a-task.md)"),
}


class StartupError(RuntimeError):
    """A node cannot start; the message says why."""


def _schema_leaves(cls: type, prefix: str = "") -> list[tuple[str, Any, dict[str, Any]]]:
    """(dotted name, type, metadata) of every leaf key of the config schema."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            out += _schema_leaves(kind, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", kind, dict(f.metadata)))
    return out


def _descriptor(kind: Any, meta: dict[str, Any]) -> ParameterDescriptor:
    unit = f" [{meta['unit']}]" if meta.get("unit") else ""
    lo, hi = meta.get("lo"), meta.get("hi")
    bounds = f"; allowed {lo} .. {hi}" if lo is not None else ""
    choices = f"; one of {', '.join(meta['choices'])}" if meta.get("choices") else ""
    descriptor = ParameterDescriptor(
        description=f"{meta.get('doc', '')}{unit}{bounds}{choices}".strip("; "),
        read_only=True,  # the stack is configured at startup; a change at runtime is refused
        dynamic_typing=True,  # 30 for 30.0 is fine: the schema checks types and ranges itself
    )
    if kind is float and lo is not None and hi is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
    if kind is int and lo is not None and hi is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return descriptor


class SimClock:
    """A simulator's time on ``/clock``, every :data:`~bresa_control.ros.messages.CLOCK_EVERY_TICKS`
    ticks. The task policy, started with ``sim_clock`` beside a simulator (``ros.bringup``),
    times its decisions by it: a simulator that falls behind the wall clock on a loaded machine
    slows the decisions with it, instead of meeting a policy up to twice as fast in its own time
    (whose targets then run ahead of the tip). A real arm never falls behind; there is no /clock."""

    def __init__(self, node: Node) -> None:
        self._pub = node.create_publisher(messages.Clock, messages.CLOCK_TOPIC, messages.CLOCK_QOS)
        self._msg = messages.Clock()

    def tick(self, ticks: int, time_s: float) -> None:
        """The simulator ran ``ticks`` ticks, to ``time_s`` (s of simulated time)."""
        if ticks % messages.CLOCK_EVERY_TICKS == 0:
            self._pub.publish(messages.clock(time_s, self._msg))


class BresaNode(Node):
    """A node with the stack's config as parameters and a periodic diagnostics publisher."""

    def __init__(self, name: str, extra: dict[str, tuple[Any, str]]) -> None:
        """``extra``: node-specific parameters, name -> (default, description)."""
        super().__init__(name)
        self.config = self._declare_config()
        extra = {"niceness": (0, "process priority to ask for (Unix nice; negative needs root or "
                              "CAP_SYS_NICE; refused: a warning, and the node runs at its current one)"),
                 **extra}
        for key, (default, description) in extra.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=description, read_only=True))
        self._check_unknown_overrides(set(extra))
        self._set_niceness(int(self.param("niceness")))
        self.published: Counter[str] = Counter()  # messages sent per topic (in the summary)
        self._diagnostics = self.create_publisher(messages.DiagnosticArray, contract.DIAGNOSTICS,
                                                  messages.DIAGNOSTICS_QOS)
        self.create_timer(1.0, self._publish_diagnostics)

    def send(self, publisher: Any, msg: Any) -> None:
        """Publish and count (the counts let a recording be checked against what was sent)."""
        publisher.publish(msg)
        self.published[publisher.topic_name.lstrip("/")] += 1

    def flush_publishers(self, timeout_s: float) -> None:
        """Wait until every reliable reader has acknowledged everything this node published
        (at most ``timeout_s`` in all); a warning names the topics that were not."""
        deadline = time.monotonic() + timeout_s
        unflushed = [
            publisher.topic_name for publisher in self.publishers
            if not publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.0)))
        ]
        if unflushed:
            self.get_logger().warning(f"not every reader acknowledged the last messages on {', '.join(unflushed)} "
                                   f"within {timeout_s} s; a recording may miss them")

    def spin(self, executor: Any, stop: threading.Event) -> None:
        """Serve callbacks until ``stop`` is set or rclpy shuts down (the ``franka_arm`` node runs
        its 1 kHz loop here first)."""
        executor.add_node(self)
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)

    def param(self, name: str) -> Any:
        """A node-specific parameter's value."""
        return self.get_parameter(name).value

    def task(self) -> Task:
        """The task of the ``task`` parameter (:data:`TASK_PARAMETER`); ``StartupError`` naming the
        tasks there are otherwise."""
        name = self.param("task")
        if name not in TASKS:
            raise StartupError(f"parameter task = {name!r} must be one of: {', '.join(TASKS)}")
        return make_task(name, self.config)

    # ---- config as parameters ------------------------------------------------------------

    def _declare_config(self) -> BresaConfig:
        defaults = _flatten(config_to_dict(load_config()))
        nested: dict[str, Any] = {}
        for dotted, kind, meta in _schema_leaves(BresaConfig):
            try:
                value = self.declare_parameter(dotted, defaults[dotted], _descriptor(kind, meta)).value
            except (InvalidParameterValueException, InvalidParameterTypeException) as exc:  # rclpy's range check
                raise StartupError(f"invalid parameter {dotted}: {exc}") from None
            _set_nested(nested, dotted, list(value) if isinstance(value, (list, tuple)) else value)
        try:
            return load_config(overrides=nested)
        except ConfigError as exc:
            raise StartupError(f"invalid parameter: {exc}") from None

    def _check_unknown_overrides(self, extra: set[str]) -> None:
        declared = {name for name, _, _ in _schema_leaves(BresaConfig)} | extra | {"use_sim_time"}
        sections = {name.split(".")[0] for name in declared}
        unknown = sorted(
            name for name in getattr(self, "_parameter_overrides", {})
            if name not in declared and (name.split(".")[0] in sections or "." not in name)
        )
        if unknown:
            raise StartupError(
                f"unknown parameter '{unknown[0]}' (a typo?); this node takes the keys of "
                "config/peg_insertion.yaml and: " + ", ".join(sorted(extra))
            )

    def _set_niceness(self, niceness: int) -> None:
        if niceness == 0:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        except OSError as exc:
            self.get_logger().warning(f"could not set niceness {niceness}: {exc}; running at normal priority")

    # ---- diagnostics and summary ---------------------------------------------------------

    def status(self) -> tuple[str, str, dict[str, Any]]:
        """(level OK/WARN/ERROR, message, key values) for ``diagnostics``; nodes override it."""
        return "OK", "running", {}

    def statuses(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """Every (name, level, message, fields) this node reports: its own :meth:`status` under its
        name; an arm with the critic in its loop adds the critic's."""
        return [(self.get_name(), *self.status())]

    def _publish_diagnostics(self) -> None:
        self.send(self._diagnostics, messages.diagnostic_array(self.statuses(), time.time()))

    def summary(self) -> dict[str, Any]:
        """What the node writes to ``summary_path`` at shutdown; nodes override it."""
        return {}

    def write_summary(self) -> None:
        """Write :meth:`summary` atomically to the ``summary_path`` parameter, if set."""
        path = self.param("summary_path") if self.has_parameter("summary_path") else ""
        if path:
            write_json_atomic(path, {"node": self.get_name(), **self.summary(), "published": dict(self.published)})


def run(factory: Callable[[], BresaNode], name: str, args: list[str] | None = None) -> None:
    """Init rclpy, build the node, spin until Ctrl-C / SIGTERM / shutdown, write the summary.

    A node that cannot start (bad parameter, missing or mismatched model) prints one line naming
    the problem and exits with status 2.
    """
    stop = threading.Event()
    # Our own handlers: a signal only sets a flag, so it never lands as an exception inside a
    # 1 kHz callback; the loop below finishes the current callback and shuts down cleanly.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        node = factory()
    except (StartupError, ConfigError, ModelError, ValueError) as exc:
        print(f"[{name}] refusing to start: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        sys.exit(2)
    # Everything built so far (torch, pinocchio, rclpy, the models) lives as long as the node: take
    # it out of the garbage collector's view. A full collection over the critic's ~190k objects
    # took ~85 ms in an ad-hoc measurement: long enough to trip every staleness check.
    gc.collect()
    gc.freeze()
    executor = make_executor()
    try:
        node.spin(executor, stop)
    except ExternalShutdownException:
        pass
    finally:
        node.write_summary()
        # Hand the last messages over before leaving: a reliable reader (a bag recorder) that has
        # not acknowledged them, or not yet taken them, loses them once their writer leaves.
        node.flush_publishers(SHUTDOWN_FLUSH_TIMEOUT_S)
        time.sleep(SHUTDOWN_LINGER_S)
        node.destroy_node()
        rclpy.try_shutdown()


def make_executor() -> Any:
    """rclpy's EventsExecutor where this rclpy has it (far less overhead per callback, which
    matters at 1 kHz with three nodes on two cores), else the SingleThreadedExecutor."""
    try:
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    except ImportError:
        return rclpy.executors.SingleThreadedExecutor()


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _set_nested(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value
