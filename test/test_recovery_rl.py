"""The Recovery RL baseline: decision rows in the risk data, the decision-level layer (fails
closed), its training command and its evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bresa_control.app.cli import main
from bresa_control.common.cards import read_card
from bresa_control.common.config import BresaConfig
from bresa_control.contract import OBSERVATION_LABELS
from bresa_control.learning import collect as collect_module
from bresa_control.learning.recovery_rl import ShieldedEnv
from bresa_control.safety.recovery_rl import DECISION_FEATURE_SIZE, DECISION_STATE_SIZE, DecisionShield
from bresa_control.simulation.env import TaskEnv


class ConstantRisk:
    def __init__(self, risk: float) -> None:
        self.value = risk
        self.seen: list[np.ndarray] = []

    def risk(self, features: np.ndarray) -> float:
        self.seen.append(features.copy())
        return self.value


RECOVERY_ACTION = np.array([0.0, 0.0, 0.8, -1.0, -1.0, -1.0, 0.5], dtype=np.float32)


def recovery(state: np.ndarray) -> np.ndarray:
    assert state.shape == (DECISION_STATE_SIZE,) and np.all(np.isfinite(state))
    return RECOVERY_ACTION.copy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny risk data and a Recovery RL layer + policy trained on it by the real command."""
    folder = tmp_path_factory.mktemp("recovery_rl")
    data = folder / "risk.npz"
    assert main(["collect", "--episodes", "4", "--max-steps", "15", "--seed", "3", "--random-fraction", "1.0",
                 "--nominal-fraction", "0.0", "--out", str(data), "--no-progress"]) == 0
    models = folder / "models"
    assert main(["train-recovery-rl", "--data", str(data), "--timesteps", "40", "--learning-starts", "10",
                 "--select-every", "20", "--select-episodes", "1", "--refine-every", "20", "--refine-steps", "2",
                 "--critic-steps", "30", "--recovery-steps", "10", "--critic-hidden", "32", "--models-dir",
                 str(models), "--tensorboard", str(folder / "tb"), "--no-progress"]) == 0
    return data, models


def test_the_risk_data_holds_every_decision_with_the_cost_of_its_ticks(tiny: tuple[Path, Path]) -> None:
    arrays, meta = collect_module.load(tiny[0])
    decisions = arrays["decision_episode"]
    assert meta["decisions"] == len(decisions) and 4 <= len(decisions) <= 4 * 15
    assert arrays["decision_observation"].shape == (len(decisions), len(OBSERVATION_LABELS))
    assert np.all(np.abs(arrays["decision_action"]) <= 1.0)
    for episode in range(4):  # a decision violated iff one of its ticks did: same total per episode
        ticks = arrays["episode"] == episode
        assert len(np.flatnonzero(decisions == episode)) * 100 >= ticks.sum()  # 100 ticks per decision at most
        assert bool(arrays["decision_cost"][decisions == episode].any()) == bool(arrays["cost"][ticks].any())


def test_the_layer_passes_a_safe_action_and_replaces_a_risky_one(config: BresaConfig) -> None:
    observation = np.linspace(-0.01, 0.01, DECISION_STATE_SIZE).astype(np.float32)
    action = np.full(7, 0.3, dtype=np.float32)
    critic = ConstantRisk(config.recovery_rl.eps_risk)  # at the threshold: passes
    decision = DecisionShield(config, critic, recovery).filter(observation, action)
    assert not decision.recovered and np.array_equal(decision.action, action)
    assert critic.seen[0].shape == (DECISION_FEATURE_SIZE,) and np.array_equal(critic.seen[0][-7:], action)
    critic.value = config.recovery_rl.eps_risk + 1e-3
    decision = DecisionShield(config, critic, recovery).filter(observation, action)
    assert decision.recovered and np.array_equal(decision.action, RECOVERY_ACTION)


@pytest.mark.parametrize("case", ["nan risk", "nan observation", "inf action"])
def test_a_non_finite_risk_or_input_runs_the_recovery(config: BresaConfig, case: str) -> None:
    observation = np.zeros(DECISION_STATE_SIZE, np.float32)
    action = np.zeros(7, np.float32)
    critic = ConstantRisk(float("nan") if case == "nan risk" else 0.0)
    if case == "nan observation":
        observation[10] = np.nan  # a broken force reading
    if case == "inf action":
        action[2] = np.inf
    decision = DecisionShield(config, critic, recovery).filter(observation, action)
    assert decision.recovered and decision.risk == 1.0 and np.array_equal(decision.action, RECOVERY_ACTION)


