"""Risk data, critic and recovery training, TorchScript export and fail-closed model loading."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bresa_control.app.cli import main
from bresa_control.common.cards import ModelError, card_path, read_card
from bresa_control.common.config import load_config
from bresa_control.learning import collect as collect_module
from bresa_control.learning.critic import RecoveryPolicy, TwinRiskCritic, auroc, export, violation_within
from bresa_control.safety.models import load_reflex_models
from bresa_control.safety.reflex import RiskGate
from bresa_control.safety.risk_features import (
    ACTION_SIZE,
    FEATURE_SIZE,
    RECOVERY_HIGH,
    RECOVERY_KEEPS,
    RECOVERY_KEPT_MASK,
    RECOVERY_LOW,
    STATE_SIZE,
)


def test_violation_labels_look_back_one_horizon_within_an_episode() -> None:
    cost = np.array([0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    episode = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    labels = violation_within(cost, episode, horizon_ticks=3)
    np.testing.assert_array_equal(labels, [0, 1, 1, 1, 0, 0, 1, 1, 1, 0])  # not across episodes


def test_auroc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=200).astype(float)
    labels = rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(pairwise)
    assert auroc(np.arange(10.0), np.arange(10) >= 5) == 1.0
    assert np.isnan(auroc(np.arange(3.0), np.zeros(3)))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("module, inputs", [(TwinRiskCritic(FEATURE_SIZE, 32), FEATURE_SIZE),
                                            (RecoveryPolicy(STATE_SIZE, 32), STATE_SIZE)])
def test_torchscript_equals_eager_on_random_inputs(tmp_path: Path, module: torch.nn.Module,
                                                   inputs: int) -> None:
    scripted = export(module.eval(), str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(64, inputs)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), module(x))
        torch.testing.assert_close(scripted(x), module(x))
    assert loaded.input_size == inputs


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smoke run of both training commands on tiny settings."""
    folder = tmp_path_factory.mktemp("learning")
    data = folder / "risk.npz"
    assert main(["collect", "--episodes", "3", "--max-steps", "15", "--seed", "1", "--out", str(data),
                 "--no-progress"]) == 0
    arrays, meta = collect_module.load(data)
    assert meta["complete"] and meta["episodes"] == 3 and meta["seed"] == 1
    assert arrays["features"].shape == (meta["ticks"], FEATURE_SIZE)
    assert np.all(np.isfinite(arrays["features"]))
    models = folder / "models"
    assert main(["train-critic", "--data", str(data), "--steps", "30", "--recovery-steps", "10",
                 "--hidden", "32", "--out-dir", str(models), "--no-progress"]) == 0
    assert main(["train-feasibility", "--data", str(data), "--steps", "30", "--hidden", "16", "--out-dir",
                 str(models), "--no-progress"]) == 0
    return models


def test_training_writes_loadable_models_with_cards(tiny_models: Path) -> None:
    critic, recovery, card = load_reflex_models(load_config(), tiny_models)
    assert card["kind"] == "safety_critic" and card["gamma_risk"] == 0.99 and card["rate_hz"] == 1000.0
    assert card["command"][:2] == ["bresa", "train-critic"] and card["seed"] == 0
    assert {"auroc_holdout", "auroc_train", "true_positive_rate"} <= set(card["evaluation"])
    risk = critic.risk(np.zeros(FEATURE_SIZE, np.float32))
    assert 0.0 <= risk <= 1.0
    states = np.random.default_rng(0).normal(0.0, 3.0, size=(50, STATE_SIZE)).astype(np.float32)
    replaced = np.random.default_rng(1).uniform(-1.0, 1.0, size=(50, ACTION_SIZE)).astype(np.float32)
    kept = RECOVERY_KEPT_MASK
    for state, task in zip(states, replaced):  # whatever the state, the recovery stays in its box ...
        action = recovery.act(state, task)
        assert action.shape == (9,)
        assert np.all(action[~kept] >= np.array(RECOVERY_LOW)[~kept] - 1e-6)
        assert np.all(action[~kept] <= np.array(RECOVERY_HIGH)[~kept] + 1e-6)
        np.testing.assert_array_equal(action[kept], task[kept])  # ... and keeps the lateral gains
    assert read_card(tiny_models / "recovery_policy.pt")["kept_from_replaced_action"] == list(RECOVERY_KEEPS)


