"""TD3 (twin delayed DDPG: twin critics, delayed actor updates, target policy smoothing) with TF-Agents.

Reads top to bottom: the `Config` (its defaults, with the shared ones of `ContinuousConfig`, reach
-200 on Pendulum-v1), then the networks and the agent. The loop (batched envs, replay buffer, traced
collect/train rounds, the batched greedy evaluation, checkpoints, export) is agents/off_policy.py.

Actor: TF-Agents' deterministic ActorNetwork (tanh, scaled to the action bounds); the agent explores
with Gaussian noise on its actions. Critic: TF-Agents' CriticNetwork on [observation, action], with
its action input clipped to the action bounds; the agent clones it into the second critic and the
target networks. TF-Agents' Td3Agent adds the smoothing noise to the target actor's actions without
clipping them to the bounds (the TD3 paper clips them), so the target critics were asked about
actions the env never takes; the clip in the critic restores the paper's target.

TensorFlow and TF-Agents are imported inside the methods (see lab/workload/base.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents._continuous import TEST_PARAMS, ContinuousConfig, ContinuousWorkload


class TD3(ContinuousWorkload):
    name = "td3"
    label = "TD3"
    test_params = dict(TEST_PARAMS)  # a few seconds: the conformance test (tests/workload/test_conformance.py)

    @dataclass
    class Config(ContinuousConfig):
        exploration_noise_std: float = 0.1  # Gaussian noise on the collect policy's actions
        actor_update_period: int = 2  # gradient steps per actor (and target) update: the "delayed" of TD3
        target_policy_noise: float = 0.2  # Gaussian noise on the target actor's actions (smoothing)
        target_policy_noise_clip: float = 0.5  # ... clipped to this magnitude

        def check(self) -> None:
            if self.actor_update_period <= 0:
                raise ValueError(f"actor_update_period must be positive, got {self.actor_update_period}")
            for name in ("exploration_noise_std", "target_policy_noise", "target_policy_noise_clip"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} cannot be negative, got {getattr(self, name)}")
            self.check_common("TD3")

    def make_agent(self, time_step_spec, action_spec):
        import tensorflow as tf
        from tf_agents.agents.ddpg import actor_network, critic_network
        from tf_agents.agents.td3 import td3_agent

        cfg = self.config
        observation_spec = time_step_spec.observation
        actor = actor_network.ActorNetwork(observation_spec, action_spec, fc_layer_params=tuple(cfg.actor_fc_layers))
        critic = bounded_action_critic(critic_network.CriticNetwork)(
            (observation_spec, action_spec), joint_fc_layer_params=tuple(cfg.critic_fc_layers))
        critic_2 = critic.copy(name="CriticNetwork2")
        actor_optimizer, critic_optimizer = (tf.keras.optimizers.Adam(lr) for lr in (cfg.actor_learning_rate,
                                                                                    cfg.critic_learning_rate))
        agent = td3_agent.Td3Agent(
            time_step_spec, action_spec, actor_network=actor, critic_network=critic, critic_network_2=critic_2,
            actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
            exploration_noise_std=cfg.exploration_noise_std,
            target_update_tau=cfg.target_update_tau, target_update_period=cfg.actor_update_period,
            actor_update_period=cfg.actor_update_period, td_errors_loss_fn=tf.math.squared_difference,
            gamma=cfg.gamma, target_policy_noise=cfg.target_policy_noise,
            target_policy_noise_clip=cfg.target_policy_noise_clip, train_step_counter=self.train_step,
        )
        # Adam's slots now, in a fixed order (the agent lists the critics' variables in a set, whose order
        # changes from instance to instance: slots built from it did not restore into another instance).
        actor_optimizer.build(actor.trainable_variables)
        critic_optimizer.build(critic.trainable_variables + critic_2.trainable_variables)
        return agent

    def loss_metrics(self, loss_info) -> list:
        return [loss_info.extra.actor_loss, loss_info.extra.critic_loss]


def bounded_action_critic(critic_class):
    """`critic_class` (a TF-Agents critic on (observation, action)) with its action input clipped to the spec's bounds.

    Its variables are the base class's, so soft target updates and checkpoints are unchanged; actions
    within the bounds (the replay's, the actor's) pass through as they are.
    """
    import tensorflow as tf

    class BoundedActionCritic(critic_class):
        def call(self, inputs, step_type=(), network_state=(), training=False):
            observation, action = inputs
            spec = self.input_tensor_spec[1]
            action = tf.clip_by_value(action, tf.cast(spec.minimum, action.dtype), tf.cast(spec.maximum, action.dtype))
            return super().call((observation, action), step_type=step_type, network_state=network_state,
                                training=training)

    return BoundedActionCritic
