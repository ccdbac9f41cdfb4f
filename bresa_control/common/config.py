"""Typed, range-checked configuration for the whole stack.

The shipped YAML file (``config/peg_insertion.yaml``) is the single source of default values; this
module holds only the schema: each key's type, allowed range and unit. A user file is laid over the
shipped one, so it may set just the keys it changes. Every mistake (an unknown key, a wrong type,
a value out of range) raises :class:`ConfigError` at load time with the dotted key and what was
expected, never later from deep inside the simulation.

The YAML is also a valid ROS 2 parameter file (values under ``/**: ros__parameters:``), so the
nodes and the gymnasium environment read the very same file.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bresa_control.common.paths import find_data

T = TypeVar("T")

ROS_WRAPPER_KEYS = ("/**", "ros__parameters")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _key(
    lo: float | None = None,
    hi: float | None = None,
    unit: str = "",
    doc: str = "",
    choices: tuple[str, ...] = (),
) -> Any:
    """A schema field: allowed closed range [lo, hi] (per element for sequences) or, for text,
    allowed choices; unit; meaning."""
    return field(metadata={"lo": lo, "hi": hi, "unit": unit, "doc": doc, "choices": choices})


config_key = _key  # the public name: a task's own parameters (tasks/maze.py) use the same schema fields


# --------------------------------------------------------------------------------------------
# Schema. Field order follows the YAML file; defaults live in the YAML file only.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControllerConfig:
    """Cartesian variable-impedance controller (Franka's limits by default)."""

    gravity_compensation: bool = _key(doc="add g(q) to the torque (sim); the real arm does it")
    max_position_error_m: float = _key(0.001, 0.5, "m", "per-axis clip of the position error")
    max_rotation_error_rad: float = _key(0.01, 3.2, "rad", "per-axis clip of the rotation error")
    torque_rate_limit_nm_per_tick: float = _key(0.01, 10.0, "Nm", "max torque change per tick")
    joint_torque_limits_nm: tuple[float, ...] = _key(0.1, 200.0, "Nm", "7 joint torque limits")
    nullspace_stiffness_nm_per_rad: float = _key(0.0, 100.0, "Nm/rad", "posture spring")
    stiffness_range_n_per_m: tuple[float, ...] = _key(1.0, 10000.0, "N/m", "[min, max]")
    rotational_stiffness_range_nm_per_rad: tuple[float, ...] = _key(0.1, 1000.0, "Nm/rad")
    damping_range_ns_per_m: tuple[float, ...] = _key(0.0, 5000.0, "Ns/m", "[min, max]")
    rotational_damping_range_nms_per_rad: tuple[float, ...] = _key(0.0, 500.0, "Nms/rad")

    def __post_init__(self) -> None:
        _check_length("controller.joint_torque_limits_nm", self.joint_torque_limits_nm, 7)
        for name in (
            "stiffness_range_n_per_m",
            "rotational_stiffness_range_nm_per_rad",
            "damping_range_ns_per_m",
            "rotational_damping_range_nms_per_rad",
        ):
            _check_interval(f"controller.{name}", getattr(self, name))


@dataclass(frozen=True)
class PegConfig:
    """Square peg fixed to the flange (link8); its tip is the control frame."""

    side_m: float = _key(0.005, 0.05, "m", "edge of the square cross-section")
    length_m: float = _key(0.03, 0.2, "m", "flange to tip")
    mass_kg: float = _key(0.001, 2.0, "kg")


@dataclass(frozen=True)
class HoleConfig:
    """Square hole in a block built from five convex boxes (four walls and a floor)."""

    clearance_m: float = _key(0.0001, 0.005, "m", "hole side minus peg side")
    depth_m: float = _key(0.025, 0.1, "m", "top face to hole floor")
    block_width_m: float = _key(0.04, 0.2, "m", "outer edge of the block")
    floor_thickness_m: float = _key(0.002, 0.05, "m")
    nominal_position_m: tuple[float, ...] = _key(-1.0, 1.0, "m", "x y of the hole centre")
    position_range_m: float = _key(0.0, 0.1, "m", "hole x, y drawn within +- this per episode")
    perception_error_m: float = _key(0.0, 0.01, "m", "robot's hole estimate off by +- this")

    def __post_init__(self) -> None:
        _check_length("scene.hole.nominal_position_m", self.nominal_position_m, 2)


@dataclass(frozen=True)
class SceneConfig:
    """MuJoCo peg-insertion scene (fixture in sim/peg_insertion.xml, pieces from here)."""

    friction: float = _key(0.0, 2.0, "", "sliding friction of peg, block and table")
    joint_armature_kg_m2: float = _key(0.0, 1.0, "kg m^2", "reflected motor inertia per joint")
    contact_timeconst_s: float = _key(0.002, 0.1, "s", "MuJoCo solref time constant")
    contact_impedance_at_touch: float = _key(
        0.01, 0.95, "", "MuJoCo solimp dmin: how rigid a contact is at zero penetration (rises to 0.95 by 1 mm)")
    start_height_m: tuple[float, ...] = _key(0.0, 0.3, "m", "[min, max] tip above hole top")
    start_xy_range_m: float = _key(0.0, 0.05, "m", "start x, y within +- this of the estimate")
    peg: PegConfig = _key()
    hole: HoleConfig = _key()

    def __post_init__(self) -> None:
        _check_interval("scene.start_height_m", self.start_height_m)


@dataclass(frozen=True)
class SafetyConfig:
    """Constraints: a step with any of these violated has cost c = 1."""

    max_force_n: float = _key(1.0, 100.0, "N", "F_max: wrist force limit")
    max_torque_nm: float = _key(0.1, 50.0, "Nm", "tau_max: wrist torque limit")
    workspace_min_m: tuple[float, ...] = _key(-2.0, 2.0, "m", "x y z lower corner (tip)")
    workspace_max_m: tuple[float, ...] = _key(-2.0, 2.0, "m", "x y z upper corner (tip)")
    arm_fault_force_n: float = _key(1.0, 200.0, "N", "force at which the arm faults and stops")

    def __post_init__(self) -> None:
        _check_length("safety.workspace_min_m", self.workspace_min_m, 3)
        _check_length("safety.workspace_max_m", self.workspace_max_m, 3)
        for axis, lo, hi in zip("xyz", self.workspace_min_m, self.workspace_max_m):
            if lo >= hi:
                raise ConfigError(
                    f"safety.workspace_min_m[{axis}] = {lo} must be below "
                    f"safety.workspace_max_m[{axis}] = {hi}"
                )
        if self.arm_fault_force_n < self.max_force_n:
            raise ConfigError(
                f"safety.arm_fault_force_n = {self.arm_fault_force_n} must be at least "
                f"safety.max_force_n = {self.max_force_n} (the constraint acts before the fault)"
            )


@dataclass(frozen=True)
class EnvConfig:
    """Gymnasium environment: decision rate, action scaling, episode length, success."""

    control_period_s: float = _key(0.0005, 0.002, "s", "controller tick = physics step")
    decision_period_s: float = _key(0.01, 1.0, "s", "one env step")
    max_episode_steps: int = _key(1, 10000, "", "truncation")
    max_step_m: float = _key(0.0005, 0.05, "m", "largest target displacement per decision")
    action_stiffness_range_n_per_m: tuple[float, ...] = _key(10.0, 3000.0, "N/m", "[min, max]")
    action_damping_ratio_range: tuple[float, ...] = _key(0.1, 3.0, "", "[min, max]")
    rotational_stiffness_nm_per_rad: float = _key(1.0, 300.0, "Nm/rad", "fixed")
    rotational_damping_ratio: float = _key(0.1, 3.0, "", "fixed")
    target_orientation_xyzw: tuple[float, ...] = _key(-1.0, 1.0, "", "tip orientation")
    success_depth_m: float = _key(0.001, 0.1, "m", "tip depth below the top face to count")
    distance_reward_weight: float = _key(0.0, 1000.0, "1/m", "reward -= weight * distance")
    success_reward: float = _key(0.0, 1000.0, "", "bonus on insertion")
    force_reward_weight: float = _key(0.0, 1000.0, "", "reward -= weight * peak wrist force / F_max")
    time_reward_weight: float = _key(0.0, 10.0, "", "reward -= this per decision until the insertion")

    def __post_init__(self) -> None:
        _check_interval("env.action_stiffness_range_n_per_m", self.action_stiffness_range_n_per_m)
        _check_interval("env.action_damping_ratio_range", self.action_damping_ratio_range)
        _check_length("env.target_orientation_xyzw", self.target_orientation_xyzw, 4)
        norm = math.sqrt(sum(v * v for v in self.target_orientation_xyzw))
        if abs(norm - 1.0) > 1e-3:
            raise ConfigError(f"env.target_orientation_xyzw must be a unit quaternion, norm {norm}")
        ratio = self.decision_period_s / self.control_period_s
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(
                f"env.decision_period_s = {self.decision_period_s} must be a whole multiple of "
                f"env.control_period_s = {self.control_period_s}"
            )

    @property
    def ticks_per_decision(self) -> int:
        """Control ticks (= physics steps) inside one environment step."""
        return int(round(self.decision_period_s / self.control_period_s))


@dataclass(frozen=True)
class ScriptedConfig:
    """Spiral search with fixed compliant gains (the classical industrial insertion)."""

    stiffness_n_per_m: tuple[float, ...] = _key(10.0, 3000.0, "N/m", "Kx Ky Kz")
    damping_ratio: float = _key(0.1, 3.0)
    approach_speed_m_per_s: float = _key(0.001, 0.5, "m/s", "descent in free space")
    slow_down_height_m: float = _key(0.0, 0.1, "m", "switch to contact speed below this")
    contact_speed_m_per_s: float = _key(0.0005, 0.1, "m/s", "descent near the surface")
    contact_force_n: float = _key(0.5, 50.0, "N", "force that means the peg touched")
    push_force_n: float = _key(0.5, 50.0, "N", "downward force held while searching")
    spiral_pitch_m: float = _key(0.0001, 0.01, "m", "radius gained per turn")
    spiral_speed_m_per_s: float = _key(0.0005, 0.1, "m/s", "speed along the spiral")
    spiral_max_radius_m: float = _key(0.0005, 0.05, "m", "give up beyond this radius")
    drop_detect_m: float = _key(0.0002, 0.02, "m", "tip below the contact height = found")

    def __post_init__(self) -> None:
        _check_length("scripted.stiffness_n_per_m", self.stiffness_n_per_m, 3)


@dataclass(frozen=True)
class ScenarioConfig:
    """Perturbations for evaluation (bresa_control/scenarios.py)."""

    event_window_s: tuple[float, ...] = _key(0.0, 60.0, "s", "[earliest, latest] event start")
    event_duration_s: float = _key(0.001, 10.0, "s", "how long a move or push lasts")
    hole_shift_m: float = _key(0.0, 0.05, "m", "hole-moves: distance the hole slides")
    push_force_n: float = _key(0.0, 100.0, "N", "push: horizontal force on the peg")
    push_down_force_n: float = _key(0.0, 100.0, "N", "push-down: downward force on the peg")
    block_rise_m: float = _key(0.0, 0.05, "m", "block-rises: how far the hole block rises")
    friction_scale: float = _key(0.1, 10.0, "", "friction: multiplier of sliding friction")
    ft_drift_n: float = _key(0.0, 50.0, "N", "ft-drift: bias of the wrist force reading at the episode's end")
    ft_noise_n: float = _key(0.0, 10.0, "N", "ft-drift: standard deviation of the reading's noise per tick")
    state_latency_s: float = _key(0.0, 0.1, "s", "state-latency: how late the controllers see the arm's state")
    payload_kg: float = _key(0.0, 5.0, "kg", "payload: tool mass the model and the sensor's tare leave out")

    def __post_init__(self) -> None:
        _check_interval("scenarios.event_window_s", self.event_window_s)


@dataclass(frozen=True)
class RandomisationConfig:
    """Generic training disturbances (bresa_control/simulation/scenarios.py, Disturbances)."""

    enabled: bool = _key(doc="apply them (the training commands turn this on; evaluation never does)")
    pulse_episode_fraction: float = _key(0.0, 1.0, "", "share of episodes with wrench pulses")
    pulses_per_episode: tuple[int, ...] = _key(0, 20, "", "[fewest, most] pulses in such an episode")
    pulse_force_max_n: float = _key(0.0, 10.0, "N", "strongest pulse (weaker than any evaluation push)")
    pulse_duration_s: tuple[float, ...] = _key(0.001, 2.0, "s", "[shortest, longest] pulse")
    friction_scale_range: tuple[float, ...] = _key(0.1, 10.0, "", "[low, high] per-episode friction factor")
    contact_timeconst_range_s: tuple[float, ...] = _key(0.002, 0.1, "s", "[low, high] per-episode contact time const.")

    def __post_init__(self) -> None:
        for name in ("pulses_per_episode", "pulse_duration_s", "friction_scale_range", "contact_timeconst_range_s"):
            _check_interval(f"randomisation.{name}", getattr(self, name))


REFLEX_MODES = ("control-rate", "off")
REFLEX_GATES = ("q-risk", "feasibility")


@dataclass(frozen=True)
class ReflexConfig:
    """The risk gate between the task policy and the impedance controller."""

    mode: str = _key(choices=REFLEX_MODES, doc="when the critic checks the action")
    gate: str = _key(choices=REFLEX_GATES, doc="what scores the action: the risk critic Q_risk (safety_critic.pt) "
                                               "or the reachability value Q_h (feasibility_critic.pt)")
    eps_safe: float = _key(0.0, 1.0, "", "q-risk gate: risk above this fires the reflex")
    feasibility_release_below: float = _key(-1.0, 0.0, "", "feasibility gate (fires at Q_h > 0): ends once Q_h "
                                                          "is below this")
    gamma_risk: float = _key(0.5, 0.9999, "", "critic discount per control tick")
    force_guard_fraction: float = _key(0.1, 1.0, "", "force-guard baseline: soften past this x F_max")
    release_ratio: float = _key(0.0, 1.0, "", "reflex ends once risk < eps_safe * this")
    min_active_s: float = _key(0.0, 2.0, "s", "a fired reflex lasts at least this long")
    hysteresis_timeout_s: float = _key(0.0, 10.0, "s", "after this long on, the reflex ends once risk <= eps_safe")
    stiffness_rate_n_per_m_per_tick: float = _key(0.1, 3000.0, "N/m", "gain ramp of a_hat_k")
    damping_rate_ns_per_m_per_tick: float = _key(0.01, 600.0, "Ns/m", "gain ramp of a_hat_k")
    brake_s: float = _key(0.0, 1.0, "s", "after firing, brake this long before the learned recovery (0: none)")
    brake_lift_m: float = _key(0.0, 0.01, "m", "the brake's setpoint: the tip at firing, this much higher")
    brake_stiffness_n_per_m: float = _key(10.0, 3000.0, "N/m", "the brake's stiffness along the task's brake axes")
    brake_damping_ns_per_m: float = _key(0.0, 600.0, "Ns/m", "the brake's damping along the task's brake axes")
    brake_lift_per_load_m_per_n: float = _key(0.0, 0.01, "m/N", "the brake's setpoint rises this much more per "
                                                               "newton of z force on the tool, either sign, once "
                                                               "it is above brake_hold_load_n")
    brake_max_lift_m: float = _key(0.0, 0.05, "m", "the brake's setpoint at most this far above the tip at firing")
    brake_hold_load_n: float = _key(0.0, 100.0, "N", "past brake_s, the brake goes on while the force on the "
                                                    "tool along its axes is above this ...")
    brake_max_s: float = _key(0.0, 2.0, "s", "... up to this long after firing")


@dataclass(frozen=True)
class RecoveryRLConfig:
    """The Recovery RL baseline's decision-level layer (bresa_control/safety/recovery_rl.py)."""

    gamma_risk: float = _key(0.1, 0.999, "", "its critic's discount per decision")
    eps_risk: float = _key(0.0, 1.0, "", "a proposed action riskier than this is replaced by the recovery's")


@dataclass(frozen=True)
class RuntimeConfig:
    """The ROS 2 runtime (bresa_control/ros): staleness bounds and the safe hold."""

    state_timeout_s: float = _key(0.001, 1.0, "s", "safety_critic: older state -> hold, ERROR")
    task_action_timeout_s: float = _key(0.01, 10.0, "s", "safety_critic: older task action -> hold")
    command_timeout_s: float = _key(0.002, 1.0, "s", "the arm (mujoco_sim, franka_arm): no command this long -> hold")
    hold_stiffness_n_per_m: float = _key(10.0, 3000.0, "N/m", "translational stiffness of a hold")
    hold_damping_ratio: float = _key(0.1, 3.0, "", "damping ratio of a hold")
    critic_budget_s: float = _key(0.00005, 0.01, "s", "critic in the arm's loop: a longer tick -> hold that tick")
    demo_timeout_s: float = _key(1.0, 600.0, "s", "bresa demo gives up on an insertion after this much simulated time")
    realtime_priority: int = _key(0, 99, "", "SCHED_FIFO priority of the arm's 1 kHz loop; 0: do not ask")
    realtime_cpus: tuple[int, ...] = _key(0, 1023, "", "CPUs to pin the arm's 1 kHz loop to; empty: no pinning")


@dataclass(frozen=True)
class RobotConfig:
    """The arm's kinematic and dynamic model, as every node that computes kinematics loads it."""

    urdf_path: str = _key(doc="URDF of the arm (a real arm's, e.g. from franka_description); "
                              "empty: the simulated Panda that mujoco_sim runs")
    flange_link: str = _key(doc="the URDF link the tool (scene.peg) is fixed to")


@dataclass(frozen=True)
class BresaConfig:
    """Everything one run needs; load it with :func:`load_config`."""

    controller: ControllerConfig = _key()
    scene: SceneConfig = _key()
    safety: SafetyConfig = _key()
    env: EnvConfig = _key()
    scripted: ScriptedConfig = _key()
    reflex: ReflexConfig = _key()
    recovery_rl: RecoveryRLConfig = _key()
    scenarios: ScenarioConfig = _key()
    randomisation: RandomisationConfig = _key()
    runtime: RuntimeConfig = _key()
    robot: RobotConfig = _key()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def default_config_path() -> Path:
    """The shipped ``config/peg_insertion.yaml`` (source tree or installed share/)."""
    try:
        return find_data("config/peg_insertion.yaml")
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config YAML file (plain or ROS 2 parameter layout) into a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    outer, inner = ROS_WRAPPER_KEYS
    if outer in data:
        data = data[outer]
        if not isinstance(data, dict) or inner not in data:
            raise ConfigError(f"config file {path}: '{outer}' must contain '{inner}'")
        data = data[inner]
    return data


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> BresaConfig:
    """Load the shipped defaults, lay ``path`` and then ``overrides`` over them, and validate.

    ``overrides`` is a nested dict in the same layout as the YAML, for example
    ``{"scene": {"hole": {"clearance_m": 0.001}}}``.
    """
    merged = read_yaml(default_config_path())
    if path is not None:
        merged = _merge(merged, read_yaml(path), "")
    if overrides:
        merged = _merge(merged, dict(overrides), "")
    return _build(BresaConfig, merged, "")


def load_section(cls: type[T], path: str | Path, overrides: Mapping[str, Any] | None = None) -> T:
    """A config dataclass ``cls`` (built and checked like :class:`BresaConfig`: every key present,
    in range, nothing unknown) from its own YAML file, with ``overrides`` laid over it: a task's
    parameters (``config/maze.yaml``)."""
    data = read_yaml(path)
    if overrides:
        data = _merge(data, dict(overrides), "")
    return typing.cast(T, _build(cls, data, ""))


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts and lists (for JSON files and model cards)."""
    out = dataclasses.asdict(config)
    return typing.cast(dict[str, Any], _lists(out))


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_lists(v) for v in value]
    return value


def _merge(base: dict[str, Any], top: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            allowed = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"unknown config key '{dotted}'; allowed here: {allowed}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key '{dotted}' must be a mapping of sub-keys, "
                    f"got {type(value).__name__} {value!r}"
                )
            out[key] = _merge(base[key], value, dotted + ".")
        else:
            out[key] = value
    return out


def _build(cls: Any, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; allowed here: {', '.join(names)}"
        )
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        if f.name not in data:
            raise ConfigError(f"config key '{dotted}' is missing")
        values[f.name] = _convert(hints[f.name], data[f.name], dotted, f.metadata)
    return cls(**values)


def _convert(kind: Any, value: Any, dotted: str, meta: Mapping[str, Any]) -> Any:
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{dotted}' must be a mapping, got {value!r}")
        return _build(kind, value, dotted + ".")
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{dotted}' must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        return _number(kind, value, dotted, meta)
    if kind is str:
        choices = meta.get("choices", ())
        if not isinstance(value, str) or (choices and value not in choices):
            hint = " (YAML reads bare on/off/yes/no as true/false: quote the value)" if isinstance(
                value, bool) else ""
            raise ConfigError(
                f"config key '{dotted}' = {value!r} must be one of: {', '.join(choices)}{hint}"
            )
        return value
    if typing.get_origin(kind) is tuple:
        if value is None:  # ROS's parameter-file parser reads an empty list ([]) as "not set"
            value = []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"config key '{dotted}' must be a list of numbers, got {type(value).__name__} "
                f"{value!r}"
            )
        item = typing.get_args(kind)[0]  # float, or int for lists of integers, or str
        if item is str:
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"config key '{dotted}' must be a list of text values, got {value!r}")
            return tuple(value)
        return tuple(_number(item, v, f"{dotted}[{i}]", meta) for i, v in enumerate(value))
    raise TypeError(f"unsupported schema type {kind!r} for {dotted}")  # a bug in the schema


def _number(kind: type, value: Any, dotted: str, meta: Mapping[str, Any]) -> float | int:
    wanted = "an integer" if kind is int else "a number"
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ConfigError(
            f"config key '{dotted}' must be {wanted}, got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value):
        raise ConfigError(f"config key '{dotted}' must be finite, got {value!r}")
    lo, hi, unit = meta.get("lo"), meta.get("hi"), meta.get("unit", "")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(
            f"config key '{dotted}' = {value!r} is outside the allowed range "
            f"[{lo}, {hi}]{' ' + unit if unit else ''}"
        )
    return kind(value)


def _check_length(dotted: str, values: tuple[float, ...], length: int) -> None:
    if len(values) != length:
        raise ConfigError(f"config key '{dotted}' must have {length} values, got {len(values)}")


def _check_interval(dotted: str, values: tuple[float, ...]) -> None:
    _check_length(dotted, values, 2)
    if values[0] > values[1]:
        raise ConfigError(f"config key '{dotted}' = {list(values)} must be [min, max] with min <= max")
