"""The tree's layers hold: robot-PC nodes stay lean, and the public API is what the README says."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import bresa_control

# What a robot PC next to the arm must never load: the simulator, gymnasium, the training stack,
# progress bars, and the simulation, learning and evaluation layers of this package.
FORBIDDEN = ("mujoco", "gymnasium", "stable_baselines3", "tqdm", "franky_sim", "bresa_control.simulation",
             "bresa_control.learning", "bresa_control.app")

# Each robot-PC console script's module, and what its node builds at start-up (without ROS).
NODE_START = {
    "bresa_control.ros.critic_node": (
        "from bresa_control.runtime.safety_loop import SafetyLoop\n"
        "from bresa_control.safety.models import load_reflex_models\n"
        "config = load_config(overrides={'reflex': {'mode': 'control-rate'}})\n"
        "critic, recovery, _ = load_reflex_models(config)\n"
        "SafetyLoop(config, critic, recovery, np.array([0.55, 0.0, 0.035]))\n"),
    "bresa_control.ros.policy_node": (
        "from bresa_control.common.cards import models_folder\n"
        "from bresa_control.policies.residual import ResidualController, load_task_policy\n"
        "from bresa_control.runtime.policy_loop import PolicyLoop\n"
        "config = load_config()\n"
        "PolicyLoop(config, ResidualController(load_task_policy(models_folder()), config), np.zeros(3))\n"),
    "bresa_control.ros.franka_arm_node": (  # composed: the critic's models and loop in the arm's loop
        "from bresa_control.control.robot import RobotModel\n"
        "from bresa_control.runtime.franka_loop import FrankaArmLoop\n"
        "from bresa_control.runtime.safety_loop import InLoopCritic, SafetyLoop\n"
        "from bresa_control.safety.models import load_reflex_models\n"
        "import bresa_control.runtime.franka_robot, bresa_control.runtime.realtime\n"
        "config = load_config(overrides={'reflex': {'mode': 'control-rate'}})\n"
        "critic, recovery, _ = load_reflex_models(config)\n"
        "robot = RobotModel.from_config(config)\n"
        "loop = SafetyLoop(config, critic, recovery, np.array([0.55, 0.0, 0.035]))\n"
        "FrankaArmLoop(config, robot, critic=InLoopCritic(loop, robot))\n"),
}


def _loaded_after(code: str) -> list[str]:
    """Modules a fresh interpreter loads for ``code`` beyond those ``import torch`` loads (torch
    itself imports tqdm, through torch.hub: that is torch's, not ours)."""
    script = ("import sys, json\nimport numpy as np\nimport torch\nbefore = set(sys.modules)\n"
              "from bresa_control.common.config import load_config\n"
              f"{code}\nprint(json.dumps(sorted(set(sys.modules) - before)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", sorted(NODE_START))
def test_robot_pc_nodes_load_no_simulator_training_or_evaluation_code(module: str) -> None:
    loaded = _loaded_after(f"import {module}\n{NODE_START[module]}")
    assert module in loaded
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)]
    assert not offending, f"{module} loads {offending[:10]}"


def test_public_api_names_the_classes_a_user_needs() -> None:
    from bresa_control.control.impedance import CartesianImpedanceController
    from bresa_control.safety.reflex import Reflex
    from bresa_control.simulation.env import TaskEnv

    assert bresa_control.TaskEnv is TaskEnv and bresa_control.Reflex is Reflex
    assert bresa_control.CartesianImpedanceController is CartesianImpedanceController
    assert set(bresa_control.__all__) == set(bresa_control._PUBLIC) | {"ENV_ID"}
    with pytest.raises(AttributeError, match="no attribute 'PegInsert'"):
        bresa_control.PegInsert  # noqa: B018


def test_gymnasium_make_builds_the_environment() -> None:
    import gymnasium

    env = gymnasium.make("bresa_control/PegInsertion-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (22,) and env.action_space.shape == (7,)
    obs, reward, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert np.all(np.isfinite(obs)) and info["cost"] in (0.0, 1.0) and not terminated
    env.close()
