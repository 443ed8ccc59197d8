"""Image classifiers in Keras: the book's MLP (chapter 10), a CNN and a small ResNet (chapter 14), one epoch per step.

Reads top to bottom: config, model builders, input pipeline, then the workload (setup, step,
save/restore, export). TensorFlow is imported inside functions only (see lab.workload). Training controls
as params: data augmentation, early stopping (`patience`), learning-rate schedules, several devices
(MirroredStrategy, deep/_devices.py) and mixed precision on GPUs.

    from tests.workload_harness import make
    w = make("keras_classifier", {"model": "cnn", "subset": 600, "max_epochs": 2})
    print(w.step())
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deep import _devices
from lab import image_data as data
from lab.workload import Workload, register, suggest

EVAL_BATCH_SIZE = 512  # evaluation batches (no gradients, so bigger than training batches)
STATE_FILE = "state.json"  # the epoch counter beside the TensorFlow checkpoint
CHECKPOINT_PREFIX = "model"  # tf.train.Checkpoint files: model.index, model.data-*
EXPORT_FILE = "model.keras"  # export(): the Keras format, tf_keras.models.load_model(path)
MODELS = ("mlp", "cnn", "resnet")
IMAGE_SIDES = {"fashion_mnist": 28, "mnist": 28, "digits": 8}  # image height = width of each data set
BN_MOMENTUM = 0.9  # ResNet batch norm: moving statistics of the last ~10 batches (Keras' 0.99: ~100)
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2  # lr_schedule plateau: halve the rate after 2 evaluations without progress


def _tf():
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


# ---------------------------------------------------------------- models
def _inputs(tf, input_shape: tuple[int, ...], augment: bool, seed: int):
    """(Input, tensor after augmentation). Augmentation layers act only when training: random horizontal
    flips, shifts and zooms of up to 10% (empty borders filled with 0, the background of these images)."""
    inputs = tf.keras.Input(shape=input_shape)
    x = inputs
    if augment:
        if len(input_shape) != 3:
            raise ValueError(f"augment needs images shaped (height, width, channels), got {tuple(input_shape)}")
        x = tf.keras.layers.RandomFlip("horizontal", seed=seed)(x)
        x = tf.keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 1)(x)
        x = tf.keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2)(x)
    return inputs, x


def _classes(tf, x, num_classes: int):
    """The softmax output, always float32 (stable under the mixed_float16 policy)."""
    return tf.keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)


def _dense_block(tf, x, units: int, dropout: float, batch_norm: bool, activation: str):
    """Dense -> (BatchNorm) -> activation -> (Dropout)."""
    x = tf.keras.layers.Dense(units, use_bias=not batch_norm, kernel_initializer="he_normal")(x)
    if batch_norm:
        x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation(activation)(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(dropout)(x)
    return x


def make_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden_units: tuple[int, ...] = (300, 100),
    dropout: float = 0.0,
    batch_norm: bool = False,
    activation: str = "relu",
    augment: bool = False,
    seed: int = 0,
):
    """The book's MLP: Flatten -> Dense(300) -> Dense(100) -> softmax (any input shape)."""
    tf = _tf()
    inputs, x = _inputs(tf, input_shape, augment, seed)
    x = tf.keras.layers.Flatten()(x)
    for units in hidden_units:
        x = _dense_block(tf, x, units, dropout, batch_norm, activation)
    return tf.keras.Model(inputs, _classes(tf, x, num_classes), name="mlp")


