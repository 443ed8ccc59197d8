"""TensorFlow for the Keras workloads: tf.keras as tf_keras (Keras 2), optimizers, saving in the Keras format.

Every Keras workload gets TensorFlow from `load_tf()`, which sets the worker environment first
(`lab.settings.apply_worker_env`: TF_USE_LEGACY_KERAS=1 must precede the first TensorFlow import).
"""
from __future__ import annotations

import os

EXPORT_FILE = "model.keras"  # the Keras format, tf_keras.models.load_model(path)


def load_tf():
    """TensorFlow with tf.keras = tf_keras (Keras 2), imported on first use."""
    from lab import settings

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 must precede the first TensorFlow import
    import tensorflow as tf

    if not tf.keras.layers.Layer.__module__.startswith("tf_keras"):
        raise RuntimeError(
            "tf.keras is Keras 3: TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set "
            "(import lab.settings and call apply_worker_env() first)"
        )
    return tf


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.0, decay_steps: int = 0,
                   schedule: str = "cosine"):
    """Adam, SGD or Nadam. With `decay_steps` > 0 the rate follows `schedule` over that many steps:
    cosine from `learning_rate` to 0, or exponential down to a tenth (the book's lr0 * 0.1**(t/s))."""
    tf = load_tf()
    if decay_steps > 0 and schedule == "exponential":
        learning_rate = tf.keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, 0.1)
    elif decay_steps > 0:
        learning_rate = tf.keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    if name == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "nadam":
        return tf.keras.optimizers.Nadam(learning_rate=learning_rate)
    return tf.keras.optimizers.Adam(learning_rate=learning_rate)


def save_keras(model, out_dir: str, file_name: str = EXPORT_FILE) -> str:
    """Save a Keras model as `<out_dir>/<file_name>` (the `.keras` zip: config, weights, optimizer); the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, file_name)
    model.save(path)
    describe_keras(model, out_dir, file_name)
    return path


KERAS_RECIPE = """import json, os
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow: the model is tf_keras (Keras 2)
import numpy as np
import tf_keras
about = json.load(open("model.json"))
entry = about["models"][0]
model = tf_keras.models.load_model(entry["file"], safe_mode=True)  # custom_objects={...} if entry names some
schema = entry["input_schema"][0]
x = np.zeros([1, *schema["shape"][1:]], schema["dtype"])
prediction = model.predict(x, verbose=0)"""


def describe_keras(model, out_dir: str, file_name: str) -> None:
    """Add the model to `<out_dir>/model.json`: its file, input schema (name, shape, dtype of each input),
    the custom objects it needs, and how to load it with tf_keras alone (README)."""
    import json
    from importlib import metadata

    about_path = os.path.join(out_dir, "model.json")
    about = {"format": "keras (tf_keras 2)", "models": []}
    if os.path.isfile(about_path):
        with open(about_path) as handle:
            about = json.load(handle)
    import tf_keras

    custom = sorted({tf_keras.saving.get_registered_name(type(layer)) for layer in _layers(model)
                     if not type(layer).__module__.startswith(("tf_keras", "keras", "tensorflow"))})
    about["models"].append({
        "file": file_name,
        "input_schema": [{"name": t.name.split(":")[0], "shape": t.shape.as_list(), "dtype": t.dtype.name}
                         for t in model.inputs],
        "custom_objects": custom,
    })
    requires = {}
    for name in ("tensorflow", "tf-keras", "numpy"):
        try:
            requires[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    about["load"] = {"requires": requires, "python": KERAS_RECIPE}
    about["load_with_lab"] = "deep.loading.load_keras_model (lab.load)"
    with open(about_path, "w") as handle:
        json.dump(about, handle, indent=2)


def _layers(model):
    """Every layer of `model`, nested models' layers included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)
