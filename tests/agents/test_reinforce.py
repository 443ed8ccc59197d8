"""The REINFORCE workload (agents/reinforce.py) on tiny budgets: whole-episode rounds, metrics, checkpoints,
export, clear errors; one slow learning test."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agents.reinforce import Reinforce
from lab.errors import SpecError
from lab.workload.testing import make
from tests.conftest import trained_workload

TINY = {"num_envs": 2, "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 100,
        "eval_episodes": 2, "max_env_steps": 200}
OBSERVATIONS = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)


trained = trained_workload("reinforce", TINY)  # a tiny REINFORCE (with baseline) after its whole budget (two steps)


def test_steps_return_finite_metrics_and_stop_at_budget(trained):
    _, (first, second) = trained
    for result in (first, second):
        for key in ("eval/average_return", "eval/episode_length", "train/loss", "train/policy_loss",
                    "train/value_loss", "train/episode_return", "charts/sps"):
            assert math.isfinite(result[key]), key
        assert result["eval/average_return"] > 0 and result["train/value_loss"] > 0
    assert first["charts/env_steps"] >= 100 and not first["done"]
    assert second["charts/env_steps"] >= 200 and second["done"] is True
    assert second["train/gradient_steps"] > first["train/gradient_steps"] > 0  # one per round


def test_a_round_is_whole_episodes_from_a_reset():
    """Every env's row starts at an episode's first step and holds at least one finished episode."""
    workload = make("reinforce", {**TINY, "num_envs": 3, "seed": 2})
    try:
        before = int(workload.env_steps.numpy())
        experience = workload._collect()
        step_type, next_step_type = experience.step_type.numpy(), experience.next_step_type.numpy()
        assert step_type.shape[0] == 3 and (step_type[:, 0] == 0).all()  # FIRST
        finished = (next_step_type == 2).any(axis=1)  # a LAST in every row
        assert finished.all()
        last_at = [np.flatnonzero(row == 2).max() for row in next_step_type]
        assert max(last_at) == step_type.shape[1] - 1  # the round ends when the slowest env finishes
        steps = int((step_type != 2).sum())  # LAST -> FIRST boundary transitions are resets, not steps
        assert int(workload.env_steps.numpy()) - before == steps
        loss = workload._train(experience).numpy()
        assert np.isfinite(loss).all() and int(workload.train_step.numpy()) == 1
    finally:
        workload.close()


def test_export_loads_as_a_saved_model_and_acts_like_the_workload(trained, tmp_path):
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    workload, _ = trained
    path = workload.export(str(tmp_path))
    assert (Path(path) / "lab_policy.json").is_file()
    policy = tf.saved_model.load(path)
    actions = policy.action(ts.restart(tf.constant(OBSERVATIONS), batch_size=len(OBSERVATIONS))).action.numpy()
    np.testing.assert_array_equal(actions, workload.greedy_actions(OBSERVATIONS))


def test_without_baseline_there_is_no_value_network():
    workload = make("reinforce", {**TINY, "value_baseline": False, "max_env_steps": 100})
    try:
        result = workload.step()
        assert workload.value_net is None and "train/value_loss" not in result
        assert math.isfinite(result["train/policy_loss"]) and result["done"] is True
    finally:
        workload.close()


@pytest.mark.parametrize("params, match", [
    ({"gamma": 0.0}, "gamma must be in"),
    ({"value_estimation_loss_coef": -1.0}, "value_estimation_loss_coef cannot be negative"),
    ({"actor_fc_layers": []}, "actor_fc_layers"),
    ({"max_round_steps": 0}, "max_round_steps must be positive"),
])
def test_impossible_config_is_refused(params, match):
    with pytest.raises(SpecError, match=match):
        Reinforce.make_config(params)


@pytest.mark.slow
def test_learns_cartpole_far_above_random():
    """The defaults, 6k env steps (~60 gradient steps): the greedy policy beats the random policy's ~22 steps."""
    workload = make("reinforce", {"env_steps_per_step": 2_000, "max_env_steps": 6_000, "seed": 0})
    try:
        returns = [workload.step()["eval/average_return"] for _ in range(3)]
    finally:
        workload.close()
    assert max(returns) >= 75, returns
