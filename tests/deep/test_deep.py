"""The Keras workloads of deep/: data loaders, a tiny MLP, CNN and ResNet, augmentation, training controls
(early stopping, schedules), checkpoints, export, failures, presets."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imagesets as data
from lab import settings
from lab import workload as workloads
from lab.errors import DataError, SpecError
from lab.workload.testing import make
from tests.conftest import lab

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

PRESETS = sorted(p for p in (Path(__file__).parents[2] / "deep" / "presets").glob("*.yaml")
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
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_tiny_run_returns_finite_metrics(model, build, tmp_path):
    # the ResNet's first epoch on 540 images is still near chance: give it two (one step)
    resnet = {"filters": [8, 16], "batch_size": 16, "max_epochs": 2, "epochs_per_step": 2}
    w = build({**TINY, "model": model, **(resnet if model == "resnet" else {})})
    metrics = w.step()
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "test/accuracy", "charts/samples_per_sec"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and metrics["test/accuracy"] > 0.2  # better than chance (0.1)
    assert metrics["charts/epoch"] == w.config.max_epochs and metrics["done"] is True
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
    from deep.models import make_cnn

    with pytest.raises(ValueError, match=r"CNN needs images shaped \(height, width, channels\), got input shape \(784,\)"):
        make_cnn((784,), 10)


def test_resnet_units_add_the_input_and_project_it_when_the_shape_changes():
    from deep.models import make_resnet

    model = make_resnet((28, 28, 1), 10, filters=(8, 16, 32), residual_units=2)
    adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
    assert len(adds) == 6  # 3 stages x 2 units
    projections = [layer for layer in model.layers if type(layer).__name__ == "Conv2D" and layer.kernel_size == (1, 1)]
    assert [p.strides for p in projections] == [(2, 2), (2, 2)]  # only the first unit of stages 2 and 3
    assert model.output_shape == (None, 10) and model.get_layer(index=-2).output_shape == (None, 32)
    with pytest.raises(ValueError, match=r"ResNet needs images shaped \(height, width, channels\)"):
        make_resnet((784,), 10)


def test_augmentation_acts_only_in_training():
    from deep.backend import load_tf
    from deep.models import make_cnn

    tf = load_tf()
    (x, _), _ = data.load("fashion_mnist", subset=40, seed=0)
    model = make_cnn((28, 28, 1), 10, filters=(8,), hidden_units=(16,), dropout=0.0, batch_norm=False,
                     augment=True, seed=3)
    assert {"RandomFlip", "RandomTranslation", "RandomZoom"} <= {type(layer).__name__ for layer in model.layers}
    inference = model(x, training=False).numpy()
    np.testing.assert_array_equal(inference, model(x, training=False).numpy())
    augmenter = tf.keras.Model(model.input, model.get_layer(index=3).output)  # input after the 3 random layers
    np.testing.assert_array_equal(augmenter(x, training=False).numpy(), x)
    augmented = augmenter(x, training=True).numpy()
    assert augmented.shape == x.shape and np.abs(augmented - x).mean() > 0.01


def test_early_stopping_ends_the_trial_when_val_loss_stops_falling(build):
    w = build({**TINY, "dataset": "digits", "subset": 0, "max_epochs": 10, "patience": 2})
    assert [w._watch_val_loss(v) for v in (1.0, 0.9, 0.95, 0.91)] == [False, False, False, True]
    w.best_val_loss, w.evals_without_progress = 0.0, 0  # nothing can beat it now
    first, second = w.step(), w.step()
    assert first["done"] is False and first["charts/stopped_early"] == 0.0
    assert second["done"] is True and second["charts/stopped_early"] == 1.0 and second["charts/epoch"] == 2


def test_plateau_schedule_halves_the_rate_and_the_rate_survives_a_checkpoint(build, tmp_path):
    params = {**TINY, "dataset": "digits", "subset": 0, "max_epochs": 10, "lr_schedule": "plateau",
              "learning_rate": 0.004}
    w = build(params, "a")
    w.best_val_loss = 0.0
    rates = [w.step()["charts/learning_rate"] for _ in range(4)]  # the rate each step trained with
    assert rates == pytest.approx([0.004, 0.004, 0.002, 0.002]) and w._learning_rate() == pytest.approx(0.001)
    w.save(str(tmp_path))
    again = build(params, "b")
    again.restore(str(tmp_path))
    assert again._learning_rate() == pytest.approx(0.001) and again.evals_without_progress == 4


@pytest.mark.parametrize("schedule, final", [("cosine", 0.0), ("exponential", 0.1), ("constant", 1.0)])
def test_schedules_end_where_they_say(schedule, final):
    from deep.backend import make_optimizer

    optimizer = make_optimizer("adam", 0.01, decay_steps=0 if schedule == "constant" else 100, schedule=schedule)
    rate = optimizer._learning_rate
    assert (float(rate(100)) if callable(rate) else float(optimizer.learning_rate)) == pytest.approx(0.01 * final)


def test_export_writes_a_keras_file_that_loads_with_the_same_predictions(build, tmp_path):
    import tf_keras

    w = build({**TINY, "dataset": "digits", "model": "cnn", "filters": [8], "hidden_units": [16], "augment": True})
    w.step()
    path = w.export(str(tmp_path / "out"))
    assert path == str(tmp_path / "out" / "model.keras")
    loaded = tf_keras.models.load_model(path)  # in a fresh process: test_lab_run_then_lab_export
    np.testing.assert_allclose(loaded.predict(w.x_test, verbose=0), w.model.predict(w.x_test, verbose=0), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name, files", [("keras_autoencoder", ["decoder.keras", "encoder.keras", "model.json"]),
                                         ("keras_dcgan", ["generator.keras", "model.json"]),
                                         ("keras_forecaster", ["model.json", "model.keras"])])
def test_the_other_keras_workloads_export_loadable_models(name, files, tmp_path):
    import tf_keras

    w = make(name, workloads.get(name).test_params, trial_dir=str(tmp_path / "run"))
    try:
        w.step()
        w.export(str(tmp_path / "out"))
    finally:
        w.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == files
    for file in (f for f in files if f.endswith(".keras")):  # model.json: the schema and recipe beside them
        model = tf_keras.models.load_model(tmp_path / "out" / file)
        assert np.isfinite(model.predict(np.zeros((2, *model.input_shape[1:]), np.float32), verbose=0)).all()


@pytest.mark.slow
def test_lab_run_then_lab_export(tmp_path, lab_home):
    run = lab("run", "mlp-fashion-mnist", "--set", "subset=600", "--set", "max_epochs=1",
              "--set", "stop.training_iteration=1", "--set", "hidden_units=[32]")
    assert run.returncode == 0, run.stderr[-3000:]
    exported = lab("export", "1", "--out", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    path = tmp_path / "out" / "model.keras"
    assert str(path) in exported.stdout and path.is_file()
    code = (f"import numpy as np, tf_keras; m = tf_keras.models.load_model({str(path)!r}); "
            "p = m.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0); print(p.shape, p.sum(axis=1).round(4))")
    loaded = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "(3, 10) [1. 1. 1.]" in loaded.stdout


@pytest.mark.parametrize(
    "params, message",
    [({"dropout": 1.0}, "dropout must be in"), ({"filters": [], "model": "cnn"}, "at least one entry in filters"),
     ({"optimizer": "rmsprop"}, "must be one of"), ({"hidden_units": [300, 0]}, "hidden_units must be positive"),
     ({"model": "resnt"}, "unknown model 'resnt' \\(did you mean 'resnet'"),
     ({"model": "cnn", "dataset": "digits", "filters": [8, 8, 8, 8]}, "halves the 8x8 images of digits 4 times"),
     ({"patience": 3, "validation_split": 0.0}, "patience \\(early stopping\\) watches val/loss"),
     ({"lr_schedule": "plateau", "validation_split": 0.0}, "plateau watches val/loss"),
     ({"devices": -1}, "devices must be >= 0")],
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


@pytest.mark.parametrize("lr_schedule", ["constant", "plateau"])
def test_restore_into_a_mutated_config_takes_the_new_learning_rate(lr_schedule, tmp_path):
    """A PBT exploit restores a donor's checkpoint into a trial with a mutated rate: the new rate wins;
    a plain resume (same config) keeps the restored rate."""
    from lab.workload.testing import make

    params = {"dataset": "digits", "model": "mlp", "hidden_units": [16], "max_epochs": 2,
              "lr_schedule": lr_schedule, "seed": 0}
    donor = make("keras_classifier", {**params, "learning_rate": 0.03})
    donor.step()
    donor.model.optimizer.learning_rate.assign(0.02)  # e.g. lowered by the plateau schedule
    donor.save(str(tmp_path))
    donor.close()
    for configured, expected in ((0.03, 0.02), (1e-4, 1e-4)):
        trial = make("keras_classifier", {**params, "learning_rate": configured})
        trial.restore(str(tmp_path))
        assert float(trial.model.optimizer.learning_rate.numpy()) == pytest.approx(expected)
        trial.close()
