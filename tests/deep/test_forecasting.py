"""The forecasting workload of deep/: every model on a tiny run, the naive baseline, the splits and
scaling, checkpoints, bad configs, presets. Fast: tiny windows, one or two epochs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from deep import forecasting
from lab import settings
from lab import workload as workloads
from lab.errors import DataError, SpecError
from lab.workload.testing import make

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

PRESETS = sorted((Path(__file__).parents[2] / "deep" / "presets").glob("forecast-*.yaml"))
TINY = {"series": "sunspots", "window": 12, "units": 4, "layers": 1, "max_epochs": 1, "batch_size": 64}
METRICS = ("train/loss", "val/mae", "test/mae", "test/mse", "naive/test_mae", "test/mae_ratio_to_naive", "charts/epoch")


@pytest.fixture
def build(tmp_path):
    """make() from the harness, closing each workload and its events writer after the test."""
    made = []

    def build(params, name="run"):
        made.append(make("keras_forecaster", params, trial_dir=str(tmp_path / name)))
        return made[-1]

    yield build
    for w in made:
        w.close()


# ---------------------------------------------------------------- data
def test_sunspots_split_is_chronological_and_scaled_with_training_values_only(build):
    w = build({**TINY, "model": "naive"})
    years, values = forecasting.sunspots()
    assert len(values) == forecasting.SERIES_LENGTHS["sunspots"] == 309
    train, valid, test = (w.splits[k] for k in ("train", "valid", "test"))
    assert train.times.max() < valid.times.min() and valid.times.max() < test.times.min()
    assert test.times.max() == 2008 and test.times.min() == 1962
    # a valid window's inputs are the years just before its target, reaching back into the training years
    np.testing.assert_array_equal(valid.x[0], values[(years >= valid.times[0, 0] - 12) & (years < valid.times[0, 0])])
    n_train = forecasting.split_bounds(309, "sunspots")[0]
    assert w.mean == pytest.approx(float(values[:n_train].mean())) and w.std == pytest.approx(float(values[:n_train].std()))
    assert w.mean != pytest.approx(float(values.mean()))


def test_generated_series_are_the_books_and_do_not_depend_on_the_trial_seed(build):
    a, b = build({"series": "generated", "model": "naive", "n_series": 40, "window": 10, "horizon": 3, "seed": 1}, "a"), \
        build({"series": "generated", "model": "naive", "n_series": 40, "window": 10, "horizon": 3, "seed": 2}, "b")
    assert [len(a.splits[k].y) for k in ("train", "valid", "test")] == [28, 8, 4]  # the book's 70/20/10
    assert a.splits["train"].x.shape == (28, 10) and a.splits["train"].y.shape == (28, 3)
    np.testing.assert_array_equal(a.splits["test"].y, b.splits["test"].y)
    series = forecasting.generate_time_series(1000, 60)
    assert np.abs(series).max() <= 0.75 and abs(series.mean()) < 0.05  # 0.5 + 0.2 + 0.05 at most


def test_unknown_series_is_a_data_error():
    with pytest.raises(DataError, match="unknown series 'moon'"):
        forecasting.load_splits("moon", 10, 1, 100)


# ---------------------------------------------------------------- the workload
def test_models_list_matches_the_config():
    import typing

    hints = typing.get_type_hints(forecasting.Forecaster.Config)
    assert typing.get_args(hints["model"]) == forecasting.MODELS


@pytest.mark.parametrize("model", forecasting.MODELS)
def test_every_model_runs_a_tiny_step_with_finite_metrics(model, build, tmp_path):
    w = build({**TINY, "model": model})
    metrics = w.step()
    for key in METRICS:
        assert isinstance(metrics[key], (int, float)) and math.isfinite(metrics[key]), key
    assert metrics["done"] is True and metrics["charts/epoch"] == (0 if model == "naive" else 1)
    assert metrics["test/mae_ratio_to_naive"] == pytest.approx(metrics["test/mae"] / metrics["naive/test_mae"])
    assert w.plotted  # the forecast plot went to the trial's events file
    w.context.logger._writer.flush()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_multi_step_forecasts_on_the_generated_series(build):
    w = build({"series": "generated", "model": "linear", "n_series": 40, "window": 10, "horizon": 3, "max_epochs": 2,
               "epochs_per_step": 2})
    metrics = w.step()
    assert w.predict("test").shape == (4, 3) and metrics["charts/epoch"] == 2 and metrics["done"] is True
    assert all(math.isfinite(metrics[key]) for key in METRICS)


@pytest.mark.parametrize("series", ["sunspots", "generated"])
def test_naive_scores_exactly_one_and_is_the_last_value(series, build):
    w = build({**TINY, "series": series, "model": "naive", "n_series": 40, "horizon": 2})
    metrics = w.step()
    assert metrics["test/mae_ratio_to_naive"] == 1.0 and metrics["val/mae_ratio_to_naive"] == 1.0
    assert metrics["test/mae"] == metrics["naive/test_mae"]
    test = w.splits["test"]
    np.testing.assert_array_equal(w.predict("test"), np.stack([test.x[:, -1]] * 2, axis=1))


def test_save_restore_gives_identical_predictions_and_training_goes_on(build, tmp_path):
    params = {**TINY, "model": "gru", "max_epochs": 4, "epochs_per_step": 2}
    first = build(params, "a")
    first.step()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    first.save(str(checkpoint))

    second = build(params, "b")
    assert not np.allclose(second.predict("test"), first.predict("test"))
    second.restore(str(checkpoint))
    assert second.epoch == 2
    np.testing.assert_array_equal(second.predict("test"), first.predict("test"))
    after_first, after_second = first.step(), second.step()
    assert after_second["charts/epoch"] == 4 and after_second["done"] is True
    assert after_second["train/loss"] == pytest.approx(after_first["train/loss"], rel=1e-4)


def test_nan_loss_fails_the_trial(build):
    w = build({**TINY, "model": "linear", "learning_rate": 1e30, "max_epochs": 5, "epochs_per_step": 5})
    with pytest.raises(FloatingPointError, match="training loss is (NaN|inf) at epoch"):
        w.step()


@pytest.mark.parametrize(
    "params, message",
    [({"window": 0}, "window must be >= 1, got 0"),
     ({"horizon": 0}, "horizon must be >= 1"),
     ({"series": "moon"}, "must be one of 'generated', 'sunspots', got 'moon'"),
     ({"model": "transformer"}, "must be one of 'naive', 'linear'"),
     ({"window": 220}, "leave no train samples in the 309 values of sunspots"),
     ({"horizon": 47}, "leave no valid samples"),
     ({"model": "conv_gru", "window": 3, "kernel_size": 4}, "conv_gru needs window >= kernel_size"),
     ({"series": "generated", "n_series": 5}, "n_series must be >= 10"),
     ({"learning_rate": 0}, "learning_rate must be > 0")],
)
def test_config_refuses_impossible_values(params, message):
    with pytest.raises(SpecError, match=message):
        workloads.get("keras_forecaster").make_config(params)


# ---------------------------------------------------------------- presets
@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_validate_against_the_workload(path):
    from lab import spec as specs

    (spec,) = specs.load(path.stem)
    assert spec.workload == "keras_forecaster" and spec.metric == "val/mae" and spec.mode == "min"
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    assert spec.stop["training_iteration"] * config.epochs_per_step == config.max_epochs


def test_sunspots_preset_aims_below_naive():
    from lab import spec as specs

    (spec,) = specs.load("forecast-sunspots")
    assert spec.reference.metric == "test/mae_ratio_to_naive" and spec.reference.score < 1
