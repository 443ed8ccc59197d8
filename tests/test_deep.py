"""The Keras workloads of deep/: data loaders, a tiny MLP and CNN, checkpoints, failures, presets."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from deep import data
from lab import settings, workload as workloads
from lab.errors import DataError, SpecError
from tests.workload_harness import make

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

PRESETS = sorted(p for p in (Path(__file__).parents[1] / "deep" / "presets").glob("*.yaml")
                 if "workload: keras_classifier" in p.read_text())  # the classifier presets
TINY = {"subset": 600, "max_epochs": 1, "batch_size": 64, "log_images": 4}


@pytest.fixture
def build(tmp_path):
    """make() from the harness, closing each workload and its events writer after the test
    (an open tensorboardX writer thread complains at interpreter exit)."""
    made = []

    def build(params, name="run"):
        made.append(make("keras_classifier", params, trial_dir=str(tmp_path / name)))
        return made[-1]

    yield build
    for w in made:
        w.close()
        w.context.logger._writer.close()


# ---------------------------------------------------------------- data
@pytest.mark.parametrize(
    "name, image_shape, full_sizes",
    [("fashion_mnist", (28, 28, 1), (60000, 10000)), ("mnist", (28, 28, 1), (4000, 1000)), ("digits", (8, 8, 1), None)],
)
def test_loaders_give_scaled_float_images_and_int_labels(name, image_shape, full_sizes):
    (x_train, y_train), (x_test, y_test) = data.load(name)
    if full_sizes:
        assert (len(x_train), len(x_test)) == full_sizes
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.shape == (len(y), *image_shape) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_subset_is_stratified_seeded_and_keeps_the_test_ratio():
    (x, y), (x_test, y_test) = data.load("fashion_mnist", subset=600, seed=1)
    assert x.shape == (600, 28, 28, 1) and len(y_test) == 100  # 60000:10000 -> 600:100
    assert np.bincount(y).tolist() == [60] * 10 and np.bincount(y_test).tolist() == [10] * 10
    (x_again, _), _ = data.load("fashion_mnist", subset=600, seed=1)
    (x_other, _), _ = data.load("fashion_mnist", subset=600, seed=2)
    assert np.array_equal(x, x_again) and not np.array_equal(x, x_other)


def test_read_idx_parses_the_header(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3]) + bytes(range(6)))
    assert data.read_idx(path).tolist() == [[[0, 1, 2]], [[3, 4, 5]]]
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1]))
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path)


def test_unknown_data_set_suggests_the_name():
    with pytest.raises(DataError, match="unknown data set 'fashon_mnist' \\(did you mean 'fashion_mnist'"):
        data.load("fashon_mnist")
    with pytest.raises(SpecError, match="did you mean 'fashion_mnist'"):
        workloads.get("keras_classifier").make_config({"dataset": "fashon_mnist"})


def test_missing_fashion_mnist_names_the_debian_package(tmp_path, monkeypatch):
    import tensorflow as tf

    def no_network():
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(data, "fashion_mnist_dirs", lambda: [tmp_path])
    monkeypatch.setattr(tf.keras.datasets.fashion_mnist, "load_data", no_network)
    data._fashion_mnist_raw.cache_clear()
    try:
        with pytest.raises(DataError, match="dataset-fashion-mnist") as error:
            data.load("fashion_mnist")
        assert "\n" not in str(error.value)
    finally:
        data._fashion_mnist_raw.cache_clear()


# ---------------------------------------------------------------- the workload
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_tiny_run_returns_finite_metrics(model, build, tmp_path):
    w = build({**TINY, "model": model})
    metrics = w.step()
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "test/accuracy", "charts/samples_per_sec"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and metrics["test/accuracy"] > 0.2  # better than chance (0.1)
    assert metrics["charts/epoch"] == 1 and metrics["done"] is True
    assert w.images_logged  # the misclassified grid went to the trial's events file
    w.context.logger._writer.flush()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_save_restore_gives_the_same_model_and_training_goes_on(build, tmp_path):
    params = {**TINY, "max_epochs": 3, "dataset": "digits", "subset": 0}
    first = build(params, "a")
    first.step()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    first.save(str(checkpoint))

    second = build(params, "b")
    assert not np.allclose(second.model.predict(first.x_test, verbose=0), first.model.predict(first.x_test, verbose=0))
    second.restore(str(checkpoint))
    assert second.epoch == 1
    np.testing.assert_array_equal(
        second.model.predict(first.x_test, verbose=0), first.model.predict(first.x_test, verbose=0)
    )
    after_first, after_second = first.step(), second.step()
    assert after_second["charts/epoch"] == 2 and after_second["done"] is False
    assert after_second["train/loss"] == pytest.approx(after_first["train/loss"], rel=1e-4)


def test_close_releases_the_model(build):
    w = build({**TINY, "dataset": "digits"})
    w.close()
    assert w.model is None


def test_nan_loss_fails_the_trial(build):
    w = build({**TINY, "optimizer": "sgd", "learning_rate": 1e6})
    with pytest.raises(FloatingPointError, match="training loss is NaN at epoch 1"):
        w.step()


def test_cnn_refuses_flat_input():
    from deep.classifier import make_cnn

    with pytest.raises(ValueError, match=r"CNN needs images shaped \(height, width, channels\), got input shape \(784,\)"):
        make_cnn((784,), 10)


@pytest.mark.parametrize(
    "params, message",
    [({"dropout": 1.0}, "dropout must be in"), ({"filters": [], "model": "cnn"}, "at least one conv block"),
     ({"optimizer": "rmsprop"}, "must be one of"), ({"hidden_units": [300, 0]}, "hidden_units must be positive")],
)
def test_config_refuses_impossible_values(params, message):
    with pytest.raises(SpecError, match=message):
        workloads.get("keras_classifier").make_config(params)


# ---------------------------------------------------------------- presets
@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_validate_against_the_workload(path):
    from lab import spec as specs

    (spec,) = specs.load(path.stem)  # found by name among the shipped presets, params and search checked
    assert spec.name == path.stem and spec.workload == "keras_classifier"
    assert spec.metric == "val/accuracy" and spec.mode == "max" and spec.reference.metric == "test/accuracy"
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    assert spec.stop["training_iteration"] * config.epochs_per_step == config.max_epochs
