"""PPO (clipped objective) with TF-Agents on a Gymnasium environment, discrete or continuous actions.

Reads top to bottom: the `Config` (its defaults solve CartPole-v1), then the workload. `setup`
builds the environments, the actor and value networks, TF-Agents' `PPOClipAgent` and three
tf.functions (collect, train, evaluate), all traced there, once; `step` runs collect/train
rounds for `env_steps_per_step` env steps, then a greedy evaluation.

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
around it holds one graph copy per epoch (~32 s of tracing for a CartPole run, shared/STACK.md).
Here the agent is built with `num_epochs=1` and the epochs and minibatches run in a
tf.while_loop around `agent.train`: one copy of the gradient step, traced once (~1 s). As in
agents/dqn.py the tf.functions use `autograph=False`, and evaluation plays `eval_episodes`
greedy episodes at once in a batch of envs seeded apart from the training envs. The train and
evaluate functions are also called once in setup (warm-up: a first call optimizes the graph).

Where the time goes (CartPole, defaults, seed 0 to 475 in 10k env steps, ~4.4 s on an idle machine):
evaluation ~60%, collection ~28%, training ~11%. Every batched env step, in collection as in
evaluation, costs ~0.9 ms for 10 envs, ~0.6 ms of it in TF-Agents' Python env layer
(BatchedPyEnvironment and the Gymnasium wrapper; the Gymnasium envs themselves take ~0.1 ms).

TensorFlow, TF-Agents and Gymnasium are imported inside the methods (see lab/workload.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents._common import close_envs, export_policy, greedy_actions, make_greedy_evaluation, read_checkpoint, round_metrics, write_checkpoint
from agents.pixels import scale_pixels
from lab.errors import SpecError
from lab.workload import Workload, register

EVAL_SEED_OFFSET = 10_000  # evaluation env i is seeded with seed + EVAL_SEED_OFFSET + i
CHECKPOINT_NAME = "ppo"  # files: <dir>/ppo.index, <dir>/ppo.data-*


@register
class PPO(Workload):
    name = "ppo"
    test_params = {  # a few seconds: the conformance test (tests/test_conformance.py)
        "num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 2, "num_minibatches": 2,
        "actor_fc_layers": [16], "value_fc_layers": [16], "env_steps_per_step": 64, "eval_episodes": 2,
        "max_env_steps": 200,
    }

    @dataclass
    class Config:
        env_id: str = "CartPole-v1"  # Gymnasium id: discrete or continuous (Box) actions, vector observations
        env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
        num_envs: int = 8  # training envs, stepped together (BatchedPyEnvironment)
        collect_steps_per_iteration: int = 256  # env steps per round over all envs (a multiple of num_envs)
        num_epochs: int = 20  # passes over each round's transitions
        num_minibatches: int = 1  # minibatches per epoch (one gradient step each)
        learning_rate: float = 3e-3  # Adam (epsilon 1e-5)
        gamma: float = 0.98  # discount factor
        gae_lambda: float = 0.8  # lambda of generalized advantage estimation
        importance_ratio_clipping: float = 0.2  # epsilon of the clipped surrogate objective
        entropy_regularization: float = 0.0  # entropy bonus coefficient
        value_pred_loss_coef: float = 0.5  # weight of the value loss in the total loss
        grad_clip: float = 0.5  # clip gradients to this global norm (0: no clipping)
        actor_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the actor (an MLP)
        value_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the value network (an MLP)
        activation: Literal["relu", "tanh"] = "tanh"  # of the hidden layers of both networks
        conv_layers: tuple[tuple[int, ...], ...] = ()  # [filters, kernel, stride] each, before the fc layers of
        #   both networks: images (height, width, channels), uint8 pixels scaled to 0..1 in the networks (Atari)
        max_episode_steps: int = 0  # time limit of training and eval episodes (0: the env's own)
        env_steps_per_step: int = 1_024  # env steps trained by one step() (one Tune iteration)
        eval_episodes: int = 10  # greedy episodes per evaluation, played at once
        max_env_steps: int = 50_000  # budget: step() returns done=True once it is spent
        seed: int = 0  # seeds TensorFlow, NumPy and the envs

        def check(self) -> None:
            positive = ("num_envs", "collect_steps_per_iteration", "num_epochs", "num_minibatches", "learning_rate",
                        "env_steps_per_step", "eval_episodes", "max_env_steps")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
            for name in ("actor_fc_layers", "value_fc_layers"):
                layers = getattr(self, name)
                if not layers or any(units <= 0 for units in layers):
                    raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(layers)}")
            if not 0.0 < self.gamma <= 1.0:
                raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
            if not 0.0 <= self.gae_lambda <= 1.0:
                raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
            for name in ("importance_ratio_clipping", "entropy_regularization", "value_pred_loss_coef", "grad_clip"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} cannot be negative, got {getattr(self, name)}")
            if self.collect_steps_per_iteration % self.num_envs:
                raise ValueError(f"collect_steps_per_iteration ({self.collect_steps_per_iteration}) must be a "
                                 f"multiple of num_envs ({self.num_envs}): every env takes the same steps per round")
            if self.max_episode_steps < 0:
                raise ValueError(f"max_episode_steps cannot be negative, got {self.max_episode_steps}")
            if self.num_minibatches > self.collect_steps_per_iteration:
                raise ValueError(f"num_minibatches ({self.num_minibatches}) cannot exceed the transitions of a round "
                                 f"(collect_steps_per_iteration={self.collect_steps_per_iteration})")
            if any(len(layer) != 3 or min(layer) <= 0 for layer in self.conv_layers):
                raise ValueError(f"conv_layers must be [filters, kernel, stride] triples of positive integers, "
                                 f"got {[list(layer) for layer in self.conv_layers]}")
            from agents.tf_env import check_spaces as check_gym_spaces

            check_gym_spaces(self.env_id, "PPO", discrete_actions=None,  # before any trial starts
                             vector_observations=not self.conv_layers, backend=self.env_backend)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (shared/STACK.md)
        import tensorflow as tf
        from tf_agents.agents.ppo import ppo_clip_agent
        from tf_agents.networks import actor_distribution_network, value_network
        from tf_agents.trajectories import trajectory

        from agents.tf_env import check_env_id, make_tf_env

        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments: the id and the spaces are checked before the eval batch is built.
        check_env_id(cfg.env_id)
        # Training envs are the learner's (Atari: episodic life, clipped rewards); eval envs play the full game.
        # Rebuilt only for its policy (`lab eval`, `lab export`): one env for the specs, no eval envs.
        policy_only = self.context.policy_only
        limit = {"max_episode_steps": cfg.max_episode_steps} if cfg.max_episode_steps else {}
        self.train_env = make_tf_env(cfg.env_id, 1 if policy_only else cfg.num_envs, seed=cfg.seed, training=True,
                                     backend="gymnasium" if policy_only else cfg.env_backend, **limit)
        observation_spec, action_spec = self.train_env.observation_spec(), self.train_env.action_spec()
        check_spaces(cfg.env_id, observation_spec, action_spec, bool(cfg.conv_layers))
        self.eval_env = None if policy_only else make_tf_env(cfg.env_id, cfg.eval_episodes,
                                                             seed=cfg.seed + EVAL_SEED_OFFSET, backend=cfg.env_backend,
                                                             **limit)

        # Networks (conv layers first for uint8 images, scaled in their graphs), counters, agent.
        # num_epochs=1: the epoch loop is ours, in the graph (module docstring).
        activation = {"relu": tf.keras.activations.relu, "tanh": tf.keras.activations.tanh}[cfg.activation]

        def conv():  # each network its own layers
            return {"conv_layer_params": [tuple(layer) for layer in cfg.conv_layers],
                    "preprocessing_layers": scale_pixels()} if cfg.conv_layers else {}

        self.actor_net = actor_distribution_network.ActorDistributionNetwork(
            observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers), activation_fn=activation,
            **conv()
        )
        self.value_net = value_network.ValueNetwork(
            observation_spec, fc_layer_params=tuple(cfg.value_fc_layers), activation_fn=activation, **conv()
        )
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate, epsilon=1e-5)
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.agent = ppo_clip_agent.PPOClipAgent(
            self.train_env.time_step_spec(),
            action_spec,
            optimizer=self.optimizer,
            actor_net=self.actor_net,
            value_net=self.value_net,
            greedy_eval=True,
            importance_ratio_clipping=cfg.importance_ratio_clipping,
            lambda_value=cfg.gae_lambda,
            discount_factor=cfg.gamma,
            entropy_regularization=cfg.entropy_regularization,
            value_pred_loss_coef=cfg.value_pred_loss_coef,
            num_epochs=1,
            use_gae=True,
            use_td_lambda_return=True,  # value targets: GAE advantage + value prediction
            normalize_rewards=False,  # the usual PPO settings (shared/STACK.md)
            normalize_observations=False,
            gradient_clipping=cfg.grad_clip or None,
            compute_value_and_advantage_in_train=False,  # advantages once per round, before the minibatches
            update_normalizers_in_train=False,
            train_step_counter=self.train_step,
        )
        self.agent.initialize()
        variables = self.actor_net.trainable_variables + self.value_net.trainable_variables
        self.optimizer.build(variables)  # slots now, not inside the train loop
        self.checkpoint = tf.train.Checkpoint(
            actor_net=self.actor_net, value_net=self.value_net, optimizer=self.optimizer,
            train_step=self.train_step, env_steps=self.env_steps,
        )
        if policy_only:  # no collect/train/evaluate functions, no warm-up
            return

        # Collect: exactly `length` steps of each env in a graph loop; the round's experience is the
        # transition kept from the previous round followed by these, shaped [num_envs, length + 1].
        env, policy, n = self.train_env, self.agent.collect_policy, cfg.num_envs
        length = cfg.collect_steps_per_iteration // n  # steps of each env per round
        item_spec = self.agent.collect_data_spec
        self.carry = tf.nest.map_structure(
            lambda s: tf.Variable(tf.zeros([n] + s.shape.as_list(), s.dtype), trainable=False), item_spec
        )
        self.has_carry = tf.Variable(False, trainable=False)  # False: the next round first takes one step to fill it
        self.running_returns = tf.Variable(tf.zeros([n]), trainable=False)  # episodes under way
        self.finished_returns = tf.Variable(tf.zeros([2]), trainable=False)  # sum, count since the last step()
        bounds = [(s.minimum, s.maximum) if s.dtype.is_floating else None for s in tf.nest.flatten(action_spec)]

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
            steps += tf.reduce_sum(tf.cast(~item.is_boundary(), tf.int64))  # LAST -> FIRST is a reset, not a step
            return returns, finished, steps

        def fill_carry():
            _, item = env_step(env.current_time_step())
            running, finished, steps = track(item, self.running_returns, tf.zeros([2]), tf.constant(0, tf.int64))
            updates = [v.assign(t) for v, t in zip(tf.nest.flatten(self.carry), tf.nest.flatten(item))]
            updates += [self.running_returns.assign(running), self.finished_returns.assign_add(finished),
                        self.env_steps.assign_add(steps)]
            return tf.group(updates)

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
            # the carried transition was tracked in the round (or by the fill_carry) that took it
            updates += [self.has_carry.assign(True), self.running_returns.assign(running),
                        self.finished_returns.assign_add(finished), self.env_steps.assign_add(steps)]
            with tf.control_dependencies(updates):
                return tf.nest.map_structure(tf.identity, experience)

        def batch_major(t):
            return tf.transpose(t, [1, 0] + list(range(2, t.shape.rank)))

        # Train: returns and advantages once, then epochs x minibatches of agent.train in graph loops.
        transitions = n * length
        minibatch = transitions // cfg.num_minibatches  # a remainder of the shuffled transitions sits out the epoch
        agent = self.agent

        @tf.function(autograph=False)
        def train(experience):
            experience = agent.preprocess_sequence(experience)  # policy_info gains 'return' and 'advantage'
            # Drop the last column (bootstrap only) and make every transition a length-1 sequence.
            flat = tf.nest.map_structure(
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

        # Evaluate: one greedy episode in each eval env, all at once; an env's first episode counts.
        evaluate = make_greedy_evaluation(self.agent.policy, self.eval_env, cfg.eval_episodes)

        # Trace all three now (takes no env step): concrete functions never retrace.
        started = time.perf_counter()
        self._collect = collect.get_concrete_function()
        self._train = train.get_concrete_function(self._collect.structured_outputs)
        self._evaluate = evaluate.get_concrete_function()
        self.trace_seconds = time.perf_counter() - started

        # Warm-up: a function's first call also optimizes its graph (~0.5 s of CPU for train); pay it here.
        # Train runs once on an all-zero experience, its effects on the variables undone; evaluate plays
        # the untrained policy's (short) episodes. Collect is not warmed: that would take env steps.
        started = time.perf_counter()
        state = [self.train_step, *self.optimizer.variables, *variables]
        values = [v.numpy() for v in state]
        self._train(tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), self._collect.structured_outputs))
        for v, value in zip(state, values):
            v.assign(value)
        self._evaluate()
        self.warmup_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Rounds until `env_steps_per_step` more env steps (a round may overshoot), then an evaluation."""
        cfg = self.config
        start_steps = steps = int(self.env_steps.numpy())
        target = min(start_steps + cfg.env_steps_per_step, cfg.max_env_steps)
        losses = []
        started = time.perf_counter()
        while steps < target:
            losses.append(self._train(self._collect()))
            steps = int(self.env_steps.numpy())
        train_seconds = time.perf_counter() - started
        loss, policy_loss, value_loss, entropy_loss = np.mean(losses, axis=0) if losses else [np.nan] * 4
        metrics = round_metrics(self, steps, start_steps, train_seconds)
        if losses:  # none when the budget was already spent
            metrics.update({"train/loss": float(loss), "train/policy_loss": float(policy_loss),
                            "train/value_loss": float(value_loss), "train/entropy_loss": float(entropy_loss)})
        return metrics

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions of the current actor for a batch of observations (tests, demos)."""
        return greedy_actions(self.agent.policy, self.actor_net, observations)

    # ------------------------------------------------------------------ checkpoints
    def save(self, checkpoint_dir: str) -> None:
        write_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME)

    def restore(self, checkpoint_dir: str) -> None:
        read_checkpoint(self.checkpoint, checkpoint_dir, CHECKPOINT_NAME, "PPO")
        if hasattr(self, "has_carry"):  # not built for the policy only
            self.has_carry.assign(False)  # the kept transition belongs to the envs' old episodes: take a fresh one

    def export(self, out_dir: str) -> str:
        """The greedy policy, saved with PolicySaver (`lab export`, `lab eval PATH`)."""
        return export_policy(self.agent.policy, out_dir, self.train_step, self.config.env_id, "PPO",
                             self.config.max_episode_steps)

    def close(self) -> None:
        close_envs(getattr(self, "train_env", None), getattr(self, "eval_env", None))


def check_spaces(env_id: str, observation_spec, action_spec, images: bool = False) -> None:
    """SpecError unless the env has one discrete or continuous action and vector observations (an MLP's
    input), or images (height, width, channels) with `images` (conv layers)."""
    import tensorflow as tf

    actions = tf.nest.flatten(action_spec)
    if len(actions) != 1 or (actions[0].dtype.is_integer and actions[0].shape.rank != 0):
        shapes = [a.shape.as_list() for a in actions]
        raise SpecError(f"PPO needs one discrete action or one continuous (Box) action vector, but '{env_id}' "
                        f"has actions {shapes} ({', '.join(a.dtype.name for a in actions)})")
    observations = tf.nest.flatten(observation_spec)
    if len(observations) != 1 or observations[0].shape.rank != (3 if images else 1):
        shape = [o.shape.as_list() for o in observations]
        raise SpecError(f"PPO's MLP networks need flat vector observations, but '{env_id}' observes "
                        f"{shape[0] if len(shape) == 1 else shape} (images need a conv network)")
