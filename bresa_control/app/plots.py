"""One picture of a run: wrist force against F_max, risk against eps_safe, commanded stiffness, and
when the reflex held, over time.

A run comes from a ROS 2 bag (:func:`series_from_bag`, what ``bresa demo`` records) or from the
gymnasium environment (:class:`TickTrace`, what ``bresa evaluate --plot`` records for one
episode); both become a :class:`RunSeries` and :func:`plot_run` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bresa_control.contract import COMMAND_SIZE, REFLEX_LABELS, STIFFNESS_XYZ

SPAN_ALPHA = 0.15
MAX_GAP_S = 0.5  # no message for longer than this (recorder stalls stay under ~0.1 s): the line breaks


@dataclass
class RunSeries:
    """Time series of one run; each is (time s, values), times from the run's start."""

    force_n: tuple[np.ndarray, np.ndarray]
    risk: tuple[np.ndarray, np.ndarray]
    stiffness_n_per_m: tuple[np.ndarray, np.ndarray]  # values (n, 3): Kx Ky Kz
    reflex_active: tuple[np.ndarray, np.ndarray]  # values 0/1
    fired_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    holding: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  # values 0/1: stale input


class TickTrace:
    """Collects a :class:`RunSeries` from the environment, one call per control tick."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, float, float, bool, bool]] = []

    def __call__(self, time_s: float, force_n: float, risk: float, stiffness: np.ndarray, active: bool,
                 fired: bool) -> None:
        self.rows.append((time_s, force_n, risk, *stiffness[:3], active, fired))

    def series(self) -> RunSeries:
        """The collected ticks as series."""
        a = np.array(self.rows, dtype=float).reshape(-1, 8)
        t = a[:, 0]
        return RunSeries((t, a[:, 1]), (t, a[:, 2]), (t, a[:, 3:6]), (t, a[:, 6]), t[a[:, 7] > 0])


def series_from_bag(bag: str | Path) -> RunSeries:
    """Read force, risk, stiffness and reflex state from a bag of the topic contract."""
    from rosbags.highlevel import AnyReader

    rows: dict[str, list[tuple[float, np.ndarray]]] = {"wrench": [], "reflex": [], "command": []}
    topics = {"/ft_sensor/wrench": "wrench", "/bresa/reflex": "reflex", "/bresa/impedance_command": "command"}
    with AnyReader([Path(bag)]) as reader:
        connections = [c for c in reader.connections if c.topic in topics]
        for connection, stamp_ns, raw in reader.messages(connections=connections):
            msg: Any = reader.deserialize(raw, connection.msgtype)  # a message of the contract: typed at run time
            kind = topics[connection.topic]
            if kind == "wrench":
                f = msg.wrench.force
                value = np.array([np.sqrt(f.x**2 + f.y**2 + f.z**2)])
            else:
                value = np.asarray(msg.data, dtype=float)
            rows[kind].append((stamp_ns * 1e-9, value))
    if not rows["wrench"]:
        raise ValueError(f"bag {bag} has no /ft_sensor/wrench messages: is it a bresa demo bag?")
    t0 = min(r[0][0] for r in rows.values() if r)

    def split(kind: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        if not rows[kind]:
            return np.zeros(0), np.zeros((0, width))
        t = np.array([r[0] for r in rows[kind]]) - t0
        return t, np.array([r[1] for r in rows[kind]])

    t_f, force = split("wrench", 1)
    t_r, reflex = split("reflex", len(REFLEX_LABELS))
    t_c, command = split("command", COMMAND_SIZE)
    reflex = reflex.reshape(-1, len(REFLEX_LABELS))
    fired = t_r[reflex[:, REFLEX_LABELS.index("fired")] > 0]
    stiffness = command.reshape(-1, COMMAND_SIZE)[:, STIFFNESS_XYZ]
    return RunSeries((t_f, force[:, 0]), (t_r, reflex[:, 0]), (t_c, stiffness),
                     (t_r, reflex[:, REFLEX_LABELS.index("active")]), fired,
                     (t_r, reflex[:, REFLEX_LABELS.index("holding")]))


def plot_run(series: RunSeries, out: str | Path, max_force_n: float, eps_safe: float, title: str) -> Path:
    """Write the three-panel PNG; orange spans: the reflex held; grey: the critic held the arm
    because its input was stale or missing (risk not scored there)."""
    fig = Figure(figsize=(10, 7.5), constrained_layout=True)  # no pyplot: no display, no global state
    ax_f, ax_r, ax_k = fig.subplots(3, 1, sharex=True)
    t, force = with_gaps(*series.force_n)
    ax_f.plot(t, force, color="tab:blue", lw=0.8, label="|F| wrist")
    ax_f.axhline(max_force_n, color="tab:red", ls="--", lw=1.2, label=f"F_max = {max_force_n:g} N")
    ax_f.set_ylabel("wrist force (N)")
    t, risk = with_gaps(*series.risk)
    ax_r.plot(t, risk, color="tab:purple", lw=0.8, label="risk Q_risk")
    ax_r.axhline(eps_safe, color="tab:red", ls="--", lw=1.2, label=f"eps_safe = {eps_safe:g}")
    if len(series.fired_s):
        ax_r.plot(series.fired_s, np.full(len(series.fired_s), 1.02), "v", color="tab:orange", ms=7,
                  label="reflex fired", clip_on=False)
    ax_r.set_ylim(0.0, 1.05)
    ax_r.set_ylabel("risk (probability)")
    t, stiffness = with_gaps(*series.stiffness_n_per_m)
    for i, axis in enumerate("xyz"):
        if len(t):
            ax_k.plot(t, stiffness[:, i], lw=0.9, label=f"K{axis}")
    ax_k.set_ylabel("commanded stiffness (N/m)")
    ax_k.set_xlabel("time (s)")
    t_a, active = series.reflex_active
    t_h, holding = series.holding
    for ax in (ax_f, ax_r, ax_k):
        _shade(ax, t_a, active, "tab:orange")
        _shade(ax, t_h, holding, "0.5")
        ax.grid(alpha=0.3)
    spans = [Patch(color=color, alpha=SPAN_ALPHA, label=label) for values, color, label in (
        (active, "tab:orange", "reflex active"), (holding, "0.5", "held: stale input")) if np.any(values > 0.5)]
    ax_f.legend(handles=ax_f.get_legend_handles_labels()[0] + spans, loc="upper right", fontsize=8)
    for ax in (ax_r, ax_k):
        ax.legend(loc="upper right", fontsize=8)
    ax_f.set_title(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def with_gaps(t: np.ndarray, values: np.ndarray, max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """The series with a NaN row inserted in every gap longer than ``max_gap_s`` (s), so that a
    plotted line breaks where no messages came (a node stopped, a late resend at shutdown) instead
    of drawing a value that was never sent."""
    t = np.asarray(t, dtype=float)
    values = np.asarray(values, dtype=float)
    gaps = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    if len(gaps) == 0:
        return t, values
    filler = np.full((len(gaps), *values.shape[1:]), np.nan)
    return np.insert(t, gaps, t[gaps - 1]), np.insert(values, gaps, filler, axis=0)


def _shade(ax: Axes, t: np.ndarray, active: np.ndarray, color: str) -> None:
    """Shade the spans where ``active`` is 1."""
    if len(t) == 0:
        return
    on = np.asarray(active) > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate([[False], on, [False]]).astype(int)))
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(t[start], t[min(stop, len(t) - 1)], color=color, alpha=SPAN_ALPHA, lw=0)
