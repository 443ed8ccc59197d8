"""Image classifiers in Keras: the book's MLP (chapter 10), a CNN and a small ResNet (chapter 14), one epoch per step.

The workload (setup, step, save/restore, export); its models are deep/models.py's, its batches
deep/pipeline.py's. TensorFlow is imported inside functions only (see lab.workload). Training controls
as params: data augmentation, early stopping (`patience`), learning-rate schedules, several devices
(MirroredStrategy, deep/_devices.py) and mixed precision on GPUs.

    from lab.workload.testing import make
    w = make("keras_classifier", {"model": "cnn", "subset": 600, "max_epochs": 2})
    print(w.step())
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import imagesets as data
from deep import _devices
from deep.backend import load_tf, make_optimizer, save_keras
from deep.images import image_grid
from deep.keras_workload import KerasWorkload
from deep.models import make_cnn, make_mlp, make_resnet
from deep.pipeline import eval_batches, split_validation, train_batches
from lab.workload import suggest

MODELS = ("mlp", "cnn", "resnet")
IMAGE_SIDES = {"fashion_mnist": 28, "mnist": 28, "digits": 8}  # image height = width of each data set
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2  # lr_schedule plateau: halve the rate after 2 evaluations without progress


# ---------------------------------------------------------------- the workload
class KerasClassifier(KerasWorkload):
    """An MLP, a CNN or a ResNet on an image data set of imagesets; one step trains `epochs_per_step` epochs."""

    name = "keras_classifier"
    test_params = {"dataset": "digits", "model": "cnn", "filters": [8, 16], "hidden_units": [32], "max_epochs": 2}

    @dataclass
    class Config:
        dataset: str = "fashion_mnist"  # fashion_mnist, mnist or digits (imagesets.DATASETS)
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
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        """test/* every `test_every` epochs and at the end; val/* with a validation split."""
        names = {"train/loss", "train/accuracy", "charts/learning_rate", "test/loss", "test/accuracy",
                 "charts/samples_per_sec", "charts/seconds_per_epoch", "charts/epoch", "charts/replicas",
                 "charts/stopped_early", "done"}
        return frozenset(names | ({"val/loss", "val/accuracy"} if config.validation_split > 0 else set()))

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
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
        n_epochs = self.epochs_this_step()
        history, train_seconds = self.fit_epochs(
            n_epochs, lambda seed: train_batches(self._x_train, self._y_train, self.global_batch_size, seed=seed))
        loss = history["loss"][-1]
        self.check_finite(loss)

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
    def restore_scope(self):
        return self.strategy.scope()

    def state(self) -> dict:
        return {"epoch": self.epoch, "images_logged": self.images_logged,
                "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
                "evals_without_progress": self.evals_without_progress,
                "configured_learning_rate": self.config.learning_rate}

    def load_state(self, state: dict) -> None:
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
