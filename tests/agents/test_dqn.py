"""The DQN workload (agents/dqn.py) on tiny budgets: metrics, checkpoints, clear errors."""
from __future__ import annotations

import math

import pytest

from agents.dqn import DQN
from lab.errors import SpecError
from lab.workload.testing import make
from tests.conftest import trained_workload

TINY = {
    "num_envs": 2, "fc_layers": [16], "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40,
    "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2, "target_update_period": 4,
    "epsilon_decay_steps": 100, "env_steps_per_step": 100, "eval_episodes": 2, "max_env_steps": 200,
}


trained = trained_workload("dqn", TINY)  # a tiny DQN after its whole budget (two steps)


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


