"""What the on-policy agents share (REINFORCE, PPO and its variants: agents/ppo.py): networks, rounds, checkpoints.

An on-policy workload trains on what its current policy just collected. `OnPolicyWorkload.setup`
builds the batched environments, an actor (a distribution over actions) and, where the subclass
wants one, a value network, Adam, then asks the subclass for its TF-Agents agent and for the
round's two tf.functions (`make_round`: collect, then train on what was collected); with the
greedy evaluation they are traced there, once. `step` runs rounds for `env_steps_per_step` env
steps, then a greedy evaluation of `eval_episodes` episodes played at once in a batch of envs
seeded apart from the training envs. TensorFlow and TF-Agents are imported inside the methods.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents._common import ROUND_METRICS, AgentWorkload, make_greedy_evaluation, traced_evaluation


@dataclass
class OnPolicyConfig:
    """The fields every on-policy agent has (defaults: CartPole-v1); the agent files add their own."""

    env_id: str = "CartPole-v1"  # Gymnasium id: vector observations (images with conv_layers)
    env_backend: Literal["gymnasium", "envpool", "auto"] = "gymnasium"  # steps the envs (envs/backends.py)
    num_envs: int = 8  # training envs, stepped together (one Gymnasium vector env)
    learning_rate: float = 3e-3  # Adam
    gamma: float = 0.99  # discount factor
    entropy_regularization: float = 0.0  # entropy bonus coefficient
    grad_clip: float = 0.0  # clip gradients to this global norm (0: no clipping)
    actor_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the actor (an MLP)
    value_fc_layers: tuple[int, ...] = (64, 64)  # hidden layers of the value network (an MLP)
    activation: Literal["relu", "tanh"] = "tanh"  # of the hidden layers of both networks
    conv_layers: tuple[tuple[int, ...], ...] = ()  # [filters, kernel, stride] each, before the fc layers of
    #   both networks: images (height, width, channels), uint8 pixels scaled to 0..1 in the networks (Atari)
    shared_trunk: bool = False  # the actor and the value network share their conv and fc layers (one
    #   trunk, agents/shared_trunk.py; actor_fc_layers must equal value_fc_layers), each with its own head
    one_pass_trunk: bool = True  # with shared_trunk (PPO): one trunk pass per minibatch feeds both heads
    #   (False: TF-Agents' two passes, the control of benchmarks/ppo_one_pass.py)
    max_episode_steps: int = 0  # time limit of training and eval episodes (0: the env's own)
    env_steps_per_step: int = 1_024  # env steps trained by one step() (one Tune iteration)
    eval_episodes: int = 10  # greedy episodes per evaluation, played at once
    max_env_steps: int = 50_000  # budget: step() returns done=True once it is spent
    seed: int = 0  # seeds TensorFlow, NumPy and the envs

    def check_common(self, agent: str, discrete_actions: bool | None, positive: tuple[str, ...] = (),
                     non_negative: tuple[str, ...] = ()) -> None:
        """ValueError on impossible values (also of the agent's own `positive` and `non_negative` fields);
        SpecError unless the env's spaces suit the agent."""
        for name in ("num_envs", "learning_rate", "env_steps_per_step", "eval_episodes", "max_env_steps", *positive):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("actor_fc_layers", "value_fc_layers"):
            layers = getattr(self, name)
            if not layers or any(units <= 0 for units in layers):
                raise ValueError(f"{name} must be a non-empty list of positive sizes, got {list(layers)}")
        if self.shared_trunk and list(self.actor_fc_layers) != list(self.value_fc_layers):
            raise ValueError(f"shared_trunk: actor_fc_layers {list(self.actor_fc_layers)} and value_fc_layers "
                             f"{list(self.value_fc_layers)} must be equal (one trunk)")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        for name in ("entropy_regularization", "grad_clip", *non_negative):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative, got {getattr(self, name)}")
        if self.max_episode_steps < 0:
            raise ValueError(f"max_episode_steps cannot be negative, got {self.max_episode_steps}")
        if any(len(layer) != 3 or min(layer) <= 0 for layer in self.conv_layers):
            raise ValueError(f"conv_layers must be [filters, kernel, stride] triples of positive integers, "
                             f"got {[list(layer) for layer in self.conv_layers]}")
        from agents.tf_env import check_agent_env

        check_agent_env(self.env_id, agent, self.env_backend, discrete_actions=discrete_actions,
                        vector_observations=not self.conv_layers)


class OnPolicyWorkload(AgentWorkload):
    """setup/step/save/restore/export of an agent trained on rounds of its own fresh experience."""

    adam_epsilon = 1e-7  # Keras' default
    loss_names: tuple[str, ...] = ("train/loss", "train/policy_loss")  # the train function's outputs, in order
    nan_marks_skipped_round = False  # True: a round whose losses are nan trained nothing (left out of the means)

    def uses_value_net(self) -> bool:
        return True

    def make_agent(self, time_step_spec, action_spec):
        """The subclass's TF-Agents agent over `self.actor_net`, `self.value_net` and `self.optimizer`."""
        raise NotImplementedError

    def make_round(self):
        """The subclass's (collect, train) tf.functions: `train(collect())` is one round, returning its losses."""
        raise NotImplementedError

    def train_input_spec(self, collected):
        """What `train` is traced for, from `collect`'s outputs (default: exactly their shapes)."""
        return collected

    def warm_up(self) -> None:
        """Optional: run the traced functions once in setup (a first call optimizes the graph)."""

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return ROUND_METRICS | set(cls.reported_losses(config))

    @classmethod
    def reported_losses(cls, config) -> tuple[str, ...]:
        return cls.loss_names

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-Agents needs tf_keras (docs/stack.md)
        import tensorflow as tf
        from tf_agents.networks import actor_distribution_network, value_network

        from agents.pixels import conv_network_args

        cfg = self.config
        tf.keras.utils.set_random_seed(cfg.seed)  # Python, NumPy and TensorFlow

        # Environments (id and spaces were checked with the config). Training envs are the learner's
        # (Atari: episodic life, clipped rewards), evaluation envs play the full game. Rebuilt only for
        # its policy (`lab eval`, `lab export`): one env for the specs, no eval envs.
        policy_only = self.context.policy_only
        self.make_envs(cfg.max_episode_steps)
        observation_spec, action_spec = self.train_env.observation_spec(), self.train_env.action_spec()

        # Networks (conv layers first for uint8 images, scaled in their graphs), optimizer, counters, agent.
        activation = {"relu": tf.keras.activations.relu, "tanh": tf.keras.activations.tanh}[cfg.activation]

        if cfg.shared_trunk:
            from agents.shared_trunk import TrunkActor, TrunkPass, TrunkValue, make_trunk

            trunk = TrunkPass(make_trunk(observation_spec, cfg.conv_layers, cfg.actor_fc_layers, activation))
            self.actor_net = TrunkActor(trunk, action_spec)
            self.value_net = TrunkValue(trunk) if self.uses_value_net() else None
        else:
            self.actor_net = actor_distribution_network.ActorDistributionNetwork(
                observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers), activation_fn=activation,
                **conv_network_args(cfg.conv_layers)
            )
            self.value_net = value_network.ValueNetwork(
                observation_spec, fc_layer_params=tuple(cfg.value_fc_layers), activation_fn=activation,
                **conv_network_args(cfg.conv_layers)
            ) if self.uses_value_net() else None
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate, epsilon=self.adam_epsilon)
        self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")  # gradient steps
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.agent = self.make_agent(self.train_env.time_step_spec(), action_spec)
        self.agent.initialize()
        variables = self.actor_net.trainable_variables + (self.value_net.trainable_variables
                                                          if self.value_net is not None else [])
        self.variables = list({v.ref(): v for v in variables}.values())  # a shared trunk's once
        self.optimizer.build(self.variables)  # slots now, not inside the train function
        self.eval_policy = self.agent.policy
        if policy_only:  # no collect/train/evaluate functions, no warm-up
            self.checkpoint = tf.train.Checkpoint(**self.checkpointed())
            return

        # The round's functions and the greedy evaluation, traced now: concrete functions never retrace.
        collect, train = self.make_round()
        evaluate = make_greedy_evaluation(self.eval_policy, self.eval_env, cfg.eval_episodes)
        started = time.perf_counter()
        self._collect = collect.get_concrete_function()
        self._train = train.get_concrete_function(self.train_input_spec(self._collect.structured_outputs))
        self._evaluate = traced_evaluation(evaluate)
        self.trace_seconds = time.perf_counter() - started
        self.warm_up()
        self.checkpoint = tf.train.Checkpoint(**self.checkpointed())

    def checkpointed(self) -> dict:
        """What a checkpoint holds: the networks, the optimizer and the counters."""
        saved = dict(actor_net=self.actor_net, optimizer=self.optimizer, train_step=self.train_step,
                     env_steps=self.env_steps)
        if self.value_net is not None:
            saved["value_net"] = self.value_net
        return saved

    # ------------------------------------------------------------------ training
    def step(self) -> dict[str, float | bool]:
        """Rounds of collecting and training for `env_steps_per_step` env steps, then a greedy evaluation."""
        def one_round(_steps):  # the count is read back from the agent's own counter
            losses = np.asarray(self._train(self._collect()))
            return int(self.env_steps.numpy()), losses

        metrics, losses = self.train_rounds(one_round)
        trained = [loss for loss in losses if np.isfinite(loss).all()] if self.nan_marks_skipped_round else losses
        if trained:  # none when the budget was already spent (or no round trained)
            metrics.update(zip(self.reported_losses(self.config), (float(v) for v in np.mean(trained, axis=0))))
        return metrics
