"""The PPO workload (agents/ppo.py) on tiny budgets: metrics, checkpoints, one traced update, clear errors."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.ppo import PPO
from lab.errors import SpecError
from tests.workload_harness import make

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 2, "num_minibatches": 2,
    "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 64, "eval_episodes": 2,
    "max_env_steps": 128,
}
LOSSES = ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy_loss")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PPO on CartPole after its whole budget (two steps), with the metrics of each step."""
    workload = make("ppo", {**TINY, "seed": 1}, trial_dir=str(tmp_path_factory.mktemp("ppo")))
    results = [workload.step(), workload.step()]
    yield workload, results
    workload.close()


def graph_size(concrete_function) -> int:
    """Nodes of a traced function, the bodies of its loops (library functions) included."""
    graph_def = concrete_function.graph.as_graph_def()
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def test_module_import_is_cheap():
    code = "import sys, agents.ppo; sys.exit('tensorflow' in sys.modules or 'gymnasium' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_steps_return_finite_metrics_and_stop_at_budget(trained):
    _, (first, second) = trained
    for result in (first, second):
        for key in ("eval/average_return", "eval/episode_length", "charts/sps", *LOSSES):
            assert math.isfinite(result[key]), key
        assert result["eval/average_return"] > 0 and result["eval/episode_length"] > 0
    assert first["charts/env_steps"] >= 64 and not first["done"]
    assert second["charts/env_steps"] >= 128 and second["done"] is True
    # every round: num_epochs x num_minibatches gradient steps
    rounds = math.ceil(64 / 32)
    assert first["train/gradient_steps"] >= rounds * 2 * 2


def test_restore_in_fresh_instance_gives_same_greedy_policy(trained, tmp_path):
    workload, _ = trained
    workload.save(str(tmp_path))
    fresh = make("ppo", {**TINY, "seed": 7, "num_epochs": 9})  # other initial weights, more epochs
    try:
        # the warm-up run of the train function in setup left no trace
        assert int(fresh.train_step.numpy()) == int(fresh.optimizer.iterations.numpy()) == 0
        observations = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
        assert not np.array_equal(fresh.greedy_actions(observations), workload.greedy_actions(observations))
        fresh.restore(str(tmp_path))
        np.testing.assert_array_equal(fresh.greedy_actions(observations), workload.greedy_actions(observations))
        assert fresh.value_net(observations)[0].numpy() == pytest.approx(workload.value_net(observations)[0].numpy())
        assert int(fresh.env_steps.numpy()) == int(workload.env_steps.numpy())
        assert int(fresh.train_step.numpy()) == int(workload.train_step.numpy())
        # the epoch loop is a graph loop: 9 epochs trace to the same graph as 2 (no copy per epoch)
        assert graph_size(fresh._train) == graph_size(workload._train)
        fresh.config.max_env_steps = 192  # training goes on from the restored counters
        assert fresh.step()["charts/env_steps"] >= 192
    finally:
        fresh.close()


def test_continuous_actions_train_and_stay_in_bounds(tmp_path):
    workload = make("ppo", {**TINY, "env_id": "Pendulum-v1", "max_env_steps": 64})
    try:
        result = workload.step()
        for key in ("eval/average_return", *LOSSES):
            assert math.isfinite(result[key]), key
        assert result["eval/episode_length"] == 200  # Pendulum's time limit
        actions = workload.greedy_actions(np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32))
        assert actions.shape == (32, 1) and np.all(np.abs(actions) <= 2.0)
        with pytest.raises(FileNotFoundError, match="no PPO checkpoint"):
            workload.restore(str(tmp_path))
    finally:
        workload.close()


@pytest.mark.parametrize("params, match", [
    ({"gamma": 1.5}, "gamma must be in"),
    ({"gae_lambda": -0.1}, "gae_lambda must be in"),
    ({"num_envs": 3, "collect_steps_per_iteration": 32},
     r"collect_steps_per_iteration \(32\) must be a multiple of num_envs \(3\)"),
    ({"num_minibatches": 64, "collect_steps_per_iteration": 32}, "num_minibatches .* cannot exceed"),
    ({"actor_fc_layers": []}, "actor_fc_layers"),
    ({"importance_ratio_clipping": -0.2}, "importance_ratio_clipping cannot be negative"),
    ({"num_epochs": 0}, "num_epochs must be positive"),
    ({"lambda": 0.9}, r"unknown parameter 'lambda' .*did you mean 'gae_lambda'"),
])
def test_impossible_config_is_refused(params, match):
    with pytest.raises(SpecError, match=match):
        PPO.make_config({**TINY, **params})


def test_unknown_env_id_suggests_close_names():
    with pytest.raises(SpecError, match=r"unknown Gymnasium environment 'CartPol-v1' \(did you mean 'CartPole-v1'"):
        make("ppo", {**TINY, "env_id": "CartPol-v1"})


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
    with pytest.raises(SpecError, match=r"PPO's MLP networks need flat vector observations.*\(8, 8, 3\)"):
        make("ppo", {**TINY, "env_id": "LabTest/Image-v0"})


def test_image_observations_are_refused_by_the_tf_spec_check_too():
    """The check in setup (TF-Agents specs), for envs that pass Gymnasium's spec check differently."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    observation = tensor_spec.BoundedTensorSpec([8, 8, 3], tf.float32, 0, 1)
    action = tensor_spec.BoundedTensorSpec([], tf.int64, 0, 1)
    from agents.ppo import check_spaces

    with pytest.raises(SpecError, match=r"MLP networks need flat vector observations, but 'X' observes \[8, 8, 3\]"):
        check_spaces("X", observation, action)
    with pytest.raises(SpecError, match=r"PPO needs one discrete action or one continuous"):
        check_spaces("X", tensor_spec.TensorSpec([4], tf.float32), tensor_spec.BoundedTensorSpec([3], tf.int64, 0, 4))
