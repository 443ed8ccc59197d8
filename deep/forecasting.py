"""Time-series forecasting in Keras, as in the book's chapter 15: a naive baseline, a linear model,
RNNs (SimpleRNN, LSTM, GRU), a Conv1D + GRU and a small WaveNet, one or more epochs per step.

Reads top to bottom: config, data (the two series, windows, scaling), model builders, the plot, then
the workload (setup, step, save/restore). TensorFlow is imported inside functions only (see lab.workload).

The two series:
- `sunspots`: statsmodels' yearly sunspot numbers 1700-2008 (309 values, offline). One series, split
  chronologically 70/15/15 (train 1700-1915, valid 1916-1961, test 1962-2008); a window belongs to
  the split its *targets* fall in, and its inputs may reach back into the previous split (they are the
  past, known when the forecast is made).
- `generated`: the book's batch of `n_series` independent series of `window + horizon` steps, each a sum
  of two sines of random frequency and phase plus uniform noise (`generate_time_series`). As in the book
  the first `window` steps are the input, the rest the targets, and the split is by series (70/20/10:
  the book's 7000/2000/1000), which is chronologically sound since the series are independent draws. The
  data are drawn with the fixed DATA_SEED, so every trial sees the same series; `seed` drives the weights.

Both are scaled with the training part's mean and standard deviation only. Models predict the next
`horizon` values from a window (sequence to vector); every MAE is in the series' own units, averaged
over all `horizon` steps. The naive forecast repeats the window's last value.

    from lab.workload.testing import make
    w = make("keras_forecaster", {"series": "sunspots", "model": "gru", "window": 24, "max_epochs": 5})
    print(w.step())
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deep.backend import load_tf, make_optimizer, save_keras
from deep.keras_workload import KerasWorkload
from lab.errors import DataError, LabError

DATA_SEED = 42  # the generated series are drawn with this seed, whatever the trial's seed
SPLITS = {"sunspots": (0.70, 0.15), "generated": (0.70, 0.20)}  # train and valid fractions; test: the rest
SERIES_LENGTHS = {"sunspots": 309}  # known lengths, so that check() refuses impossible windows early
EVAL_BATCH_SIZE = 1024  # prediction batches
MODELS = ("naive", "linear", "simple_rnn", "lstm", "gru", "conv_gru", "wavenet")


# ---------------------------------------------------------------- data
def generate_time_series(n_series: int, n_steps: int, seed: int = DATA_SEED) -> np.ndarray:
    """The book's series, (n_series, n_steps) float32: 0.5 sin + 0.2 sin of random frequency and
    offset over t in [0, 1], plus uniform noise in [-0.05, 0.05]."""
    rng = np.random.default_rng(seed)
    freq1, freq2, offsets1, offsets2 = rng.random((4, n_series, 1))
    t = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((t - offsets1) * (freq1 * 10 + 10))  # wave 1
    series += 0.2 * np.sin((t - offsets2) * (freq2 * 20 + 20))  # + wave 2
    series += 0.1 * (rng.random((n_series, n_steps)) - 0.5)  # + noise
    return series.astype(np.float32)


def sunspots() -> tuple[np.ndarray, np.ndarray]:
    """(years, yearly mean sunspot numbers) 1700-2008, from statsmodels' bundled data set."""
    try:
        import statsmodels.api as sm
    except ImportError:
        raise DataError("the sunspots series comes with statsmodels: pip install statsmodels") from None
    frame = sm.datasets.sunspots.load_pandas().data
    return frame["YEAR"].to_numpy(dtype=np.float64), frame["SUNACTIVITY"].to_numpy(dtype=np.float32)


def split_bounds(length: int, series: str) -> tuple[int, int]:
    """End of train and end of valid in a series of `length` values (test runs to the end)."""
    train, valid = SPLITS[series]
    n_train = round(train * length)
    return n_train, n_train + round(valid * length)


