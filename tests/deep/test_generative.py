"""The generative Keras workloads of deep/ (chapter 17): the four autoencoders and the DCGAN.

Each runs one tiny step into a real TensorBoard events file, and survives a save/restore round trip.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lab import settings
from lab import workload as workloads
from lab.errors import SpecError
from lab.workload.testing import make

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

KINDS = ("stacked", "conv", "denoising", "variational")
TINY_AE = {
    "subset": 200, "max_epochs": 2, "batch_size": 64, "log_images": 4,
    "hidden_units": [32], "codings_size": 8, "filters": [4, 8, 8],
}
TINY_GAN = {
    "subset": 200, "max_epochs": 2, "batch_size": 64, "log_images": 4, "eval_samples": 64,
    "codings_size": 16, "generator_filters": [16, 8], "discriminator_filters": [8, 16],
}
CASES = {kind: ("keras_autoencoder", {**TINY_AE, "kind": kind}) for kind in KINDS}
CASES["dcgan"] = ("keras_dcgan", TINY_GAN)

AE_METRICS = {"train/loss", "val/loss", "val/reconstruction_mse", "charts/epoch"}
EXPECTED = {  # metrics and image tags of one step
    "stacked": (AE_METRICS, {"val/reconstructions": 2}),
    "conv": (AE_METRICS, {"val/reconstructions": 2}),
    "denoising": (AE_METRICS | {"val/denoising_mse"}, {"val/reconstructions": 3}),  # originals, noisy, denoised
    "variational": (AE_METRICS | {"train/kl_loss"}, {"val/reconstructions": 2, "samples/generated": 4}),
    "dcgan": ({"train/d_loss", "train/g_loss", "eval/frechet_distance", "charts/epoch", "charts/images_per_sec"},
              {"samples/generated": 4}),
}
PRESETS = {"ae-conv-fashion-mnist": "keras_autoencoder", "vae-fashion-mnist": "keras_autoencoder",
           "dcgan-fashion-mnist": "keras_dcgan"}


@pytest.fixture
def build(tmp_path):
    """make() from the harness (a real SummaryWriter + MediaLogger in the trial folder); closes what is left."""
    made = []

    def build(case, name="run", **overrides):
        workload, params = CASES[case]
        made.append(make(workload, {**params, **overrides}, trial_dir=str(tmp_path / name)))
        return made[-1]

    yield build
    for w in made:
        w.close()  # idempotent: the workload, then its events writer


def images_in(folder: Path) -> dict[str, tuple[int, int]]:
    """{tag: (height, width)} of the last image of each tag in the events files of `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES,
        EventAccumulator,
    )

    accumulator = EventAccumulator(str(folder), size_guidance={IMAGES: 0})
    accumulator.Reload()
    return {tag: (accumulator.Images(tag)[-1].height, accumulator.Images(tag)[-1].width)
            for tag in accumulator.Tags()[IMAGES]}


def outputs(w, x: np.ndarray, codings: np.ndarray) -> np.ndarray:
    """What a workload makes of fixed inputs: reconstructions (autoencoders) or generated images (GAN)."""
    return w.generate(codings) if hasattr(w, "discriminator") else w.reconstruct(x)


# ---------------------------------------------------------------- one step, images in TensorBoard
@pytest.mark.parametrize("case", list(CASES))
def test_tiny_step_gives_finite_metrics_and_logs_its_images(case, build, tmp_path):
    w = build(case)
    metrics = w.step()
    names, image_rows = EXPECTED[case]
    assert names <= set(metrics), names - set(metrics)
    for key, value in metrics.items():
        assert key == "done" or math.isfinite(value), f"{key}={value}"
    assert metrics["charts/epoch"] == 1 and metrics["done"] is False
    w.close()  # closes the events writer: everything is on disk

    columns = 4  # log_images
    expected = {tag: (rows * 29 - 1, columns * 29 - 1) for tag, rows in image_rows.items()}  # 28 px + 1 px gaps
    assert images_in(tmp_path / "run") == expected


def test_vae_kl_term_is_the_rest_of_the_loss(build):
    metrics = build("variational").step()
    assert metrics["train/kl_loss"] > 0
    total = metrics["train/reconstruction_mse"] + metrics["train/kl_loss"]
    assert metrics["train/loss"] == pytest.approx(total, rel=1e-5)


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("case", list(CASES))
def test_save_restore_gives_identical_outputs(case, build, tmp_path):
    first = build(case, "a")
    first.step()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    first.save(str(checkpoint))

    x = first.x_val[:8] if hasattr(first, "x_val") else None
    codings = np.random.default_rng(7).standard_normal((8, first.config.codings_size or 8)).astype(np.float32)
    second = build(case, "b", seed=1)  # other initial weights: the restore must replace them all
    assert not np.allclose(outputs(second, x, codings), outputs(first, x, codings))
    second.restore(str(checkpoint))
    assert second.epoch == 1
    np.testing.assert_array_equal(outputs(second, x, codings), outputs(first, x, codings))
    # that training goes on after a restore is the conformance test's part (tests/workload/test_conformance.py)


# ---------------------------------------------------------------- failures and configs
@pytest.mark.parametrize("case", ["stacked", "dcgan"])
def test_nan_loss_fails_the_trial(case, build):
    import tensorflow as tf

    w = build(case)
    w._train_step = lambda images: tf.fill([3 if case == "stacked" else 2], float("nan"))
    with pytest.raises(FloatingPointError, match="loss is NaN at epoch 1"):
        w.step()


@pytest.mark.parametrize(
    "workload, params, message",
    [("keras_autoencoder", {"kind": "sparse"}, "must be one of"),
     ("keras_autoencoder", {"kind": "conv", "filters": [16, 32]}, "three conv blocks"),
     ("keras_autoencoder", {"kind": "denoising", "noise_level": 1.0}, "dropout noise_level"),
     ("keras_autoencoder", {"dataset": "digits"}, "must be one of"),
     ("keras_dcgan", {"generator_filters": [128, 64, 32]}, "two entries"),
     ("keras_dcgan", {"beta_1": 1.0}, "beta_1 must be in")],
)
def test_config_refuses_impossible_values(workload, params, message):
    with pytest.raises(SpecError, match=message):
        workloads.get(workload).make_config(params)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_validate_and_name_a_reference(name):
    from lab import spec as specs

    (spec,) = specs.load(name)
    assert spec.workload == PRESETS[name] and spec.reference.metric and spec.mode == "min"
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    assert spec.stop["training_iteration"] * config.epochs_per_step == config.max_epochs
