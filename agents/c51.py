"""C51 (categorical DQN) with TF-Agents on a Gymnasium environment with discrete actions, n-step.

The `Config`'s defaults solve CartPole-v1. C51 learns,
for each action, a distribution of the return over `num_atoms` fixed values spread evenly over
[`min_q_value`, `max_q_value`] (a softmax over atoms, TF-Agents' `CategoricalQNetwork`); its
target is the n-step Bellman update of the target network's distribution, projected back onto
the atoms, and its loss the cross-entropy to that target. The greedy action maximises the mean.

The loop (envs, replay buffer, collect/train rounds, greedy evaluation, checkpoints) is DQN's,
agents/off_policy.py with agents/_value_based.py; this file holds the `Config`, the network and the agent.

The support must cover the returns: on CartPole-v1 (reward 1 per step, gamma 0.99) discounted
returns reach ~99, so the defaults span [0, 100]. With a support that clips them (TF-Agents'
example uses [-20, 20]) every target above the top atom lands on it, and both actions of a
well-balanced state get the same distribution: the greedy choice between them is left to chance.
"""
from __future__ import annotations

from dataclasses import dataclass

from agents._value_based import TEST_PARAMS, ValueBasedConfig, ValueBasedWorkload


class C51(ValueBasedWorkload):
    name = "c51"
    label = "C51"
    test_params = {**TEST_PARAMS, "num_atoms": 11}

    @dataclass
    class Config(ValueBasedConfig):
        num_atoms: int = 51  # atoms of each action's return distribution
        min_q_value: float = 0.0  # lowest atom (a return below it is clipped to it)
        max_q_value: float = 100.0  # highest atom (CartPole's discounted returns reach ~99 at gamma 0.99)

        def check(self) -> None:
            if self.num_atoms < 2:
                raise ValueError(f"num_atoms must be at least 2, got {self.num_atoms}")
            if not self.min_q_value < self.max_q_value:
                raise ValueError(f"min_q_value ({self.min_q_value}) must be below max_q_value ({self.max_q_value})")
            self.check_common("C51")

    def make_network(self, observation_spec, action_spec):
        """Categorical Q-network: logits [batch, actions, atoms]."""
        from tf_agents.networks import categorical_q_network

        return categorical_q_network.CategoricalQNetwork(
            observation_spec, action_spec, num_atoms=self.config.num_atoms, fc_layer_params=tuple(self.config.fc_layers))

    def make_agent(self, time_step_spec, action_spec):
        """Its loss: the cross-entropy to the projected n-step target distribution."""
        from tf_agents.agents.categorical_dqn import categorical_dqn_agent

        cfg = self.config
        return categorical_dqn_agent.CategoricalDqnAgent(
            time_step_spec, action_spec, categorical_q_network=self.q_network, optimizer=self.optimizer,
            min_q_value=cfg.min_q_value, max_q_value=cfg.max_q_value, epsilon_greedy=self.epsilon,
            n_step_update=cfg.n_step_update, target_update_tau=1.0, target_update_period=cfg.target_update_period,
            gamma=cfg.gamma, gradient_clipping=cfg.grad_clip or None, train_step_counter=self.train_step,
        )