def window_problem(series: str, length: int, window: int, horizon: int) -> str | None:
    """Why a window of this size leaves a split of one long series without samples, or None."""
    n_train, n_valid_end = split_bounds(length, series)
    sizes = {"train": n_train - window - horizon + 1, "valid": n_valid_end - n_train - horizon + 1,
             "test": length - n_valid_end - horizon + 1}
    for split, size in sizes.items():
        if size < 1:
            return (f"window={window}, horizon={horizon} leave no {split} samples in the {length} values of "
                    f"{series} (train {n_train}, valid {n_valid_end - n_train}, test {length - n_valid_end} "
                    f"values; window + horizon must be <= {n_train} and horizon <= {min(n_valid_end - n_train, length - n_valid_end)})")
    return None


@dataclass
class Split:
    """One split's windows in original units: inputs (n, window), targets (n, horizon), and the time
    of each target (years for sunspots, step numbers for the generated series)."""

    x: np.ndarray
    y: np.ndarray
    times: np.ndarray


def windows(values: np.ndarray, times: np.ndarray, window: int, horizon: int, start: int, end: int) -> Split:
    """Every window of one long series whose targets lie in values[start:end]."""
    first = max(start, window)
    starts = np.arange(first, end - horizon + 1)  # index of each sample's first target
    x = np.stack([values[t - window: t] for t in starts])
    y = np.stack([values[t: t + horizon] for t in starts])
    return Split(x, y, np.stack([times[t: t + horizon] for t in starts]))


def load_splits(series: str, window: int, horizon: int, n_series: int) -> tuple[dict[str, Split], np.ndarray]:
    """{"train", "valid", "test"} windows in original units, and the training values (for scaling)."""
    if series == "sunspots":
        years, values = sunspots()
        problem = window_problem(series, len(values), window, horizon)
        if problem:
            raise DataError(problem)
        n_train, n_valid_end = split_bounds(len(values), series)
        bounds = {"train": (0, n_train), "valid": (n_train, n_valid_end), "test": (n_valid_end, len(values))}
        splits = {k: windows(values, years, window, horizon, a, b) for k, (a, b) in bounds.items()}
        return splits, values[:n_train]
    if series == "generated":
        data = generate_time_series(n_series, window + horizon)
        n_train, n_valid_end = split_bounds(n_series, series)
        steps = np.broadcast_to(np.arange(window, window + horizon, dtype=np.float64), (n_series, horizon))
        parts = {"train": slice(0, n_train), "valid": slice(n_train, n_valid_end), "test": slice(n_valid_end, None)}
        splits = {k: Split(data[p, :window], data[p, window:], steps[p]) for k, p in parts.items()}
        return splits, data[:n_train]
    raise DataError(f"unknown series '{series}' (known: generated, sunspots)")


def mae(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(prediction - target)))


def naive_forecast(x: np.ndarray, horizon: int) -> np.ndarray:
    """The last value of each window, repeated over the horizon."""
    return np.repeat(x[:, -1:], horizon, axis=1)


# ---------------------------------------------------------------- models
def make_model(
    model: str, window: int, horizon: int, units: int = 20, layers: int = 2, kernel_size: int = 4,
):
    """A Keras model from (batch, window, 1) scaled windows to (batch, horizon) scaled forecasts.

    linear: Dense on the flattened window. simple_rnn / lstm / gru: `layers` recurrent layers of `units`
    (all but the last return sequences), then Dense(horizon), the book's deep RNN. conv_gru: Conv1D
    (`units` filters, `kernel_size`, stride 2, valid padding) then the GRU stack. wavenet: `layers`
    causal Conv1D (`units` filters, kernel 2, ReLU) with dilation 1, 2, 4, 8, 1, 2, ... (the book's
    (1, 2, 4, 8) * 2 for layers=8), then Dense(horizon) on the last time step.
    """
    tf = load_tf()
    L = tf.keras.layers
    inputs = tf.keras.Input(shape=(window, 1))
    x = inputs
    if model == "linear":
        x = L.Flatten()(x)
    elif model in ("simple_rnn", "lstm", "gru", "conv_gru"):
        if model == "conv_gru":
            x = L.Conv1D(units, kernel_size, strides=2, padding="valid")(x)
        cell = {"simple_rnn": L.SimpleRNN, "lstm": L.LSTM, "gru": L.GRU, "conv_gru": L.GRU}[model]
        for i in range(layers):
            x = cell(units, return_sequences=i < layers - 1)(x)
    elif model == "wavenet":
        for i in range(layers):
            x = L.Conv1D(units, 2, padding="causal", dilation_rate=2 ** (i % 4), activation="relu")(x)
        x = L.Cropping1D((window - 1, 0))(x)  # the last time step, which sees the whole receptive field
        x = L.Flatten()(x)
    else:
        raise ValueError(f"no Keras model for '{model}'")
    outputs = L.Dense(horizon)(x)
    return tf.keras.Model(inputs, outputs, name=model)


