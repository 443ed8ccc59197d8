"""REINFORCE (Monte-Carlo policy gradient) with TF-Agents on a Gymnasium environment with discrete actions.

Reads top to bottom: the `Config` (its defaults solve CartPole-v1), then the workload. `setup`
builds the batched environments, the actor (and optional value baseline) network, TF-Agents'
`ReinforceAgent` and three tf.functions (collect, train, evaluate; `autograph=False`, traced
there, once); `step` runs collect/train rounds for `env_steps_per_step` env steps, then a greedy
evaluation of `eval_episodes` episodes played at once in a batch of envs seeded apart.

One collect/train round (REINFORCE needs whole episodes: returns are summed to the episode's end):
  collect  reset the `num_envs` batched envs, then step them all together with the stochastic
           policy until every env has finished at least one episode; the round's experience is
           one row per env, [num_envs, T] with T the longest env's steps (capped at
           `max_round_steps`). An env that finished early starts more episodes meanwhile.
  train    one `agent.train` call, one gradient step: TF-Agents computes each transition's
           discounted return to its episode's end (resetting at LAST), masks out what follows an
           env's last finished episode (an unfinished episode has no return) and the LAST -> FIRST
           boundary transitions, normalizes the returns (or, with the value baseline, the
           advantages return - V(s)) over the round, and averages the loss over its episodes.
           The baseline's loss (squared error to the returns) is weighted by
           `value_estimation_loss_coef` and trained by the same optimizer.

Env steps count every step taken, the unused tails included (the price of stepping envs together;
small once episodes are long and alike). Resetting at the start of a round also drops the
episodes under way, so every row starts at an episode's first step.

TensorFlow, TF-Agents and Gymnasium are imported inside the methods (see lab/workload.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents._common import close_envs, export_policy, greedy_actions, make_greedy_evaluation, read_checkpoint, round_metrics, write_checkpoint
from lab.workload import Workload, register

EVAL_SEED_OFFSET = 10_000  # evaluation env i is seeded with seed + EVAL_SEED_OFFSET + i
CHECKPOINT_NAME = "reinforce"  # files: <dir>/reinforce.index, <dir>/reinforce.data-*


@register
class Reinforce(Workload):
    name = "reinforce"
    test_params = {  # a few seconds: the conformance test (tests/test_conformance.py)
        "num_envs": 2, "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 100,
        "eval_episodes": 2, "max_env_steps": 300,
    }

    @dataclass
    class Config:
        env_id: str = "CartPole-v1"  # Gymnasium id: discrete actions, vector observations
        num_envs: int = 8  # training envs, stepped together: at least this many episodes per gradient step
        actor_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the actor (an MLP, softmax over actions)
        value_baseline: bool = True  # learn V(s) and use return - V(s) as the advantage
        value_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the value network (an MLP)
        value_estimation_loss_coef: float = 0.2  # weight of the baseline's loss in the total loss
        activation: Literal["relu", "tanh"] = "tanh"  # of the hidden layers of both networks
        learning_rate: float = 3e-3  # Adam
        gamma: float = 0.99  # discount factor
        normalize_returns: bool = True  # standardize returns (advantages) over each round
        entropy_regularization: float = 0.0  # entropy bonus coefficient
        grad_clip: float = 0.0  # clip gradients to this global norm (0: no clipping)
        max_round_steps: int = 1_000  # cap on the steps of each env per round (envs without a time limit)
        env_steps_per_step: int = 2_000  # env steps trained by one step() (one Tune iteration)
        eval_episodes: int = 10  # greedy episodes per evaluation, played at once
        max_env_steps: int = 300_000  # budget: step() returns done=True once it is spent
        seed: int = 0  # seeds TensorFlow, NumPy and the envs

        def check(self) -> None:
            positive = ("num_envs", "learning_rate", "max_round_steps", "env_steps_per_step", "eval_episodes",
                        "max_env_steps")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
            for name in ("actor_fc_layers", "value_fc_layers"):
                layers = getattr(self, name)
                if not layers or any(units <= 0 for units in layers):
                    raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(layers)}")
            if not 0.0 < self.gamma <= 1.0:
                raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
            for name in ("value_estimation_loss_coef", "entropy_regularization", "grad_clip"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} cannot be negative, got {getattr(self, name)}")
            from agents.tf_env import check_spaces

            check_spaces(self.env_id, "REINFORCE", discrete_actions=True)  # before any trial starts

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (shared/STACK.md)
        import tensorflow as tf
        from tf_agents.agents.reinforce import reinforce_agent
        from tf_agents.networks import actor_distribution_network, value_network
        from tf_agents.trajectories import trajectory

        from agents.tf_env import make_tf_env

        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments (id and spaces were checked with the config).
        self.train_env = make_tf_env(cfg.env_id, cfg.num_envs, seed=cfg.seed)
        self.eval_env = make_tf_env(cfg.env_id, cfg.eval_episodes, seed=cfg.seed + EVAL_SEED_OFFSET)
        observation_spec, action_spec = self.train_env.observation_spec(), self.train_env.action_spec()

        # Networks, counters, agent.
        activation = {"relu": tf.keras.activations.relu, "tanh": tf.keras.activations.tanh}[cfg.activation]
        self.actor_net = actor_distribution_network.ActorDistributionNetwork(
            observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers), activation_fn=activation
        )
        self.value_net = value_network.ValueNetwork(
            observation_spec, fc_layer_params=tuple(cfg.value_fc_layers), activation_fn=activation
        ) if cfg.value_baseline else None
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate)
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.agent = reinforce_agent.ReinforceAgent(
            self.train_env.time_step_spec(),
            action_spec,
            actor_network=self.actor_net,
            optimizer=self.optimizer,
            value_network=self.value_net,
            value_estimation_loss_coef=cfg.value_estimation_loss_coef,
            gamma=cfg.gamma,
            normalize_returns=cfg.normalize_returns,
            entropy_regularization=cfg.entropy_regularization or None,
            gradient_clipping=cfg.grad_clip or None,
            train_step_counter=self.train_step,
        )
        self.agent.initialize()
        variables = self.actor_net.trainable_variables + (self.value_net.trainable_variables if self.value_net else [])
        self.optimizer.build(variables)  # slots now, not inside the train function

        # Collect: reset, then step every env until each has finished an episode; [n, T] trajectories.
        env, policy, n = self.train_env, self.agent.collect_policy, cfg.num_envs
        item_spec = self.agent.collect_data_spec
        self.finished_returns = tf.Variable(tf.zeros([2]), trainable=False)  # sum, count since the last step()

        @tf.function(autograph=False)
        def collect():
            arrays = tf.nest.map_structure(
                lambda s: tf.TensorArray(s.dtype, size=0, dynamic_size=True, element_shape=[n] + s.shape.as_list()),
                item_spec,
            )

            def body(i, time_step, arrays, ended, running, finished):
                action_step = policy.action(time_step)
                next_time_step = env.step(action_step.action)
                item = trajectory.from_transition(time_step, action_step, next_time_step)
                arrays = tf.nest.map_structure(lambda a, t: a.write(i, t), arrays, item)
                # training episodes' returns: one ends at its LAST -> FIRST boundary transition
                returns = tf.where(item.is_first(), 0.0, running) + item.reward
                last = item.is_last()
                finished += tf.stack([tf.reduce_sum(tf.where(last, returns, 0.0)),
                                      tf.reduce_sum(tf.cast(last, tf.float32))])
                return i + 1, next_time_step, arrays, ended | last, returns, finished

            start = (tf.constant(0), env.reset(), arrays, tf.zeros([n], tf.bool), tf.zeros([n]), tf.zeros([2]))
            _, _, arrays, _, _, finished = tf.while_loop(
                lambda i, _, __, ended, *rest: tf.logical_and(i < cfg.max_round_steps, ~tf.reduce_all(ended)),
                body, start,
            )
            experience = tf.nest.map_structure(lambda a: batch_major(a.stack()), arrays)  # [n, T, ...]
            steps = tf.reduce_sum(tf.cast(~experience.is_boundary(), tf.int64))  # LAST -> FIRST: a reset
            updates = [self.env_steps.assign_add(steps), self.finished_returns.assign_add(finished)]
            with tf.control_dependencies(updates):
                return tf.nest.map_structure(tf.identity, experience)

        def batch_major(t):
            return tf.transpose(t, [1, 0] + list(range(2, t.shape.rank)))

        # Train: one gradient step on the round's episodes; skipped (nan) if none finished (max_round_steps).
        agent = self.agent

        @tf.function(autograph=False)
        def train(experience):
            def gradient_step():
                info = agent.train(experience)
                return tf.stack([info.loss, info.extra.policy_gradient_loss, info.extra.value_estimation_loss])

            any_episode = tf.reduce_any(experience.is_last())
            return tf.cond(any_episode, gradient_step, lambda: tf.fill([3], np.nan))

        # Evaluate: one greedy episode in each eval env, all at once; an env's first episode counts.
        evaluate = make_greedy_evaluation(self.agent.policy, self.eval_env, cfg.eval_episodes)

        # Trace all three now (takes no env step): concrete functions never retrace.
        started = time.perf_counter()
        self._collect = collect.get_concrete_function()
        spec = tf.nest.map_structure(lambda t: tf.TensorSpec([n, None] + t.shape[2:].as_list(), t.dtype),
                                     self._collect.structured_outputs)
        self._train = train.get_concrete_function(spec)
        self._evaluate = evaluate.get_concrete_function()
        self.trace_seconds = time.perf_counter() - started

        saved = dict(actor_net=self.actor_net, optimizer=self.optimizer, train_step=self.train_step,
                     env_steps=self.env_steps)
        if self.value_net is not None:
            saved["value_net"] = self.value_net
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
            losses.append(self._train(self._collect()).numpy())
            steps = int(self.env_steps.numpy())
        train_seconds = time.perf_counter() - started
        metrics = round_metrics(self, steps, start_steps, train_seconds)
        trained = [loss for loss in losses if np.isfinite(loss).all()]
        if trained:  # none when no round finished an episode, or the budget was already spent
            loss, policy_loss, value_loss = np.mean(trained, axis=0)
            metrics.update({"train/loss": float(loss), "train/policy_loss": float(policy_loss)})
            if cfg.value_baseline:
                metrics["train/value_loss"] = float(value_loss)
        return metrics

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        """Greedy (most probable) actions of the current actor for a batch of observations (tests, demos)."""
        return greedy_actions(self.agent.policy, self.actor_net, observations)

    # ------------------------------------------------------------------ checkpoints
    def save(self, checkpoint_dir: str) -> None:
        write_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME)

    def restore(self, checkpoint_dir: str) -> None:
        read_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME, "REINFORCE")

    def export(self, out_dir: str) -> str:
        """The greedy policy, saved with PolicySaver (`lab export`, `lab eval PATH`)."""
        return export_policy(self.agent.policy, out_dir, self.train_step, self.config.env_id, "REINFORCE")

    def close(self) -> None:
        close_envs(getattr(self, "train_env", None), getattr(self, "eval_env", None))
