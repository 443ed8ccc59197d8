"""PPO with a shared trunk runs the trunk once per minibatch (agents/shared_trunk.py `one_pass`): the same
loss and gradients as TF-Agents' two passes, one trunk call per gradient step, the same learning."""
from __future__ import annotations

import numpy as np
import pytest

from agents.ppo import TEST_PARAMS

SHARED = {**TEST_PARAMS, "shared_trunk": True, "actor_fc_layers": [16], "value_fc_layers": [16]}


def _minibatch(workload):
    """One round's transitions, preprocessed (returns, advantages) as PPO's train function does: [B, 1, ...]."""
    import tensorflow as tf

    experience = workload.agent.preprocess_sequence(workload._collect())
    return tf.nest.map_structure(lambda t: tf.reshape(t[:, :-1], [-1, 1] + t.shape[2:].as_list()), experience)


def _loss_and_gradients(agent, batch):
    """`PPOAgent._train`'s loss and gradients on `batch`, without applying them."""
    import tensorflow as tf
    from tf_agents.agents.ppo import ppo_agent, ppo_utils
    from tf_agents.trajectories import time_step as ts
    from tf_agents.utils import common

    old = ppo_utils.distribution_from_spec(agent._action_distribution_spec, batch.policy_info["dist_params"],
                                           legacy_distribution_network=True)
    time_steps = ts.TimeStep(batch.step_type, batch.reward, batch.discount, batch.observation)
    variables = sorted({v.ref(): v for v in agent.actor_net.trainable_weights
                        + agent._value_net.trainable_weights}.values(), key=lambda v: v.name)
    with tf.GradientTape() as tape:
        info = agent.get_loss(
            time_steps, batch.action, common.log_probability(old, batch.action, agent.action_spec),
            batch.policy_info["return"], ppo_agent._normalize_advantages(batch.policy_info["advantage"]),
            batch.policy_info["dist_params"], ppo_utils.make_trajectory_mask(batch), agent.train_step_counter,
            False, old_value_predictions=batch.policy_info["value_prediction"], training=True)
    losses = [info.loss, info.extra.policy_gradient_loss, info.extra.value_estimation_loss,
              info.extra.entropy_regularization_loss]
    return [float(x) for x in losses], [g.numpy() for g in tape.gradient(info.loss, variables)]


def _agents(workload):
    """The workload's agent class without and with one pass, over the same networks (so the same weights)."""
    from tf_agents.agents.ppo import ppo_clip_agent

    from agents.shared_trunk import one_pass

    def build(agent_class):
        return agent_class(workload.train_env.time_step_spec(), workload.train_env.action_spec(),
                           **workload.agent_settings(), importance_ratio_clipping=0.2)

    return build(ppo_clip_agent.PPOClipAgent), build(one_pass(ppo_clip_agent.PPOClipAgent))


def _counting_trunk_calls(workload):
    """Count the shared trunk's runs from now on (both heads reach it through the one `TrunkPass`)."""
    trunk_pass = workload.actor_net.trunk_pass
    assert workload.value_net.trunk_pass is trunk_pass
    trunk, calls = trunk_pass.trunk, []

    def counted(*args, **kwargs):
        calls.append(1)
        return trunk(*args, **kwargs)

    trunk_pass.trunk = counted
    return calls


def test_one_pass_computes_the_two_pass_loss_and_gradients(tmp_path):
    from lab.workload.testing import make

    workload = make("ppo", {**SHARED, "entropy_regularization": 0.01}, trial_dir=str(tmp_path))
    try:
        batch = _minibatch(workload)
        two, one = _agents(workload)
        calls = _counting_trunk_calls(workload)
        losses_two, grads_two = _loss_and_gradients(two, batch)
        # TF-Agents: the actor, the collect policy's value prediction (unused by the loss) and the value loss
        assert len(calls) == 3
        losses_one, grads_one = _loss_and_gradients(one, batch)
        assert len(calls) == 4  # one pass: once for both heads
        np.testing.assert_allclose(losses_one, losses_two, rtol=1e-5, atol=1e-6)
        assert len(grads_one) == len(grads_two) == 6
        for a, b in zip(grads_one, grads_two):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        assert all(np.abs(g).max() > 0 for g in grads_one)  # both heads and the trunk are trained
    finally:
        workload.close()


@pytest.mark.parametrize("one_pass_trunk, trunk_calls", [(True, 1), (False, 3)])
def test_a_training_step_calls_the_trunk_once(tmp_path, one_pass_trunk, trunk_calls):
    import tensorflow as tf

    from lab.workload.testing import make

    workload = make("ppo", {**SHARED, "one_pass_trunk": one_pass_trunk}, trial_dir=str(tmp_path))
    try:
        batch = _minibatch(workload)
        calls = _counting_trunk_calls(workload)
        tf.function(workload.agent.train, autograph=False).get_concrete_function(batch)  # one gradient step's graph
        assert len(calls) == trunk_calls
    finally:
        workload.close()


def test_one_pass_learns_as_two_passes(tmp_path):
    """Same seed, a tiny budget: the one-pass run's losses and returns follow the two-pass run's."""
    from lab.workload.testing import make

    metrics = {}
    for one_pass_trunk in (True, False):
        workload = make("ppo", {**SHARED, "one_pass_trunk": one_pass_trunk}, trial_dir=str(tmp_path / str(one_pass_trunk)))
        try:
            metrics[one_pass_trunk] = [workload.step() for _ in range(2)]
        finally:
            workload.close()
    for one, two in zip(metrics[True], metrics[False]):
        assert one["charts/env_steps"] == two["charts/env_steps"]
        for name in ("train/loss", "train/policy_loss", "train/value_loss", "eval/average_return"):
            assert one[name] == pytest.approx(two[name], rel=1e-3, abs=1e-4), name
