"""DQN's collection with an MLP Q-network in NumPy: the envs stepped in Python, the replay written once a round.

Under TF-Agents' tf.function'd driver, each batched step of 8 CartPoles cost ~250 CPU us, of which the envs
took ~60: the py_function hop into Python and back (~85), the Q-network as graph ops (~50), the replay's
`add_batch` (~37) and the step and return counters (~16) (benchmarks/rl_collection.py). Here the Q-network's
dense layers run in NumPy on weights read once per round (they change only in training), the epsilon-greedy
choice is three NumPy calls, and the round's transitions go into the replay buffer in one graph call that
writes them where `add_batch` would have, step by step: the buffer's state (rows, ids, last id) is the same.

It stands in for the driver only where it computes the same thing: a plain `QNetwork` of dense layers over
vector observations, with no frame stack. `NumpyCollector.make` checks that the NumPy forward pass matches the
network's own on a sample of observations; anything else keeps the TF-Agents driver.
Exploration is drawn from a NumPy generator seeded with the trial's seed, and epsilon follows the env step
count step by step as in the graph (`epsilon_at`).
"""
from __future__ import annotations

import numpy as np


class NumpyCollector:
    """`collect()` runs `steps_per_round` env steps (over all envs) and returns the env step count."""

    def __init__(self, workload, layers: list[tuple[object, object]]):
        import tensorflow as tf

        cfg = workload.config
        self.workload, self.layers = workload, layers  # [(kernel variable, bias variable)], relu between
        self.py_env = workload.train_env.pyenv
        self.num_envs, self.steps_per_round = cfg.num_envs, cfg.collect_steps_per_iteration
        spec = workload.train_env.action_spec()
        self.low, self.high, self.action_dtype = int(spec.minimum), int(spec.maximum), spec.dtype.as_numpy_dtype
        self.rng = np.random.default_rng(cfg.seed)
        self.time_step = None
        buffer = workload.replay_buffer
        self.max_length = int(buffer._max_length)
        # [T, B, ...] with T free: a round's length varies with the resets in it, one trace serves all
        signature = tf.nest.map_structure(lambda spec: tf.TensorSpec([None, self.num_envs, *spec.shape], spec.dtype),
                                          workload.agent.collect_data_spec)

        @tf.function(autograph=False, input_signature=[signature])
        def write(items):
            """The round's [T, B, ...] transitions into the buffer, as T `add_batch` calls would write them."""
            steps = tf.shape(tf.nest.flatten(items)[0], out_type=tf.int64)[0]
            last = buffer._last_id.assign_add(steps)
            ids = last - steps + 1 + tf.range(steps, dtype=tf.int64)
            rows = tf.reshape(buffer._batch_offsets[None, :] + tf.math.mod(ids, buffer._max_length)[:, None], [-1])
            flat = tf.nest.map_structure(lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), items)
            with tf.control_dependencies([buffer._id_table.write(rows, tf.repeat(ids, self.num_envs)),
                                          buffer._data_table.write(rows, flat)]):
                return tf.identity(last)

        self._write = write

    @classmethod
    def make(cls, workload) -> NumpyCollector | None:
        """A collector for `workload` (DQN), or None where its network or replay is not the plain case."""
        from tf_agents.networks import q_network

        cfg, network = workload.config, workload.q_network
        if (type(network) is not q_network.QNetwork or getattr(cfg, "conv_layers", ()) or cfg.frame_stack
                or len(workload.train_env.observation_spec().shape) != 1):
            return None
        variables = network.trainable_variables
        if len(variables) != 2 * (len(cfg.fc_layers) + 1):
            return None
        collector = cls(workload, [(variables[i], variables[i + 1]) for i in range(0, len(variables), 2)])
        sample = np.random.default_rng(0).normal(size=(16, *workload.train_env.observation_spec().shape))
        sample = sample.astype(np.float32)
        expected, _ = network(sample, training=False)
        ours, theirs = collector.q_values(sample, collector.weights()), expected.numpy()
        if np.shape(ours) != theirs.shape or not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4):
            return None
        return collector

    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(kernel.numpy(), bias.numpy()) for kernel, bias in self.layers]

    @staticmethod
    def q_values(observations: np.ndarray, weights) -> np.ndarray:
        hidden = observations
        for kernel, bias in weights[:-1]:
            hidden = np.maximum(hidden @ kernel + bias, 0.0)
        kernel, bias = weights[-1]
        return hidden @ kernel + bias

    def collect(self) -> int:
        """As TF-Agents' DynamicStepDriver: batched steps until the round's env steps (resets not counted)
        reach `collect_steps_per_iteration`, or the budget (`max_env_steps`): a run ends where it was asked
        to, give or take one step of the vector env."""
        from tf_agents.trajectories import time_step as ts

        w = self.workload
        steps = start = int(w.env_steps.numpy())
        if self.time_step is None:  # the first round: the envs start (seeded at their first reset)
            self.time_step = self.py_env.reset()
        weights, n = self.weights(), self.num_envs
        columns = ([], [], [], [], [], [])  # step type, observation, action, next step type, reward, discount
        running = w.running_returns.numpy()
        finished_sum = finished_count = 0.0
        current = self.time_step
        limit = min(start + self.steps_per_round, w.config.max_env_steps)
        while steps < limit:
            explore = self.rng.random(n) < w.epsilon_at(steps)
            greedy = self.q_values(current.observation, weights).argmax(axis=1) + self.low
            action = np.where(explore, self.rng.integers(self.low, self.high + 1, n), greedy).astype(self.action_dtype)
            following = self.py_env.step(action)
            for column, value in zip(columns, (current.step_type, current.observation, action, following.step_type,
                                               following.reward, following.discount)):
                column.append(value)
            steps += int(np.count_nonzero(current.step_type != ts.StepType.LAST))  # a reset is no env step
            running = np.where(current.step_type == ts.StepType.FIRST, 0.0, running) + following.reward
            ended = following.step_type == ts.StepType.LAST
            finished_sum += float(running[ended].sum())
            finished_count += float(ended.sum())
            current = following
        self.time_step = current
        if not columns[0]:
            return steps
        if len(columns[0]) > self.max_length:
            raise RuntimeError("a round's steps per env exceed the replay's length per env")
        self._write(self.trajectory(*(np.stack(column) for column in columns)))
        w.env_steps.assign(steps)
        w.running_returns.assign(running.astype(np.float32))
        w.finished_returns.assign_add([finished_sum, finished_count])
        return steps

    def trajectory(self, step_types, observations, actions, next_step_types, rewards, discounts):
        """The round as the replay's data spec (a Trajectory with empty policy info)."""
        from tf_agents.trajectories import trajectory

        return trajectory.Trajectory(step_type=step_types, observation=observations, action=actions, policy_info=(),
                                     next_step_type=next_step_types, reward=rewards, discount=discounts)
