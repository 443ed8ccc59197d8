"""SAC, TD3 and DDPG (agents/sac.py, td3.py, ddpg.py, agents/_continuous.py) on tiny budgets.

Metrics, checkpoints (identical greedy actions after a restore), export and reload, clear errors for
envs they cannot act in, and one slow test: SAC learns Pendulum-v1 well above a random policy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab import workload as workloads
from lab.errors import SpecError
from lab.workload.testing import make
from tests.conftest import lab

AGENTS = ("sac", "td3", "ddpg")
TINY = {
    "env_id": "Pendulum-v1", "num_envs": 2, "actor_fc_layers": [16], "critic_fc_layers": [16],
    "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40, "collect_steps_per_iteration": 8,
    "train_steps_per_iteration": 4, "env_steps_per_step": 100, "eval_episodes": 2, "max_env_steps": 200,
}
LOSSES = {"sac": ("train/actor_loss", "train/critic_loss", "train/alpha"),
          "td3": ("train/actor_loss", "train/critic_loss"), "ddpg": ("train/actor_loss", "train/critic_loss")}
RANDOM_RETURN = -1200.0  # a uniformly random policy on Pendulum-v1, about


def observations(n: int = 32) -> np.ndarray:
    """Pendulum observations: cos, sin of the angle, angular velocity."""
    angle, velocity = np.random.default_rng(0).uniform([-np.pi, -8.0], [np.pi, 8.0], size=(n, 2)).T
    return np.stack([np.cos(angle), np.sin(angle), velocity], axis=1).astype(np.float32)


@pytest.fixture(scope="module", params=AGENTS)
def trained(request, tmp_path_factory):
    """A tiny agent after its whole budget (two steps), with the metrics of each step."""
    name = request.param
    workload = make(name, {**TINY, "seed": 1}, trial_dir=str(tmp_path_factory.mktemp(name)))
    results = [workload.step(), workload.step()]
    yield name, workload, results
    workload.close()


def test_steps_return_finite_metrics_and_stop_at_budget(trained):
    name, _, (first, second) = trained
    for result in (first, second):
        for key in ("eval/average_return", "eval/episode_length", "charts/sps", *LOSSES[name]):
            assert math.isfinite(result[key]), key
        assert result["eval/episode_length"] == 200  # Pendulum's time limit
        assert -2000 < result["eval/average_return"] < 0
    assert first["charts/env_steps"] >= 100 and not first["done"]
    assert second["charts/env_steps"] >= 200 and second["done"] is True
    # a round is 8 env steps then 4 gradient steps, once the 40 random steps are in
    assert second["train/gradient_steps"] == 4 * ((second["charts/env_steps"] - 40) // 8 + 1)
    if name == "sac":
        assert 0 < second["train/alpha"] < 1.0  # the temperature was learned down from 1


def test_export_loads_and_acts_like_the_workload(trained, tmp_path):
    import tensorflow as tf
    import tensorflow_probability  # noqa: F401  (a SavedModel policy refers to TFP specs; docs/stack.md)
    from tf_agents.trajectories import time_step as ts

    name, workload, _ = trained
    path = workload.export(str(tmp_path))
    policy = tf.saved_model.load(path)
    obs = observations()
    action = policy.action(ts.restart(tf.constant(obs), batch_size=len(obs))).action.numpy()
    np.testing.assert_allclose(action, workload.greedy_actions(obs), rtol=1e-5, atol=1e-6)


def test_exported_sac_plays_in_a_fresh_process(tmp_path):
    """`lab eval PATH` loads the SavedModel in a new process (TFP imported first) and plays Pendulum."""
    workload = make("sac", dict(TINY))
    try:
        workload.step()
        path = workload.export(str(tmp_path))
    finally:
        workload.close()
    out = lab("eval", path, "--episodes", "2", "--trust")  # exported by hand, not by `lab export`: not recorded
    assert out.returncode == 0, out.stderr
    assert "Pendulum-v1" in out.stdout and "SAC" in out.stdout


@pytest.mark.parametrize("trained", ["td3"], indirect=True)
def test_td3_target_critics_value_smoothed_actions_within_the_action_bounds(trained):
    """TF-Agents adds the target smoothing noise without clipping; the lab's critics clip (Pendulum: +-2)."""
    _, workload, _ = trained
    agent, obs = workload.agent, observations(4)
    for critic in (agent._critic_network_1, agent._target_critic_network_1, agent._target_critic_network_2):
        at_bound, _ = critic((obs, np.full((4, 1), 2.0, np.float32)))
        beyond, _ = critic((obs, np.full((4, 1), 2.5, np.float32)))
        inside, _ = critic((obs, np.full((4, 1), 1.5, np.float32)))
        np.testing.assert_allclose(beyond.numpy(), at_bound.numpy())
        assert not np.allclose(inside.numpy(), at_bound.numpy())


@pytest.mark.parametrize("params, match", [
    ({"gamma": 1.5}, "gamma must be in"),
    ({"num_envs": 8, "collect_steps_per_iteration": 4}, "collect_steps_per_iteration .* at least num_envs"),
    ({"critic_fc_layers": []}, "critic_fc_layers"),
    ({"target_update_tau": 2.0}, "target_update_tau"),
    ({"initial_alpha": 0.0}, "initial_alpha"),
])
def test_impossible_config_is_refused(params, match):
    with pytest.raises(SpecError, match=match):
        workloads.get("sac").make_config({**TINY, **params})


def test_cli_refuses_cartpole_for_sac_in_one_line_and_writes_nothing(lab_home):
    out = lab("run", "sac-pendulum", "--set", "env_id=CartPole-v1", "--dry-run")
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error: ") and "SAC needs continuous (Box) actions" in lines[0]
    assert not (lab_home / "registry.db").exists() and not (lab_home / "experiments").exists()


@pytest.mark.parametrize("preset", ["sac-pendulum", "td3-pendulum", "ddpg-pendulum"])
def test_presets_are_asha_sweeps_with_a_reference(preset):
    from lab import spec as specs

    spec = specs.load(preset)[0]
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    assert config.env_id == "Pendulum-v1" and spec.workload == preset.split("-")[0]
    assert spec.scheduler.type == "asha" and spec.num_samples == 3 and spec.search and spec.mode == "max"
    assert (spec.metric, spec.reference.metric, spec.reference.score) == ("eval/average_return",) * 2 + (-200,)
    assert spec.stop == {"training_iteration": spec.scheduler.max_t, "eval/average_return": -200}


@pytest.mark.slow
def test_sac_learns_pendulum_well_above_random(tmp_path):
    """Up to 6k env steps of the preset's SAC (~4k were enough): the greedy mean rises far above random's."""
    from lab import spec as specs

    params = {**specs.load("sac-pendulum")[0].trial_params, "max_env_steps": 6_000, "seed": 0}
    workload = make("sac", params, trial_dir=str(tmp_path))
    try:
        best = -math.inf
        while True:
            result = workload.step()
            best = max(best, result["eval/average_return"])
            if result["done"] or best > -300:
                break
    finally:
        workload.close()
    assert best > RANDOM_RETURN + 700, f"SAC reached only {best:.0f} after {result['charts/env_steps']} env steps"