# ---------------------------------------------------------------- the plot
def forecast_figure(series: str, test: Split, forecast: np.ndarray, model: str, test_mae: float, naive_mae: float):
    """Forecast against actual on the test set: the whole test span of sunspots (the 1-step-ahead
    forecast, and the horizon-step one when horizon > 1), or three test series of the generated batch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    naive = naive_forecast(test.x, test.y.shape[1])
    title = f"{model}: test MAE {test_mae:.4g}, naive {naive_mae:.4g} (ratio {ratio(test_mae, naive_mae):.3f})"
    if series == "sunspots":
        figure = Figure(figsize=(10, 4))
        FigureCanvasAgg(figure)  # render with Agg, whatever pyplot's backend
        ax = figure.add_subplot()
        # every test value: the first target of each window, then the last window's later targets
        ax.plot(np.concatenate([test.times[:, 0], test.times[-1, 1:]]), np.concatenate([test.y[:, 0], test.y[-1, 1:]]),
                "k.-", label="actual")
        ax.plot(test.times[:, 0], naive[:, 0], color="gray", ls=":", label="naive (last value)")
        ax.plot(test.times[:, 0], forecast[:, 0], "C1-", label=f"{model}, 1 step ahead")
        horizon = test.y.shape[1]
        if horizon > 1:
            ax.plot(test.times[:, -1], forecast[:, -1], "C2--", label=f"{model}, {horizon} steps ahead")
        ax.set(xlabel="year", ylabel="sunspot number", title=title)
        ax.legend(loc="upper left", fontsize=8)
        return figure
    figure = Figure(figsize=(12, 3.5))
    FigureCanvasAgg(figure)
    window = test.x.shape[1]
    for k, ax in enumerate(figure.subplots(1, min(3, len(test.x)), squeeze=False)[0]):
        ax.plot(np.arange(window), test.x[k], "b.-", label="input")
        ax.plot(test.times[k], test.y[k], "ko-", label="actual")
        ax.plot(test.times[k], forecast[k], "rx-", label=model)
        ax.plot(test.times[k], naive[k], color="gray", ls=":", label="naive")
        ax.set(xlabel="t", title=f"test series {k}")
        if k == 0:
            ax.legend(fontsize=8)
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------- the workload
class Forecaster(KerasWorkload):
    """Forecast `horizon` steps of a series from `window` past values; one step trains `epochs_per_step`
    epochs (the naive model trains nothing: its one step evaluates and is done)."""

    name = "keras_forecaster"
    test_params = {"series": "sunspots", "model": "gru", "units": 4, "layers": 1, "window": 12, "max_epochs": 1}

    @dataclass
    class Config:
        series: Literal["generated", "sunspots"] = "sunspots"  # the book's generated batch, or yearly sunspots
        # naive: last value, no training; linear: Dense on the window; RNNs, Conv1D+GRU, WaveNet as in ch. 15
        model: Literal["naive", "linear", "simple_rnn", "lstm", "gru", "conv_gru", "wavenet"] = "gru"
        window: int = 50  # past values the model sees (the book's n_steps)
        horizon: int = 1  # values forecast at once, 1..horizon steps ahead (metrics average over them)
        units: int = 20  # units of each recurrent layer, filters of each conv layer
        layers: int = 2  # recurrent layers (RNNs, conv_gru) or dilated conv layers (wavenet)
        kernel_size: int = 4  # conv_gru: kernel of its stride-2 Conv1D (wavenet's kernels are 2)
        loss: Literal["mse", "huber", "mae"] = "mse"  # training loss, on the scaled series
        learning_rate: float = 1e-3  # Adam's step size
        lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decay to 0 over max_epochs
        batch_size: int = 32  # training batch size
        epochs_per_step: int = 1  # epochs trained per step() (one Tune iteration)
        max_epochs: int = 20  # step() returns done=True once this many epochs are trained
        n_series: int = 10000  # generated: series in the batch, split 70/20/10 (the book's 10000)
        seed: int = 0  # weights and shuffling (the data never depend on it)

        def check(self) -> None:
            at_least_one = ("window", "horizon", "units", "layers", "kernel_size", "batch_size", "epochs_per_step",
                            "max_epochs")
            for name in at_least_one:
                if getattr(self, name) < 1:
                    raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
            if self.learning_rate <= 0:
                raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
            if self.model == "conv_gru" and self.window < self.kernel_size:
                raise ValueError(f"conv_gru needs window >= kernel_size, got window={self.window}, "
                                 f"kernel_size={self.kernel_size}")
            if self.series == "generated" and self.n_series < 10:
                raise ValueError(f"n_series must be >= 10 (one test series in ten), got {self.n_series}")
            if self.series in SERIES_LENGTHS:
                problem = window_problem(self.series, SERIES_LENGTHS[self.series], self.window, self.horizon)
                if problem:
                    raise ValueError(problem)

    # ------------------------------------------------------------ setup
    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        names = {"train/loss", "val/mae", "val/mae_ratio_to_naive", "test/mae", "test/mse", "test/mae_ratio_to_naive",
                 "naive/val_mae", "naive/test_mae", "charts/epoch", "done"}
        return frozenset(names | ({"charts/seconds_per_epoch"} if config.model != "naive" else set()))

    def setup(self) -> None:
        c = self.config
        tf = load_tf()
        tf.keras.utils.set_random_seed(c.seed)
        self.splits, train_values = load_splits(c.series, c.window, c.horizon, c.n_series)
        self.mean, self.std = float(train_values.mean()), float(train_values.std()) or 1.0
        self._x = {k: self._scale(s.x)[..., np.newaxis] for k, s in self.splits.items()}
        self._y = {k: self._scale(s.y) for k, s in self.splits.items()}
        self._train_tensors = (tf.constant(self._x["train"]), tf.constant(self._y["train"]))
        self.naive_mae = {k: mae(naive_forecast(s.x, c.horizon), s.y) for k, s in self.splits.items()}
        self.model = None
        if c.model != "naive":
            self.model = make_model(c.model, c.window, c.horizon, c.units, c.layers, c.kernel_size)
            n_train = len(self._y["train"])
            decay_steps = c.max_epochs * math.ceil(n_train / c.batch_size) if c.lr_schedule == "cosine" else 0
            loss = {"mse": "mse", "mae": "mae", "huber": tf.keras.losses.Huber()}[c.loss]
            self.model.compile(optimizer=make_optimizer("adam", c.learning_rate, decay_steps=decay_steps), loss=loss)
        self.epoch = 0
        self.plotted = False

    def _scale(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def predict(self, split: str) -> np.ndarray:
        """Forecasts (n, horizon) for a split's windows, in the series' own units."""
        if self.model is None:
            return naive_forecast(self.splits[split].x, self.config.horizon)
        scaled = self.model.predict(self._x[split], batch_size=EVAL_BATCH_SIZE, verbose=0)
        return scaled * self.std + self.mean

    # ------------------------------------------------------------ one step: train, evaluate
    def step(self) -> dict[str, Any]:
        c = self.config
        start = time.perf_counter()
        if self.model is None:  # naive: nothing to train; its training loss, on the scaled series
            loss = self._naive_train_loss()
            n_epochs = 0
        else:
            n_epochs = self.epochs_this_step()
            loss = self._train(n_epochs)
        train_seconds = time.perf_counter() - start

        forecasts = {split: self.predict(split) for split in ("valid", "test")}
        val_mae = mae(forecasts["valid"], self.splits["valid"].y)
        test_mae = mae(forecasts["test"], self.splits["test"].y)
        metrics: dict[str, Any] = {
            "train/loss": loss,
            "val/mae": val_mae,
            "val/mae_ratio_to_naive": ratio(val_mae, self.naive_mae["valid"]),
            "test/mae": test_mae,
            "test/mse": float(np.mean((forecasts["test"] - self.splits["test"].y) ** 2)),
            "test/mae_ratio_to_naive": ratio(test_mae, self.naive_mae["test"]),
            "naive/val_mae": self.naive_mae["valid"],
            "naive/test_mae": self.naive_mae["test"],
            "charts/epoch": self.epoch,
        }
        if n_epochs:
            metrics["charts/seconds_per_epoch"] = train_seconds / n_epochs
        metrics["done"] = self.model is None or self.epoch >= c.max_epochs
        if metrics["done"]:
            self._log_forecast(forecasts["test"], test_mae)
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in metrics.items()}

    def _train(self, n_epochs: int) -> float:
        """`n_epochs` epochs in one fit() call (per-epoch calls cost ~60 ms each, more than a sunspots
        epoch). Each epoch's order depends only on (seed, epoch), so a restored trial replays the same
        epochs as one that never stopped."""
        c = self.config
        tf = load_tf()
        n = len(self._y["train"])
        orders = np.stack([np.random.default_rng([c.seed, e]).permutation(n)
                           for e in range(self.epoch, self.epoch + n_epochs)])
        x, y = self._train_tensors
        batches = (
            tf.data.Dataset.from_tensor_slices(orders)
            .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(c.batch_size))
            .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
            .prefetch(tf.data.AUTOTUNE)
        )
        # with steps_per_epoch given, fit() reads the epochs one after another from the one iterator
        losses = self.model.fit(
            batches, epochs=self.epoch + n_epochs, initial_epoch=self.epoch, steps_per_epoch=math.ceil(n / c.batch_size),
            verbose=0, callbacks=[tf.keras.callbacks.TerminateOnNaN()],
        ).history["loss"]
        self.epoch += len(losses)
        loss = losses[-1]
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss is {'NaN' if math.isnan(loss) else loss} at epoch {self.epoch}")
        return float(loss)

    def _naive_train_loss(self) -> float:
        """The configured loss of the naive forecast on the scaled training windows."""
        error = naive_forecast(self._x["train"][..., 0], self.config.horizon) - self._y["train"]
        if self.config.loss == "mae":
            return float(np.mean(np.abs(error)))
        if self.config.loss == "huber":  # Keras' Huber, delta 1
            a = np.abs(error)
            return float(np.mean(np.where(a <= 1, 0.5 * a**2, a - 0.5)))
        return float(np.mean(error**2))

    def _log_forecast(self, forecast: np.ndarray, test_mae: float) -> None:
        """Once, at the end: forecast against actual on the test set."""
        logger = self.context.logger if self.context is not None else None
        if logger is None or self.plotted:
            return
        c = self.config
        logger.figure("test/forecast", forecast_figure(c.series, self.splits["test"], forecast, c.model, test_mae,
                                                       self.naive_mae["test"]))
        self.plotted = True

    # ------------------------------------------------------------ checkpoints
    def has_weights(self) -> bool:
        return self.model is not None  # the naive forecaster has none

    def state(self) -> dict:
        return {"epoch": self.epoch, "plotted": self.plotted, "model": self.config.model}

    def check_state(self, state: dict) -> None:
        if state.get("model", self.config.model) != self.config.model:
            raise ValueError(f"checkpoint of a '{state['model']}' model, this trial is '{self.config.model}'")

    def load_state(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.plotted = bool(state.get("plotted", False))

    def export(self, out_dir: str) -> str:
        """`<out_dir>/model.keras` (inputs and outputs are standardised with the training series' mean and std)."""
        if self.model is None:
            raise LabError("the naive forecaster has no model to export")
        return save_keras(self.model, out_dir)


def ratio(value: float, naive: float) -> float:
    """value / naive; 1 when both are 0 (a constant series), inf when only naive is."""
    if naive > 0:
        return value / naive
    return 1.0 if value == 0 else math.inf
