"""Input pipelines of the Keras workloads: seeded training batches, evaluation batches, validation splits.

Training batches depend only on their seed, so a restored trial replays the same epochs as one
that never stopped.
"""
from __future__ import annotations

import numpy as np

import imagesets as image_data
from deep.backend import load_tf

EVAL_BATCH_SIZE = 512  # evaluation batches (no gradients, so bigger than training batches)


def train_batches(x, y, batch_size: int, seed: int):
    """One epoch of shuffled batches. Indices are shuffled (not the images: no big shuffle buffer)
    and the images gathered per batch; the order depends only on `seed`, so a restored trial
    replays the same epochs as one that never stopped. `x` and `y` are tensors (numpy arrays would be
    copied into the map function). The gather runs serially: a parallel map's threads cost more than a
    batch's gather and take cores from the training step (an MLP epoch on Fashion-MNIST on 2 cores:
    4.1-4.4 s serial, 5.2 s with num_parallel_calls=AUTOTUNE, the same as Keras' own numpy path)."""
    tf = load_tf()
    return (
        tf.data.Dataset.range(int(x.shape[0]))
        .shuffle(int(x.shape[0]), seed=seed, reshuffle_each_iteration=False)
        .batch(batch_size)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        .prefetch(2)
    )


def eval_batches(x, y):
    """Batches for evaluation, in order. No .cache(): the arrays are in memory already and nothing
    upstream is worth caching, so it would only copy them."""
    tf = load_tf()
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(EVAL_BATCH_SIZE).prefetch(tf.data.AUTOTUNE)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(x_train, y_train), (x_val, y_val): a stratified, seeded `fraction` of the training set held out."""
    if fraction <= 0:
        return (x, y), (x[:0], y[:0])
    val = image_data.stratified_sample(y, max(1, round(fraction * len(y))), seed)
    train = np.setdiff1d(np.arange(len(y)), val)
    return (x[train], y[train]), (x[val], y[val])
