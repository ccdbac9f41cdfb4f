"""FISOR: the reachability target, the expectile loss, the policy weights, the diffusion policy, the
reward rebuilt from decision rows, training, export and the fail-closed run-time loader."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bresa_control.common.cards import ModelError, card_path
from bresa_control.common.config import load_config
from bresa_control.contract import OBSERVATION_LABELS
from bresa_control.learning import collect
from bresa_control.learning.fisor import (
    FisorModels,
    FisorTraining,
    RewardTerms,
    decision_reward,
    decision_transitions,
    expectile_loss,
    export_fisor,
    h_labels,
    load_decisions,
    policy_weights,
    reachability_target,
    train_fisor,
)
from bresa_control.policies.fisor import (
    FISOR_FILE,
    STATE_LABELS,
    STATE_SIZE,
    DiffusionPolicy,
    FisorArchitecture,
    FisorPolicy,
    NoiseModel,
    load_fisor,
    select_action,
    vp_betas,
)
from bresa_control.policies.scripted import SpiralSearch

GAMMA = 0.99
SCALE = 25.0
TINY: dict[str, Any] = dict(critic_hidden=(32, 32), actor_hidden=32, actor_blocks=1, time_features=8,
                            time_hidden=(16, 16), actor_batch_size=64, actor_updates=1, critic_batch_size=64, samples=4)
Trained = tuple[FisorModels, dict[str, Any]]
TERMS = RewardTerms(distance_weight=10.0, force_weight=1.0, time_weight=0.3, success_reward=10.0,
                    success_depth_m=0.02, max_force_n=30.0, fault_force_n=40.0)
TIP_Z = OBSERVATION_LABELS.index("tip_z_rel_m")
FORCE_Z = OBSERVATION_LABELS.index("force_z_n")
TORQUE_Z = OBSERVATION_LABELS.index("torque_z_nm")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small tensors on a busy 2-core machine: a second thread only waits (15x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- the reachability target ----------------------------------------------------------------


def test_reachability_target_converges_to_the_closed_form_on_a_chain() -> None:
    """Four decisions, the third violating, the fourth ending the episode: iterating the target
    (one action per state, so V_h = Q_h) reaches -1 + gamma^n (cost_scale + 1) n rows before
    the violation, cost_scale at it and h = -1 at the terminal row."""
    h = torch.as_tensor(h_labels(np.array([0, 0, 1, 0]), SCALE))
    terminal = torch.tensor([False, False, False, True])
    q = torch.zeros(4)
    for _ in range(200):
        v_next = torch.cat([q[1:], torch.zeros(1)])
        q = reachability_target(h, v_next, GAMMA, terminal)
    expected = torch.tensor([-1 + GAMMA**2 * (SCALE + 1), -1 + GAMMA * (SCALE + 1), SCALE, -1.0])
    torch.testing.assert_close(q, expected)
    assert (q[:3] > 0).all() and q[3] < 0  # infeasible up to the violation, the terminal row feasible


def test_reachability_target_of_safe_rows_is_minus_one_and_never_below_h() -> None:
    h = -torch.ones(3)
    # a safe future keeps a safe row at -1 (the fixed point of (1 - g)(-1) + g max(-1, -1))
    assert torch.allclose(reachability_target(h, -torch.ones(3), GAMMA, torch.zeros(3, dtype=torch.bool)), h)
    # a value below h is cut at h: max(h, V_h(s'))
    low = reachability_target(h, torch.full((3,), -50.0), GAMMA, torch.zeros(3, dtype=torch.bool))
    assert torch.allclose(low, h)
    # a violating terminal row is h itself
    assert reachability_target(torch.tensor([SCALE]), torch.tensor([-1.0]), GAMMA, torch.tensor([True])) == SCALE


# ---- the expectile loss ---------------------------------------------------------------------


def test_expectile_loss_is_half_mse_at_one_half_and_asymmetric() -> None:
    diff = torch.tensor([-2.0, -0.5, 0.3, 1.5])
    assert torch.isclose(expectile_loss(diff, 0.5), 0.5 * (diff**2).mean())
    up, down = torch.tensor([1.0]), torch.tensor([-1.0])
    assert torch.isclose(expectile_loss(up, 0.9), torch.tensor(0.9))  # target above the fit: weight tau
    assert torch.isclose(expectile_loss(down, 0.9), torch.tensor(0.1))  # below: 1 - tau
    # fitted to samples, tau 0.9 lands near the top, 0.1 (how V_h is fitted) near the bottom
    samples = torch.arange(10.0)
    grid = torch.linspace(0.0, 9.0, 901)

    def fit(tau: float) -> float:
        return float(grid[torch.argmin(torch.stack([expectile_loss(samples - v, tau) for v in grid]))])

    assert fit(0.9) > 6.5 and fit(0.1) < 2.5 and abs(fit(0.5) - 4.5) < 0.02


# ---- the policy weights ---------------------------------------------------------------------


def test_policy_weights_inside_and_outside_the_feasible_region() -> None:
    #            infeasible, lowers Q_h | infeasible, far lower | feasible, stays | feasible, big advantage | leaves
    q_r = torch.tensor([0.0, 0.0, 0.2, 10.0, 5.0])
    v_r = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0])
    q_h = torch.tensor([0.5, -100.0, -1.0, -1.0, 0.3])
    v_h = torch.tensor([1.0, 1.0, -0.5, -0.5, -0.5])
    w = policy_weights(q_r, v_r, q_h, v_h, reward_temperature=3.0, cost_temperature=5.0, reward_clip=100.0,
                       cost_clip=150.0)
    expected = torch.tensor([float(np.exp(5.0 * 0.5)), 150.0, float(np.exp(3.0 * -0.3)), 100.0, 0.0])
    torch.testing.assert_close(w, expected)
    # outside the region the reward critics do not matter; inside, Q_h does not (while <= 0)
    w2 = policy_weights(q_r + 7.0, v_r - 3.0, q_h, v_h)
    assert w2[0] == w[0] and w2[1] == w[1] and w2[4] == 0.0
    assert torch.isfinite(policy_weights(torch.tensor([1e6]), torch.zeros(1), -torch.ones(1), -torch.ones(1))).all()


# ---- the diffusion policy -------------------------------------------------------------------


def _tiny_diffusion(seed: int = 0) -> DiffusionPolicy:
    torch.manual_seed(seed)
    arch = FisorArchitecture(observation_size=22, actor_hidden=32, actor_blocks=1, time_features=8,
                             time_hidden=(16, 16))
    return DiffusionPolicy(NoiseModel(arch), steps=5)


def test_vp_schedule_and_sampler_shape_bounds_and_seed() -> None:
    betas = vp_betas(5)
    assert betas.shape == (5,) and ((betas > 0) & (betas < 1)).all() and (betas[1:] > betas[:-1]).all()
    policy = _tiny_diffusion().eval()
    with torch.no_grad():
        one = policy.sample(torch.randn(22), 50, torch.Generator().manual_seed(1))
        batch = policy.sample(torch.randn(3, 22), 4, torch.Generator().manual_seed(1))
        again = policy.sample(torch.zeros(22), 6, torch.Generator().manual_seed(2))
        same = policy.sample(torch.zeros(22), 6, torch.Generator().manual_seed(2))
    assert one.shape == (50, 7) and batch.shape == (3, 4, 7)
    assert one.abs().max() <= 1.0 and batch.abs().max() <= 1.0
    assert torch.equal(again, same)
    assert policy.loss(torch.randn(8, 22), torch.rand(8, 7), torch.zeros(8)) == 0.0  # zero weight, no loss


def test_diffusion_policy_learns_a_state_dependent_action() -> None:
    """Weighted denoising on a = +0.6 (first observation value > 0) or -0.6: samples follow."""
    policy = _tiny_diffusion()
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        s = torch.randn(128, 22, generator=generator)
        a = torch.where(s[:, :1] > 0, 0.6, -0.6).expand(-1, 7)
        loss = policy.loss(s, a, torch.ones(128), generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    policy.eval()
    with torch.no_grad():
        up = policy.sample(torch.full((22,), 1.0), 64, generator).mean()
        down = policy.sample(torch.full((22,), -1.0), 64, generator).mean()
    assert up > 0.4 and down < -0.4


def test_select_action_follows_the_rule() -> None:
    q_h = torch.tensor([0.5, -2.0, -0.1, 3.0])
    q_r = torch.tensor([1.0, -5.0, 2.0, 9.0])
    assert select_action(q_h, q_r, "min-qh") == 1
    assert select_action(q_h, q_r, "max-qr") == 3
    assert select_action(q_h, q_r, "feasible-max-qr") == 2  # best reward among Q_h <= 0
    assert select_action(q_h + 10.0, q_r, "feasible-max-qr") == 1  # none feasible: lowest Q_h
    with pytest.raises(ValueError, match="selection"):
        select_action(q_h, q_r, "best")


# ---- the reward and the transitions ---------------------------------------------------------


def _obs(tip_z: float = 0.0, force_z: float = 0.0) -> np.ndarray:
    obs = np.zeros(len(OBSERVATION_LABELS), dtype=np.float32)
    obs[TIP_Z], obs[FORCE_Z] = tip_z, force_z
    return obs


def test_decision_reward_terms() -> None:
    start = _obs(0.01)
    rows = np.stack([_obs(0.0, 15.0), _obs(-0.02), _obs(0.0, 6.0)])
    reward = decision_reward(np.stack([start] * 3), rows, np.array([0, 0, 1]), TERMS)
    # 2 cm above the goal, 15 N of 30 N, time
    assert reward[0] == pytest.approx(-10.0 * 0.02 - 0.5 - 0.3, abs=1e-6)
    assert reward[1] == pytest.approx(-0.3 + 10.0, abs=1e-6)  # at the goal depth: inserted
    assert reward[2] == pytest.approx(-10.0 * 0.02 - 1.0 - 0.3, abs=1e-6)  # violated: peak at least F_max


def _episodes(lengths: list[int], deep_end: list[bool], fault_end: list[bool]) -> dict[str, np.ndarray]:
    obs, cost, episode = [], [], []
    for e, (n, deep, fault) in enumerate(zip(lengths, deep_end, fault_end)):
        for i in range(n):
            obs.append(_obs(-0.019 if (deep and i == n - 1) else 0.005))
            cost.append(1 if (fault and i == n - 1) else 0)
            episode.append(e)
    return {"decision_observation": np.array(obs), "decision_action": np.zeros((len(obs), 7), np.float32),
            "decision_cost": np.array(cost, np.uint8), "decision_episode": np.array(episode, np.int32)}


def test_decision_transitions_tell_insertions_faults_and_truncations() -> None:
    meta = {"config": {"env": {"max_episode_steps": 200, "distance_reward_weight": 10.0, "force_reward_weight": 1.0,
                               "time_reward_weight": 0.3, "success_reward": 10.0, "success_depth_m": 0.02},
                       "safety": {"max_force_n": 30.0, "arm_fault_force_n": 40.0}},
            "command": ["bresa", "collect", "--max-steps", "4"]}
    # inserted after 3, faulted after 2, truncated at the limit (4) with the tip deep
    arrays = _episodes([3, 2, 4], [True, False, True], [False, True, False])
    data = decision_transitions(arrays, meta)
    last = np.array([2, 4, 8])
    assert data.terminal.tolist() == [False, False, True, False, True, False, False, False, False]
    assert data.has_target.tolist() == [True] * 8 + [False]  # the truncated row has no target
    assert data.reward[2] > 9.0 and data.reward[4] < -1.3 and (data.reward[[0, 1, 3]] < 0).all()
    assert np.array_equal(data.next_observation[0], arrays["decision_observation"][1])
    assert data.counts["inserted_episodes"] == 1 and data.counts["fault_episodes"] == 1
    assert (data.source["reward"], data.counts["episodes"], last.size) == (
        "approximated from the rows (decision_reward)", 3, 3)
    # recorded arrays win
    recorded = dict(arrays, decision_reward=np.full(9, 2.5, np.float32),
                    decision_next_observation=arrays["decision_observation"][::-1].copy(),
                    decision_terminated=np.zeros(9, np.uint8))
    data = decision_transitions(recorded, meta)
    assert (data.reward == 2.5).all() and data.has_target.all() and not data.terminal.any()
    assert data.source == {"next_observation": "recorded", "terminal": "recorded", "reward": "recorded"}
    # FISOR's state is the observation and the spiral's action: data without the spiral's is refused
    with pytest.raises(ValueError, match=r"needs \['decision_base_action', 'decision_next_base_action'\]"):
        data.states()
    spiral = np.tile(np.linspace(-1, 1, 7, dtype=np.float32), (9, 1))
    data = decision_transitions(dict(recorded, decision_base_action=spiral, decision_next_base_action=-spiral), meta)
    state, next_state = data.states()
    assert state.shape == (9, STATE_SIZE) == next_state.shape
    assert np.array_equal(state[:, -7:], spiral) and np.array_equal(next_state[:, -7:], -spiral)
    assert np.array_equal(next_state[:, :22], recorded["decision_next_observation"])
    with pytest.raises(ValueError, match=r"spiral's actions have shapes"):
        decision_transitions(dict(recorded, decision_base_action=spiral[:, :6], decision_next_base_action=spiral), meta)


# ---- training, export, run-time loading -----------------------------------------------------


def _synthetic(episodes: int = 30, length: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Random observations and actions in two kinds of episode, told apart by torque_z (+1 or -1):
    in the odd ones force_z climbs to 3 N and the last decision violates (an arm fault ends the
    episode); the even ones never violate (and are cut short, their last row without a target)."""
    rng = np.random.default_rng(seed)
    rows = episodes * length
    obs = rng.normal(scale=0.1, size=(rows, len(OBSERVATION_LABELS))).astype(np.float32)
    obs[:, TIP_Z] = np.abs(obs[:, TIP_Z]) * 0.1 + 0.005  # never deep: no insertion
    episode = np.repeat(np.arange(episodes), length).astype(np.int32)
    danger = episode % 2 == 1
    obs[:, TORQUE_Z] += np.where(danger, 1.0, -1.0)
    obs[danger, FORCE_Z] += np.tile(np.linspace(0.0, 3.0, length), episodes // 2).astype(np.float32)
    cost = (danger & (np.arange(rows) % length == length - 1)).astype(np.uint8)
    base = rng.uniform(-1, 1, (rows, 7)).astype(np.float32)  # the spiral's action: noise here
    return {"decision_observation": obs, "decision_action": rng.uniform(-1, 1, (rows, 7)).astype(np.float32),
            "decision_cost": cost, "decision_episode": episode, "decision_base_action": base,
            "decision_next_base_action": np.roll(base, -1, axis=0)}


@pytest.fixture(scope="module")
def trained() -> Trained:
    # a 12-decision horizon and quick targets, so that 300 steps propagate h through an episode
    settings = FisorTraining(steps=300, gamma=0.9, polyak=0.05, critic_lr=1e-3, value_lr=1e-3, label_decisions=12,
                             seed=0, **TINY)
    return train_fisor(_synthetic(), settings, progress=False)


def test_training_learns_feasibility_and_reports_held_out_figures(trained: Trained) -> None:
    _, metrics = trained
    # V_h ranks the rows of episodes heading for a violation above the others, and V_h > 0 tells them
    assert metrics["v_h_auroc_holdout"] > 0.9
    confusion = metrics["v_h_confusion_holdout"]
    assert confusion["true_positive_rate"] > 0.8 and confusion["false_positive_rate"] < 0.25
    assert set(metrics["critic_losses_holdout"]) == {"v_r", "q_r", "v_h", "q_h"}
    assert all(np.isfinite(v) for v in metrics["critic_losses_holdout"].values())
    assert metrics["holdout_episodes"] == 6 and metrics["data"]["fault_episodes"] == 15
    assert metrics["data"]["rows_without_target"] == 15  # the safe episodes' cut-off ends


def test_export_load_and_act(trained: Trained, tmp_path: Path) -> None:
    models, metrics = trained
    path = export_fisor(models, tmp_path, {"command": ["bresa", "train-fisor"], "seed": 0, "evaluation": metrics})
    assert path == tmp_path / FISOR_FILE
    card = json.loads(card_path(path).read_text())
    assert card["kind"] == "fisor_policy" and card["selection"] == "min-qh" and card["samples"] == 4
    config = load_config()
    policy = FisorPolicy(tmp_path, config, seed=3)
    obs = _synthetic(1, 1, seed=5)["decision_observation"][0]
    first = policy.act(obs)
    assert first.shape == (7,) and first.dtype == np.float32 and np.abs(first).max() <= 1.0
    policy.reset()
    assert np.array_equal(policy.act(obs), first)  # same seed, same episode start: same action
    assert np.array_equal(FisorPolicy(tmp_path, config, seed=3).act(obs), first)
    # the chosen sample has the lowest Q_h of the samples drawn, at the state (observation, spiral's action)
    networks, card = load_fisor(tmp_path)
    assert card["observation_labels"] == list(STATE_LABELS)
    with torch.no_grad():
        state = networks.scale(torch.as_tensor(np.concatenate([obs, SpiralSearch(config).act(obs)])))
        samples = networks.policy.sample(state, 4, torch.Generator().manual_seed(3))
        q_h, _ = networks.score(state, samples)
    assert np.allclose(samples[int(torch.argmin(q_h))].numpy(), first)
    assert policy.last["q_h"] == pytest.approx(float(q_h.min()), abs=1e-5)
    with pytest.raises(ValueError, match="machine paths"):
        export_fisor(models, tmp_path, {"data": {"file": str(tmp_path / "x.npz")}})


def test_loader_fails_closed(trained: Trained, tmp_path: Path) -> None:
    models, _ = trained
    with pytest.raises(ModelError, match=str(tmp_path / FISOR_FILE)):
        FisorPolicy(tmp_path, load_config())  # nothing there
    export_fisor(models, tmp_path, {"seed": 0})
    card_file = card_path(tmp_path / FISOR_FILE)
    card = json.loads(card_file.read_text())

    def broken(**changes: object) -> str:
        card_file.write_text(json.dumps({**card, **changes}))
        with pytest.raises(ModelError) as error:
            load_fisor(tmp_path)
        return str(error.value)

    message = broken(architecture={**card["architecture"], "actor_hidden": 64})
    assert "actor_hidden: card 64, model 32" in message and FISOR_FILE in message
    assert "state and action sizes (21, 7)" in broken(observation_size=21)
    assert "state labels" in broken(observation_labels=card["observation_labels"][:-1])
    # a model of the first format (the observation alone, 22 values) is refused by name
    assert "scripted action" in broken(observation_labels=list(OBSERVATION_LABELS))
    assert "'safety_critic'" in broken(kind="safety_critic")
    card_file.write_text(json.dumps(card))
    (tmp_path / FISOR_FILE).write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="cannot read the FISOR model"):
        load_fisor(tmp_path)
    card_file.unlink()
    with pytest.raises(ModelError, match="card"):
        load_fisor(tmp_path)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="selection"):
        FisorTraining(selection="best")
    with pytest.raises(ValueError, match="steps"):
        FisorTraining(steps=0)


