"""``franky_sim``: the robot for ``franka_arm`` on a machine without one.

Serves franky-sim's FR3 with the peg-insertion fixture on 127.0.0.1 over libfranka's protocol
(:class:`~bresa_control.simulation.franka_fixture.FrankaFixture`), paced at 1 kHz of wall clock.
It publishes nothing on the contract's topics (the arm's state reaches the stack only through
``franka_arm``, as a real arm's would) but its simulated time on ``/clock`` (the task policy
decides by it: ``node_base.SimClock``); its ``diagnostics`` say what only a simulator knows (the
true contact force, whether the peg is in, the torque-limit audit), and its summary JSON holds
the same at shutdown. ``bresa demo --arm franky-sim`` starts it before ``franka_arm``.
"""

from __future__ import annotations

import threading
from typing import Any

from bresa_control.ros.node_base import TASK_PARAMETER, BresaNode, SimClock, StartupError, run
from bresa_control.simulation.franka_fixture import ADDRESS, FrankaFixture


class FrankySimNode(BresaNode):
    """Thin adapter: :class:`FrankaFixture` <-> diagnostics and summary."""

    def __init__(self) -> None:
        super().__init__("franky_sim", {
            **TASK_PARAMETER,
            "seed": (0, "episode seed: the task's fixture pose and variant, the robot's estimate, the start pose"),
            "summary_path": ("", "write a JSON summary here at shutdown (empty: none)"),
            "library_version": (0, "tests only: the protocol version to claim (0: franky-sim's own, 10)"),
        })
        version = int(self.param("library_version")) or None
        try:
            self.fixture = FrankaFixture(self.config, int(self.param("seed")), version, task=self.task())
        except OSError as exc:
            raise StartupError(f"cannot serve the robot on {ADDRESS}:1337: {exc}") from None
        self.clock = SimClock(self)
        self.get_logger().info(f"serving an FR3 on {ADDRESS}; {self.fixture.task.name} fixture at "
                               f"{[round(v, 4) for v in self.fixture.fixture_m.tolist()]} m")

    def spin(self, executor: Any, stop: threading.Event) -> None:
        """Serve the robot at 1 kHz until ``stop``; diagnostics once a simulated second."""
        try:
            self.fixture.run(stop.is_set, self._publish_diagnostics, self.clock.tick)
        finally:
            self.fixture.close()

    def status(self) -> tuple[str, str, dict[str, Any]]:
        summary = self.fixture.summary()
        fields = {k: summary[k] for k in ("sim_time_s", "inserted", "insertion_time_s", "peak_force_n",
                                          "torque_commands", "late_torque_commands", "torque_rate_violations",
                                          "torque_limit_violations")}
        if self.fixture.faults:
            return "ERROR", f"the arm stopped: {self.fixture.faults[-1]}", fields
        return "OK", "serving the FR3", fields

    def summary(self) -> dict[str, Any]:
        return self.fixture.summary()


def main(args: list[str] | None = None) -> None:
    """Console script ``franky_sim``."""
    run(FrankySimNode, "franky_sim", args)


if __name__ == "__main__":
    main()
