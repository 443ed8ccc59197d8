"""DQN's NumPy collection (agents/numpy_collect.py): the replay holds what TF-Agents' `add_batch`, step by step,
would have written; steps and returns are counted as the driver's observers count them; anything but a plain
MLP Q-network keeps the TF-Agents driver."""
from __future__ import annotations

import numpy as np
import pytest

from agents.numpy_collect import NumpyCollector
from lab.workload.testing import make

PARAMS = {"num_envs": 4, "fc_layers": [16, 16], "replay_capacity": 400, "batch_size": 16, "initial_collect_steps": 40,
          "collect_steps_per_iteration": 32, "train_steps_per_iteration": 2, "target_update_period": 4,
          "epsilon_decay_steps": 100, "env_steps_per_step": 100, "eval_episodes": 1, "max_env_steps": 2_000}


def test_the_replay_matches_add_batch_and_the_counters_match_the_observers():
    import tensorflow as tf
    from tf_agents.replay_buffers import tf_uniform_replay_buffer

    workload = make("dqn", PARAMS)
    try:
        collector = workload._collect.__self__
        assert isinstance(collector, NumpyCollector)
        written, write = [], collector._write
        collector._write = lambda items: (written.append(items), write(items))[1]
        for _ in range(12):  # more rounds than the replay holds per env: it wraps around
            steps = workload._collect()
        reference = tf_uniform_replay_buffer.TFUniformReplayBuffer(workload.agent.collect_data_spec, batch_size=4,
                                                                   max_length=100)
        for items in written:
            for t in range(len(items.step_type)):
                reference.add_batch(tf.nest.map_structure(lambda x, t=t: tf.convert_to_tensor(x[t]), items))
        assert workload.replay_buffer._last_id.numpy() == reference._last_id.numpy() > 100
        for ours, theirs in zip(tf.nest.flatten(workload.replay_buffer.gather_all()),
                                tf.nest.flatten(reference.gather_all())):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        # the driver's observers: resets are no env steps; an episode's return is summed when it ends
        step_types = np.concatenate([items.step_type for items in written])
        rewards = np.concatenate([items.reward for items in written])
        next_types = np.concatenate([items.next_step_type for items in written])
        assert steps == workload.env_steps.numpy() == np.count_nonzero(step_types != 2)
        assert all(len(items.step_type) * 4 - np.count_nonzero(items.step_type == 2) >= 32 for items in written)
        returns_sum, episodes = workload.finished_returns.numpy()
        assert episodes == np.count_nonzero(next_types == 2) > 0
        running, total = np.zeros(4), 0.0
        for step_type, reward, next_type in zip(step_types, rewards, next_types):
            running = np.where(step_type == 0, 0.0, running) + reward
            total += running[next_type == 2].sum()
        assert returns_sum == pytest.approx(total)
    finally:
        workload.close()


def test_exploration_follows_epsilon_and_the_greedy_action_is_the_networks():
    workload = make("dqn", {**PARAMS, "initial_collect_steps": 0, "epsilon_start": 0.0, "epsilon_end": 0.0})
    try:
        collector = workload._collect.__self__
        observations = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
        network, _ = workload.q_network(observations)
        np.testing.assert_allclose(collector.q_values(observations, collector.weights()), network.numpy(), atol=1e-5)
        workload._collect()  # past learning_starts (num_envs x 4 steps, random until then)
        written, write = [], collector._write
        collector._write = lambda items: (written.append(items), write(items))[1]
        workload._collect()  # epsilon 0: every action greedy
        items = written[0]
        greedy = collector.q_values(items.observation.reshape(-1, 4), collector.weights()).argmax(axis=1)
        np.testing.assert_array_equal(items.action.reshape(-1), greedy)
    finally:
        workload.close()


@pytest.mark.parametrize("params", [{"dueling": True}, {"fc_layers": [8]}])
def test_only_a_plain_q_network_collects_in_numpy(params, monkeypatch):
    if "dueling" not in params:  # a forward pass that does not match the network's: refused, the driver kept
        monkeypatch.setattr(NumpyCollector, "q_values", staticmethod(lambda observations, weights: observations))
    workload = make("dqn", {**PARAMS, **params})
    try:
        assert not isinstance(getattr(workload._collect, "__self__", None), NumpyCollector)
        assert int(workload._collect()) >= 32  # the TF-Agents driver
    finally:
        workload.close()

