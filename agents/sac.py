"""SAC (soft actor-critic, twin critics, learned temperature) with TF-Agents on continuous-action envs.

Reads top to bottom: the `Config` (its defaults, with the shared ones of `ContinuousConfig`, reach
-200 on Pendulum-v1), then the networks and the agent. The loop (batched envs, replay buffer, traced
collect/train rounds, the batched greedy evaluation, checkpoints, export) is agents/off_policy.py.

Actor: a tanh-squashed Gaussian (TF-Agents' TanhNormalProjectionNetwork) on an MLP; evaluation and
export act with its mode (GreedyPolicy). Critic: TF-Agents' CriticNetwork on [observation, action];
the agent clones it into the second critic and the two target critics.

TensorFlow and TF-Agents are imported inside the methods (see lab/workload/base.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents._continuous import TEST_PARAMS, ContinuousConfig, ContinuousWorkload


class SAC(ContinuousWorkload):
    name = "sac"
    label = "SAC"
    test_params = dict(TEST_PARAMS)  # a few seconds: the conformance test (tests/workload/test_conformance.py)
    loss_names = ("train/actor_loss", "train/critic_loss", "train/alpha_loss", "train/alpha")

    @dataclass
    class Config(ContinuousConfig):
        alpha_learning_rate: float = 1e-3  # Adam, on log(alpha), the entropy temperature
        initial_alpha: float = 1.0  # the temperature at the start
        target_entropy: float | None = None  # the entropy alpha steers towards (None: TF-Agents' -action dims / 2)
        reward_scale_factor: float = 1.0  # rewards are multiplied by this in the critic's target

        def check(self) -> None:
            if self.alpha_learning_rate <= 0 or self.initial_alpha <= 0 or self.reward_scale_factor <= 0:
                raise ValueError("alpha_learning_rate, initial_alpha and reward_scale_factor must be positive")
            self.check_common("SAC")

    def make_agent(self, time_step_spec, action_spec):
        import math

        import tensorflow as tf
        from tf_agents.agents.ddpg import critic_network
        from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
        from tf_agents.networks import actor_distribution_network

        cfg = self.config
        observation_spec = time_step_spec.observation
        actor = actor_distribution_network.ActorDistributionNetwork(
            observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers),
            continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork,
        )
        critic = critic_network.CriticNetwork(
            (observation_spec, action_spec), joint_fc_layer_params=tuple(cfg.critic_fc_layers),
            kernel_initializer="glorot_uniform", last_kernel_initializer="glorot_uniform",
        )
        adam = tf.keras.optimizers.Adam  # the agent turns them into legacy optimizers (slots keyed by variable)
        return sac_agent.SacAgent(
            time_step_spec, action_spec, actor_network=actor, critic_network=critic,
            actor_optimizer=adam(cfg.actor_learning_rate), critic_optimizer=adam(cfg.critic_learning_rate),
            alpha_optimizer=adam(cfg.alpha_learning_rate),
            target_update_tau=cfg.target_update_tau, target_update_period=1,
            td_errors_loss_fn=tf.math.squared_difference, gamma=cfg.gamma,
            reward_scale_factor=cfg.reward_scale_factor, initial_log_alpha=math.log(cfg.initial_alpha),
            target_entropy=cfg.target_entropy, train_step_counter=self.train_step,
        )

    def loss_metrics(self, loss_info) -> list:
        import tensorflow as tf

        extra = loss_info.extra
        return [extra.actor_loss, extra.critic_loss, extra.alpha_loss, tf.exp(self.agent._log_alpha)]

    def greedy_policy(self):
        """The mode of the squashed Gaussian actor."""
        from tf_agents.policies import greedy_policy

        return greedy_policy.GreedyPolicy(self.agent.policy)
