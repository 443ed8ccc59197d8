"""deep/_devices.py: MirroredStrategy over several devices (two logical CPUs here) and mixed precision."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab import settings
from lab.errors import LabError
from lab.workload.testing import make
from tests.conftest import ROOT

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

TINY = {"dataset": "digits", "max_epochs": 1, "batch_size": 64, "log_images": 0}

MIRRORED = """
import json, sys
sys.path.insert(0, {root!r})
from lab.workload.testing import make
w = make("keras_classifier", {params!r})
metrics = [w.step() for _ in range(3)]
print(json.dumps({{"replicas": w.strategy.num_replicas_in_sync, "strategy": type(w.strategy).__name__,
                  "variable": type(w.model.trainable_variables[0]).__name__, "global_batch": w.global_batch_size,
                  "reported": metrics[-1]["charts/replicas"],
                  "accuracy": [m["val/accuracy"] for m in metrics], "test": metrics[-1]["test/accuracy"]}}))
w.close()
"""


@pytest.mark.slow
def test_two_logical_cpus_train_under_a_mirrored_strategy():
    """devices=2 on a CPU, in a fresh process: the CPU is split before TensorFlow initialises its devices."""
    params = {**TINY, "model": "mlp", "hidden_units": [64], "max_epochs": 3, "batch_size": 16, "devices": 2}
    result = subprocess.run([sys.executable, "-c", MIRRORED.format(root=str(ROOT), params=params)],
                            check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == out["reported"] == 2 and out["strategy"] == "MirroredStrategy"
    assert out["variable"] == "MirroredVariable" and out["global_batch"] == 32  # 16 per replica
    assert out["test"] > 0.8 and out["accuracy"][-1] > out["accuracy"][0]  # it learns (chance: 0.1)


def test_one_device_is_the_default_strategy_and_fake_gpus_fall_back_to_it():
    import tensorflow as tf

    from deep import _devices

    assert _devices.replica_devices(0, 0.0) == [] and _devices.replica_devices(1, 0.0) == []
    assert _devices.distribution_strategy(0, 0.0) is tf.distribute.get_strategy()
    if not tf.config.list_physical_devices("GPU"):
        with pytest.warns(UserWarning, match="the trial has 2 GPUs but TensorFlow sees none"):
            assert _devices.replica_devices(0, 2.0) == []  # Ray's fake GPUs: one CPU replica


def test_devices_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    tf.constant(1.0)  # TensorFlow has initialised its devices in this (pytest) process
    if len(tf.config.list_logical_devices("CPU")) >= 2:
        pytest.skip("this process already has 2 logical CPUs")
    with pytest.raises(LabError, match="devices=2 on a CPU needs 2 logical CPU devices") as error:
        make("keras_classifier", {**TINY, "devices": 2})
    assert "\n" not in str(error.value)


def test_mixed_precision_is_refused_on_a_cpu_and_builds_float16_layers_with_a_float32_output():
    import tensorflow as tf

    from deep.models import make_resnet

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: mixed precision is allowed")
    with pytest.raises(LabError, match="mixed_precision needs a GPU") as error:
        make("keras_classifier", {**TINY, "mixed_precision": True})
    assert "\n" not in str(error.value)
    mixed = tf.keras.mixed_precision  # what precision_policy does on a GPU, here without the check
    mixed.set_global_policy("mixed_float16")
    try:
        model = make_resnet((8, 8, 1), 10, filters=(8,))
    finally:
        mixed.set_global_policy("float32")
    conv = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    assert model.layers[-1].compute_dtype == "float32" and model.output.dtype == "float32"


def test_mixed_precision_trains_checkpoints_and_exports_where_allowed(monkeypatch, tmp_path):
    """The GPU path on a CPU (slow there, but correct): the guard is the only thing switched off."""
    import numpy as np

    from deep import _devices

    monkeypatch.setattr(_devices, "check_mixed_precision", lambda enabled: None)
    params = {**TINY, "model": "mlp", "hidden_units": [32], "max_epochs": 3, "batch_size": 16, "mixed_precision": True}
    w = make("keras_classifier", params)
    assert type(w.model.optimizer).__name__ == "LossScaleOptimizerV3"  # compile() wraps it for float16 gradients
    assert w.model.layers[2].compute_dtype == "float16" and w.model.output.dtype == "float32"
    assert w.step()["val/accuracy"] > 0.3  # chance: 0.1
    w.save(str(tmp_path))
    again = make("keras_classifier", params)
    again.restore(str(tmp_path))
    np.testing.assert_array_equal(again.model.predict(w.x_test, verbose=0), w.model.predict(w.x_test, verbose=0))
    assert w.export(str(tmp_path / "out")).endswith("model.keras")
    assert tf_global_policy() == "float32"  # the policy was set only while the model was built
    for workload in (w, again):
        workload.close()


def tf_global_policy() -> str:
    import tensorflow as tf

    return tf.keras.mixed_precision.global_policy().name
