"""C51 (categorical DQN) with TF-Agents on a Gymnasium environment with discrete actions, n-step.

Reads top to bottom: the `Config` (its defaults solve CartPole-v1), then the workload. C51 learns,
for each action, a distribution of the return over `num_atoms` fixed values spread evenly over
[`min_q_value`, `max_q_value`] (a softmax over atoms, TF-Agents' `CategoricalQNetwork`); its
target is the n-step Bellman update of the target network's distribution, projected back onto
the atoms, and its loss the cross-entropy to that target. The greedy action maximises the mean.

The loop is agents/dqn.py's: `setup` builds the batched environments, the network, the agent,
the replay buffer and three tf.functions (collect, train, evaluate, `autograph=False`), all
traced there, once; `step` runs collect/train rounds for `env_steps_per_step` env steps, then a
greedy evaluation of `eval_episodes` episodes played at once in a batch of envs seeded apart.

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with
           the epsilon-greedy policy (uniformly random until `initial_collect_steps`);
  train    `train_steps_per_iteration` gradient steps, each on `batch_size` n-step transitions
           sampled uniformly from the replay buffer; the target network is copied every
           `target_update_period` gradient steps.

The support must cover the returns: on CartPole-v1 (reward 1 per step, gamma 0.99) discounted
returns reach ~99, so the defaults span [0, 100]. With a support that clips them (TF-Agents'
example uses [-20, 20]) every target above the top atom lands on it, and both actions of a
well-balanced state get the same distribution: the greedy choice between them is left to chance.

TensorFlow, TF-Agents and Gymnasium are imported inside the methods (see lab/workload.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from agents._common import close_envs, episode_observers, export_policy, greedy_actions, make_greedy_evaluation, read_checkpoint, round_metrics, write_checkpoint
from lab.workload import Workload, register

EVAL_SEED_OFFSET = 10_000  # evaluation env i is seeded with seed + EVAL_SEED_OFFSET + i
CHECKPOINT_NAME = "c51"  # files: <dir>/c51.index, <dir>/c51.data-*


@register
class C51(Workload):
    name = "c51"
    test_params = {  # a few seconds: the conformance test (tests/test_conformance.py)
        "num_envs": 2, "fc_layers": [16], "num_atoms": 11, "replay_capacity": 1_000, "batch_size": 16,
        "initial_collect_steps": 40, "collect_steps_per_iteration": 4, "train_steps_per_iteration": 2,
        "target_update_period": 2, "epsilon_decay_steps": 100, "env_steps_per_step": 200, "eval_episodes": 2,
        "max_env_steps": 1_000,
    }

    @dataclass
    class Config:
        env_id: str = "CartPole-v1"  # Gymnasium id: discrete actions, vector observations
        num_envs: int = 8  # training envs, stepped together (BatchedPyEnvironment)
        fc_layers: tuple[int, ...] = (128, 128)  # hidden layers of the categorical Q-network (an MLP)
        num_atoms: int = 51  # atoms of each action's return distribution
        min_q_value: float = 0.0  # lowest atom (a return below it is clipped to it)
        max_q_value: float = 100.0  # highest atom (CartPole's discounted returns reach ~99 at gamma 0.99)
        learning_rate: float = 3e-3  # Adam
        gamma: float = 0.99  # discount factor
        n_step_update: int = 3  # n of the n-step return in the target
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
        save_replay_buffer: bool = True  # checkpoints hold the replay buffer: no refill on resume
        seed: int = 0  # seeds TensorFlow, NumPy and the envs

        def check(self) -> None:
            positive = ("num_envs", "learning_rate", "n_step_update", "replay_capacity", "batch_size",
                        "collect_steps_per_iteration", "train_steps_per_iteration", "target_update_period",
                        "epsilon_decay_steps", "env_steps_per_step", "eval_episodes", "max_env_steps")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
            if self.num_atoms < 2:
                raise ValueError(f"num_atoms must be at least 2, got {self.num_atoms}")
            if not self.min_q_value < self.max_q_value:
                raise ValueError(f"min_q_value ({self.min_q_value}) must be below max_q_value ({self.max_q_value})")
            if not self.fc_layers or any(units <= 0 for units in self.fc_layers):
                raise ValueError(f"fc_layers must be a non-empty list of positive sizes, got {list(self.fc_layers)}")
            if not 0.0 < self.gamma <= 1.0:
                raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
            for name in ("epsilon_start", "epsilon_end"):
                if not 0.0 <= getattr(self, name) <= 1.0:
                    raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
            if self.initial_collect_steps < 0 or self.grad_clip < 0:
                raise ValueError("initial_collect_steps and grad_clip cannot be negative")
            if self.collect_steps_per_iteration < self.num_envs:
                raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be at "
                                 f"least num_envs ({self.num_envs}): a round steps every env at least once")
            if self.replay_capacity // self.num_envs < self.n_step_update + 1:
                raise ValueError(f"replay_capacity ({self.replay_capacity}) must hold n_step_update + 1 = "
                                 f"{self.n_step_update + 1} steps per env")
            from agents.tf_env import check_spaces

            check_spaces(self.env_id, "C51", discrete_actions=True)  # before any trial starts

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (shared/STACK.md)
        import tensorflow as tf
        from tf_agents.agents.categorical_dqn import categorical_dqn_agent
        from tf_agents.drivers import dynamic_step_driver
        from tf_agents.networks import categorical_q_network
        from tf_agents.replay_buffers import tf_uniform_replay_buffer

        from agents.tf_env import make_tf_env

        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments (id and spaces were checked with the config).
        self.train_env = make_tf_env(cfg.env_id, cfg.num_envs, seed=cfg.seed)
        self.eval_env = make_tf_env(cfg.env_id, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)

        # Categorical Q-network (logits [batch, actions, atoms]), counters, agent.
        self.q_network = categorical_q_network.CategoricalQNetwork(
            self.train_env.observation_spec(), self.train_env.action_spec(), num_atoms=cfg.num_atoms,
            fc_layer_params=tuple(cfg.fc_layers),
        )
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate)
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.learning_starts = max(cfg.initial_collect_steps, cfg.num_envs * (cfg.n_step_update + 1))

        def epsilon():
            """Exploration rate, from the env step counter (read inside the collect graph)."""
            fraction = tf.minimum(tf.cast(self.env_steps, tf.float32) / float(cfg.epsilon_decay_steps), 1.0)
            decayed = cfg.epsilon_start + fraction * (cfg.epsilon_end - cfg.epsilon_start)
            return tf.where(self.env_steps < self.learning_starts, 1.0, decayed)

        self.epsilon = epsilon
        self.agent = categorical_dqn_agent.CategoricalDqnAgent(
            self.train_env.time_step_spec(),
            self.train_env.action_spec(),
            categorical_q_network=self.q_network,
            optimizer=self.optimizer,
            min_q_value=cfg.min_q_value,
            max_q_value=cfg.max_q_value,
            epsilon_greedy=epsilon,
            n_step_update=cfg.n_step_update,
            target_update_tau=1.0,
            target_update_period=cfg.target_update_period,
            gamma=cfg.gamma,
            gradient_clipping=cfg.grad_clip or None,
            train_step_counter=self.train_step,
        )
        self.agent.initialize()  # copies the online network into the target network
        self.optimizer.build(self.q_network.trainable_variables)  # slots now, not inside the train loop

        # Replay buffer: one row per env.
        self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            data_spec=self.agent.collect_data_spec, batch_size=cfg.num_envs,
            max_length=cfg.replay_capacity // cfg.num_envs,
        )

        # Collect: one driver run is one round; observers fill the buffer and count steps and returns.
        count_env_steps, track_returns, self.running_returns, self.finished_returns = episode_observers(
            cfg.num_envs, self.env_steps)

        driver = dynamic_step_driver.DynamicStepDriver(
            self.train_env, self.agent.collect_policy,
            observers=[self.replay_buffer.add_batch, count_env_steps, track_returns],
            num_steps=cfg.collect_steps_per_iteration,
        )

        @tf.function(autograph=False)
        def collect():
            driver.run()
            return self.env_steps.value()

        # Train: the round's gradient steps in one graph loop; returns their mean loss (cross-entropy).
        @tf.function(autograph=False)
        def train():
            def gradient_step(i, total):
                experience, _ = self.replay_buffer.get_next(
                    sample_batch_size=cfg.batch_size, num_steps=cfg.n_step_update + 1
                )
                return i + 1, total + self.agent.train(experience).loss

            _, total = tf.while_loop(
                lambda i, _: i < cfg.train_steps_per_iteration, gradient_step, (tf.constant(0), tf.constant(0.0))
            )
            return total / cfg.train_steps_per_iteration

        # Evaluate: one greedy episode in each eval env, all at once; an env's first episode counts.
        evaluate = make_greedy_evaluation(self.agent.policy, self.eval_env, cfg.eval_episodes)

        # Trace all three now (takes no env step): concrete functions never retrace.
        started = time.perf_counter()
        self._collect = collect.get_concrete_function()
        self._train = train.get_concrete_function()
        self._evaluate = evaluate.get_concrete_function()
        self.trace_seconds = time.perf_counter() - started

        saved = dict(agent=self.agent, q_network=self.q_network, optimizer=self.optimizer,
                     train_step=self.train_step, env_steps=self.env_steps)
        if cfg.save_replay_buffer:
            saved["replay_buffer"] = self.replay_buffer
        self.checkpoint = tf.train.Checkpoint(**saved)

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Rounds until `env_steps_per_step` more env steps (a round may overshoot), then an evaluation."""
        cfg = self.config
        start_steps = steps = int(self.env_steps.numpy())
        target = min(start_steps + cfg.env_steps_per_step, cfg.max_env_steps)
        losses = []
        started = time.perf_counter()
        while steps < target:
            steps = int(self._collect())
            if steps >= self.learning_starts:
                losses.append(self._train())
        train_seconds = time.perf_counter() - started
        metrics = round_metrics(self, steps, start_steps, train_seconds)
        metrics["train/epsilon"] = float(self.epsilon())
        if losses:  # none while the initial random steps are collected
            metrics["train/loss"] = float(np.mean(losses))
        return metrics

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions (highest mean return) for a batch of observations (tests, demos)."""
        return greedy_actions(self.agent.policy, self.q_network, observations)

    # ------------------------------------------------------------------ checkpoints
    def save(self, checkpoint_dir: str) -> None:
        write_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME)

    def restore(self, checkpoint_dir: str) -> None:
        read_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME, "C51")

    def export(self, out_dir: str) -> str:
        """The greedy policy, saved with PolicySaver (`lab export`, `lab eval PATH`)."""
        return export_policy(self.agent.policy, out_dir, self.train_step, self.config.env_id, "C51")

    def close(self) -> None:
        close_envs(getattr(self, "train_env", None), getattr(self, "eval_env", None))
