"""The C51 workload (agents/c51.py) on tiny budgets: metrics, checkpoints, export, clear errors; one slow learning test."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agents.c51 import C51
from lab.errors import SpecError
from lab.workload.testing import make
from tests.conftest import trained_workload

TINY = {
    "num_envs": 2, "fc_layers": [16], "num_atoms": 11, "replay_capacity": 1_000, "batch_size": 16,
    "initial_collect_steps": 40, "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2,
    "target_update_period": 4, "epsilon_decay_steps": 100, "env_steps_per_step": 100, "eval_episodes": 2,
    "max_env_steps": 200,
}
OBSERVATIONS = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)


trained = trained_workload("c51", TINY)  # a tiny C51 after its whole budget (two steps)


def test_steps_return_finite_metrics_and_stop_at_budget(trained):
    workload, (first, second) = trained
    for result in (first, second):
        for key in ("eval/average_return", "eval/episode_length", "train/loss", "train/episode_return",
                    "train/epsilon", "charts/sps"):
            assert math.isfinite(result[key]), key
        assert result["eval/average_return"] > 0
        assert 0 < result["train/loss"] < math.log(11) + 1  # cross-entropy over 11 atoms, not a squared TD error
    assert first["charts/env_steps"] >= 100 and not first["done"]
    assert second["charts/env_steps"] >= 200 and second["done"] is True
    assert second["train/epsilon"] == pytest.approx(C51.Config.epsilon_end)
    logits, _ = workload.q_network(OBSERVATIONS)
    assert logits.shape == (64, 2, 11)  # a distribution over 11 atoms per action


def test_export_loads_as_a_saved_model_and_acts_like_the_workload(trained, tmp_path):
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    workload, _ = trained
    path = workload.export(str(tmp_path))
    assert (Path(path) / "lab_policy.json").is_file()
    policy = tf.saved_model.load(path)
    actions = policy.action(ts.restart(tf.constant(OBSERVATIONS), batch_size=len(OBSERVATIONS))).action.numpy()
    np.testing.assert_array_equal(actions, workload.greedy_actions(OBSERVATIONS))
    assert int(policy.get_train_step().numpy()) == int(workload.train_step.numpy())


@pytest.mark.parametrize("params, match", [
    ({"num_atoms": 1}, "num_atoms must be at least 2"),
    ({"min_q_value": 10.0, "max_q_value": 10.0}, "min_q_value .* must be below max_q_value"),
    ({"num_envs": 8, "collect_steps_per_iteration": 4}, "collect_steps_per_iteration .* at least num_envs"),
    ({"gamma": 0.0}, "gamma must be in"),
])
def test_impossible_config_is_refused(params, match):
    with pytest.raises(SpecError, match=match):
        C51.make_config(params)


@pytest.mark.slow
def test_learns_cartpole_far_above_random():
    """The defaults, 3k env steps: the greedy policy balances well beyond the random policy's ~22 steps."""
    workload = make("c51", {"env_steps_per_step": 1_000, "max_env_steps": 3_000, "seed": 0})
    try:
        returns = [workload.step()["eval/average_return"] for _ in range(3)]
    finally:
        workload.close()
    assert max(returns) >= 150, returns
