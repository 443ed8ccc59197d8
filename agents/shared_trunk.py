"""One trunk for the actor and the value network, as PPO on Atari is usually built (the PPO paper, SB3,
CleanRL): the value loss shapes the features the policy reads.

    trunk = TrunkPass(make_trunk(observation_spec, conv_layers=[[32, 8, 4], ...], fc_layers=[512], activation=relu))
    actor_net = TrunkActor(trunk, action_spec)   # features -> TF-Agents' default projection (a distribution)
    value_net = TrunkValue(trunk)                # features -> one value

Both networks call the same trunk object, so its variables are one set; PPOAgent trains the union of
its two networks' variables. TF-Agents' own networks cannot share layers: `EncodingNetwork` copies the
preprocessing layers it is given. Imported only when a workload builds its networks (TF-Agents inside).

One pass per minibatch: `PPOAgent.get_loss` calls the actor and the value network apart
(tensorflow/agents#12), so the trunk would run twice on the same observations. `one_pass(agent_class)`
subclasses a PPO agent so that within one `get_loss` the trunk's features are computed once and both
heads read them (`TrunkPass`, keyed by the observations tensor): the same loss and gradients, one trunk.
"""
from __future__ import annotations

import contextlib
import functools

import tensorflow as tf
from tf_agents.networks import actor_distribution_network, encoding_network, network
from tf_agents.specs import tensor_spec
from tf_agents.utils import nest_utils


class TrunkPass:
    """The trunk's features of the observations seen while `active()`: each observations tensor runs the
    trunk once (the actor and the value head of one loss read the same tensor). Outside it: no cache.
    `training` is not part of the key: make_trunk's layers (conv, dense) compute the same either way."""

    def __init__(self, trunk):
        self.trunk, self._features = trunk, None

    @contextlib.contextmanager
    def active(self):
        self._features = {}
        try:
            yield
        finally:
            self._features = None

    def __call__(self, observations, step_type, training):
        key = tuple(t.ref() for t in tf.nest.flatten(observations))
        if self._features is not None and key in self._features:
            return self._features[key]
        features, _ = self.trunk(observations, step_type=step_type, training=training)
        if self._features is not None:
            self._features[key] = features
        return features


@functools.cache
def one_pass(agent_class):
    """`agent_class` (a PPOAgent) whose loss runs the shared trunk once for the actor and the value head."""

    class OnePass(agent_class):
        def get_loss(self, *args, **kwargs):
            with self._actor_net.trunk_pass.active():
                return super().get_loss(*args, **kwargs)

    OnePass.__name__ = OnePass.__qualname__ = f"OnePass{agent_class.__name__}"
    return OnePass


def make_trunk(observation_spec, conv_layers, fc_layers, activation) -> encoding_network.EncodingNetwork:
    """Conv layers (uint8 pixels scaled inside, agents/pixels.py) if any, then the fc layers."""
    from agents.pixels import conv_network_args

    return encoding_network.EncodingNetwork(
        observation_spec, fc_layer_params=tuple(fc_layers), activation_fn=activation,
        kernel_initializer=tf.compat.v1.keras.initializers.glorot_uniform(), name="SharedTrunk",
        **conv_network_args(conv_layers))


class TrunkActor(network.DistributionNetwork):
    """The trunk's features -> the projection `ActorDistributionNetwork` would use (one action spec)."""

    def __init__(self, trunk_pass: TrunkPass, action_spec, name: str = "TrunkActor"):
        trunk = trunk_pass.trunk
        if tensor_spec.is_discrete(action_spec):
            projection = actor_distribution_network._categorical_projection_net(action_spec)
        else:
            projection = actor_distribution_network._normal_projection_net(action_spec)
        super().__init__(input_tensor_spec=trunk.input_tensor_spec, state_spec=(),
                         output_spec=projection.output_spec, name=name)
        self._trunk, self._projection, self.trunk_pass = trunk, projection, trunk_pass

    def call(self, observations, step_type=(), network_state=(), training=False, mask=None):
        features = self.trunk_pass(observations, step_type, training)
        outer_rank = nest_utils.get_outer_rank(observations, self.input_tensor_spec)
        distribution, _ = self._projection(features, outer_rank, training=training, mask=mask)
        return distribution, network_state


class TrunkValue(network.Network):
    """The trunk's features -> one value (the last layer initialized as `ValueNetwork`'s)."""

    def __init__(self, trunk_pass: TrunkPass, name: str = "TrunkValue"):
        super().__init__(input_tensor_spec=trunk_pass.trunk.input_tensor_spec, state_spec=(), name=name)
        self._trunk, self.trunk_pass = trunk_pass.trunk, trunk_pass
        self._head = tf.keras.layers.Dense(1, kernel_initializer=tf.random_uniform_initializer(-0.03, 0.03))

    def call(self, observations, step_type=None, network_state=(), training=False):
        features = self.trunk_pass(observations, step_type, training)
        return tf.squeeze(self._head(features, training=training), -1), network_state
