"""Config loading: defaults from the shipped YAML, overlays, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bresa_control.common.config import ConfigError, config_to_dict, default_config_path, load_config


def test_shipped_config_loads_with_documented_defaults() -> None:
    config = load_config()
    assert config.safety.max_force_n == 30.0
    assert config.env.ticks_per_decision == 100
    assert config.scene.hole.clearance_m <= 0.001
    assert config.scene.hole.depth_m >= 0.025
    assert default_config_path().name == "peg_insertion.yaml"


def test_user_file_overlays_only_the_keys_it_sets(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("/**:\n  ros__parameters:\n    scene:\n      hole:\n        clearance_m: 0.0005\n")
    config = load_config(user)
    assert config.scene.hole.clearance_m == 0.0005
    assert config.scene.hole.depth_m == load_config().scene.hole.depth_m


def test_plain_yaml_without_ros_wrapper_is_accepted(tmp_path: Path) -> None:
    user = tmp_path / "plain.yaml"
    user.write_text("safety:\n  max_force_n: 25\n")
    assert load_config(user).safety.max_force_n == 25.0


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"scene": {"hole": {"clearence_m": 0.001}}}, ["unknown config key", "scene.hole.clearence_m",
                                                      "clearance_m"]),
        ({"controlller": {}}, ["unknown config key", "controlller", "controller"]),
        ({"safety": {"max_force_n": "thirty"}}, ["safety.max_force_n", "must be a number", "thirty"]),
        ({"env": {"max_episode_steps": 2.5}}, ["env.max_episode_steps", "must be an integer"]),
        ({"controller": {"gravity_compensation": 1}}, ["controller.gravity_compensation",
                                                       "true or false"]),
        ({"scene": {"hole": {"clearance_m": 0.02}}}, ["scene.hole.clearance_m", "0.02",
                                                     "allowed range [0.0001, 0.005] m"]),
        ({"controller": {"joint_torque_limits_nm": [87, 87]}}, ["joint_torque_limits_nm",
                                                               "7 values"]),
        ({"controller": {"joint_torque_limits_nm": [87, 87, 87, 87, 12, 12, 900]}},
         ["joint_torque_limits_nm[6]", "900", "[0.1, 200.0]"]),
        ({"env": {"action_damping_ratio_range": [2.0, 0.5]}}, ["action_damping_ratio_range",
                                                              "min <= max"]),
        ({"safety": {"arm_fault_force_n": 20.0}}, ["arm_fault_force_n", "max_force_n"]),
        ({"scene": {"peg": 3}}, ["scene.peg", "mapping"]),
        ({"safety": {"max_torque_nm": float("nan")}}, ["safety.max_torque_nm", "finite"]),
    ],
)
def test_bad_values_fail_at_load_naming_key_and_expectation(overrides: dict, fragments: list) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_and_malformed_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("scene: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listy)


def test_config_round_trips_to_plain_data() -> None:
    as_dict = config_to_dict(load_config())
    assert as_dict["controller"]["joint_torque_limits_nm"] == [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]
    assert load_config(overrides=as_dict) == load_config()


def test_records_name_no_folder_of_the_machine_that_made_them(tmp_path: Path, monkeypatch) -> None:
    from bresa_control.common.paths import portable, portable_command

    inside = tmp_path / "work"
    (inside / "models").mkdir(parents=True)
    monkeypatch.chdir(inside)
    assert portable(inside / "models") == "models"
    assert portable("models") == "models"
    assert portable(tmp_path / "elsewhere" / "runs") == "<outside>/runs"
    command = portable_command(["train-policy", "--models-dir", str(inside / "models"),
                                f"--tensorboard={tmp_path / 'tb'}", "--seed", "0"])
    assert command == ["train-policy", "--models-dir", "models", "--tensorboard=<outside>/tb", "--seed", "0"]
    assert not any(str(tmp_path) in arg for arg in command)
