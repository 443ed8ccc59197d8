"""The console of a run: one compact line per trial result (iteration, metric, best so far) and per end.

Tune's own tables are off (`verbose=0`) unless `lab run --verbose`. Lines of one trial come at most
every `every_s` seconds (its first result and its end always).
"""
from __future__ import annotations

import math
import sys
import time

from ray.tune import Callback


class ProgressCallback(Callback):
    """Prints `trial ID  iter N  METRIC VALUE  best B` as results arrive, and each trial's end."""

    def __init__(self, metric: str, mode: str, every_s: float = 2.0, stream=None):
        self.metric = metric
        self.mode = mode
        self.every_s = every_s
        self.stream = stream
        self._best: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._shown: dict[str, object] = {}  # the iteration of each trial's last printed line
        self._started = time.monotonic()

    def __getstate__(self) -> dict:  # the Tuner pickles its callbacks: not the stream
        return {**self.__dict__, "stream": None}

    def __setstate__(self, state: dict) -> None:  # `lab resume` unpickles it: its clock starts again at 0
        self.__dict__.update(state, _started=time.monotonic())

    def _print(self, text: str) -> None:
        print(f"[{time.monotonic() - self._started:6.1f}s] {text}", file=self.stream or sys.stdout, flush=True)

    def _line(self, trial, result: dict) -> str:
        value = result.get(self.metric)
        best = self._best.get(trial.trial_id)
        parts = [f"trial {trial.trial_id}", f"iter {result.get('training_iteration', '-')}"]
        from lab.registry import (
            views,  # a neg_* score in its natural sign, as the tables show it
        )

        name, value = views.natural(self.metric, value)
        parts.append(f"{name} {_fmt(value)}")
        parts.append(f"best {_fmt(views.natural(self.metric, best)[1])}")
        return "  ".join(parts)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = self._best.get(trial.trial_id)
            if best is None or (value > best if self.mode == "max" else value < best):
                self._best[trial.trial_id] = float(value)
        now = time.monotonic()
        if now - self._last.get(trial.trial_id, -math.inf) >= self.every_s:
            self._last[trial.trial_id] = now
            self._shown[trial.trial_id] = result.get("training_iteration")
            self._print(self._line(trial, result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if self._shown.get(trial.trial_id, -1) != result.get("training_iteration"):
            self._print(self._line(trial, result) + "  done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(f"trial {trial.trial_id}  failed (see `lab show`)")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
