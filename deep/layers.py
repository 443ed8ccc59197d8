"""The Keras custom layers of the lab's models, registered for saving under the `agent_lab>` package.

    model = tf_keras.models.load_model(path, custom_objects=custom_objects(), safe_mode=True)

`custom_objects()` is what the generic loader (deep/loading.py) passes to read any exported model, so it
depends on this module, never on the workload that builds one. A new custom layer goes here, in
`custom_objects()` as well. TensorFlow is imported when a layer class is first asked for.
"""
from __future__ import annotations

import functools

from deep.backend import load_tf


@functools.lru_cache(maxsize=1)
def positional_embedding_layer():
    """The PositionalEmbedding layer class (deep/sentiment.py's transformer), registered for Keras saving as
    'agent_lab>PositionalEmbedding' (call this, or pass `custom_objects()`, before loading an exported model)."""
    tf = load_tf()

    @tf.keras.utils.register_keras_serializable(package="agent_lab")
    class PositionalEmbedding(tf.keras.layers.Layer):
        """Word ids -> token embedding + learned position embedding; masks padding (id 0)."""

        def __init__(self, vocab_size: int, max_length: int, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.max_length, self.dim = vocab_size, max_length, dim
            self.tokens = tf.keras.layers.Embedding(vocab_size, dim, name="tokens")
            self.positions = tf.keras.layers.Embedding(max_length, dim, name="positions")

        def call(self, ids):
            return self.tokens(ids) + self.positions(tf.range(tf.shape(ids)[-1]))

        def compute_mask(self, ids, mask=None):
            return tf.not_equal(ids, 0)

        def get_config(self):
            return {**super().get_config(), "vocab_size": self.vocab_size, "max_length": self.max_length,
                    "dim": self.dim}

    return PositionalEmbedding


def custom_objects() -> dict:
    """What tf.keras.models.load_model needs to read any exported model of the lab."""
    return {"agent_lab>PositionalEmbedding": positional_embedding_layer()}
