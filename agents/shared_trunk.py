"""One trunk for the actor and the value network, as PPO on Atari is usually built (the PPO paper, SB3,
CleanRL): the value loss shapes the features the policy reads.

    trunk = make_trunk(observation_spec, conv_layers=[[32, 8, 4], ...], fc_layers=[512], activation=relu)
    actor_net = TrunkActor(trunk, action_spec)   # features -> TF-Agents' default projection (a distribution)
    value_net = TrunkValue(trunk)                # features -> one value

Both networks call the same trunk object, so its variables are one set; PPOAgent trains the union of
its two networks' variables. TF-Agents' own networks cannot share layers: `EncodingNetwork` copies the
preprocessing layers it is given. Imported only when a workload builds its networks (TF-Agents inside).
"""
from __future__ import annotations

import tensorflow as tf
from tf_agents.networks import actor_distribution_network, encoding_network, network
from tf_agents.specs import tensor_spec
from tf_agents.utils import nest_utils


def make_trunk(observation_spec, conv_layers, fc_layers, activation) -> encoding_network.EncodingNetwork:
    """Conv layers (uint8 pixels scaled inside, agents/pixels.py) if any, then the fc layers."""
    from agents.pixels import conv_network_args

    return encoding_network.EncodingNetwork(
        observation_spec, fc_layer_params=tuple(fc_layers), activation_fn=activation,
        kernel_initializer=tf.compat.v1.keras.initializers.glorot_uniform(), name="SharedTrunk",
        **conv_network_args(conv_layers))


class TrunkActor(network.DistributionNetwork):
    """The trunk's features -> the projection `ActorDistributionNetwork` would use (one action spec)."""

    def __init__(self, trunk, action_spec, name: str = "TrunkActor"):
        if tensor_spec.is_discrete(action_spec):
            projection = actor_distribution_network._categorical_projection_net(action_spec)
        else:
            projection = actor_distribution_network._normal_projection_net(action_spec)
        super().__init__(input_tensor_spec=trunk.input_tensor_spec, state_spec=(),
                         output_spec=projection.output_spec, name=name)
        self._trunk, self._projection = trunk, projection

    def call(self, observations, step_type=(), network_state=(), training=False, mask=None):
        features, _ = self._trunk(observations, step_type=step_type, training=training)
        outer_rank = nest_utils.get_outer_rank(observations, self.input_tensor_spec)
        distribution, _ = self._projection(features, outer_rank, training=training, mask=mask)
        return distribution, network_state


class TrunkValue(network.Network):
    """The trunk's features -> one value (the last layer initialized as `ValueNetwork`'s)."""

    def __init__(self, trunk, name: str = "TrunkValue"):
        super().__init__(input_tensor_spec=trunk.input_tensor_spec, state_spec=(), name=name)
        self._trunk = trunk
        self._head = tf.keras.layers.Dense(1, kernel_initializer=tf.random_uniform_initializer(-0.03, 0.03))

    def call(self, observations, step_type=None, network_state=(), training=False):
        features, _ = self._trunk(observations, step_type=step_type, training=training)
        return tf.squeeze(self._head(features, training=training), -1), network_state
