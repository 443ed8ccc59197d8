"""The value-based off-policy loop DQN and C51 share (agents/dqn.py, c51.py): envs, replay, collect, train.

An agent file holds its `Config` (a subclass of `ValueBasedConfig` below), `make_network` and
`make_agent`; everything else is here, read top to bottom: `ValueBasedWorkload.setup` builds the
environments, asks the subclass for the Q-network and the agent, then the replay buffer and three
tf.functions (collect, train, evaluate), all traced there, once; `step` runs collect/train rounds for
`env_steps_per_step` env steps, then a greedy evaluation.

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with
           the epsilon-greedy policy (uniformly random until `initial_collect_steps`);
  train    `train_steps_per_iteration` gradient steps, each on `batch_size` n-step transitions
           sampled uniformly from the replay buffer; the target network is copied every
           `target_update_period` gradient steps (equal to the gradient steps per round by default:
           one target sync per round).

Evaluation plays `eval_episodes` greedy episodes at once, one in each env of a batch seeded apart
from the training envs: several times faster than one env playing them in turn.

Speed notes (2 CPU cores): the tf.functions use `autograph=False` (explicit tf.while_loop):
AutoGraph-converting TF-Agents' Python code took ~15 s of setup, tracing without it ~1 s.
Gradient steps run in a graph loop, one tf.function call per round. XLA (`jit_compile`) did
not make the gradient step faster, and cannot compile the replay buffer's sampling.
TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents._common import ROUND_METRICS, AgentWorkload, episode_observers, make_greedy_evaluation

TEST_PARAMS = {  # a few seconds: the conformance test
    "num_envs": 2, "fc_layers": [16], "replay_capacity": 1_000, "batch_size": 16, "initial_collect_steps": 40,
    "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2, "target_update_period": 2,
    "epsilon_decay_steps": 100, "env_steps_per_step": 200, "eval_episodes": 2, "max_env_steps": 1_000,
}


@dataclass
class ValueBasedConfig:
    """The fields every value-based agent has (defaults: CartPole-v1); the agent files add their own."""

    env_id: str = "CartPole-v1"  # Gymnasium id: discrete actions, vector observations
    env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
    num_envs: int = 8  # training envs, stepped together (one Gymnasium vector env)
    fc_layers: tuple[int, ...] = (128, 128)  # hidden layers of the Q-network (an MLP)
    max_episode_steps: int = 0  # time limit of training and eval episodes (0: the env's own)
    learning_rate: float = 3e-3  # Adam
    gamma: float = 0.99  # discount factor
    n_step_update: int = 3  # n of the n-step return in the TD target
    replay_capacity: int = 50_000  # transitions kept, split evenly over the envs
    batch_size: int = 64  # transitions per gradient step
    initial_collect_steps: int = 1_000  # env steps of uniformly random actions before training
    collect_steps_per_iteration: int = 256  # env steps per round, over all envs (>= num_envs)
    train_steps_per_iteration: int = 256  # gradient steps per round
    target_update_period: int = 256  # gradient steps between copies into the target network
    epsilon_start: float = 1.0  # exploration rate at env step 0 (1.0 anyway before initial_collect_steps),
    epsilon_end: float = 0.04  # decaying linearly to this rate
    epsilon_decay_steps: int = 8_000  # at this env step
    env_steps_per_step: int = 1_000  # env steps trained by one step() (one Tune iteration)
    eval_episodes: int = 10  # greedy episodes per evaluation, played at once
    max_env_steps: int = 50_000  # budget: step() returns done=True once it is spent
    grad_clip: float = 10.0  # clip gradients to this global norm (0: no clipping)
    save_replay_buffer: bool = True  # checkpoints hold the replay buffer (~2.7 MB at 50k): no refill on resume
    frame_stack: int = 0  # observations are this many stacked frames (Atari: 4): the replay keeps the newest
    #   frame of each and rebuilds the stacks when it samples (agents/frame_replay.py: 4x less memory)
    seed: int = 0  # seeds TensorFlow, NumPy and the envs

    def check_common(self, agent: str, vector_observations: bool = True) -> None:
        """ValueError on impossible values; SpecError unless the env has one discrete action (and its observations fit)."""
        positive = ("num_envs", "learning_rate", "n_step_update", "replay_capacity", "batch_size",
                    "collect_steps_per_iteration", "train_steps_per_iteration", "target_update_period",
                    "epsilon_decay_steps", "env_steps_per_step", "eval_episodes", "max_env_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.fc_layers or any(units <= 0 for units in self.fc_layers):
            raise ValueError(f"fc_layers must be a non-empty list of positive sizes, got {list(self.fc_layers)}")
        if self.max_episode_steps < 0:
            raise ValueError(f"max_episode_steps cannot be negative, got {self.max_episode_steps}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.initial_collect_steps < 0 or self.grad_clip < 0 or self.frame_stack < 0:
            raise ValueError("initial_collect_steps, grad_clip and frame_stack cannot be negative")
        if self.collect_steps_per_iteration < self.num_envs:
            raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be at "
                             f"least num_envs ({self.num_envs}): a round steps every env at least once")
        window = self.n_step_update + max(self.frame_stack, 1)  # consecutive steps one sample reads
        if self.replay_capacity // self.num_envs < window:
            raise ValueError(f"replay_capacity ({self.replay_capacity}) must hold n_step_update + "
                             f"max(frame_stack, 1) = {window} steps per env")
        from agents.tf_env import spec_checked
        from envs.gym_envs import check_spaces

        spec_checked(check_spaces, self.env_id, agent, discrete_actions=True,  # before any trial starts
                     vector_observations=vector_observations, backend=self.env_backend,
                     frame_stack=self.frame_stack)


class ValueBasedWorkload(AgentWorkload):
    """setup/step/save/restore/export of a Q-learning agent trained from a replay buffer (DQN, C51)."""

    def make_network(self, observation_spec, action_spec):
        """The subclass's (online) Q-network."""
        raise NotImplementedError

    def make_optimizer(self):
        import tensorflow as tf

        return tf.keras.optimizers.Adam(learning_rate=self.config.learning_rate)

    def make_agent(self, time_step_spec, action_spec, epsilon):
        """The subclass's TF-Agents agent over `self.q_network` and `self.optimizer`, exploring with `epsilon`."""
        raise NotImplementedError

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return ROUND_METRICS | {"train/epsilon", "train/loss"}

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (docs/stack.md)
        import tensorflow as tf
        from tf_agents.drivers import dynamic_step_driver
        from tf_agents.replay_buffers import tf_uniform_replay_buffer


        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments (id and spaces were checked with the config). Training envs are the learner's
        # (Atari: episodic life, clipped rewards), evaluation envs play the full game. Rebuilt only for
        # its policy (`lab eval`, `lab export`): one env for the specs, no eval envs.
        policy_only = self.context.policy_only
        self.make_envs(cfg.max_episode_steps)

        # Q-network, optimizer, counters, agent.
        self.q_network = self.make_network(self.train_env.observation_spec(), self.train_env.action_spec())
        self.optimizer = self.make_optimizer()
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.learning_starts = max(cfg.initial_collect_steps, cfg.num_envs * (cfg.n_step_update + 1))

        def epsilon():
            """Exploration rate, from the env step counter (read inside the collect graph)."""
            fraction = tf.minimum(tf.cast(self.env_steps, tf.float32) / float(cfg.epsilon_decay_steps), 1.0)
            decayed = cfg.epsilon_start + fraction * (cfg.epsilon_end - cfg.epsilon_start)
            return tf.where(self.env_steps < self.learning_starts, 1.0, decayed)

        self.epsilon = epsilon
        self.agent = self.make_agent(self.train_env.time_step_spec(), self.train_env.action_spec(), epsilon)
        self.agent.initialize()  # copies the online network into the target network
        self.optimizer.build(self.q_network.trainable_variables)  # slots now, not inside the train loop
        self.eval_policy = self.agent.policy
        saved = dict(agent=self.agent, q_network=self.q_network, optimizer=self.optimizer,
                     train_step=self.train_step, env_steps=self.env_steps)
        if policy_only:  # no replay buffer, no collect/train/evaluate functions
            self.checkpoint = tf.train.Checkpoint(**saved)
            return

        # Replay buffer: one row per env; stacked frames stored once each (frame_stack).
        if cfg.frame_stack:
            from agents.frame_replay import NewestFrameReplay

            replay = NewestFrameReplay(self.agent.collect_data_spec, batch_size=cfg.num_envs,
                                       max_length=cfg.replay_capacity // cfg.num_envs, frames=cfg.frame_stack)
            self.replay_buffer = replay.buffer
        else:
            replay = self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
                data_spec=self.agent.collect_data_spec, batch_size=cfg.num_envs,
                max_length=cfg.replay_capacity // cfg.num_envs,
            )

        # Collect: one driver run is one round; observers fill the buffer and count steps and returns.
        count_env_steps, track_returns, self.running_returns, self.finished_returns = episode_observers(
            cfg.num_envs, self.env_steps)

        driver = dynamic_step_driver.DynamicStepDriver(
            self.train_env, self.agent.collect_policy,
            observers=[replay.add_batch, count_env_steps, track_returns],
            num_steps=cfg.collect_steps_per_iteration,
        )

        @tf.function(autograph=False)
        def collect():
            driver.run()
            return self.env_steps.value()

        # Train: the round's gradient steps in one graph loop; returns their mean loss.
        @tf.function(autograph=False)
        def train():
            def gradient_step(i, total):
                experience, _ = replay.get_next(
                    sample_batch_size=cfg.batch_size, num_steps=cfg.n_step_update + 1
                )
                return i + 1, total + self.agent.train(experience).loss

            _, total = tf.while_loop(
                lambda i, _: i < cfg.train_steps_per_iteration, gradient_step, (tf.constant(0), tf.constant(0.0))
            )
            return total / cfg.train_steps_per_iteration

        # Evaluate: one greedy episode in each eval env, all at once; an env's first episode counts.
        evaluate = make_greedy_evaluation(self.eval_policy, self.eval_env, cfg.eval_episodes)

        # Trace all three now (takes no env step): concrete functions never retrace.
        started = time.perf_counter()
        self._collect = collect.get_concrete_function()
        self._train = train.get_concrete_function()
        self._evaluate = evaluate.get_concrete_function()
        self.trace_seconds = time.perf_counter() - started

        if cfg.save_replay_buffer:
            saved["replay_buffer"] = self.replay_buffer
        self.checkpoint = tf.train.Checkpoint(**saved)

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Collect/train rounds for `env_steps_per_step` env steps, then a greedy evaluation."""
        def one_round(steps):
            steps = int(self._collect())
            return steps, (self._train() if steps >= self.learning_starts else None)  # none while random steps fill

        metrics, losses = self.train_rounds(one_round)
        metrics["train/epsilon"] = float(self.epsilon())
        if losses:
            metrics["train/loss"] = float(np.mean(losses))
        return metrics
