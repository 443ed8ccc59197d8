"""Pixels stay uint8 from the env to the replay buffer; the network scales them inside its graph.

    spec = observation_spec(gym_space)                   # uint8 images: a spec whose bounds do not overflow
    net = q_network.QNetwork(spec, actions, **conv_network_args([[32, 8, 4], ...]))   # scale_pixels() first

The root of the numpy-2 problem: TF-Agents samples a random input from a network's input spec to build
its variables (`tensor_spec.sample_bounded_spec`), computing `maximum + 1` in the spec's own dtype
when the bounds are scalars. With uint8 bounds 0..255, NumPy 2 keeps that sum in uint8, where it wraps
to 0 ("Need minval < maxval, got 0 >= 0"). Bounds given per element (the Box space's own arrays,
not simplified to one scalar) take TF-Agents' other path, which reads them as Python ints: no
overflow, and the spec stays uint8 (0..255), so the replay buffer built from the agent's
`collect_data_spec` stores one byte per pixel (28 KB for a transition of 4 stacked 84x84 frames,
instead of 113 KB as float32).

Float64 observations (MuJoCo) become float32 specs: the networks' dtype, half the replay memory.
TensorFlow and TF-Agents are imported inside the functions.
"""
from __future__ import annotations

import numpy as np

PIXEL_SCALE = 1.0 / 255.0


def is_image_space(space) -> bool:
    """A (height, width, channels) uint8 Box: what a conv network with `scale_pixels` takes."""
    return getattr(space, "dtype", None) == np.uint8 and len(getattr(space, "shape", ()) or ()) == 3


def observation_spec(space):
    """The TF-Agents ArraySpec of a Gymnasium observation space (module docstring: uint8 and float64)."""
    from tf_agents.environments import gymnasium_wrapper
    from tf_agents.specs import array_spec

    if is_image_space(space):
        low = np.broadcast_to(np.asarray(space.low, np.int64), space.shape)
        high = np.broadcast_to(np.asarray(space.high, np.int64), space.shape)
        return array_spec.BoundedArraySpec(space.shape, np.uint8, minimum=low, maximum=high, name="observation")
    spec = gymnasium_wrapper.spec_from_gym_space(space, name="observation")
    if spec.dtype != np.float64:
        return spec
    if not hasattr(spec, "minimum"):
        return array_spec.ArraySpec(spec.shape, np.float32, name="observation")
    limit = np.finfo(np.float32)
    low, high = (np.clip(b, limit.min, limit.max) for b in (spec.minimum, spec.maximum))
    return array_spec.BoundedArraySpec(spec.shape, np.float32, minimum=low, maximum=high, name="observation")


def scale_pixels():
    """The network's first layer for uint8 images: cast to float32 and scale to 0..1, inside the graph."""
    import tensorflow as tf

    return tf.keras.layers.Rescaling(PIXEL_SCALE, dtype="float32", name="scale_pixels")


def conv_network_args(conv_layers) -> dict:
    """A TF-Agents network's keyword arguments for `conv_layers` ([filters, kernel, stride] each): the conv
    layers after a fresh `scale_pixels` layer (each network its own), or none when there are no conv layers."""
    if not conv_layers:
        return {}
    return {"conv_layer_params": [tuple(layer) for layer in conv_layers], "preprocessing_layers": scale_pixels()}