def test_from_collected_data(tmp_path: Path) -> None:
    """bresa collect's file (format 5), through load_decisions, a few steps, export, and one decision."""
    config = load_config()
    data = collect.collect(config, episodes=3, seed=0, max_steps=5, progress=False)
    file = tmp_path / "risk.npz"
    collect.save(file, data, collect.metadata(config, data, 0, ["bresa", "collect", "--max-steps", "5"], True))
    arrays, meta = load_decisions(file)
    models, metrics = train_fisor(arrays, FisorTraining(steps=20, **TINY), progress=False, meta=meta)
    assert metrics["data"]["rows"] == 15 and metrics["data"]["terminal_rows"] == 0  # three episodes cut at 5
    # format 4 records reward, successor and termination, format 5 the spiral's action: nothing approximated
    assert set(metrics["sources"].values()) == {"recorded"}
    export_fisor(models, tmp_path, {"data": {"file": file.name}})
    action = FisorPolicy(tmp_path, config).act(arrays["decision_observation"][0])
    assert action.shape == (7,) and np.abs(action).max() <= 1.0


def _tiny_flags() -> list[str]:
    """TINY as command-line flags."""
    flags: list[str] = []
    for name, value in TINY.items():
        flags += ["--" + name.replace("_", "-"), *(map(str, value) if isinstance(value, tuple) else [str(value)])]
    return flags


