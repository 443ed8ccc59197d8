"""REINFORCE (Monte-Carlo policy gradient) with TF-Agents on a Gymnasium environment with discrete actions.

The `Config` (its defaults solve CartPole-v1), TF-Agents' `ReinforceAgent` and the round's two
tf.functions (`autograph=False`); the networks, the step loop, evaluation and checkpoints are the
on-policy base's (agents/_on_policy.py).

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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents._on_policy import OnPolicyConfig, OnPolicyWorkload


class Reinforce(OnPolicyWorkload):
    name = "reinforce"
    label = "REINFORCE"
    test_params = {  # a few seconds: the conformance test
        "num_envs": 2, "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 100,
        "eval_episodes": 2, "max_env_steps": 300,
    }
    loss_names = ("train/loss", "train/policy_loss", "train/value_loss")
    nan_marks_skipped_round = True  # a round in which no env finished an episode trains nothing

    @dataclass
    class Config(OnPolicyConfig):
        value_baseline: bool = True  # learn V(s) and use return - V(s) as the advantage
        value_estimation_loss_coef: float = 0.2  # weight of the baseline's loss in the total loss
        normalize_returns: bool = True  # standardize returns (advantages) over each round
        max_round_steps: int = 1_000  # cap on the steps of each env per round (envs without a time limit)
        env_steps_per_step: int = 2_000  # env steps trained by one step() (one Tune iteration)
        max_env_steps: int = 300_000  # budget: step() returns done=True once it is spent

        def check(self) -> None:
            self.check_common("REINFORCE", discrete_actions=True, positive=("max_round_steps",),
                              non_negative=("value_estimation_loss_coef",))

    @classmethod
    def reported_losses(cls, config) -> tuple[str, ...]:
        return cls.loss_names if config.value_baseline else cls.loss_names[:2]

    def uses_value_net(self) -> bool:
        return self.config.value_baseline

    def make_agent(self, time_step_spec, action_spec):
        from tf_agents.agents.reinforce import reinforce_agent

        cfg = self.config
        return reinforce_agent.ReinforceAgent(
            time_step_spec, action_spec, actor_network=self.actor_net, optimizer=self.optimizer,
            value_network=self.value_net, value_estimation_loss_coef=cfg.value_estimation_loss_coef,
            gamma=cfg.gamma, normalize_returns=cfg.normalize_returns,
            entropy_regularization=cfg.entropy_regularization or None, gradient_clipping=cfg.grad_clip or None,
            train_step_counter=self.train_step,
        )

    def make_round(self):
        import tensorflow as tf
        from tf_agents.trajectories import trajectory

        cfg = self.config
        env, policy, n = self.train_env, self.agent.collect_policy, cfg.num_envs
        item_spec = self.agent.collect_data_spec
        self.finished_returns = tf.Variable(tf.zeros([2]), trainable=False)  # sum, count since the last step()

        # Collect: reset, then step every env until each has finished an episode; [n, T] trajectories.
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

        return collect, train

    def train_input_spec(self, collected):
        """Rounds differ in length: train is traced for [num_envs, any T] experience."""
        import tensorflow as tf

        return tf.nest.map_structure(lambda t: tf.TensorSpec([t.shape[0], None] + t.shape[2:].as_list(), t.dtype),
                                     collected)
