"""DDPG (deterministic actor, one critic, Ornstein-Uhlenbeck exploration noise) with TF-Agents.

Reads top to bottom: the `Config` (its defaults, with the shared ones of `ContinuousConfig`, reach
-200 on Pendulum-v1), then the networks and the agent. The loop (batched envs, replay buffer, traced
collect/train rounds, the batched greedy evaluation, checkpoints, export) is agents/off_policy.py.

Actor: TF-Agents' deterministic ActorNetwork (tanh, scaled to the action bounds); the agent explores
with Ornstein-Uhlenbeck noise on its actions (TF-Agents' OUNoisePolicy). Critic: TF-Agents'
CriticNetwork on [observation, action]; the agent clones both into target networks.

TensorFlow and TF-Agents are imported inside the methods (see lab/workload/base.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents._continuous import TEST_PARAMS, ContinuousConfig, ContinuousWorkload


class DDPG(ContinuousWorkload):
    name = "ddpg"
    label = "DDPG"
    test_params = dict(TEST_PARAMS)  # a few seconds: the conformance test (tests/workload/test_conformance.py)

    @dataclass
    class Config(ContinuousConfig):
        ou_stddev: float = 0.2  # scale of the Ornstein-Uhlenbeck exploration noise
        ou_damping: float = 0.15  # its pull back towards 0 per step
        dqda_clipping: float = 0.0  # clip the critic's action gradient to this magnitude (0: none)

        def check(self) -> None:
            if self.ou_stddev < 0 or not 0 <= self.ou_damping <= 1 or self.dqda_clipping < 0:
                raise ValueError("ou_stddev and dqda_clipping cannot be negative, ou_damping must be in [0, 1]")
            self.check_common("DDPG")

    def make_agent(self, time_step_spec, action_spec):
        import tensorflow as tf
        from tf_agents.agents.ddpg import actor_network, critic_network, ddpg_agent

        cfg = self.config
        observation_spec = time_step_spec.observation
        actor = actor_network.ActorNetwork(observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers))
        critic = critic_network.CriticNetwork((observation_spec, action_spec),
                                              joint_fc_layer_params=tuple(cfg.critic_fc_layers))
        actor_optimizer, critic_optimizer = (tf.keras.optimizers.Adam(lr) for lr in (cfg.actor_learning_rate,
                                                                                    cfg.critic_learning_rate))
        agent = ddpg_agent.DdpgAgent(
            time_step_spec, action_spec, actor_network=actor, critic_network=critic,
            actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
            ou_stddev=cfg.ou_stddev, ou_damping=cfg.ou_damping,
            target_update_tau=cfg.target_update_tau, target_update_period=1,
            dqda_clipping=cfg.dqda_clipping or None, td_errors_loss_fn=tf.math.squared_difference,
            gamma=cfg.gamma, train_step_counter=self.train_step,
        )
        actor_optimizer.build(actor.trainable_variables)  # Adam's slots now, not inside the traced train loop
        critic_optimizer.build(critic.trainable_variables)
        return agent

    def loss_metrics(self, loss_info) -> list:
        return [loss_info.extra.actor_loss, loss_info.extra.critic_loss]
