"""The off-policy loop every replay-buffer agent shares: DQN and C51 (agents/_value_based.py), SAC, TD3 and
DDPG (agents/_continuous.py). As Stable-Baselines3's `OffPolicyAlgorithm`: one loop here, each family and
algorithm overrides only what differs.

`OffPolicyWorkload.setup`, read top to bottom: seeds, the environments, the step counters, the agent
(`build_agent`: the family's networks, then the algorithm's `make_agent`), the replay buffer
(`make_replay`), the collect drivers (`collect_policies`: the one before `learning_starts`, the one
after), then three tf.functions (collect, train, evaluate), all traced there, once. `step` runs
collect/train rounds for `env_steps_per_step` env steps, then a greedy evaluation.

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with the
           collect policy (uniformly random actions until `learning_starts` env steps);
  train    `train_steps_per_iteration` gradient steps in one graph loop, each on `batch_size` samples of
           `sample_steps` consecutive time steps drawn uniformly from the replay buffer (weighted by
           `transition_weights`); returns the mean of each of `loss_names` over those steps.

Speed notes (2 CPU cores): the tf.functions use `autograph=False` (explicit tf.while_loop):
AutoGraph-converting TF-Agents' Python code took ~15 s of setup, tracing without it ~1 s.
XLA (`jit_compile`) did not make the gradient step faster, and cannot compile the replay buffer's sampling.
TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

import os
import time

import numpy as np

from agents._common import ROUND_METRICS, AgentWorkload, episode_observers, make_greedy_evaluation, traced_evaluation


class ReplayChecks:
    """Config checks of the fields every off-policy config has (a mixin of the families' Config dataclasses)."""

    def check_replay(self, positive: tuple[str, ...], window: int, window_is: str = "") -> None:
        """ValueError unless the `positive` fields are positive, gamma is in (0, 1], a round steps every env
        and the replay holds `window` consecutive steps per env (`window_is`: how it is counted)."""
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.collect_steps_per_iteration < self.num_envs:
            raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be at "
                             f"least num_envs ({self.num_envs}): a round steps every env at least once")
        if self.replay_capacity // self.num_envs < window:
            raise ValueError(f"replay_capacity ({self.replay_capacity}) must hold {window_is}{window} steps per env")