def test_a_recovery_trained_without_keeping_the_lateral_gains_is_refused(tiny_models: Path, tmp_path: Path) -> None:
    models = _copy(tiny_models, tmp_path)
    card = read_card(models / "recovery_policy.pt")
    del card["kept_from_replaced_action"]
    (models / "recovery_policy.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"trained keeping None from the replaced action, but this build's reflex"):
        load_reflex_models(load_config(), models)


def _copy(models: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(models, target)
    return target


def test_card_whose_input_size_disagrees_with_its_model_is_refused(tiny_models: Path, tmp_path: Path) -> None:
    models = _copy(tiny_models, tmp_path)
    card_file = card_path(models / "safety_critic.pt")
    card = json.loads(card_file.read_text())
    card["input_size"] = 21
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelError) as info:
        load_reflex_models(load_config(), models)
    message = str(info.value)
    assert "safety_critic.pt takes 20 inputs" in message and "says input_size 21" in message


GATES = {"q-risk": "safety_critic", "feasibility": "feasibility_critic"}  # reflex.gate -> the model it loads


@pytest.mark.parametrize("gate", list(GATES))
@pytest.mark.parametrize("breakage", ["delete_model", "delete_card", "garbage_model", "wrong_kind"])
def test_missing_or_broken_model_files_are_refused(tiny_models: Path, tmp_path: Path, breakage: str,
                                                   gate: str) -> None:
    """Whichever gate the reflex runs, it never runs on a model it cannot vouch for."""
    models = _copy(tiny_models, tmp_path)
    kind = GATES[gate]
    model = models / f"{kind}.pt"
    fragment = {"delete_model": f"{kind}.pt does not exist", "delete_card": f"{kind}.json for",
                "garbage_model": "cannot load TorchScript model", "wrong_kind": f"expected a '{kind}'"}[breakage]
    if breakage == "delete_model":
        model.unlink()
    elif breakage == "delete_card":
        card_path(model).unlink()
    elif breakage == "garbage_model":
        model.write_bytes(b"not a model")
    else:
        card = read_card(model)
        card["kind"] = "safety_critic" if gate == "feasibility" else "recovery_policy"
        card_path(model).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=fragment):
        load_reflex_models(load_config(overrides={"reflex": {"gate": gate}}), models)


def test_the_feasibility_gate_loads_its_own_model_and_fires_above_zero(tiny_models: Path) -> None:
    config = load_config(overrides={"reflex": {"gate": "feasibility", "mode": "control-rate"}})
    critic, _, card = load_reflex_models(config, tiny_models)
    assert card["kind"] == "feasibility_critic" and card["command"][:2] == ["bresa", "train-feasibility"]
    assert {"auroc_holdout", "v_h_auroc_holdout", "feasible_fraction_holdout"} <= set(card["evaluation"])
    assert np.isfinite(critic.risk(np.zeros(FEATURE_SIZE, np.float32)))
    gate = RiskGate.from_config(config.reflex, config.env.control_period_s)
    assert (gate.fire_above, gate.release) == (0.0, config.reflex.feasibility_release_below)
    assert not gate.update(-0.01) and gate.update(0.01)  # Q_h > 0: the action leaves the feasible region
    q_risk = RiskGate.from_config(load_config().reflex, config.env.control_period_s)
    assert (q_risk.fire_above, q_risk.release) == (0.5, 0.5 * load_config().reflex.release_ratio)


@pytest.mark.parametrize("gate", list(GATES))
def test_models_for_another_rate_or_normalisation_are_refused(tiny_models: Path, gate: str) -> None:
    faster = load_config(overrides={"env": {"control_period_s": 0.0005}, "reflex": {"gate": gate}})
    with pytest.raises(ModelError, match=f"{GATES[gate]}.json is for 1000.0 Hz"):
        load_reflex_models(faster, tiny_models)
    other_limit = load_config(overrides={"safety": {"max_force_n": 25.0}, "reflex": {"gate": gate}})
    with pytest.raises(ModelError, match="force_scale_n"):
        load_reflex_models(other_limit, tiny_models)


def test_interrupted_collection_writes_only_whole_episodes_flagged_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = collect_module.TaskEnv.step
    calls = {"n": 0}

    def step_then_interrupt(self, action):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real_step(self, action)

    monkeypatch.setattr(collect_module.TaskEnv, "step", step_then_interrupt)
    out = tmp_path / "risk.npz"
    assert main(["collect", "--episodes", "5", "--max-steps", "5", "--out", str(out), "--no-progress"]) == 130
    arrays, meta = collect_module.load(out)
    assert meta["complete"] is False and meta["ticks"] == len(arrays["cost"]) == 11 * 100
    assert not list(tmp_path.glob(".*.tmp*"))


