"""The PPO workload (agents/ppo.py) on tiny budgets: metrics, checkpoints, one traced update, clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from agents.ppo import PPO
from lab.errors import SpecError
from lab.workload.testing import make
from tests.conftest import trained_workload

TINY = {
    "num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 2, "num_minibatches": 2,
    "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 64, "eval_episodes": 2,
    "max_env_steps": 128,
}
LOSSES = ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy_loss")


trained = trained_workload("ppo", TINY)  # a tiny PPO on CartPole after its whole budget (two steps)


def graph_size(concrete_function) -> int:
    """Nodes of a traced function, the bodies of its loops (library functions) included."""
    graph_def = concrete_function.graph.as_graph_def()
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


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

