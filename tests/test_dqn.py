"""The DQN workload (agents/dqn.py) on tiny budgets: metrics, checkpoints, clear errors."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.dqn import DQN
from lab.errors import SpecError
from tests.workload_harness import make

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "num_envs": 2, "fc_layers": [16], "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40,
    "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2, "target_update_period": 4,
    "epsilon_decay_steps": 100, "env_steps_per_step": 100, "eval_episodes": 2, "max_env_steps": 200,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny DQN after its whole budget (two steps), with the metrics of each step."""
    workload = make("dqn", {**TINY, "seed": 1}, trial_dir=str(tmp_path_factory.mktemp("dqn")))
    results = [workload.step(), workload.step()]
    yield workload, results
    workload.close()


def test_module_import_is_cheap():
    code = "import sys, agents.dqn; sys.exit('tensorflow' in sys.modules or 'gymnasium' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_steps_return_finite_metrics_and_stop_at_budget(trained):
    _, (first, second) = trained
    for result in (first, second):
        for key in ("eval/average_return", "eval/episode_length", "train/loss", "train/episode_return",
                    "train/epsilon", "charts/sps"):
            assert math.isfinite(result[key]), key
        assert result["eval/average_return"] > 0
    assert first["charts/env_steps"] >= 100 and not first["done"]
    assert second["charts/env_steps"] >= 200 and second["done"] is True
    assert second["train/epsilon"] == pytest.approx(DQN.Config.epsilon_end)


def test_restore_in_fresh_instance_gives_same_greedy_policy(trained, tmp_path):
    workload, _ = trained
    workload.save(str(tmp_path))
    fresh = make("dqn", {**TINY, "seed": 7})  # other initial weights
    try:
        observations = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
        fresh.restore(str(tmp_path))
        np.testing.assert_array_equal(fresh.greedy_actions(observations), workload.greedy_actions(observations))
        assert fresh.q_network(observations)[0].numpy() == pytest.approx(workload.q_network(observations)[0].numpy())
        assert int(fresh.env_steps.numpy()) == int(workload.env_steps.numpy())
        assert int(fresh.train_step.numpy()) == int(workload.train_step.numpy())
        fresh.config.max_env_steps = 300  # training goes on from the restored counters
        assert fresh.step()["charts/env_steps"] >= 300
    finally:
        fresh.close()


def test_dueling_head_and_plain_dqn_train(tmp_path):
    workload = make("dqn", {**TINY, "dueling": True, "double_dqn": False})
    try:
        result = workload.step()
        assert math.isfinite(result["train/loss"]) and result["eval/average_return"] > 0
        with pytest.raises(FileNotFoundError, match="no DQN checkpoint"):
            workload.restore(str(tmp_path))
    finally:
        workload.close()


@pytest.mark.parametrize("params, match", [
    ({"gamma": 1.5}, "gamma must be in"),
    ({"num_envs": 8, "collect_steps_per_iteration": 4}, "collect_steps_per_iteration .* at least num_envs"),
    ({"fc_layers": []}, "fc_layers"),
    ({"epsilon_end": -0.1}, "epsilon_end"),
])
def test_impossible_config_is_refused(params, match):
    with pytest.raises(SpecError, match=match):
        DQN.make_config(params)


def test_unknown_env_id_suggests_close_names():
    with pytest.raises(SpecError, match=r"unknown Gymnasium environment 'CartPol-v1' \(did you mean 'CartPole-v1'"):
        make("dqn", {**TINY, "env_id": "CartPol-v1"})


def test_continuous_actions_are_refused():
    with pytest.raises(SpecError, match=r"DQN needs one discrete action, but 'Pendulum-v1' has Box actions"):
        make("dqn", {**TINY, "env_id": "Pendulum-v1"})


def test_image_observations_are_refused():
    import gymnasium
    from gymnasium import spaces

    class ImageEnv(gymnasium.Env):
        observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        action_space = spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros((8, 8, 3), np.uint8), {}

        def step(self, action):
            return np.zeros((8, 8, 3), np.uint8), 0.0, True, False, {}

    if "LabTest/Image-v0" not in gymnasium.registry:
        gymnasium.register("LabTest/Image-v0", entry_point=ImageEnv, max_episode_steps=10)
    with pytest.raises(SpecError, match=r"MLP networks need flat vector observations.*\(8, 8, 3\)"):
        make("dqn", {**TINY, "env_id": "LabTest/Image-v0"})