def test_training_refuses_data_from_another_normalisation(tiny_models: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    data = tiny_models.parent / "risk.npz"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("safety:\n  max_force_n: 20\n")
    code = main(["train-critic", "--data", str(data), "--config", str(cfg), "--steps", "5",
                 "--out-dir", str(tmp_path / "m"), "--no-progress"])
    assert code == 2
    assert "different feature layout" in capsys.readouterr().err
    assert not (tmp_path / "m" / "safety_critic.pt").exists()


@pytest.fixture(scope="module")
def tiny_policy(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smoke run of the policy training command on tiny settings."""
    folder = tmp_path_factory.mktemp("policy")
    models = folder / "models"
    shutil.copytree(tiny_models, models)
    code = main(["train-policy", "--timesteps", "40", "--data", str(tiny_models.parent / "risk.npz"),
                 "--models-dir", str(models), "--refine-every", "20", "--refine-steps", "2",
                 "--select-every", "20", "--select-episodes", "2",
                 "--tensorboard", str(folder / "tb"), "--no-progress"])
    assert code == 0
    return models


def test_policy_training_never_writes_over_the_critic_it_was_given(tiny_models: Path, tiny_policy: Path) -> None:
    """The refined critic has its own file: the critic the reflex loads is the one trained offline."""
    for name in ("safety_critic.pt", "safety_critic.json"):
        assert (tiny_policy / name).read_bytes() == (tiny_models / name).read_bytes()


def test_the_task_policy_actor_acts_as_stable_baselines3_does(tiny_policy: Path) -> None:
    """The robot PC runs the actor without stable-baselines3: its actions must be SB3's."""
    from stable_baselines3 import SAC

    from bresa_control.policies.residual import load_task_policy

    sb3 = SAC.load(tiny_policy / "task_policy.zip", device="cpu")
    actor = load_task_policy(tiny_policy)
    observations = np.random.default_rng(0).normal(size=(50, 29)).astype(np.float32)
    for obs in observations:
        np.testing.assert_allclose(actor.predict(obs)[0], sb3.predict(obs, deterministic=True)[0], atol=1e-6)


def test_a_task_policy_zip_that_is_not_one_is_refused(tmp_path: Path) -> None:
    from bresa_control.common.cards import write_card
    from bresa_control.policies.residual import load_task_policy

    (tmp_path / "task_policy.zip").write_bytes(b"not a zip")
    write_card(tmp_path / "task_policy.zip", {"kind": "task_policy"})
    with pytest.raises(ModelError, match="cannot load the SAC policy's actor from .*task_policy.zip"):
        load_task_policy(tmp_path)


def test_policy_training_smoke_run_writes_a_policy_that_acts(tiny_policy: Path) -> None:
    from stable_baselines3 import SAC

    from bresa_control.policies.residual import ResidualController

    models = tiny_policy
    card = read_card(models / "task_policy.zip")
    assert card["kind"] == "task_policy" and card["timesteps"] == 40
    refined = read_card(models / "safety_critic_refined.pt")
    assert refined["kind"] == "safety_critic_refined" and refined["online_refinement"]["online_ticks"] > 0
    assert card["settings"]["refine_every"] == 20 and card["settings"]["net_arch"] == [256, 256]
    assert list((models.parent / "tb").rglob("events.out.tfevents.*"))
    config = load_config()
    controller = ResidualController(SAC.load(models / "task_policy.zip", device="cpu"), config)
    controller.reset()
    action = controller.act(np.zeros(22, np.float32))
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("controller", ["sac", "force-guard", "bresa"])  # recovery-rl: test_recovery_rl.py
def test_every_learned_controller_evaluates_from_models_without_training(
    tiny_policy: Path, tmp_path: Path, controller: str
) -> None:
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 5\n")
    out = tmp_path / "r.json"
    code = main(["evaluate", "--controller", controller, "--episodes", "1", "--config", str(short),
                 "--models-dir", str(tiny_policy), "--json", str(out), "--no-progress"])
    assert code == 0
    assert json.loads(out.read_text())["controller"] == controller


def test_evaluation_is_recorded_in_the_policy_card_on_request(
    tiny_policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_policy, models)
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 5\n")
    argv = ["evaluate", "--controller", "force-guard", "--episodes", "2", "--config", str(short),
            "--models-dir", str(models), "--json", str(tmp_path / "r.json"), "--no-progress", "--record-in-card"]
    assert main(argv) == 0
    recorded = read_card(models / "task_policy.zip")["recorded_evaluations"]["force-guard/nominal"]
    written = json.loads((tmp_path / "r.json").read_text())
    # The command as given, its folders outside the working folder named by their last part only.
    portable = [arg if not arg.startswith(str(tmp_path)) else f"<outside>/{Path(arg).name}" for arg in argv]
    assert recorded["command"] == ["bresa", *portable] == written["command"]
    assert recorded["episodes"] == 2 and recorded["success_rate"] == written["success_rate"]
    assert read_card(models / "task_policy.zip")["timesteps"] == 40  # the rest of the card is kept
    # The scripted controller has no card: refused before any episode runs.
    assert main(["evaluate", "--controller", "scripted", "--episodes", "1", "--models-dir", str(models),
                 "--record-in-card"]) == 2
    assert "runs no trained task policy" in capsys.readouterr().err


def test_missing_task_policy_is_a_clear_model_error(tiny_models: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["evaluate", "--controller", "bresa", "--episodes", "1", "--models-dir", str(tiny_models)])
    assert code == 2
    assert "task_policy.zip does not exist" in capsys.readouterr().err


def test_shipped_models_load_under_the_shipped_config() -> None:
    """If a config change alters the critic's inputs, this fails until the models are retrained."""
    critic, recovery, card = load_reflex_models(load_config())
    assert card["evaluation"]["auroc_holdout"] >= 0.9
    risk = critic.risk(np.zeros(FEATURE_SIZE, np.float32))
    assert 0.0 <= risk <= 1.0
    action = recovery.act(np.zeros(STATE_SIZE, np.float32), np.zeros(ACTION_SIZE, np.float32))
    assert np.all(action >= np.array(RECOVERY_LOW) - 1e-6) and np.all(action <= np.array(RECOVERY_HIGH) + 1e-6)
    from bresa_control.common.paths import find_data
    from bresa_control.policies.residual import load_task_policy

    policy = load_task_policy(find_data("models"))
    assert policy.sizes == (29, 7)
    card = read_card(find_data("models") / "task_policy.zip")
    assert card["recorded_evaluations"]["sac/nominal"]["success_rate"] >= 0.9
    # The documented defaults still make it: only the card's command-line flags differ from them.
    from bresa_control.learning.settings import PolicyTraining

    made_with = PolicyTraining(timesteps=card["timesteps"], seed=card["seed"])
    expected = {**dataclasses.asdict(made_with), "net_arch": list(made_with.net_arch)}
    del expected["task"]  # a setting added after the shipped model was made: its default (peg insertion) applies
    assert card["settings"] == expected and card.get("task", "peg-insertion") == made_with.task


def test_policy_training_writes_the_best_checkpoint_it_evaluated(tiny_policy: Path, tiny_models: Path) -> None:
    from stable_baselines3 import SAC

    from bresa_control.learning.policy_training import SELECTION_SEED_BASE, _rank
    from bresa_control.policies.residual import ResidualController
    from bresa_control.safety.models import load_reflex_models
    from bresa_control.simulation.env import TaskEnv
    from bresa_control.simulation.rollout import run_episode

    selection = read_card(tiny_policy / "task_policy.zip")["checkpoint_selection"]
    assert [row["timestep"] for row in selection["history"]] == [20, 40]
    assert selection["selected"] == max(selection["history"], key=_rank)
    # The written policy is that checkpoint: it does exactly as well again on the same episodes.
    config = load_config(overrides={"reflex": {"mode": "control-rate"}})
    critic, recovery, _ = load_reflex_models(config, tiny_models)  # the offline critic selection ran
    env = TaskEnv(config, critic, recovery)
    controller = ResidualController(SAC.load(tiny_policy / "task_policy.zip", device="cpu"), config)
    results = [run_episode(env, controller, SELECTION_SEED_BASE + i) for i in range(2)]
    assert np.mean([r.inserted for r in results]) == selection["selected"]["success_rate"]


def test_checkpoints_rank_by_violations_then_return() -> None:
    from bresa_control.learning.policy_training import _rank

    rows = [{"violation_rate": 0.0, "mean_return": -40.0}, {"violation_rate": 0.05, "mean_return": -10.0},
            {"violation_rate": 0.0, "mean_return": -30.0}, {"violation_rate": 0.1, "mean_return": -35.0}]
    assert max(rows, key=_rank) == rows[2] and min(rows, key=_rank) == rows[3]


def test_policy_training_shows_progress_in_a_log_file(
    tiny_models: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """stderr is not a terminal here (as in a log file or CI): the bar must still be printed."""
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    code = main(["train-policy", "--timesteps", "20", "--data", str(tiny_models.parent / "risk.npz"),
                 "--models-dir", str(models), "--refine-every", "10", "--refine-steps", "1",
                 "--select-every", "20", "--select-episodes", "1", "--tensorboard", str(tmp_path / "tb")])
    assert code == 0
    err = capfd.readouterr().err
    assert "train-policy: 100%" in err and "20/20" in err


def test_train_policy_refuses_an_invalid_setting_before_training(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train-policy", "--timesteps", "0", "--no-progress"])
    assert exit_info.value.code == 2
    assert "train-policy setting timesteps = 0 must be at least 1" in capsys.readouterr().err


def test_the_cost_replay_buffer_hands_out_the_lagrangian_reward_with_the_current_multiplier() -> None:
    import gymnasium

    from bresa_control.learning.sac_lagrangian import CostReplayBuffer

    box = gymnasium.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    buffer = CostReplayBuffer(10, box, box, device="cpu")
    for i in range(4):
        buffer.add(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.array([1.0]), np.array([False]),
                   [{"cost": float(i % 2)}])
    indices = np.arange(4)
    assert buffer._get_samples(indices).rewards.flatten().tolist() == [1.0, 1.0, 1.0, 1.0]
    buffer.lagrange = 2.5  # the multiplier moved after these were stored: samples use the new one
    assert buffer._get_samples(indices).rewards.flatten().tolist() == [1.0, -1.5, 1.0, -1.5]


def test_the_lagrange_multiplier_rises_above_the_cost_limit_and_never_goes_below_zero() -> None:
    from types import SimpleNamespace

    from bresa_control.learning.sac_lagrangian import LagrangeMultiplier

    dual = LagrangeMultiplier(cost_limit=0.5, lr=0.1, initial=1.0, window=2)
    buffer = SimpleNamespace(lagrange=None)
    # What SB3 hands the callback when training starts: the model, its buffer and its logger.
    dual.model = SimpleNamespace(replay_buffer=buffer, logger=SimpleNamespace(record=lambda *_: None))
    dual.end_episode(3.0)  # mean 3.0 > 0.5: lambda += 0.1 * 2.5
    assert dual.value == pytest.approx(1.25) and buffer.lagrange == pytest.approx(1.25)
    for _ in range(30):  # safe episodes: lambda falls, and stops at zero
        dual.end_episode(0.0)
    assert dual.value == 0.0 and buffer.lagrange == 0.0


def test_sac_lagrangian_training_writes_a_policy_the_evaluation_runs(tmp_path: Path) -> None:
    models = tmp_path / "models"
    code = main(["train-sac-lagrangian", "--timesteps", "40", "--learning-starts", "10", "--select-every", "20",
                 "--select-episodes", "1", "--models-dir", str(models), "--tensorboard", str(tmp_path / "tb"),
                 "--no-progress"])
    assert code == 0
    card = read_card(models / "sac_lagrangian" / "task_policy.zip")
    assert card["settings"]["cost_limit"] == 0.1 and card["reflex_during_training"] == "off"
    assert card["lagrange"]["final"] >= 0.0 and card["checkpoint_selection"]["selected"] is not None
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 5\n")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--controller", "sac-lagrangian", "--episodes", "1", "--config", str(short),
                 "--models-dir", str(models), "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["controller"] == "sac-lagrangian"


def test_sac_lagrangian_without_its_policy_is_a_clear_model_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    code = main(["evaluate", "--controller", "sac-lagrangian", "--episodes", "1", "--models-dir", str(tmp_path)])
    assert code == 2
    assert "sac_lagrangian/task_policy.zip does not exist" in capsys.readouterr().err


def test_collected_decisions_record_reward_successor_and_termination(tmp_path: Path) -> None:
    """Format 4: each decision row holds the environment's reward, the observation after it and
    whether the episode ended there; format 5 the spiral search's action before and after it (the
    behaviour's own action when the behaviour is the configured spiral search); a format-3 file
    (without them) still loads."""
    from bresa_control.policies.scripted import SpiralSearch

    config = load_config()
    data = collect_module.collect(config, episodes=3, seed=4, max_steps=8, progress=False, random_fraction=0.0,
                                  nominal_fraction=0.0, policy=SpiralSearch(config), policy_fraction=1.0,
                                  policy_noise=0.1)
    assert data.behaviours == ["policy"] * 3
    out = tmp_path / "risk.npz"
    collect_module.save(out, data, collect_module.metadata(config, data, 4, ["bresa", "collect"], True))
    arrays, meta = collect_module.load(out)
    assert meta["format"] == collect_module.FORMAT == "bresa-risk-data/5"
    episode, obs = arrays["decision_episode"], arrays["decision_observation"]
    same = episode[1:] == episode[:-1]
    assert np.array_equal(arrays["decision_next_observation"][:-1][same], obs[1:][same])  # the successor
    assert np.all(np.isfinite(arrays["decision_reward"])) and arrays["decision_reward"].shape == episode.shape
    assert not arrays["decision_terminated"][:-1][same].any()  # only an episode's last row can end it
    base, next_base = arrays["decision_base_action"], arrays["decision_next_base_action"]
    assert np.array_equal(next_base[:-1][same], base[1:][same])
    # the behaviour is the spiral search with noise 0.1: its action is the recorded spiral's, plus noise
    noise = arrays["decision_action"] - base
    assert 0.03 < float(np.abs(noise[np.abs(base) < 0.9]).mean()) < 0.15
    nominal = collect_module.collect(config, episodes=1, seed=4, max_steps=8, progress=False, random_fraction=0.0,
                                     nominal_fraction=1.0)
    assert nominal.behaviours == ["nominal"] and all(np.array_equal(d[1], d[7]) for d in nominal.decisions)
    # format 3: the same file without the recorded arrays loads, and has none of them
    with np.load(out) as archive:
        old = {k: archive[k] for k in archive.files
               if k not in collect_module.RECORDED_ARRAYS + collect_module.BASE_ARRAYS}
    old["meta"] = np.array(json.dumps({**meta, "format": "bresa-risk-data/3"}))
    np.savez(tmp_path / "old.npz", **old)
    arrays3, _ = collect_module.load(tmp_path / "old.npz")
    assert not set(collect_module.RECORDED_ARRAYS + collect_module.BASE_ARRAYS) & set(arrays3)
    with pytest.raises(ValueError, match="a policy share above 0 needs the policy"):
        collect_module.collect(config, episodes=1, seed=0, max_steps=2, progress=False, policy_fraction=0.2)


def test_bresa_feasibility_trains_beside_its_gate_and_evaluates_with_it(tiny_models: Path, tmp_path: Path) -> None:
    """The feasibility-gated method end to end at smoke size: train-seeds writes its task policy in
    bresa_feasibility/ beside the feasibility critic and recovery it trained with (never over
    Bresa's task_policy.zip), and evaluate --controller bresa-feasibility runs it with that gate."""
    data = next(tiny_models.parent.glob("risk.npz"))
    seeds = tmp_path / "seeds"
    assert main(["train-seeds", "--method", "bresa-feasibility", "--seeds", "1", "--timesteps", "30",
                 "--learning-starts", "10", "--select-every", "15", "--select-episodes", "1", "--data", str(data),
                 "--models-dir", str(tiny_models), "--out", str(seeds), "--tensorboard", str(tmp_path / "tb"),
                 "--no-progress"]) == 0
    folder = seeds / "bresa-feasibility" / "seed1" / "bresa_feasibility"
    card = read_card(folder / "task_policy.zip")
    assert card["config"]["reflex"]["gate"] == "feasibility" and card["seed"] == 1
    assert (folder / "feasibility_critic.pt").is_file() and (folder / "recovery_policy.pt").is_file()
    assert not (folder.parent / "task_policy.zip").exists()
    assert not list(folder.parent.glob("*.pt")), "the critic and recovery are kept beside the policy only"
    out = tmp_path / "eval.json"
    short = tmp_path / "short.yaml"
    short.write_text("env:\n  max_episode_steps: 4\n")
    assert main(["evaluate", "--controller", "bresa-feasibility", "--episodes", "1", "--config", str(short),
                 "--models-dir", str(seeds / "bresa-feasibility" / "seed1"), "--json", str(out), "--plot",
                 str(tmp_path / "p.png"), "--no-progress"]) == 0
    assert json.loads(out.read_text())["controller"] == "bresa-feasibility"
