"""The task policy's action: 7 numbers in [-1, 1] mapped to a full impedance command.

=====  ==========================================================================================
index  meaning
=====  ==========================================================================================
0-2    target displacement x y z of the tip from where it is now, times ``env.max_step_m`` (m)
3-5    stiffness Kx Ky Kz, log-scaled over ``env.action_stiffness_range_n_per_m`` (N/m)
6      damping ratio zeta (all translational axes), linear over ``env.action_damping_ratio_range``
=====  ==========================================================================================

Orientation target and rotational gains are fixed by the config (peg down). Damping in N s/m is
``2 zeta sqrt(K Lambda)`` with the arm's operational-space inertia Lambda at decision time, clipped
into the controller's accepted damping range (a heavy arm pose with high stiffness and zeta could
otherwise ask for more than the controller takes).
"""

from __future__ import annotations

import numpy as np

from bresa_control.common.config import BresaConfig
from bresa_control.contract import POLICY_ACTION_SIZE
from bresa_control.control.impedance import ImpedanceCommand, damping_from_ratio

ACTION_SIZE = POLICY_ACTION_SIZE


class ActionMap:
    """Converts between normalised actions and physical impedance targets (both directions)."""

    def __init__(self, bresa_config: BresaConfig) -> None:
        config = bresa_config.env
        self.config = config
        limits = bresa_config.controller
        self._damping_lo = np.array([limits.damping_range_ns_per_m[0]] * 3
                                    + [limits.rotational_damping_range_nms_per_rad[0]] * 3)
        self._damping_hi = np.array([limits.damping_range_ns_per_m[1]] * 3
                                    + [limits.rotational_damping_range_nms_per_rad[1]] * 3)
        k_lo, k_hi = config.action_stiffness_range_n_per_m
        self._log_k = (np.log(k_lo), np.log(k_hi))
        self._zeta = config.action_damping_ratio_range
        self._orientation = np.asarray(config.target_orientation_xyzw, dtype=float)
        self._rot_stiffness = np.full(3, config.rotational_stiffness_nm_per_rad)

    def to_command(
        self, action: np.ndarray, tip_position_m: np.ndarray, cartesian_inertia: np.ndarray
    ) -> ImpedanceCommand:
        """Impedance command for ``action`` taken with the tip at ``tip_position_m``."""
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        return self.command(
            tip_position_m + a[0:3] * self.config.max_step_m,
            np.exp(_lerp(self._log_k[0], self._log_k[1], a[3:6])),
            float(_lerp(self._zeta[0], self._zeta[1], a[6])),
            cartesian_inertia,
        )

    def command(
        self, target_m: np.ndarray, stiffness_n_per_m: np.ndarray | float, damping_ratio: float,
        cartesian_inertia: np.ndarray,
    ) -> ImpedanceCommand:
        """The full command for a target (m) and translational stiffness (N/m) and damping ratio:
        orientation and rotational gains from the config, damping from the ratio and the arm's
        operational-space inertia, clipped into the controller's range. A hold is
        ``command(tip, soft stiffness, ratio, inertia)``."""
        stiffness = np.concatenate([np.broadcast_to(np.asarray(stiffness_n_per_m, float), 3), self._rot_stiffness])
        ratios = np.array([damping_ratio] * 3 + [self.config.rotational_damping_ratio] * 3)
        damping = np.clip(damping_from_ratio(stiffness, ratios, cartesian_inertia), self._damping_lo,
                          self._damping_hi)
        return ImpedanceCommand(np.array(target_m, dtype=float), self._orientation.copy(), stiffness, damping)

    def to_action(
        self, displacement_m: np.ndarray, stiffness_n_per_m: np.ndarray, damping_ratio: float
    ) -> np.ndarray:
        """The normalised action that asks for these targets (clipped into [-1, 1]), float32."""
        a = np.concatenate(
            [
                np.asarray(displacement_m, dtype=float) / self.config.max_step_m,
                _unlerp(self._log_k[0], self._log_k[1], np.log(np.asarray(stiffness_n_per_m, dtype=float))),
                [_unlerp(self._zeta[0], self._zeta[1], damping_ratio)],
            ]
        )
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def _lerp(lo: float, hi: float, a: np.ndarray | float) -> np.ndarray:
    """[-1, 1] -> [lo, hi]."""
    return lo + (np.asarray(a) + 1.0) * 0.5 * (hi - lo)


def _unlerp(lo: float, hi: float, value: np.ndarray | float) -> np.ndarray:
    """[lo, hi] -> [-1, 1] (0 when the range is a single value)."""
    if hi == lo:
        return np.zeros_like(np.asarray(value, dtype=float))
    return 2.0 * (np.asarray(value) - lo) / (hi - lo) - 1.0
