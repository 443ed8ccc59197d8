"""The book's DCGAN (chapter 17) in Keras, with a custom training step: the discriminator, then the generator.

Reads top to bottom: config, model builders, the training step, the evaluation, then the workload (setup,
step, save/restore). TensorFlow is imported inside functions only (see lab.workload).

A GAN has no validation loss worth ranking on: its two losses chase each other. The step reports them, and
`eval/frechet_distance`, a cheap stand-in for FID: the Fréchet distance between Gaussians fitted to real test
images and to generated ones, both projected on the first principal components of the training images
(pixels, not Inception features, so the numbers do not compare with published FIDs; lower is better, and
a generator that collapses to a few images scores badly because their covariance shrinks).
Each step also logs a grid of images generated from one fixed, seeded batch of codings.

    from lab.workload.testing import make
    w = make("keras_dcgan", {"subset": 2000, "max_epochs": 2})
    print(w.step())
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import imagesets as data
from deep.backend import load_tf, save_keras
from deep.images import image_grid
from deep.keras_workload import KerasWorkload

PCA_COMPONENTS = 32  # dimensions the Fréchet distance is measured in
PCA_FIT_IMAGES = 10_000  # training images the principal components are fitted on
GENERATE_BATCH_SIZE = 500  # batches of the generator when sampling for the evaluation
LEAKY_RELU_ALPHA = 0.2  # the discriminator's LeakyReLU slope, as in the book


# ---------------------------------------------------------------- models
def make_generator(codings_size: int, filters: tuple[int, int] = (128, 64), kernel_size: int = 5, channels: int = 1):
    """The book's generator: Dense 7x7x`filters[0]` -> Reshape -> BatchNorm -> Conv2DTranspose `filters[1]`
    (stride 2, SELU) -> BatchNorm -> Conv2DTranspose `channels` (stride 2, tanh): 28x28 images in [-1, 1]."""
    tf = load_tf()
    layers = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input(shape=(codings_size,)),
        layers.Dense(7 * 7 * filters[0]),
        layers.Reshape((7, 7, filters[0])),
        layers.BatchNormalization(),
        layers.Conv2DTranspose(filters[1], kernel_size, strides=2, padding="same", activation="selu"),
        layers.BatchNormalization(),
        layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same", activation="tanh"),
    ], name="generator")


def make_discriminator(
    image_shape: tuple[int, ...], filters: tuple[int, ...] = (64, 128), kernel_size: int = 5, dropout: float = 0.4
):
    """The book's discriminator: per entry of `filters` Conv2D (stride 2, LeakyReLU 0.2) + Dropout, then
    Dense 1. It outputs a logit: the book's sigmoid is folded into the loss, which is numerically safer.

    TF 2.21's grappler logs "remapper failed: ... LeakyReluGrad exist for missing node .../BiasAdd" once per
    trace of the training step (it cannot fuse Conv2D + bias + LeakyReLU when the gradient needs the
    pre-activation): harmless, the pass is skipped and the results are unchanged."""
    tf = load_tf()
    layers = tf.keras.layers
    stack = [tf.keras.Input(shape=image_shape)]
    for n_filters in filters:
        stack += [
            layers.Conv2D(n_filters, kernel_size, strides=2, padding="same"),
            layers.LeakyReLU(LEAKY_RELU_ALPHA),
            layers.Dropout(dropout),
        ]
    stack += [layers.Flatten(), layers.Dense(1)]
    return tf.keras.Sequential(stack, name="discriminator")


def make_gan_optimizer(name: str, learning_rate: float, beta_1: float):
    """The book's RMSprop, or Adam with the DCGAN paper's beta_1 (0.5).

    Measured on 6000 Fashion-MNIST images, 4 epochs: RMSprop 1e-3 reached eval/frechet_distance 5.0; Adam 2e-4
    (beta_1 0.5) 11-12, with or without a slower discriminator, its samples almost all tops (no shoes or bags)."""
    tf = load_tf()
    if name == "rmsprop":
        return tf.keras.optimizers.RMSprop(learning_rate=learning_rate)
    return tf.keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)


# ---------------------------------------------------------------- the Fréchet distance
def principal_components(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (n_components, features)) of the rows of x, by SVD."""
    x = x.reshape(len(x), -1).astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:n_components]


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^1/2): the squared 2-Wasserstein distance of two Gaussians."""
    from scipy import linalg

    root = linalg.sqrtm(cov1 @ cov2)
    root = root.real if np.iscomplexobj(root) else root  # rounding leaves tiny imaginary parts
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


# ---------------------------------------------------------------- the workload
class DCGAN(KerasWorkload):
    """The book's DCGAN on 28x28 images; one step trains `epochs_per_step` epochs."""

    name = "keras_dcgan"
    model_attributes = ("generator", "discriminator", "_train_step")
    test_params = {
        "generator_filters": [16, 8], "discriminator_filters": [8, 16], "codings_size": 16, "subset": 256,
        "max_epochs": 2, "log_images": 4, "eval_samples": 64,
    }

    @dataclass
    class Config:
        dataset: Literal["fashion_mnist", "mnist"] = "fashion_mnist"  # 28x28 images of imagesets
        codings_size: int = 100  # size of the generator's random input
        generator_filters: tuple[int, ...] = (128, 64)  # channels at 7x7 (after the Dense layer) and at 14x14
        discriminator_filters: tuple[int, ...] = (64, 128)  # filters of each stride-2 Conv2D (28 -> 14 -> 7)
        kernel_size: int = 5  # kernel of every Conv2D and Conv2DTranspose
        dropout: float = 0.4  # dropout after each discriminator conv layer
        optimizer: Literal["rmsprop", "adam"] = "rmsprop"  # the book's RMSprop, or Adam as in the DCGAN paper
        generator_lr: float = 1e-3  # the generator's learning rate (the book's; the DCGAN paper's Adam: 2e-4)
        discriminator_lr: float = 1e-3  # the discriminator's learning rate
        beta_1: float = 0.5  # Adam only: first-moment decay (the DCGAN paper's 0.5; Keras' default is 0.9)
        batch_size: int = 32  # real images per training step (and as many generated ones)
        epochs_per_step: int = 1  # epochs trained per step() (one Tune iteration)
        max_epochs: int = 10  # step() returns done=True once this many epochs are trained
        subset: int = 0  # train on a stratified sample of this many images, evaluate on as many pro rata (0: all)
        seed: int = 0  # weights, dropout, codings, shuffling and subset
        log_images: int = 8  # the generated grid is log_images x log_images (0: none)
        eval_samples: int = 1000  # generated images for eval/frechet_distance (0: no evaluation)

        def check(self) -> None:
            positive = ("codings_size", "kernel_size", "generator_lr", "discriminator_lr", "batch_size",
                        "epochs_per_step", "max_epochs")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            for name in ("subset", "log_images", "eval_samples"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            for name in ("dropout", "beta_1"):
                if not 0 <= getattr(self, name) < 1:
                    raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
            if len(self.generator_filters) != 2:
                raise ValueError(
                    f"generator_filters needs two entries (7x7 and 14x14 channels), got {list(self.generator_filters)}"
                )
            if not self.discriminator_filters:
                raise ValueError("the discriminator needs at least one conv layer in discriminator_filters")
            for name in ("generator_filters", "discriminator_filters"):
                if any(n <= 0 for n in getattr(self, name)):
                    raise ValueError(f"{name} must be positive, got {list(getattr(self, name))}")
            if 0 < self.subset < 20:
                raise ValueError(f"subset must be 0 (all) or >= 20 images, got {self.subset}")
            if 0 < self.eval_samples < 2:
                raise ValueError(f"eval_samples must be 0 (none) or >= 2, got {self.eval_samples}")

    # ------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        names = {"train/d_loss", "train/g_loss", "charts/images_per_sec", "charts/seconds_per_epoch", "charts/epoch",
                 "done"}
        return frozenset(names | ({"eval/frechet_distance"} if config.eval_samples else set()))

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
        tf.keras.utils.set_random_seed(c.seed)
        (x_train, y_train), (x_test, _) = data.load(c.dataset, subset=c.subset, seed=c.seed)
        self.num_train = len(x_train)
        self._x_train, self._y_train = tf.constant(x_train), tf.constant(y_train)
        image_shape = tuple(x_train.shape[1:])

        self.generator = make_generator(c.codings_size, tuple(c.generator_filters), c.kernel_size, image_shape[-1])
        self.discriminator = make_discriminator(image_shape, tuple(c.discriminator_filters), c.kernel_size, c.dropout)
        self.g_optimizer = make_gan_optimizer(c.optimizer, c.generator_lr, c.beta_1)
        self.d_optimizer = make_gan_optimizer(c.optimizer, c.discriminator_lr, c.beta_1)
        self.rng = tf.random.Generator.from_seed(c.seed)  # the training codings, saved with the weights
        self._bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)

        # fixed codings: the logged grid shows the same points of the codings space at every step
        rng = np.random.default_rng(c.seed)
        self.codings_shown = rng.standard_normal((c.log_images**2, c.codings_size)).astype(np.float32)
        self.codings_eval = rng.standard_normal((c.eval_samples, c.codings_size)).astype(np.float32)
        if c.eval_samples:
            fit_on = x_train[rng.permutation(len(x_train))[:PCA_FIT_IMAGES]]
            n_components = min(PCA_COMPONENTS, len(fit_on) - 1, c.eval_samples - 1, len(x_test) - 1)
            self._pca = principal_components(fit_on, n_components)
            self._real_fit = gaussian_fit(self._project(x_test))

        signature = [tf.TensorSpec((None, *image_shape), tf.float32)]
        self._train_step = tf.function(self._train_step_eager, input_signature=signature)
        self.epoch = 0

    # ------------------------------------------------------------ the training step (inside tf.function)
    def _train_step_eager(self, images):
        """Phase 1: the discriminator learns real (label 1) from generated (label 0); phase 2: the generator,
        with fresh codings, learns to make the updated discriminator say 1. Returns (d_loss, g_loss)."""
        import tensorflow as tf  # imported already by setup (through load_tf(), which AutoGraph should not trace)

        real = images * 2.0 - 1.0  # the generator's tanh range
        batch = tf.shape(real)[0]
        codings_shape = [batch, self.config.codings_size]
        generated = self.generator(self.rng.normal(codings_shape), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(generated, training=True)
            # the mean over the 2 x batch images, as the book's train_on_batch on the concatenated batch
            d_loss = (self._bce(tf.ones_like(real_logits), real_logits)
                      + self._bce(tf.zeros_like(fake_logits), fake_logits)) / 2
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))

        with tf.GradientTape() as tape:
            generated = self.generator(self.rng.normal(codings_shape), training=True)
            fake_logits = self.discriminator(generated, training=True)
            g_loss = self._bce(tf.ones_like(fake_logits), fake_logits)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, variables), variables))
        return tf.stack([d_loss, g_loss])

    # ------------------------------------------------------------ sampling and evaluation
    def generate(self, codings: np.ndarray) -> np.ndarray:
        """Images in [0, 1] from `codings` (the generator in inference mode: BatchNorm's moving statistics)."""
        batches = [
            self.generator(codings[i: i + GENERATE_BATCH_SIZE], training=False).numpy()
            for i in range(0, len(codings), GENERATE_BATCH_SIZE)
        ]
        return (np.concatenate(batches) + 1.0) / 2.0

    def _project(self, images: np.ndarray) -> np.ndarray:
        mean, components = self._pca
        return (images.reshape(len(images), -1) - mean) @ components.T

    def frechet_distance(self) -> float:
        """eval/frechet_distance: generated images from the fixed evaluation codings against the test images."""
        return frechet_distance(*gaussian_fit(self._project(self.generate(self.codings_eval))), *self._real_fit)

    # ------------------------------------------------------------ one step: train, evaluate, log images
    def step(self) -> dict[str, Any]:
        c = self.config
        n_epochs = self.epochs_this_step()
        (d_loss, g_loss), train_seconds = self.train_custom_epochs(n_epochs, self._train_step, 2)

        metrics: dict[str, Any] = {"train/d_loss": d_loss, "train/g_loss": g_loss}
        if c.eval_samples:
            metrics["eval/frechet_distance"] = self.frechet_distance()
        metrics.update({
            "charts/images_per_sec": self.num_train * n_epochs / train_seconds,
            "charts/seconds_per_epoch": train_seconds / n_epochs,
            "charts/epoch": self.epoch,
        })
        logger = self.context.logger if self.context is not None else None
        if logger is not None and c.log_images:
            logger.image("samples/generated", image_grid(self.generate(self.codings_shown), columns=c.log_images))
        metrics["done"] = self.epoch >= c.max_epochs
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self):
        tf = load_tf()
        return tf.train.Checkpoint(
            generator=self.generator, discriminator=self.discriminator,
            g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer, rng=self.rng,
        )

    def optimizer_slots(self) -> list[tuple]:
        return [(self.g_optimizer, self.generator.trainable_variables),
                (self.d_optimizer, self.discriminator.trainable_variables)]

    def check_losses(self, means) -> None:
        for name, loss in zip(("discriminator", "generator"), means):
            self.check_finite(loss, f"{name} loss")

    def export(self, out_dir: str) -> str:
        """The generator (codings -> images) as `<out_dir>/generator.keras`, for tf_keras.models.load_model."""
        return save_keras(self.generator, out_dir, "generator.keras")
