"""PPO (clipped objective) with TF-Agents on a Gymnasium environment, discrete or continuous actions.

Reads top to bottom: the `PPOConfig` every PPO variant has (its defaults solve CartPole-v1), then `PPO`:
TF-Agents' `PPOClipAgent` and PPO's rounds; networks, evaluation and checkpoints are agents/_on_policy.py's.
A variant (agents/ppo_kl.py: an adaptive KL penalty) subclasses `PPO` with its own `Config` and `make_agent`.

One collect/train round:
  collect  `collect_steps_per_iteration` env steps (summed over the `num_envs` batched envs) with
           the stochastic collect policy, which also records its value predictions; the last
           transition of a round is kept and heads the next round, where it is trained on
           (in its own round it only supplies the bootstrap value): no env step is wasted;
  train    the agent's `preprocess_sequence` computes returns and GAE advantages once; then
           `num_epochs` passes over the round's transitions, each shuffled into `num_minibatches`
           minibatches, one `agent.train` call (one gradient step, advantages normalized in the
           minibatch) per minibatch.

Speed notes (2 CPU cores): `PPOAgent.train` unrolls its epoch loop in Python, so a tf.function
around it holds one graph copy per epoch (~32 s of tracing for a CartPole run, docs/stack.md).
Here the agent is built with `num_epochs=1` and the epochs and minibatches run in a
tf.while_loop around `agent.train`: one copy of the gradient step, traced once (~1 s). The
tf.functions use `autograph=False`. The train and evaluate functions are also called once in
setup (warm-up: a first call optimizes the graph).

Where the time goes (CartPole, defaults, seed 0 to 475 in 10k env steps, ~4.4 s on an idle machine):
evaluation ~60%, collection ~28%, training ~11%.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from agents._on_policy import OnPolicyConfig, OnPolicyWorkload

TEST_PARAMS = {  # a few seconds: the conformance test
    "num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 2, "num_minibatches": 2,
    "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 64, "eval_episodes": 2,
    "max_env_steps": 200,
}


@dataclass
class PPOConfig(OnPolicyConfig):
    """The fields of every PPO variant (defaults: CartPole-v1)."""

    collect_steps_per_iteration: int = 256  # env steps per round over all envs (a multiple of num_envs)
    num_epochs: int = 20  # passes over each round's transitions
    num_minibatches: int = 1  # minibatches per epoch (one gradient step each)
    gamma: float = 0.98  # discount factor
    gae_lambda: float = 0.8  # lambda of generalized advantage estimation
    value_pred_loss_coef: float = 0.5  # weight of the value loss in the total loss
    grad_clip: float = 0.5  # clip gradients to this global norm (0: no clipping)

    def check_ppo(self, agent: str, non_negative: tuple[str, ...] = ()) -> None:
        self.check_common(agent, discrete_actions=None, positive=("collect_steps_per_iteration", "num_epochs",
                                                                  "num_minibatches"),
                          non_negative=("value_pred_loss_coef", *non_negative))
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if self.collect_steps_per_iteration % self.num_envs:
            raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be a "
                             f"multiple of num_envs ({self.num_envs}): every env takes the same steps per round")
        if self.num_minibatches > self.collect_steps_per_iteration:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) cannot exceed the transitions of a round "
                             f"(collect_steps_per_iteration={self.collect_steps_per_iteration})")


class PPO(OnPolicyWorkload):
    """PPO's fixed-length rounds and minibatch epochs around TF-Agents' PPOClipAgent (a variant: its own agent)."""

    name = "ppo"
    label = "PPO"
    test_params = dict(TEST_PARAMS)
    adam_epsilon = 1e-5
    loss_names = ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy_loss")

    @dataclass
    class Config(PPOConfig):
        importance_ratio_clipping: float = 0.2  # epsilon of the clipped surrogate objective

        def check(self) -> None:
            self.check_ppo("PPO", non_negative=("importance_ratio_clipping",))

    def make_agent(self, time_step_spec, action_spec):
        from tf_agents.agents.ppo import ppo_clip_agent

        return self.agent_class(ppo_clip_agent.PPOClipAgent)(
            time_step_spec, action_spec, **self.agent_settings(),
            importance_ratio_clipping=self.config.importance_ratio_clipping)

    def agent_class(self, ppo_agent_class):
        """`ppo_agent_class`, or with a shared trunk its subclass that runs the trunk once per minibatch."""
        if self.config.shared_trunk and self.config.one_pass_trunk:
            from agents.shared_trunk import one_pass

            return one_pass(ppo_agent_class)
        return ppo_agent_class

    def agent_settings(self) -> dict:
        """The PPOAgent arguments every variant shares (the usual PPO settings, docs/stack.md)."""
        cfg = self.config
        return dict(
            optimizer=self.optimizer, actor_net=self.actor_net, value_net=self.value_net,  # greedy_eval: True
            lambda_value=cfg.gae_lambda, discount_factor=cfg.gamma, entropy_regularization=cfg.entropy_regularization,
            value_pred_loss_coef=cfg.value_pred_loss_coef, num_epochs=1, use_gae=True,
            use_td_lambda_return=True,  # value targets: GAE advantage + value prediction
            normalize_rewards=False, normalize_observations=False, gradient_clipping=cfg.grad_clip or None,
            compute_value_and_advantage_in_train=False,  # advantages once per round, before the minibatches
            update_normalizers_in_train=False, train_step_counter=self.train_step,
        )

    def make_round(self):
        import tensorflow as tf
        from tf_agents.trajectories import trajectory

        cfg = self.config
        env, policy, n = self.train_env, self.agent.collect_policy, cfg.num_envs
        length = cfg.collect_steps_per_iteration // n  # steps of each env per round
        item_spec = self.agent.collect_data_spec
        # The transition carried into the next round, and the episodes under way.
        self.carry = tf.nest.map_structure(
            lambda s: tf.Variable(tf.zeros([n] + s.shape.as_list(), s.dtype), trainable=False), item_spec
        )
        self.has_carry = tf.Variable(False, trainable=False)  # False: the next round first takes one step to fill it
        self.running_returns = tf.Variable(tf.zeros([n]), trainable=False)  # episodes under way
        self.finished_returns = tf.Variable(tf.zeros([2]), trainable=False)  # sum, count since the last step()
        bounds = [(s.minimum, s.maximum) if s.dtype.is_floating else None
                  for s in tf.nest.flatten(self.train_env.action_spec())]

        def env_step(time_step):
            """One step of every env; the trajectory keeps the sampled (unclipped) action."""
            action_step = policy.action(time_step)
            actions = [a if b is None else tf.clip_by_value(a, *b)
                       for a, b in zip(tf.nest.flatten(action_step.action), bounds)]
            next_time_step = env.step(tf.nest.pack_sequence_as(action_step.action, actions))
            return next_time_step, trajectory.from_transition(time_step, action_step, next_time_step)

        def track(item, running, finished, steps):
            """Training episodes' returns (one ends at its LAST -> FIRST boundary transition) and env steps."""
            returns = tf.where(item.is_first(), 0.0, running) + item.reward
            ended = tf.cast(item.is_last(), tf.float32)
            finished += tf.stack([tf.reduce_sum(returns * ended), tf.reduce_sum(ended)])
            steps += n  # every step of the vector env, an auto-reset included (as SB3 counts): a round is exactly
            # collect_steps_per_iteration, and a budget that is a multiple of it ends on it (+ the first step)
            return returns, finished, steps

        def fill_carry():
            _, item = env_step(env.current_time_step())
            running, finished, steps = track(item, self.running_returns, tf.zeros([2]), tf.constant(0, tf.int64))
            updates = [v.assign(t) for v, t in zip(tf.nest.flatten(self.carry), tf.nest.flatten(item))]
            updates += [self.running_returns.assign(running), self.finished_returns.assign_add(finished),
                        self.env_steps.assign_add(steps)]
            return tf.group(updates)

        # Collect: [n, length + 1] transitions, the carried one first; the last one is carried on.
        @tf.function(autograph=False)
        def collect():
            with tf.control_dependencies([tf.cond(self.has_carry, tf.no_op, fill_carry)]):
                first = tf.nest.map_structure(tf.identity, self.carry)
                time_step, running = env.current_time_step(), self.running_returns.value()
            arrays = tf.nest.map_structure(
                lambda s: tf.TensorArray(s.dtype, size=length, element_shape=[n] + s.shape.as_list()), item_spec
            )

            def body(i, time_step, arrays, running, finished, steps):
                time_step, item = env_step(time_step)
                arrays = tf.nest.map_structure(lambda a, t: a.write(i, t), arrays, item)
                return (i + 1, time_step, arrays, *track(item, running, finished, steps))

            start = (tf.constant(0), time_step, arrays, running, tf.zeros([2]), tf.constant(0, tf.int64))
            _, _, arrays, running, finished, steps = tf.while_loop(lambda i, *_: i < length, body, start)
            items = tf.nest.map_structure(lambda a: batch_major(a.stack()), arrays)  # [n, length, ...]
            experience = tf.nest.map_structure(lambda f, t: tf.concat([f[:, None], t], axis=1), first, items)
            updates = [v.assign(t[:, -1]) for v, t in zip(tf.nest.flatten(self.carry), tf.nest.flatten(experience))]
            updates += [self.has_carry.assign(True), self.running_returns.assign(running),
                        self.finished_returns.assign_add(finished), self.env_steps.assign_add(steps)]
            with tf.control_dependencies(updates):
                return tf.nest.map_structure(tf.identity, experience)

        def batch_major(t):
            return tf.transpose(t, [1, 0] + list(range(2, t.shape.rank)))

        # Train: advantages once, then epochs x minibatches of gradient steps in a graph loop; mean losses.
        transitions = n * length
        minibatch = transitions // cfg.num_minibatches  # a remainder of the shuffled transitions sits out the epoch
        agent = self.agent

        @tf.function(autograph=False)
        def train(experience):
            experience = agent.preprocess_sequence(experience)  # policy_info gains 'return' and 'advantage'
            flat = tf.nest.map_structure(  # the transitions of t = 0 .. length-1; the last one only bootstraps
                lambda t: tf.reshape(t[:, :-1], [transitions, 1] + t.shape[2:].as_list()), experience
            )

            def epoch(e, totals):
                order = tf.random.shuffle(tf.range(transitions))

                def gradient_step(m, totals):
                    indices = order[m * minibatch:(m + 1) * minibatch]
                    info = agent.train(tf.nest.map_structure(lambda t: tf.gather(t, indices), flat))
                    extra = info.extra
                    return m + 1, totals + tf.stack([info.loss, extra.policy_gradient_loss,
                                                     extra.value_estimation_loss, extra.entropy_regularization_loss])

                return e + 1, tf.while_loop(lambda m, _: m < cfg.num_minibatches, gradient_step, (0, totals))[1]

            _, totals = tf.while_loop(lambda e, _: e < cfg.num_epochs, epoch, (tf.constant(0), tf.zeros([4])))
            return totals / (cfg.num_epochs * cfg.num_minibatches)

        return collect, train

    def warm_up(self) -> None:
        """Call train (on zeros, its effects undone) and evaluate for one step: their first call optimizes the
        graph (a whole greedy episode of an untrained Breakout policy took 25 CPU-s here)."""
        import tensorflow as tf

        started = time.perf_counter()
        state = [self.train_step, *self.optimizer.variables, *self.variables]
        values = [v.numpy() for v in state]
        self._train(tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), self._collect.structured_outputs))
        for v, value in zip(state, values):
            v.assign(value)
        self._evaluate(1)
        self.warmup_seconds = time.perf_counter() - started

    def restore(self, checkpoint_dir: str) -> None:
        super().restore(checkpoint_dir)
        if hasattr(self, "has_carry"):  # not built for the policy only
            self.has_carry.assign(False)  # the kept transition belongs to the envs' old episodes: take a fresh one