def make_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: tuple[int, ...] = (32, 64, 128),
    convs_per_block: int = 1,
    kernel_size: int = 3,
    hidden_units: tuple[int, ...] = (128,),
    dropout: float = 0.5,
    batch_norm: bool = True,
    activation: str = "relu",
    augment: bool = False,
    seed: int = 0,
):
    """A CNN in the book's shape, sized for a CPU: per entry of `filters` a block of
    `convs_per_block` x [Conv -> (BatchNorm) -> activation] -> MaxPool, then Dense layers with dropout.

    The book's own (Conv64 7x7, 2xConv128, 2xConv256, Dense 128/64) took ~12x longer per epoch on 2 CPU cores
    (~410 s against ~35 s); the default here reached 0.93 test accuracy in 12 epochs.
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"the CNN needs images shaped (height, width, channels), got input shape {tuple(input_shape)}"
            " (use model: mlp for flat data)"
        )
    tf = _tf()
    inputs, x = _inputs(tf, input_shape, augment, seed)
    for n_filters in filters:
        for _ in range(convs_per_block):
            x = tf.keras.layers.Conv2D(n_filters, kernel_size, padding="same", use_bias=not batch_norm)(x)
            if batch_norm:
                x = tf.keras.layers.BatchNormalization()(x)
            x = tf.keras.layers.Activation(activation)(x)
        x = tf.keras.layers.MaxPooling2D(padding="same")(x)  # "same": 8x8 digits survive 3 poolings
    x = tf.keras.layers.Flatten()(x)
    for units in hidden_units:
        x = _dense_block(tf, x, units, dropout, batch_norm=False, activation=activation)
    return tf.keras.Model(inputs, _classes(tf, x, num_classes), name="cnn")


def _bn(tf):
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM)


def residual_unit(tf, x, filters: int, strides: int = 1, activation: str = "relu"):
    """The book's residual unit: Conv-BN-act-Conv-BN plus the input (through a 1x1 Conv-BN projection
    when the unit changes the size or the depth), then the activation. Batch norm with momentum 0.9 (Keras:
    0.99) so that its moving statistics settle within a short CPU budget."""
    layers = tf.keras.layers
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.Activation(activation)(_bn(tf)(y))
    y = _bn(tf)(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    skip = x
    if strides > 1 or x.shape[-1] != filters:
        skip = _bn(tf)(layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x))
    return layers.Activation(activation)(layers.Add()([y, skip]))


def make_resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: tuple[int, ...] = (16, 32, 64),
    residual_units: int = 1,
    dropout: float = 0.0,
    activation: str = "relu",
    augment: bool = False,
    seed: int = 0,
):
    """A small ResNet (the book's ResNet-34 shrunk for 28x28 images on a CPU): a 3x3 Conv-BN-act stem,
    then per entry of `filters` a stage of `residual_units` units (stride 2 from the second stage on),
    global average pooling, (dropout), softmax."""
    if len(input_shape) != 3:
        raise ValueError(
            f"the ResNet needs images shaped (height, width, channels), got input shape {tuple(input_shape)}"
            " (use model: mlp for flat data)"
        )
    tf = _tf()
    layers = tf.keras.layers
    inputs, x = _inputs(tf, input_shape, augment, seed)
    x = layers.Conv2D(filters[0], 3, padding="same", use_bias=False)(x)
    x = layers.Activation(activation)(_bn(tf)(x))
    for stage, n_filters in enumerate(filters):
        for unit in range(residual_units):
            x = residual_unit(tf, x, n_filters, strides=2 if stage > 0 and unit == 0 else 1, activation=activation)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    return tf.keras.Model(inputs, _classes(tf, x, num_classes), name="resnet")


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.0, decay_steps: int = 0,
                   schedule: str = "cosine"):
    """Adam, SGD or Nadam. With `decay_steps` > 0 the rate follows `schedule` over that many steps:
    cosine from `learning_rate` to 0, or exponential down to a tenth (the book's lr0 * 0.1**(t/s))."""
    tf = _tf()
    if decay_steps > 0 and schedule == "exponential":
        learning_rate = tf.keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, 0.1)
    elif decay_steps > 0:
        learning_rate = tf.keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    if name == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "nadam":
        return tf.keras.optimizers.Nadam(learning_rate=learning_rate)
    return tf.keras.optimizers.Adam(learning_rate=learning_rate)


# ---------------------------------------------------------------- input pipeline
def train_batches(x, y, batch_size: int, seed: int):
    """One epoch of shuffled batches. Indices are shuffled (not the images: no big shuffle buffer)
    and the images gathered per batch; the order depends only on `seed`, so a restored trial
    replays the same epochs as one that never stopped."""
    tf = _tf()
    return (
        tf.data.Dataset.range(int(x.shape[0]))
        .shuffle(int(x.shape[0]), seed=seed, reshuffle_each_iteration=False)
        .batch(batch_size)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_batches(x, y):
    """Batches for evaluation, in order. No .cache(): the arrays are in memory already and nothing
    upstream is worth caching, so it would only copy them."""
    tf = _tf()
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(EVAL_BATCH_SIZE).prefetch(tf.data.AUTOTUNE)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(x_train, y_train), (x_val, y_val): a stratified, seeded `fraction` of the training set held out."""
    if fraction <= 0:
        return (x, y), (x[:0], y[:0])
    val = data._stratified_sample(y, max(1, round(fraction * len(y))), seed)
    train = np.setdiff1d(np.arange(len(y)), val)
    return (x[train], y[train]), (x[val], y[val])


def image_grid(images: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Tile (N, H, W, 1) images in [0, 1] into one (rows*(H+gap)-gap, columns*(W+gap)-gap) image."""
    n, height, width = images.shape[:3]
    columns = min(columns, n)
    rows = -(-n // columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), 0.5, dtype=np.float32)
    for k, image in enumerate(images[..., 0]):
        r, c = divmod(k, columns)
        grid[r * (height + gap): r * (height + gap) + height, c * (width + gap): c * (width + gap) + width] = image
    return grid


# ---------------------------------------------------------------- the workload
@register
class KerasClassifier(Workload):
    """An MLP, a CNN or a ResNet on an image data set of lab.image_data; one step trains `epochs_per_step` epochs."""

    name = "keras_classifier"
    test_params = {"dataset": "digits", "model": "cnn", "filters": [8, 16], "hidden_units": [32], "max_epochs": 2}

    @dataclass
    class Config:
        dataset: str = "fashion_mnist"  # fashion_mnist, mnist or digits (lab.image_data.DATASETS)
        model: str = "mlp"  # mlp: the book's MLP (ch. 10); cnn or resnet: ch. 14
        hidden_units: tuple[int, ...] = (300, 100)  # Dense layers: the MLP's hidden layers, the CNN's head
        filters: tuple[int, ...] = (32, 64, 128)  # CNN: filters of each conv block (one max-pool each); ResNet: of each stage
        convs_per_block: int = 1  # CNN: conv layers per block (the book uses 2)
        residual_units: int = 1  # ResNet: residual units per stage (the book's ResNet-34: 3, 4, 6, 3)
        kernel_size: int = 3  # CNN: conv kernel size
        activation: str = "relu"  # hidden activation (any Keras name: relu, elu, selu, swish)
        dropout: float = 0.0  # dropout rate after each hidden Dense layer (ResNet: before the softmax; 0: none)
        batch_norm: bool = False  # BatchNormalization before each hidden activation (the ResNet always has it)
        augment: bool = False  # random flips, shifts and zooms of the training images (layers in the model)
        learning_rate: float = 1e-3  # optimizer step size (the initial one, with a schedule)
        optimizer: Literal["adam", "sgd", "nadam"] = "adam"
        lr_schedule: Literal["constant", "cosine", "exponential", "plateau"] = "constant"
        # cosine: to 0 over max_epochs; exponential: to a tenth over max_epochs; plateau: halved after 2
        # evaluations without a lower val/loss
        momentum: float = 0.0  # SGD only
        batch_size: int = 32  # training batch size per device (the global batch is this x the replicas)
        epochs_per_step: int = 1  # epochs trained per step() (one Tune iteration)
        max_epochs: int = 20  # step() returns done=True once this many epochs are trained
        test_every: int = 1  # test/* metrics every this many epochs, and always at the end
        patience: int = 0  # early stopping: done=True after this many evaluations without a lower val/loss (0: off)
        validation_split: float = 0.1  # stratified fraction of the training set held out (0: no val/*)
        subset: int = 0  # train on a stratified sample of this many images, test on as many pro rata (0: all)
        devices: int = 0  # replicas (MirroredStrategy): 0 = one per GPU of the trial; N > 1 on a CPU splits it
        mixed_precision: bool = False  # mixed_float16 compute on a GPU (refused on a CPU)
        seed: int = 0  # weights, dropout, augmentation, shuffling, validation split and subset
        log_images: int = 16  # misclassified test images logged once at the end (0: none)

        def check(self) -> None:
            if self.dataset not in data.DATASETS:
                raise ValueError(f"unknown data set '{self.dataset}'{suggest(self.dataset, data.DATASETS)}")
            if self.model not in MODELS:
                raise ValueError(f"unknown model '{self.model}'{suggest(self.model, MODELS)}")
            positive = ("learning_rate", "batch_size", "epochs_per_step", "max_epochs", "test_every", "kernel_size",
                        "convs_per_block", "residual_units")
            for name in positive:
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            for name in ("dropout", "validation_split"):
                if not 0 <= getattr(self, name) < 1:
                    raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
            for name in ("subset", "log_images", "momentum", "patience", "devices"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            for name in ("hidden_units", "filters"):
                if any(n <= 0 for n in getattr(self, name)):
                    raise ValueError(f"{name} must be positive, got {list(getattr(self, name))}")
            if self.model in ("cnn", "resnet") and not self.filters:
                raise ValueError(f"a {self.model} needs at least one entry in filters")
            halvings = len(self.filters) if self.model == "cnn" else len(self.filters) - 1 if self.model == "resnet" else 0
            side = IMAGE_SIDES.get(self.dataset, 0)
            if side and 2**halvings > side:
                raise ValueError(
                    f"the {self.model} halves the {side}x{side} images of {self.dataset} {halvings} times, below one "
                    f"pixel: give filters at most {int(math.log2(side)) + (self.model == 'resnet')} entries"
                )
            if (self.patience or self.lr_schedule == "plateau") and self.validation_split == 0:
                what = "patience (early stopping)" if self.patience else "lr_schedule plateau"
                raise ValueError(f"{what} watches val/loss: set validation_split > 0")
            if 0 < self.subset < 20:
                raise ValueError(f"subset must be 0 (all) or >= 20 images, got {self.subset}")

    # ------------------------------------------------------------ setup
    def setup(self) -> None:
        c = self.config
        tf = _tf()
        # first TensorFlow work of the trial: a CPU can be split into logical devices only before any other
        num_gpus = self.context.num_gpus if self.context is not None else 0.0
        self.strategy = _devices.distribution_strategy(c.devices, num_gpus)
        _devices.check_mixed_precision(c.mixed_precision)
        tf.keras.utils.set_random_seed(c.seed)
        (x, y), (self.x_test, self.y_test) = data.load(c.dataset, subset=c.subset, seed=c.seed)
        (x_train, y_train), (self.x_val, self.y_val) = split_validation(x, y, c.validation_split, c.seed)
        self.num_train = len(y_train)
        self.num_classes = int(max(y.max(), self.y_test.max())) + 1
        self._x_train, self._y_train = tf.constant(x_train), tf.constant(y_train)
        self._val = eval_batches(self.x_val, self.y_val) if len(self.y_val) else None
        self._test = eval_batches(self.x_test, self.y_test)

        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch_size = c.batch_size * self.replicas
        steps_per_epoch = math.ceil(self.num_train / self.global_batch_size)
        decay_steps = c.max_epochs * steps_per_epoch if c.lr_schedule in ("cosine", "exponential") else 0
        with self.strategy.scope(), _devices.precision_policy(c.mixed_precision):
            self.model = self._build_model(x_train.shape[1:])
            self.model.compile(
                optimizer=make_optimizer(c.optimizer, c.learning_rate, c.momentum, decay_steps, c.lr_schedule),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        self.epoch = 0
        self.best_val_loss, self.evals_without_progress = math.inf, 0  # early stopping and plateau
        self.images_logged = False

    def _build_model(self, input_shape):
        c = self.config
        if c.model == "resnet":
            return make_resnet(input_shape, self.num_classes, c.filters, c.residual_units, c.dropout, c.activation,
                               c.augment, c.seed)
        if c.model == "cnn":
            return make_cnn(input_shape, self.num_classes, c.filters, c.convs_per_block, c.kernel_size,
                            c.hidden_units, c.dropout, c.batch_norm, c.activation, c.augment, c.seed)
        return make_mlp(input_shape, self.num_classes, c.hidden_units, c.dropout, c.batch_norm, c.activation,
                        c.augment, c.seed)

    # ------------------------------------------------------------ one step: train, evaluate
    def step(self) -> dict[str, Any]:
        c = self.config
        tf = _tf()
        n_epochs = min(c.epochs_per_step, max(c.max_epochs - self.epoch, 1))
        train_seconds = 0.0
        for _ in range(n_epochs):
            batches = train_batches(self._x_train, self._y_train, self.global_batch_size,
                                    seed=c.seed * 100_003 + self.epoch)
            start = time.perf_counter()
            history = self.model.fit(
                batches, epochs=self.epoch + 1, initial_epoch=self.epoch, verbose=0,
                callbacks=[tf.keras.callbacks.TerminateOnNaN()],
            ).history
            train_seconds += time.perf_counter() - start
            self.epoch += 1
            loss = history["loss"][-1]
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss is {'NaN' if math.isnan(loss) else loss} at epoch {self.epoch}")

        metrics: dict[str, Any] = {"train/loss": loss, "train/accuracy": history["accuracy"][-1],
                                   "charts/learning_rate": self._learning_rate()}
        stop_early = False
        if self._val is not None:
            val = self.model.evaluate(self._val, verbose=0, return_dict=True)
            metrics.update({"val/loss": val["loss"], "val/accuracy": val["accuracy"]})
            stop_early = self._watch_val_loss(val["loss"])
        done = self.epoch >= c.max_epochs or stop_early
        if done or self.epoch % c.test_every == 0:
            probabilities = self.model.predict(self._test, verbose=0)
            predicted = probabilities.argmax(axis=1)
            chosen = probabilities[np.arange(len(self.y_test)), self.y_test]
            metrics["test/loss"] = float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())
            metrics["test/accuracy"] = float((predicted == self.y_test).mean())
        metrics.update({
            "charts/samples_per_sec": self.num_train * n_epochs / train_seconds,
            "charts/seconds_per_epoch": train_seconds / n_epochs,
            "charts/epoch": self.epoch,
            "charts/replicas": self.replicas,
            "charts/stopped_early": float(stop_early),
        })
        metrics["done"] = done
        if done:
            self._log_misclassified(predicted)
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    def _watch_val_loss(self, val_loss: float) -> bool:
        """Early stopping and the plateau schedule: True when `patience` evaluations passed without progress."""
        c = self.config
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.evals_without_progress = val_loss, 0
            return False
        self.evals_without_progress += 1
        if c.lr_schedule == "plateau" and self.evals_without_progress % PLATEAU_PATIENCE == 0:
            optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
            optimizer.learning_rate = self._learning_rate() * PLATEAU_FACTOR
        return 0 < c.patience <= self.evals_without_progress

    def _learning_rate(self) -> float:
        """The optimizer's current rate (a schedule's value at the current step)."""
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)  # mixed: loss-scaled
        rate = optimizer._learning_rate
        if callable(rate):
            return float(rate(optimizer.iterations))
        return float(optimizer.learning_rate.numpy())  # a variable (a MirroredVariable under a strategy)

    def _log_misclassified(self, predicted: np.ndarray) -> None:
        """Once, at the end: a grid of misclassified test images and their labels."""
        logger = self.context.logger if self.context is not None else None
        wrong = np.flatnonzero(predicted != self.y_test)[: self.config.log_images]
        if logger is None or self.images_logged or len(wrong) == 0:
            return
        names = data.class_names(self.config.dataset, self.num_classes)
        logger.image("test/misclassified", image_grid(self.x_test[wrong]))
        rows = [f"| {k} | {names[self.y_test[i]]} | {names[predicted[i]]} |" for k, i in enumerate(wrong)]
        logger.text("test/misclassified", "\n".join(["| image | true | predicted |", "|---|---|---|", *rows]))
        self.images_logged = True

    # ------------------------------------------------------------ checkpoints and export
    def _checkpoint(self):
        tf = _tf()
        return tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)

    def save(self, checkpoint_dir: str) -> None:
        self._checkpoint().write(os.path.join(checkpoint_dir, CHECKPOINT_PREFIX))
        with open(os.path.join(checkpoint_dir, STATE_FILE), "w") as file:
            json.dump({"epoch": self.epoch, "images_logged": self.images_logged,
                       "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
                       "evals_without_progress": self.evals_without_progress,
                       "configured_learning_rate": self.config.learning_rate}, file)

    def restore(self, checkpoint_dir: str) -> None:
        with self.strategy.scope():
            # create the optimizer's slots now, so that every saved value has a variable to land in
            self.model.optimizer.build(self.model.trainable_variables)
            self._checkpoint().read(os.path.join(checkpoint_dir, CHECKPOINT_PREFIX)).assert_consumed()
        with open(os.path.join(checkpoint_dir, STATE_FILE)) as file:
            state = json.load(file)
        self.epoch = int(state["epoch"])
        self.images_logged = bool(state.get("images_logged", False))
        best = state.get("best_val_loss")
        self.best_val_loss = math.inf if best is None else float(best)
        self.evals_without_progress = int(state.get("evals_without_progress", 0))
        if state.get("configured_learning_rate", self.config.learning_rate) != self.config.learning_rate:
            # the checkpoint comes from a trial with another rate (a PBT exploit mutated it): this config's
            # rate wins; a plain resume keeps the restored one (it may have been lowered by the plateau schedule)
            learning_rate = self.model.optimizer.learning_rate
            if hasattr(learning_rate, "assign"):  # a constant or plateau rate; schedules are rebuilt from the config
                learning_rate.assign(self.config.learning_rate)

    def export(self, out_dir: str) -> str:
        """The model in the Keras format: `tf_keras.models.load_model(path)` (augmentation layers included,
        inactive at inference)."""
        return save_keras(self.model, out_dir)

    def close(self) -> None:
        """Drop the model and Keras' global state (an actor reused by Tune builds the next trial's)."""
        if getattr(self, "model", None) is not None:
            self.model = None
            _tf().keras.backend.clear_session()


def save_keras(model, out_dir: str, file_name: str = EXPORT_FILE) -> str:
    """Save a Keras model as `<out_dir>/<file_name>` (the `.keras` zip: config, weights, optimizer); the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, file_name)
    model.save(path)
    return path
