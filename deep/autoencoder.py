"""Autoencoders in Keras (the book's chapter 17): stacked, convolutional, denoising and variational.

Reads top to bottom: config, model builders, the training and evaluation steps, then the workload
(setup, step, save/restore). TensorFlow is imported inside functions only (see lab.workload).
Every kind trains on the mean squared reconstruction error per pixel (the book's third edition);
the VAE adds the KL divergence of its codings from N(0, I), divided by the number of pixels as in the book.
Each step logs a grid of validation images (originals above, reconstructions below; the denoising
kind shows the noisy inputs between them) and the VAE a grid of images decoded from random codings.

    from lab.workload.testing import make
    w = make("keras_autoencoder", {"kind": "conv", "subset": 2000, "max_epochs": 2})
    print(w.step())
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import imagesets as data
from deep.backend import load_tf, make_optimizer, save_keras
from deep.images import image_grid
from deep.keras_workload import KerasWorkload
from deep.pipeline import EVAL_BATCH_SIZE, split_validation

IMAGE_DATASETS = ("fashion_mnist", "mnist")  # 28x28 images: the conv decoder upsamples 3 -> 7 -> 14 -> 28
BOOK_HIDDEN_UNITS = {"stacked": (100,), "denoising": (100,), "variational": (150, 100)}  # hidden_units: ()
BOOK_CODINGS_SIZE = {"stacked": 30, "conv": 30, "denoising": 30, "variational": 10}  # codings_size: 0


# ---------------------------------------------------------------- models
def make_dense_autoencoder(
    image_shape: tuple[int, ...],
    hidden_units: tuple[int, ...],
    codings_size: int,
    activation: str = "relu",
    noise: str = "",
    noise_level: float = 0.0,
    variational: bool = False,
):
    """Encoder and decoder of Dense layers; the decoder mirrors the encoder and ends in a sigmoid.

    noise "dropout" or "gaussian" puts Dropout(noise_level) or GaussianNoise(noise_level) in front of the
    encoder: active in training only, it makes a denoising autoencoder. `variational` gives the encoder two
    outputs, the codings' mean and log-variance (the sampling happens in the training step).
    """
    tf = load_tf()
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=image_shape)
    x = layers.Flatten()(inputs)
    if noise == "dropout":
        x = layers.Dropout(noise_level)(x)
    elif noise == "gaussian":
        x = layers.GaussianNoise(noise_level)(x)
    for units in hidden_units:
        x = layers.Dense(units, activation=activation, kernel_initializer="he_normal")(x)
    if variational:
        outputs = [layers.Dense(codings_size, name="codings_mean")(x),
                   layers.Dense(codings_size, name="codings_log_var")(x)]
    else:
        outputs = layers.Dense(codings_size, activation=activation, kernel_initializer="he_normal")(x)
    encoder = tf.keras.Model(inputs, outputs, name="encoder")

    codings = tf.keras.Input(shape=(codings_size,))
    x = codings
    for units in reversed(hidden_units):
        x = layers.Dense(units, activation=activation, kernel_initializer="he_normal")(x)
    x = layers.Dense(int(np.prod(image_shape)), activation="sigmoid")(x)
    decoder = tf.keras.Model(codings, layers.Reshape(image_shape)(x), name="decoder")
    return encoder, decoder


def make_conv_autoencoder(
    image_shape: tuple[int, ...], filters: tuple[int, ...], codings_size: int, activation: str = "relu"
):
    """The book's convolutional autoencoder for 28x28 images.

    Encoder: per entry of `filters` Conv 3x3 + max-pool (28 -> 14 -> 7 -> 3), a Conv 3x3 with `codings_size`
    filters and a global average pool. Decoder: Dense 3x3x16, then Conv2DTranspose stride 2 (3 -> 7 -> 14
    -> 28) with the filters in reverse, the last with one channel and a sigmoid (the book's is linear).
    """
    if tuple(image_shape[:2]) != (28, 28) or len(filters) != 3:
        raise ValueError(
            f"the conv autoencoder needs 28x28 images and three conv blocks, got {tuple(image_shape)} and "
            f"filters {list(filters)}"
        )
    tf = load_tf()
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=image_shape)
    x = inputs
    for n_filters in filters:
        x = layers.Conv2D(n_filters, 3, padding="same", activation=activation)(x)
        x = layers.MaxPool2D(pool_size=2)(x)
    x = layers.Conv2D(codings_size, 3, padding="same", activation=activation)(x)
    encoder = tf.keras.Model(inputs, layers.GlobalAvgPool2D()(x), name="encoder")

    codings = tf.keras.Input(shape=(codings_size,))
    x = layers.Dense(3 * 3 * 16)(codings)
    x = layers.Reshape((3, 3, 16))(x)
    x = layers.Conv2DTranspose(filters[1], 3, strides=2, activation=activation)(x)  # "valid": 3 -> 7
    x = layers.Conv2DTranspose(filters[0], 3, strides=2, padding="same", activation=activation)(x)
    x = layers.Conv2DTranspose(image_shape[-1], 3, strides=2, padding="same", activation="sigmoid")(x)
    decoder = tf.keras.Model(codings, x, name="decoder")
    return encoder, decoder


# ---------------------------------------------------------------- the workload
class Autoencoder(KerasWorkload):
    """A stacked, convolutional, denoising or variational autoencoder; one step trains `epochs_per_step` epochs."""

    name = "keras_autoencoder"
    model_attributes = ("encoder", "decoder", "_train_step", "_eval_step")
    test_params = {
        "kind": "conv", "filters": [4, 8, 8], "codings_size": 8, "subset": 256, "max_epochs": 2, "log_images": 4,
    }

    @dataclass
    class Config:
        kind: Literal["stacked", "conv", "denoising", "variational"] = "stacked"  # the book's four autoencoders
        dataset: Literal["fashion_mnist", "mnist"] = "fashion_mnist"  # 28x28 images of imagesets
        codings_size: int = 0  # size of the codings layer (0: the book's, 30, or 10 for the VAE)
        hidden_units: tuple[int, ...] = ()  # Dense encoder layers, mirrored by the decoder (empty: the book's)
        filters: tuple[int, ...] = (16, 32, 64)  # conv: filters of the three Conv + max-pool blocks
        activation: str = "relu"  # hidden activation (any Keras name; the book's stacked autoencoder used selu)
        noise: Literal["dropout", "gaussian"] = "dropout"  # denoising: how inputs are corrupted during training
        noise_level: float = 0.5  # denoising: dropout rate, or the Gaussian noise's standard deviation
        kl_weight: float = 1.0  # VAE: weight of the KL term (KL per image / pixels, as in the book)
        optimizer: Literal["adam", "sgd", "nadam"] = "nadam"  # the book's choice is Nadam
        learning_rate: float = 1e-3  # optimizer step size
        momentum: float = 0.0  # SGD only
        batch_size: int = 32  # training batch size
        epochs_per_step: int = 1  # epochs trained per step() (one Tune iteration)
        max_epochs: int = 10  # step() returns done=True once this many epochs are trained
        validation_split: float = 0.1  # stratified fraction of the training set held out for val/*
        subset: int = 0  # train on a stratified sample of this many images (0: all)
        seed: int = 0  # weights, noise, sampling, shuffling, validation split and subset
        log_images: int = 8  # columns of the image grids logged each step (VAE samples: a square); 0: none

        def check(self) -> None:
            positive = ("learning_rate", "batch_size", "epochs_per_step", "max_epochs")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            for name in ("codings_size", "subset", "log_images", "momentum", "kl_weight", "noise_level"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            if not 0 < self.validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {self.validation_split}")
            if self.kind == "denoising" and self.noise == "dropout" and not self.noise_level < 1:
                raise ValueError(f"a dropout noise_level must be in [0, 1), got {self.noise_level}")
            for name in ("hidden_units", "filters"):
                if any(n <= 0 for n in getattr(self, name)):
                    raise ValueError(f"{name} must be positive, got {list(getattr(self, name))}")
            if self.kind == "conv" and len(self.filters) != 3:
                raise ValueError(f"the conv autoencoder needs three conv blocks in filters, got {list(self.filters)}")
            if 0 < self.subset < 20:
                raise ValueError(f"subset must be 0 (all) or >= 20 images, got {self.subset}")

    # ------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        names = {"train/loss", "val/loss", "val/reconstruction_mse", "charts/samples_per_sec",
                 "charts/seconds_per_epoch", "charts/epoch", "done"}
        if config.kind == "variational":
            names |= {"train/reconstruction_mse", "train/kl_loss"}
        if config.kind == "denoising":
            names.add("val/denoising_mse")
        return frozenset(names)

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
        tf.keras.utils.set_random_seed(c.seed)
        (x, y), _ = data.load(c.dataset, subset=c.subset, seed=c.seed)
        (x_train, y_train), (self.x_val, _) = split_validation(x, y, c.validation_split, c.seed)
        self.num_train = len(x_train)
        self._x_train, self._y_train = tf.constant(x_train), tf.constant(y_train)
        image_shape = tuple(x_train.shape[1:])
        self.pixels = int(np.prod(image_shape))
        self.codings_size = c.codings_size or BOOK_CODINGS_SIZE[c.kind]
        self.variational = c.kind == "variational"

        if c.kind == "conv":
            self.encoder, self.decoder = make_conv_autoencoder(image_shape, c.filters, self.codings_size, c.activation)
        else:
            self.encoder, self.decoder = make_dense_autoencoder(
                image_shape, c.hidden_units or BOOK_HIDDEN_UNITS[c.kind], self.codings_size, c.activation,
                noise=c.noise if c.kind == "denoising" else "", noise_level=c.noise_level, variational=self.variational,
            )
        self.optimizer = make_optimizer(c.optimizer, c.learning_rate, c.momentum)
        self.rng = tf.random.Generator.from_seed(c.seed)  # the VAE's sampling noise, saved with the weights

        # what is logged each step: fixed validation images (and their fixed corruption), fixed codings
        rng = np.random.default_rng(c.seed)
        self.x_shown = self.x_val[: c.log_images]
        self.x_val_noisy = self._corrupt(self.x_val, rng) if c.kind == "denoising" else None
        self.codings_shown = rng.standard_normal((c.log_images**2, self.codings_size)).astype(np.float32)

        signature = [tf.TensorSpec((None, *image_shape), tf.float32)]
        self._train_step = tf.function(self._train_step_eager, input_signature=signature)
        self._eval_step = tf.function(self._eval_step_eager, input_signature=signature * 2)
        self.epoch = 0

    def _corrupt(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inputs corrupted the way the denoising encoder's noise layer does in training (seeded, numpy)."""
        c = self.config
        if c.noise == "gaussian":
            return (x + rng.normal(0.0, c.noise_level, x.shape)).astype(np.float32)
        keep = rng.random(x.shape) >= c.noise_level
        return (x * keep / (1.0 - c.noise_level)).astype(np.float32)

    # ------------------------------------------------------------ training and evaluation steps
    # these run inside tf.function: `import tensorflow` there (setup imported it already through load_tf(), whose
    # os.environ calls AutoGraph would warn about)
    def _encode_decode(self, x, training: bool):
        """(reconstructions, KL term): the VAE samples its codings in training and decodes their mean otherwise."""
        import tensorflow as tf
        if not self.variational:
            return self.decoder(self.encoder(x, training=training), training=training), tf.constant(0.0)
        mean, log_var = self.encoder(x, training=training)
        codings = mean
        if training:
            codings = mean + tf.exp(log_var / 2) * self.rng.normal(tf.shape(mean))
        kl = -0.5 * tf.reduce_sum(1 + log_var - tf.exp(log_var) - tf.square(mean), axis=-1)
        return self.decoder(codings, training=training), tf.reduce_mean(kl) / self.pixels

    def _train_step_eager(self, x):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            reconstructions, kl = self._encode_decode(x, training=True)
            mse = tf.reduce_mean(tf.square(x - reconstructions))
            loss = mse + self.config.kl_weight * kl
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.stack([loss, mse, kl])

    def _eval_step_eager(self, inputs, targets):
        """Sums over the batch of (loss, squared error per pixel); `inputs` may be corrupted, `targets` not."""
        import tensorflow as tf

        reconstructions, kl = self._encode_decode(inputs, training=False)
        mse = tf.reduce_mean(tf.square(targets - reconstructions), axis=[1, 2, 3])
        return tf.stack([tf.reduce_sum(mse + self.config.kl_weight * kl), tf.reduce_sum(mse)])

    def _evaluate(self, inputs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """(loss, reconstruction MSE) over a whole array, deterministic."""
        totals = np.zeros(2)
        for start in range(0, len(inputs), EVAL_BATCH_SIZE):
            end = start + EVAL_BATCH_SIZE
            totals += self._eval_step(inputs[start:end], targets[start:end]).numpy()
        return tuple(totals / len(inputs))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Reconstructions of `x` (deterministic: no noise layer, the VAE decodes the codings' mean)."""
        return self._encode_decode(x, training=False)[0].numpy()

    # ------------------------------------------------------------ one step: train, evaluate, log images
    def step(self) -> dict[str, Any]:
        c = self.config
        n_epochs = self.epochs_this_step()
        (loss, mse, kl), train_seconds = self.train_custom_epochs(n_epochs, self._train_step, 3)

        val_loss, val_mse = self._evaluate(self.x_val, self.x_val)
        metrics: dict[str, Any] = {"train/loss": loss, "val/loss": val_loss, "val/reconstruction_mse": val_mse}
        if self.variational:
            metrics.update({"train/reconstruction_mse": mse, "train/kl_loss": kl})
        if self.x_val_noisy is not None:
            metrics["val/denoising_mse"] = self._evaluate(self.x_val_noisy, self.x_val)[1]
        metrics.update({
            "charts/samples_per_sec": self.num_train * n_epochs / train_seconds,
            "charts/seconds_per_epoch": train_seconds / n_epochs,
            "charts/epoch": self.epoch,
        })
        self._log_images()
        metrics["done"] = self.epoch >= c.max_epochs
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    def _log_images(self) -> None:
        """Originals above their reconstructions (the noisy inputs between, when denoising); VAE samples."""
        logger = self.context.logger if self.context is not None else None
        if logger is None or len(self.x_shown) == 0:
            return
        rows = [self.x_shown]
        if self.x_val_noisy is not None:
            noisy = self.x_val_noisy[: len(self.x_shown)]
            rows += [np.clip(noisy, 0.0, 1.0), self.reconstruct(noisy)]
        else:
            rows.append(self.reconstruct(self.x_shown))
        logger.image("val/reconstructions", image_grid(np.concatenate(rows), columns=len(self.x_shown)))
        if self.variational:
            samples = self.generate(self.codings_shown)
            logger.image("samples/generated", image_grid(samples, columns=self.config.log_images))

    def generate(self, codings: np.ndarray) -> np.ndarray:
        """Images decoded from `codings` (meaningful for the VAE, whose codings follow N(0, I))."""
        return self.decoder(codings, training=False).numpy()

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self):
        tf = load_tf()
        return tf.train.Checkpoint(encoder=self.encoder, decoder=self.decoder, optimizer=self.optimizer, rng=self.rng)

    def optimizer_slots(self) -> list[tuple]:
        return [(self.optimizer, self.encoder.trainable_variables + self.decoder.trainable_variables)]

    def export(self, out_dir: str) -> str:
        """`<out_dir>/encoder.keras` and `decoder.keras` (the Keras format, tf_keras.models.load_model); out_dir."""
        save_keras(self.encoder, out_dir, "encoder.keras")
        save_keras(self.decoder, out_dir, "decoder.keras")
        return out_dir