def test_train_fisor_then_evaluate_and_train_seeds_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wiring: bresa train-fisor writes the model and a card with held-out figures, bresa
    evaluate --controller fisor runs it, train-seeds --method fisor writes a seed's folder."""
    from bresa_control.app.cli import main
    from bresa_control.common.config import load_config

    config = load_config()
    data = collect.collect(config, episodes=3, seed=0, max_steps=5, progress=False)
    file = tmp_path / "risk.npz"
    collect.save(file, data, collect.metadata(config, data, 0, ["bresa", "collect", "--max-steps", "5"], True))
    models = tmp_path / "models"
    assert main(["train-fisor", "--steps", "20", "--evaluate-episodes", "1", "--data", str(file), "--models-dir",
                 str(models), "--no-progress", *_tiny_flags()]) == 0
    card = json.loads(card_path(models / "fisor" / FISOR_FILE).read_text())
    assert card["kind"] == "fisor_policy" and card["seed"] == 0 and card["command"][:2] == ["bresa", "train-fisor"]
    assert card["selection_episodes"]["episodes"] == 1 and "v_h_auroc_holdout" in card["holdout"]
    assert card["training"]["steps"] == 20 and card["data"]["format"] == collect.FORMAT
    assert "fisor, seed 0" in capsys.readouterr().out

    result = tmp_path / "fisor.json"
    assert main(["evaluate", "--controller", "fisor", "--episodes", "1", "--models-dir", str(models), "--json",
                 str(result), "--plot", str(tmp_path / "fisor.png"), "--no-progress"]) == 0
    document = json.loads(result.read_text())
    assert document["controller"] == "fisor" and document["episodes"] == 1 and document["complete"]

    assert main(["train-seeds", "--method", "fisor", "--seeds", "1", "--steps", "10", "--evaluate-episodes", "1",
                 "--data", str(file), "--out", str(tmp_path / "seeds"), "--no-progress", *_tiny_flags()]) == 0
    assert json.loads(card_path(tmp_path / "seeds/fisor/seed1/fisor" / FISOR_FILE).read_text())["seed"] == 1
    # a setting FISOR does not have is refused by name, before anything runs
    with pytest.raises(SystemExit) as stop:
        main(["train-seeds", "--method", "fisor", "--seeds", "2", "--timesteps", "10", "--data", str(file),
              "--out", str(tmp_path / "seeds")])
    assert stop.value.code == 2 and "fisor has no setting --timesteps" in capsys.readouterr().err
    assert not (tmp_path / "seeds/fisor/seed2").exists()


