"""What the risk critic sees: a fixed, normalised layout of state and intermediate action.

The inputs avoid absolute positions so the critic transfers when the hole moves: wrist wrench,
tip velocity, tip height above the *estimated* top face, distance to the workspace box, and the
action relative to the current tip (setpoint offset, stiffness, damping). The same function builds
the features in the gymnasium environment, in data collection and in the ROS node, and the model
card stores :func:`layout` so a model trained on another layout is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.control.impedance import ImpedanceCommand

STATE_LABELS = (
    "force_x", "force_y", "force_z", "torque_x", "torque_y", "torque_z",
    "tip_vx", "tip_vy", "tip_vz", "height_above_face", "workspace_margin",
)  # fmt: skip
ACTION_LABELS = (
    "setpoint_dx", "setpoint_dy", "setpoint_dz", "log_kx", "log_ky", "log_kz", "dx", "dy", "dz",
)  # fmt: skip
STATE_SIZE = len(STATE_LABELS)
ACTION_SIZE = len(ACTION_LABELS)
FEATURE_SIZE = STATE_SIZE + ACTION_SIZE

# Recovery actions live in a safe corner of the action space (design brief: a backed-off setpoint,
# more damping): setpoint within +-2 mm sideways and 0-5 mm up from the tip, stiffness 10-170 N/m
# sideways and 10-960 N/m along z (log scale), damping 60-300 N s/m sideways and 60-600 N s/m
# along z. Feature units, per ACTION_LABELS. Along z the box reaches the controller's damping
# limit and a stiff spring upward: with the setpoint above the tip, a stiffer z spring only pulls
# the peg away harder, and a soft one (at most 170 N/m before) pulled with under 1 N and could not
# stop a tip coming down at 30 mm/s (README; the reflex's brake, reflex.brake_*, covers the first
# ticks after firing).
RECOVERY_LOW = (-0.2, -0.2, 0.0, -1.0, -1.0, -1.0, -0.8, -0.8, -0.8)
RECOVERY_HIGH = (0.2, 0.2, 0.5, 0.0, 0.0, 0.6, 0.0, 0.0, 1.0)
# ... except the lateral (x, y) stiffness and damping: a learned recovery keeps those of the action
# it replaces. The reflex relieves force along the insertion axis (z softened, setpoint backed off);
# softening x and y too left the arm free to be moved by any external force (in push-scenario
# traces at commit ee7bedd the push moved the limp arm sideways and dragged the peg onto the rim;
# README, "The recovery keeps the lateral gains").
# The recovery's outputs for these features are replaced, in training and at run time.
RECOVERY_KEEPS = ("log_kx", "log_ky", "dx", "dy")

RECOVERY_KEPT_MASK = np.array([label in RECOVERY_KEEPS for label in ACTION_LABELS])


def keep_from_replaced(recovery_features: np.ndarray, replaced_features: np.ndarray) -> np.ndarray:
    """Recovery action features with the :data:`RECOVERY_KEEPS` features taken from the action
    the recovery replaces (both in :data:`ACTION_LABELS` order)."""
    return np.where(RECOVERY_KEPT_MASK, replaced_features, recovery_features)


VELOCITY_SCALE_M_PER_S = 0.1
DISTANCE_SCALE_M = 0.01
DISTANCE_CLIP = 5.0  # distances beyond 5 cm carry no extra risk information


@dataclass(frozen=True)
class TickState:
    """What the arm reports at one control tick (SI units, base frame)."""

    force_n: np.ndarray
    torque_nm: np.ndarray
    tip_position_m: np.ndarray
    tip_velocity_m_per_s: np.ndarray


class FeatureMap:
    """Builds normalised critic inputs and turns recovery outputs back into commands."""

    def __init__(self, config: BresaConfig) -> None:
        safety = config.safety
        self._force_scale = safety.max_force_n
        self._torque_scale = safety.max_torque_nm
        self._box_lo = np.array(safety.workspace_min_m)
        self._box_hi = np.array(safety.workspace_max_m)
        k_lo, k_hi = config.controller.stiffness_range_n_per_m
        self._log_k = (np.log(k_lo), np.log(k_hi))
        self._d_max = config.controller.damping_range_ns_per_m[1]
        self._d_min = config.controller.damping_range_ns_per_m[0]
        self._k_range = (k_lo, k_hi)
        self._margins = np.empty(6)  # scratch of state_into

    def state(self, tick: TickState, face_height_m: float) -> np.ndarray:
        """State features (float32); ``face_height_m`` is the estimated top face's z (m)."""
        out = np.empty(STATE_SIZE, np.float32)
        self.state_into(tick, face_height_m, out)
        return out

    def state_into(self, tick: TickState, face_height_m: float, out: np.ndarray) -> None:
        """:meth:`state` written into ``out`` (float32, :data:`STATE_SIZE`): no allocation at 1 kHz.
        Each value is computed in float64 and rounded once, as :meth:`state` always was."""
        tip = tick.tip_position_m
        out[0:3] = tick.force_n / self._force_scale
        out[3:6] = tick.torque_nm / self._torque_scale
        out[6:9] = tick.tip_velocity_m_per_s / VELOCITY_SCALE_M_PER_S
        height = (tip[2] - face_height_m) / DISTANCE_SCALE_M
        margins = self._margins  # distance to each face of the box, 6 values
        np.subtract(tip, self._box_lo, out=margins[0:3])
        np.subtract(self._box_hi, tip, out=margins[3:6])
        margin = margins.min()  # NaN stays NaN
        out[9] = _clip(height, DISTANCE_CLIP)
        out[10] = _clip(margin / DISTANCE_SCALE_M, DISTANCE_CLIP)

    def action(self, command: ImpedanceCommand, tip_position_m: np.ndarray) -> np.ndarray:
        """Action features (float32) of an impedance command relative to the current tip."""
        out = np.empty(ACTION_SIZE, np.float32)
        self.action_into(command, tip_position_m, out)
        return out

    def action_into(self, command: ImpedanceCommand, tip_position_m: np.ndarray, out: np.ndarray) -> None:
        """:meth:`action` written into ``out`` (float32, :data:`ACTION_SIZE`)."""
        values = command.values
        offset = (values[0:3] - tip_position_m) / DISTANCE_SCALE_M
        out[0:3] = np.minimum(np.maximum(offset, -DISTANCE_CLIP), DISTANCE_CLIP)
        out[3:6] = 2.0 * (np.log(values[7:10]) - self._log_k[0]) / (self._log_k[1] - self._log_k[0]) - 1.0
        out[6:9] = 2.0 * values[13:16] / self._d_max - 1.0

    def command(
        self, action_features: np.ndarray, tip_position_m: np.ndarray, template: ImpedanceCommand
    ) -> ImpedanceCommand:
        """Inverse of :meth:`action` (recovery output -> command); orientation and rotational
        gains come from ``template``. Values are clipped into the controller's ranges."""
        a = np.minimum(np.maximum(np.asarray(action_features, dtype=float), -1.0), 1.0)
        values = template.values.copy()
        values[0:3] = tip_position_m + a[0:3] * DISTANCE_SCALE_M
        stiffness = np.exp(self._log_k[0] + (a[3:6] + 1.0) * 0.5 * (self._log_k[1] - self._log_k[0]))
        values[7:10] = np.minimum(np.maximum(stiffness, self._k_range[0]), self._k_range[1])
        values[13:16] = np.minimum(np.maximum((a[6:9] + 1.0) * 0.5 * self._d_max, self._d_min), self._d_max)
        return ImpedanceCommand.wrap(values)

    def layout(self) -> dict[str, Any]:
        """Input layout and normalisation, as stored in model cards."""
        return {
            "state_labels": list(STATE_LABELS),
            "action_labels": list(ACTION_LABELS),
            "force_scale_n": self._force_scale,
            "torque_scale_nm": self._torque_scale,
            "velocity_scale_m_per_s": VELOCITY_SCALE_M_PER_S,
            "distance_scale_m": DISTANCE_SCALE_M,
            "distance_clip": DISTANCE_CLIP,
            "log_stiffness_range": [float(v) for v in self._log_k],
            "damping_max_ns_per_m": self._d_max,
            "workspace_min_m": self._box_lo.tolist(),
            "workspace_max_m": self._box_hi.tolist(),
        }


def _clip(value: float, bound: float) -> float:
    """``value`` within [-bound, bound]; NaN stays NaN (np.clip's behaviour, without its overhead)."""
    return min(max(value, -bound), bound)
