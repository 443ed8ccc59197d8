"""The off-policy loop SAC, TD3 and DDPG share (agents/sac.py, td3.py, ddpg.py): envs, replay, collect, train.

An agent file holds its `Config` (a subclass of `OffPolicyConfig` below) and `make_agent`, which
builds the TF-Agents networks and agent; everything else is here, read top to bottom:
`OffPolicyWorkload.setup` builds the environments, asks the subclass for the agent, then the replay
buffer and three tf.functions (collect, train, evaluate), all traced there, once; `step` runs
collect/train rounds for `env_steps_per_step` env steps, then a greedy evaluation.

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with the
           agent's collect policy (uniformly random actions until `initial_collect_steps`);
  train    `train_steps_per_iteration` gradient steps in one graph loop, each on `batch_size`
           transitions sampled uniformly from the replay buffer. A transition whose first step ends an
           episode (LAST -> FIRST, the auto-reset) is no transition: its weight in the losses is 0.

TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents._common import ROUND_METRICS, AgentWorkload, episode_observers, make_greedy_evaluation

TEST_PARAMS = {  # a few seconds: the conformance test and tests/test_continuous_agents.py
    "env_id": "Pendulum-v1", "num_envs": 2, "actor_fc_layers": [16], "critic_fc_layers": [16],
    "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40, "collect_steps_per_iteration": 8,
    "train_steps_per_iteration": 4, "env_steps_per_step": 100, "eval_episodes": 2, "max_env_steps": 1_000,
}


@dataclass
class OffPolicyConfig:
    """The fields every off-policy continuous-action agent has; the agent files add their own."""

    env_id: str = "Pendulum-v1"  # Gymnasium id: continuous (Box) actions, vector observations
    env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
    num_envs: int = 8  # training envs, stepped together (one Gymnasium vector env)
    actor_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the actor (an MLP; 256x256 was 3-4x slower)
    critic_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the critic, on [observation, action]
    actor_learning_rate: float = 1e-3  # Adam
    critic_learning_rate: float = 1e-3  # Adam
    gamma: float = 0.99  # discount factor
    target_update_tau: float = 0.005  # soft (Polyak) update of the target networks, every gradient step
    replay_capacity: int = 100_000  # transitions kept, split evenly over the envs
    batch_size: int = 256  # transitions per gradient step
    initial_collect_steps: int = 1_000  # env steps of uniformly random actions before training
    collect_steps_per_iteration: int = 64  # env steps per round, over all envs (>= num_envs)
    train_steps_per_iteration: int = 64  # gradient steps per round (= collect steps: replay ratio 1)
    env_steps_per_step: int = 1_000  # env steps trained by one step() (one Tune iteration)
    eval_episodes: int = 10  # greedy episodes per evaluation, played at once
    max_env_steps: int = 30_000  # budget: step() returns done=True once it is spent
    save_replay_buffer: bool = True  # checkpoints hold the replay buffer: no refill on resume
    seed: int = 0  # seeds TensorFlow, NumPy and the envs

    def check_common(self, agent: str) -> None:
        """ValueError on impossible values; SpecError unless the env has Box actions and vector observations."""
        positive = ("num_envs", "actor_learning_rate", "critic_learning_rate", "target_update_tau", "replay_capacity",
                    "batch_size", "collect_steps_per_iteration", "train_steps_per_iteration", "env_steps_per_step",
                    "eval_episodes", "max_env_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("actor_fc_layers", "critic_fc_layers"):
            layers = getattr(self, name)
            if not layers or any(units <= 0 for units in layers):
                raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(layers)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.target_update_tau > 1.0:
            raise ValueError(f"target_update_tau must be in (0, 1], got {self.target_update_tau}")
        if self.initial_collect_steps < 0:
            raise ValueError("initial_collect_steps cannot be negative")
        if self.collect_steps_per_iteration < self.num_envs:
            raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be at "
                             f"least num_envs ({self.num_envs}): a round steps every env at least once")
        if self.replay_capacity // self.num_envs < 2:
            raise ValueError(f"replay_capacity ({self.replay_capacity}) must hold 2 steps per env")
        from agents.tf_env import spec_checked
        from envs.gym_envs import check_spaces

        spec_checked(check_spaces, self.env_id, agent, discrete_actions=False,  # before any trial starts
                     backend=self.env_backend)


class OffPolicyWorkload(AgentWorkload):
    """setup/step/save/restore/export for an agent trained from a replay buffer (SAC, TD3, DDPG)."""

    def make_agent(self, time_step_spec, action_spec, train_step):
        """The subclass's TF-Agents agent (networks, optimizers), counting gradient steps in `train_step`."""
        raise NotImplementedError

    loss_names: tuple[str, ...] = ("train/actor_loss", "train/critic_loss")  # what `loss_metrics` returns

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return ROUND_METRICS | set(cls.loss_names)

    def loss_metrics(self, loss_info) -> list:
        """The subclass's scalar tensors, in the order of `loss_names`, from one `agent.train` LossInfo."""
        raise NotImplementedError

    def greedy_policy(self):
        """The deterministic policy evaluated and exported (SAC overrides: the mode of its actor)."""
        return self.agent.policy

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (docs/stack.md)
        import tensorflow as tf
        from tf_agents.drivers import dynamic_step_driver
        from tf_agents.policies import random_tf_policy
        from tf_agents.replay_buffers import tf_uniform_replay_buffer


        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow
        started = time.perf_counter()

        # Environments (the spaces were checked with the config).
        # Rebuilt only for its policy (`lab eval`, `lab export`): one env for the specs, no replay buffer.
        policy_only = self.context.policy_only
        self.make_envs()

        # Counters, agent.
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.agent = self.make_agent(self.train_env.time_step_spec(), self.train_env.action_spec(), self.train_step)
        self.agent.initialize()  # copies the online networks into the target networks
        self.learning_starts = max(cfg.initial_collect_steps, 2 * cfg.num_envs)
        if policy_only:
            self.eval_policy = self.greedy_policy()
            self.checkpoint = tf.train.Checkpoint(agent=self.agent, train_step=self.train_step, env_steps=self.env_steps)
            return

        # Replay buffer: one row per env.
        self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            data_spec=self.agent.collect_data_spec, batch_size=cfg.num_envs,
            max_length=cfg.replay_capacity // cfg.num_envs,
        )

        # Collect: one driver run is one round; observers fill the buffer and count steps and returns.
        count_env_steps, track_returns, self.running_returns, self.finished_returns = episode_observers(
            cfg.num_envs, self.env_steps)

        observers = [self.replay_buffer.add_batch, count_env_steps, track_returns]
        random_policy = random_tf_policy.RandomTFPolicy(self.train_env.time_step_spec(), self.train_env.action_spec())
        collect_drivers = [
            dynamic_step_driver.DynamicStepDriver(self.train_env, policy, observers=observers,
                                                  num_steps=cfg.collect_steps_per_iteration)
            for policy in (random_policy, self.agent.collect_policy)
        ]

        def make_collect(driver):
            @tf.function(autograph=False)
            def collect():
                driver.run()
                return self.env_steps.value()

            return collect

        # Train: the round's gradient steps in one graph loop; returns the mean of each reported loss.
        @tf.function(autograph=False)
        def train():
            def gradient_step(i, totals):
                experience, _ = self.replay_buffer.get_next(sample_batch_size=cfg.batch_size, num_steps=2)
                weights = tf.cast(~experience.is_boundary()[:, 0], tf.float32)  # auto-resets are no transitions
                metrics = self.loss_metrics(self.agent.train(experience, weights=weights))
                return i + 1, [t + tf.cast(m, tf.float32) for t, m in zip(totals, metrics)]

            zeros = [tf.constant(0.0) for _ in self.loss_names]
            _, totals = tf.while_loop(
                lambda i, _: i < cfg.train_steps_per_iteration, gradient_step, (tf.constant(0), zeros)
            )
            return [total / cfg.train_steps_per_iteration for total in totals]

        # Evaluate: one greedy episode in each eval env, all at once.
        self.eval_policy = self.greedy_policy()
        evaluate = make_greedy_evaluation(self.eval_policy, self.eval_env, cfg.eval_episodes)

        # Trace all now (takes no env step): concrete functions never retrace.
        self._random_collect, self._collect = (make_collect(d).get_concrete_function() for d in collect_drivers)
        self._train = train.get_concrete_function()
        self._evaluate = evaluate.get_concrete_function()
        self.trace_seconds = time.perf_counter() - started  # environments and agent included

        saved = dict(agent=self.agent, train_step=self.train_step, env_steps=self.env_steps)
        if cfg.save_replay_buffer:
            saved["replay_buffer"] = self.replay_buffer
        self.checkpoint = tf.train.Checkpoint(**saved)

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Collect/train rounds for `env_steps_per_step` env steps, then a greedy evaluation."""
        def one_round(steps):
            steps = int(self._random_collect() if steps < self.learning_starts else self._collect())
            trained = steps >= self.learning_starts  # no training while the initial random steps are collected
            return steps, ([float(v) for v in self._train()] if trained else None)

        metrics, losses = self.train_rounds(one_round)
        if losses:
            metrics.update(zip(self.loss_names, np.mean(losses, axis=0).tolist()))
        return metrics