class OffPolicyWorkload(AgentWorkload):
    """setup/step/save/restore/export of an agent trained from a replay buffer."""

    loss_names: tuple[str, ...] = ()  # the metrics `loss_metrics` returns, in its order

    # ------------------------------------------------------------------ what a family or algorithm overrides
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return ROUND_METRICS | set(cls.loss_names)

    @property
    def sample_steps(self) -> int:
        """Consecutive time steps one replay sample spans (a transition: 2)."""
        return 2

    def build_agent(self, time_step_spec, action_spec):
        """The TF-Agents agent, counting gradient steps in `self.train_step` (families build their networks here)."""
        return self.make_agent(time_step_spec, action_spec)

    def make_agent(self, time_step_spec, action_spec):
        """The algorithm's TF-Agents agent."""
        raise NotImplementedError

    def greedy_policy(self):
        """The deterministic policy evaluated and exported."""
        return self.agent.policy

    def collect_policies(self) -> list:
        """The collect policy before `learning_starts` env steps, then after (one policy: the same throughout)."""
        return [self.agent.collect_policy]

    def fast_collector(self):
        """An object whose `collect()` stands in for the collect driver (agents/numpy_collect.py), or None."""
        return None

    def make_replay(self):
        """The replay buffer (sets `replay_buffer`); returns what the drivers add to and training samples from."""
        from tf_agents.replay_buffers import tf_uniform_replay_buffer

        cfg = self.config
        self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            data_spec=self.agent.collect_data_spec, batch_size=cfg.num_envs, max_length=cfg.replay_capacity // cfg.num_envs)
        return self.replay_buffer

    def transition_weights(self, experience):
        """Per-sample weights of the losses (None: all 1)."""
        return None

    def loss_metrics(self, loss_info) -> list:
        """Scalar tensors, in the order of `loss_names`, from one `agent.train` LossInfo."""
        raise NotImplementedError

    def checkpointed(self) -> dict:
        """The objects a checkpoint holds (the replay buffer is added where `save_replay_buffer`)."""
        return dict(agent=self.agent, train_step=self.train_step, env_steps=self.env_steps)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (docs/stack.md)
        import tensorflow as tf
        from tf_agents.drivers import dynamic_step_driver

        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments (id and spaces were checked with the config). Rebuilt only for its policy
        # (`lab eval`, `lab export`): one env for the specs, no eval envs, no replay buffer, no tf.functions.
        self.make_envs(getattr(cfg, "max_episode_steps", 0))

        # Counters, agent.
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.learning_starts = max(cfg.initial_collect_steps, cfg.num_envs * self.sample_steps)
        self.agent = self.build_agent(self.train_env.time_step_spec(), self.train_env.action_spec())
        self.agent.initialize()  # copies the online networks into the target networks
        self.eval_policy = self.greedy_policy()
        saved = self.checkpointed()
        if self.context.policy_only:
            self.checkpoint = tf.train.Checkpoint(**saved)
            return

        # Replay buffer: one row per env.
        replay = self.make_replay()

        # Collect: one driver run is one round; observers fill the buffer and count steps and returns.
        count_env_steps, track_returns, self.running_returns, self.finished_returns = episode_observers(
            cfg.num_envs, self.env_steps)
        observers = [replay.add_batch, count_env_steps, track_returns]

        def make_collect(policy, num_steps=cfg.collect_steps_per_iteration):
            driver = dynamic_step_driver.DynamicStepDriver(self.train_env, policy, observers=observers,
                                                           num_steps=num_steps)

            @tf.function(autograph=False)
            def collect():
                driver.run()
                return self.env_steps.value()

            return collect

        # Train: the round's gradient steps in one graph loop; returns the mean of each reported loss.
        @tf.function(autograph=False)
        def train():
            def gradient_step(i, totals):
                experience, _ = replay.get_next(sample_batch_size=cfg.batch_size, num_steps=self.sample_steps)
                info = self.agent.train(experience, weights=self.transition_weights(experience))
                return i + 1, [t + tf.cast(m, tf.float32) for t, m in zip(totals, self.loss_metrics(info))]

            zeros = [tf.constant(0.0) for _ in self.loss_names]
            _, totals = tf.while_loop(
                lambda i, _: i < cfg.train_steps_per_iteration, gradient_step, (tf.constant(0), zeros)
            )
            return [total / cfg.train_steps_per_iteration for total in totals]

        # Evaluate: one greedy episode in each eval env, all at once; an env's first episode counts.
        evaluate = make_greedy_evaluation(self.eval_policy, self.eval_env, cfg.eval_episodes)

        # Trace all now (takes no env step): concrete functions never retrace.
        started = time.perf_counter()
        collector = self.fast_collector()
        self._tail_collects = None  # the TF path's last round: one step of the vector env per call, traced on use
        if collector is not None:  # it stops at the budget itself
            self._random_collect = self._collect = collector.collect
        else:
            policies = self.collect_policies()
            collects = [make_collect(policy).get_concrete_function() for policy in policies]
            self._random_collect, self._collect = collects[0], collects[-1]
            self._tail_collects = lambda: [make_collect(policy, num_steps=1) for policy in (policies[0], policies[-1])]
        self._train = train.get_concrete_function()
        self._evaluate = traced_evaluation(evaluate)
        self.trace_seconds = time.perf_counter() - started

        if cfg.save_replay_buffer:
            saved["replay_buffer"] = self.replay_buffer
        self.checkpoint = tf.train.Checkpoint(**saved)

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Collect/train rounds for `env_steps_per_step` env steps, then a greedy evaluation."""
        def one_round(steps):
            if self._tail_collects is not None and self.config.max_env_steps - steps < self.config.collect_steps_per_iteration:
                steps = self.collect_tail(steps)  # the budget ends inside this round: stop there
            else:
                steps = int(self._random_collect() if steps < self.learning_starts else self._collect())
            trained = steps >= self.learning_starts  # no training while the initial random steps are collected
            return steps, ([float(v) for v in self._train()] if trained else None)

        metrics, losses = self.train_rounds(one_round)
        if losses:
            metrics.update(zip(self.loss_names, np.mean(losses, axis=0).tolist()))
        return metrics

    def collect_tail(self, steps: int) -> int:
        """The last round's steps one step of the vector env at a time, until the budget (`max_env_steps`): a
        run ends where it was asked to, give or take one step of the vector env."""
        if callable(self._tail_collects):
            self._tail_collects = self._tail_collects()
        random_tail, tail = self._tail_collects
        while steps < self.config.max_env_steps:
            steps = int(random_tail() if steps < self.learning_starts else tail())
        return steps