def test_the_task_policy_by_name_loads_fisor_and_refuses_what_it_cannot_vouch_for(
    trained: Trained, tmp_path: Path
) -> None:
    """What the task_policy node runs for policy:=fisor, and its failures (the node turns them
    into a startup error)."""
    from bresa_control.common.config import load_config
    from bresa_control.policies.by_name import POLICY_DIRS, load_policy

    config = load_config()
    folder = tmp_path / POLICY_DIRS["fisor"]
    with pytest.raises(ModelError, match="does not exist"):
        load_policy("fisor", config, folder)
    folder.mkdir()
    export_fisor(trained[0], folder, {"seed": 0})
    assert isinstance(load_policy("fisor", config, folder), FisorPolicy)
    with pytest.raises(ValueError, match="unknown task policy 'diffusion'"):
        load_policy("diffusion", config, folder)


def test_runtime_policy_loads_no_simulator_or_training_code() -> None:
    code = ("import sys, bresa_control.policies.fisor; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mujoco', 'gymnasium', 'stable_baselines3') "
            "or m.startswith(('bresa_control.learning', 'bresa_control.simulation', 'bresa_control.app'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_feasibility_critic_learns_on_ticks_where_the_feasible_region_ends() -> None:
    """The gate's critic on synthetic ticks: the first state and the last action feature say
    whether the episode heads for a violation (+1: one at its 20th tick; -1: never); Q_h > 0 must
    tell them apart (the gate fires on every tick heading for the violation, on none of the others)."""
    from bresa_control.learning.feasibility import train_feasibility
    from bresa_control.learning.settings import FeasibilityTraining
    from bresa_control.safety.risk_features import FEATURE_SIZE

    rng = np.random.default_rng(0)
    episodes, length = 40, 20
    features = rng.normal(scale=0.1, size=(episodes * length, FEATURE_SIZE)).astype(np.float32)
    episode = np.repeat(np.arange(episodes), length).astype(np.int32)
    danger = episode % 2 == 1
    features[:, 0] = features[:, -1] = np.where(danger, 1.0, -1.0)
    cost = (danger & (np.arange(len(episode)) % length == length - 1)).astype(np.uint8)
    settings = FeasibilityTraining(steps=400, batch_size=128, hidden=32, gamma_risk=0.9, polyak=0.05,
                                   learning_rate=1e-3, positive_fraction=0.2)
    critic, metrics = train_feasibility({"features": features, "cost": cost, "episode": episode}, settings, seed=0,
                                        progress=False)
    with torch.no_grad():
        q_h = critic(torch.as_tensor(features)).numpy()
    # the reachability value of a violation 19 ticks on is -1 + 0.9^19 * 26 = 2.5 > 0: every tick
    # of a dangerous episode is outside; the safe action stays inside (h = -1)
    assert np.mean(q_h[danger] > 0) > 0.9 and np.mean(q_h[~danger] > 0) < 0.1
    assert metrics["fires_above"] == 0.0 and metrics["holdout_episodes"] == 8


def test_the_shipped_fisor_policy_evaluates_under_the_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """models/fisor/ loads under the shipped config, its card says how it was made and what it
    scored on held-out rows and episodes, and ``bresa evaluate --controller fisor`` runs it from the
    default models folder: one nominal episode, with the policy's actions through the impedance
    controller, whole and under F_max (episode seed 0 peaks near 10 N)."""
    from bresa_control.app.cli import main
    from bresa_control.common.cards import read_card
    from bresa_control.common.paths import find_data
    from bresa_control.policies.by_name import load_policy

    config = load_config()
    folder = find_data("models") / "fisor"
    assert isinstance(load_policy("fisor", config, folder), FisorPolicy)
    card = read_card(folder / FISOR_FILE)
    assert card["command"][:2] == ["bresa", "train-fisor"] and card["task"] == "peg-insertion"
    assert card["data"]["format"] == collect.FORMAT and card["observation_labels"] == list(STATE_LABELS)
    assert 0.5 < card["holdout"]["v_h_auroc_holdout"] <= 1.0 and card["selection_episodes"]["episodes"] == 20
    result = tmp_path / "fisor.json"
    assert main(["evaluate", "--controller", "fisor", "--episodes", "1", "--json", str(result), "--no-progress"]) == 0
    document = json.loads(result.read_text())
    assert document["controller"] == "fisor" and document["complete"] and document["episodes"] == 1
    episode = document["per_episode"][0]
    assert not episode["violation"] and 0.0 < episode["peak_force_n"] < config.safety.max_force_n
    assert "| fisor | nominal | 1 |" in capsys.readouterr().out
