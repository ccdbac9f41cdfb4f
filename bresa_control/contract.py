"""The topic contract: everything that crosses a process boundary, in one place.

The nodes, the gymnasium environment, the plots and the tests import these names from here, so
a label, a layout or a topic name cannot drift between the sender and the receiver. It imports
numpy and pinocchio only: the robot PC's nodes load it without any simulator or training code.

=============================  ====================================  ===========================
topic                          type                                  values
=============================  ====================================  ===========================
``joint_states``               sensor_msgs/JointState                :data:`ARM_JOINTS`: rad,
                                                                     rad/s, Nm
``ft_sensor/wrench``           geometry_msgs/WrenchStamped           environment on the peg, at
                                                                     the flange, frame
                                                                     :data:`BASE_FRAME`; N, Nm
``bresa/task_action``          std_msgs/Float64MultiArray            :data:`COMMAND_LABELS`
``bresa/impedance_command``    std_msgs/Float64MultiArray            :data:`COMMAND_LABELS`
``bresa/reflex``               std_msgs/Float64MultiArray            :data:`REFLEX_LABELS`
``diagnostics``                diagnostic_msgs/DiagnosticArray       level, message, figures
=============================  ====================================  ===========================

The task policy's observation (:data:`OBSERVATION_LABELS`, built by :func:`observation`) does not
travel on a topic, but the ``task_policy`` node and the environment must build it identically:
what is trained is what is deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pinocchio as pin

# ---- topics -------------------------------------------------------------------------------
JOINT_STATES = "joint_states"
WRENCH = "ft_sensor/wrench"
TASK_ACTION = "bresa/task_action"
IMPEDANCE_COMMAND = "bresa/impedance_command"
REFLEX = "bresa/reflex"
DIAGNOSTICS = "diagnostics"
TOPICS = (JOINT_STATES, WRENCH, TASK_ACTION, IMPEDANCE_COMMAND, REFLEX, DIAGNOSTICS)

BASE_FRAME = "panda_link0"
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))

# ---- bresa/task_action and bresa/impedance_command: target pose and gains together ---------
COMMAND_LABELS = (
    "x_m", "y_m", "z_m", "qx", "qy", "qz", "qw",
    "kx_n_per_m", "ky_n_per_m", "kz_n_per_m",
    "krx_nm_per_rad", "kry_nm_per_rad", "krz_nm_per_rad",
    "dx_ns_per_m", "dy_ns_per_m", "dz_ns_per_m",
    "drx_nms_per_rad", "dry_nms_per_rad", "drz_nms_per_rad",
)  # fmt: skip
COMMAND_SIZE = len(COMMAND_LABELS)
STIFFNESS_XYZ = slice(COMMAND_LABELS.index("kx_n_per_m"), COMMAND_LABELS.index("kz_n_per_m") + 1)

# ---- bresa/reflex: risk is NaN on ticks the critic did not score (holding) -----------------
REFLEX_LABELS = ("risk", "eps_safe", "active", "fired", "reflex_count", "state_age_ms", "holding")

# ---- the task policy's observation (22 values, SI units) ----------------------------------
POLICY_ACTION_SIZE = 7  # control.actions: displacement x y z, stiffness x y z, damping ratio
OBSERVATION_LABELS = (
    "tip_x_rel_m", "tip_y_rel_m", "tip_z_rel_m",
    "tip_vx_m_per_s", "tip_vy_m_per_s", "tip_vz_m_per_s",
    "rot_err_x_rad", "rot_err_y_rad", "rot_err_z_rad",
    "force_x_n", "force_y_n", "force_z_n",
    "torque_x_nm", "torque_y_nm", "torque_z_nm",
    "prev_dx", "prev_dy", "prev_dz", "prev_kx", "prev_ky", "prev_kz", "prev_zeta",
)  # fmt: skip


def observation(
    tip_position_m: np.ndarray,
    tip_rotation: np.ndarray,
    tip_velocity_m_per_s: np.ndarray,
    target_rotation: np.ndarray,
    origin_m: np.ndarray,
    force_n: np.ndarray,
    torque_nm: np.ndarray,
    prev_action: np.ndarray,
) -> np.ndarray:
    """The policy's 22 observation values (:data:`OBSERVATION_LABELS`, float32) from what the arm
    reports: tip relative to ``origin_m`` (the task's observation origin, from what the robot believes:
    ``Task.observation_origin_m``; peg insertion: the hole estimate), tip linear velocity, rotation
    error from the target orientation (rotation vector of R R_d^T), wrist wrench, previous action."""
    rotation_error = pin.log3(tip_rotation @ target_rotation.T)
    obs = np.concatenate([tip_position_m - origin_m, tip_velocity_m_per_s[:3], rotation_error,
                          force_n, torque_nm, prev_action])
    return obs.astype(np.float32)


def target_rotation(orientation_xyzw: Sequence[float] | np.ndarray) -> np.ndarray:
    """A unit quaternion (x y z w, e.g. ``env.target_orientation_xyzw``, peg down) as a rotation
    matrix."""
    x, y, z, w = (float(v) for v in orientation_xyzw)
    return pin.Quaternion(w, x, y, z).normalized().toRotationMatrix()


class Controller(Protocol):
    """A task policy: maps observations to normalised actions, episode by episode (the scripted
    spiral search and the SAC residual policy both are one)."""

    def reset(self) -> None:
        """Called at the start of every episode."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Normalised action (:data:`POLICY_ACTION_SIZE` values in [-1, 1]) for one decision."""