def test_training_records_the_executed_action_while_sac_keeps_the_proposed_one(config: BresaConfig) -> None:
    env = ShieldedEnv(TaskEnv(config), DecisionShield(config, ConstantRisk(1.0), recovery))
    recorded: list[tuple[np.ndarray, float]] = []
    env.recorder = lambda features, cost: recorded.append((features, cost))
    env.reset(seed=0)
    proposed = np.full(7, -0.9, dtype=np.float32)
    _, _, _, _, info = env.step(proposed)
    assert info["recovered"] and np.array_equal(proposed, np.full(7, -0.9, np.float32))  # the caller's: untouched
    assert len(recorded) == 1 and np.array_equal(recorded[0][0][-7:], RECOVERY_ACTION)  # the critic's row: executed
    # The environment ran the recovery's command (softest stiffness), not the proposed one (-0.9).
    assert env.unwrapped.command.stiffness[0] == pytest.approx(config.env.action_stiffness_range_n_per_m[0])


def test_recovery_rl_training_writes_its_three_models_and_the_evaluation_runs_them(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    layer = tiny[1] / "recovery_rl"
    critic = read_card(layer / "safety_critic.pt")
    assert critic["kind"] == "recovery_rl_critic" and critic["rate_hz"] == 10.0 and critic["gamma_risk"] == 0.8
    assert "auroc_holdout" in critic["evaluation"] and critic["horizon_decisions"] == 5
    assert read_card(layer / "recovery_policy.pt")["kind"] == "recovery_rl_recovery"
    policy = read_card(layer / "task_policy.zip")
    assert policy["recovery_rl"]["online_decisions"] == 40 and policy["settings"]["critic_steps"] == 30
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 5\n")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--controller", "recovery-rl", "--episodes", "2", "--config", str(short),
                 "--models-dir", str(tiny[1]), "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["controller"] == "recovery-rl"


def test_recovery_rl_models_made_for_another_discount_are_refused(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("recovery_rl:\n  gamma_risk: 0.9\n")
    assert main(["evaluate", "--controller", "recovery-rl", "--episodes", "1", "--config", str(other),
                 "--models-dir", str(tiny[1]), "--no-progress"]) == 2
    assert "gamma_risk 0.8, but this config runs it at 10.0 Hz with gamma_risk 0.9" in capsys.readouterr().err


def test_recovery_rl_without_its_models_is_a_clear_model_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", "--controller", "recovery-rl", "--episodes", "1", "--models-dir", str(tmp_path)]) == 2
    assert "recovery_rl/task_policy.zip does not exist" in capsys.readouterr().err


def test_old_risk_data_is_refused_with_the_command_to_make_it_again(tmp_path: Path) -> None:
    old = tmp_path / "old.npz"
    np.savez(old, features=np.zeros((1, 20)), cost=np.zeros(1), episode=np.zeros(1),
             meta=np.array(json.dumps({"format": "bresa-risk-data/1"})))
    with pytest.raises(ValueError, match=r"format 'bresa-risk-data/1', expected one of \('bresa-risk-data/3', "
                                         r"'bresa-risk-data/4', 'bresa-risk-data/5'\); make it again"):
        collect_module.load(old)


def test_the_shipped_recovery_rl_layer_loads_under_the_shipped_config(config: BresaConfig) -> None:
    """If a config change alters the layer's inputs or discount, this fails until it is retrained."""
    from bresa_control.common.paths import find_data
    from bresa_control.safety.recovery_rl import load_recovery_rl

    shield = load_recovery_rl(config)
    decision = shield.filter(np.zeros(DECISION_STATE_SIZE, np.float32), np.zeros(7, np.float32))
    assert 0.0 <= decision.risk <= 1.0 and np.all(np.abs(decision.action) <= 1.0)
    critic = read_card(find_data("models") / "recovery_rl" / "safety_critic.pt")
    # A baseline's critic: its card reports its held-out quality (0.751 for the shipped seed 0, on the
    # randomised data of 2026-12-06), which must be one that a trained critic gives, not chance.
    assert 0.6 <= critic["evaluation"]["auroc_holdout"] <= 1.0 and critic["seed"] == 0
