"""DQN with TF-Agents on a Gymnasium environment with discrete actions: double, dueling, n-step.

The `Config` (its defaults solve CartPole-v1) and the Q-network and agent; the loop (envs, replay
buffer, collect/train rounds, greedy evaluation, checkpoints) is agents/off_policy.py's, with the
Q-network family's parts in agents/_value_based.py.
`conv_layers` put convolutions (uint8 pixels scaled to 0..1 in the network, agents/pixels.py) before the dense layers, for image
observations such as Atari's; `optimizer: rmsprop` is the DQN paper's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agents._value_based import TEST_PARAMS, ValueBasedConfig, ValueBasedWorkload


class DQN(ValueBasedWorkload):
    name = "dqn"
    label = "DQN"
    test_params = dict(TEST_PARAMS)

    @dataclass
    class Config(ValueBasedConfig):
        conv_layers: tuple[tuple[int, ...], ...] = ()  # [filters, kernel, stride] each, before fc_layers: images
        #   (height, width, channels), uint8 pixels scaled to 0..1 in the network; e.g. Atari (ALE/ ids)
        optimizer: Literal["adam", "rmsprop"] = "adam"  # rmsprop: DQN paper's (rho 0.95, eps 1e-5, centered)
        learning_rate: float = 2e-2  # Adam (high, with gradient clipping: fastest on CartPole)
        double_dqn: bool = True  # the online network picks the next action, the target network values it
        dueling: bool = False  # TF-Agents' DuelingQNetwork: Q = V + A - mean(A)

        def check(self) -> None:
            if any(len(layer) != 3 or min(layer) <= 0 for layer in self.conv_layers):
                raise ValueError(f"conv_layers must be [filters, kernel, stride] triples of positive integers, "
                                 f"got {[list(layer) for layer in self.conv_layers]}")
            self.check_common("DQN", vector_observations=not self.conv_layers)

    def make_network(self, observation_spec, action_spec):
        from tf_agents.networks import dueling_q_network, q_network

        from agents.pixels import conv_network_args

        cfg = self.config
        network_cls = dueling_q_network.DuelingQNetwork if cfg.dueling else q_network.QNetwork
        return network_cls(observation_spec, action_spec, fc_layer_params=tuple(cfg.fc_layers),
                           **conv_network_args(cfg.conv_layers))

    def make_optimizer(self):
        import tensorflow as tf

        if self.config.optimizer == "rmsprop":  # as in the DQN paper and the Hands-On ML book's Atari agent
            return tf.keras.optimizers.RMSprop(learning_rate=self.config.learning_rate, rho=0.95, momentum=0.0,
                                               epsilon=1e-5, centered=True)
        return super().make_optimizer()

    def fast_collector(self):
        """A plain MLP Q-network over vector observations collects in NumPy (agents/numpy_collect.py)."""
        from agents.numpy_collect import NumpyCollector

        return NumpyCollector.make(self)

    def make_agent(self, time_step_spec, action_spec):
        from tf_agents.agents.dqn import dqn_agent
        from tf_agents.utils import common

        cfg = self.config
        agent_cls = dqn_agent.DdqnAgent if cfg.double_dqn else dqn_agent.DqnAgent
        return agent_cls(
            time_step_spec, action_spec, q_network=self.q_network, optimizer=self.optimizer,
            epsilon_greedy=self.epsilon, n_step_update=cfg.n_step_update, target_update_tau=1.0,
            target_update_period=cfg.target_update_period, td_errors_loss_fn=common.element_wise_huber_loss,
            gamma=cfg.gamma, gradient_clipping=cfg.grad_clip or None, train_step_counter=self.train_step,
        )
