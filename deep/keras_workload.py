"""What the Keras workloads share (deep/classifier.py, autoencoder.py, gan.py, forecasting.py, char_rnn.py,
sentiment.py): the epochs of a step, the NaN check, checkpoints and their resume, loading an export, closing.

A workload keeps its epoch count in `self.epoch`. A checkpoint is a `tf.train.Checkpoint` of
`_checkpoint()` (default: `self.model` and its optimizer) beside a JSON file of `state()` (default: the
epoch); `restore` reads the JSON first, lets `check_state` refuse a checkpoint of another trial, builds
the optimizers' slots (`optimizer_slots()`) so that every saved value has a variable to land in, reads
the checkpoint, then `load_state`. TensorFlow is imported inside the methods.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time

import numpy as np

from deep.backend import load_tf
from deep.pipeline import train_batches
from lab.workload import Workload

STATE_FILE = "state.json"  # the epoch counter (and what a workload adds) beside the TensorFlow checkpoint
CHECKPOINT_PREFIX = "model"  # tf.train.Checkpoint files: model.index, model.data-*


class KerasWorkload(Workload):
    """A Keras model trained `epochs_per_step` epochs per step, up to `max_epochs`."""

    epoch = 0
    model_attributes: tuple[str, ...] = ("model",)  # what `close` drops (the first one: built or not)

    # ------------------------------------------------------------ epochs
    def epochs_this_step(self) -> int:
        """`epochs_per_step`, or what is left of `max_epochs` (at least one)."""
        return min(self.config.epochs_per_step, max(self.config.max_epochs - self.epoch, 1))

    def check_finite(self, loss: float, what: str = "training loss") -> None:
        """FloatingPointError (the trial fails with its reason) when a loss is NaN or infinite."""
        if not math.isfinite(loss):
            raise FloatingPointError(f"{what} is {'NaN' if math.isnan(loss) else loss} at epoch {self.epoch}")

    def train_custom_epochs(self, n_epochs: int, train_step, n_losses: int) -> tuple[np.ndarray, float]:
        """`n_epochs` epochs of `train_step(x)` (a vector of `n_losses` batch means) over seeded batches of
        `self._x_train`; the last epoch's mean losses, checked with `check_losses`, and the seconds taken."""
        c = self.config
        train_seconds = 0.0
        for _ in range(n_epochs):
            batches = train_batches(self._x_train, self._y_train, c.batch_size, seed=c.seed * 100_003 + self.epoch)
            totals, seen = np.zeros(n_losses), 0
            start = time.perf_counter()
            for x, _ in batches:
                n = int(x.shape[0])
                totals += train_step(x).numpy() * n
                seen += n
            train_seconds += time.perf_counter() - start
            self.epoch += 1
            means = totals / seen
            self.check_losses(means)
        return means, train_seconds

    def fit_epochs(self, n_epochs: int, make_batches) -> tuple[dict, float]:
        """`n_epochs` epochs of `self.model.fit` on `make_batches(seed)`, the seed following the epoch (a
        resumed trial replays the same batches); the last epoch's history and the seconds taken. An epoch
        whose loss is NaN ends the loop (Keras' TerminateOnNaN ends the epoch): the caller reports it."""
        tf = load_tf()
        train_seconds = 0.0
        for _ in range(n_epochs):
            batches = make_batches(self.config.seed * 100_003 + self.epoch)
            start = time.perf_counter()
            history = self.model.fit(batches, epochs=self.epoch + 1, initial_epoch=self.epoch, verbose=0,
                                     callbacks=[tf.keras.callbacks.TerminateOnNaN()]).history
            train_seconds += time.perf_counter() - start
            self.epoch += 1
            if not math.isfinite(history["loss"][-1]):
                break
        return history, train_seconds

    def check_losses(self, means: np.ndarray) -> None:
        self.check_finite(means[0])

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self):
        return load_tf().train.Checkpoint(model=self.model, optimizer=self.model.optimizer)

    def optimizer_slots(self) -> list[tuple]:
        """(optimizer, variables) pairs whose slots a restore builds before reading."""
        return [(self.model.optimizer, self.model.trainable_variables)]

    def has_weights(self) -> bool:
        return True

    def restore_scope(self):
        return contextlib.nullcontext()

    def state(self) -> dict:
        return {"epoch": self.epoch}

    def check_state(self, state: dict) -> None:
        """ValueError when the checkpoint belongs to another trial (another model, vocabulary, ...)."""

    def load_state(self, state: dict) -> None:
        self.epoch = int(state["epoch"])

    def save(self, checkpoint_dir: str) -> None:
        if self.has_weights():
            self._checkpoint().write(os.path.join(checkpoint_dir, CHECKPOINT_PREFIX))
        with open(os.path.join(checkpoint_dir, STATE_FILE), "w") as file:
            json.dump(self.state(), file)

    def restore(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, STATE_FILE)) as file:
            state = json.load(file)
        self.check_state(state)
        if self.has_weights():
            with self.restore_scope():
                for optimizer, variables in self.optimizer_slots():
                    optimizer.build(variables)
                self._checkpoint().read(os.path.join(checkpoint_dir, CHECKPOINT_PREFIX)).assert_consumed()
        self.load_state(state)

    # ------------------------------------------------------------ export, closing
    @classmethod
    def load_exported(cls, path: str):
        """What `export` wrote (a `.keras` file, or a folder of them: {file name: model}), in safe mode; trusted,
        as the caller exported it (deep/loading.py)."""
        from deep.loading import load_keras_model

        if os.path.isdir(path):
            return {name: load_keras_model(os.path.join(path, name), trust=True)
                    for name in sorted(os.listdir(path)) if name.endswith(".keras")}
        return load_keras_model(path, trust=True)

    def close(self) -> None:
        """Drop the models and Keras' global state (an actor reused by Tune builds the next trial's)."""
        if getattr(self, self.model_attributes[0], None) is not None:
            for name in self.model_attributes:
                setattr(self, name, None)
            load_tf().keras.backend.clear_session()
