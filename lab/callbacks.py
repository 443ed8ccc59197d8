"""Tune callbacks, run on the driver: the registry record of every trial."""
from __future__ import annotations

import math
import os
import time
from typing import Any

from ray.tune import Callback

from lab import profile
from lab.registry import HEARTBEAT_EVERY_S, Registry, clean_metrics, credentialed_url, public_url

FLUSH_EVERY_S = 1.0  # the registry trails Tune by at most this much while an experiment runs


class RegistryCallback(Callback):
    """Mirrors every trial's status, config, metrics, checkpoint and error into the registry.

    Writes are batched off Tune's hot path: a trial's updates merge in memory and go to the registry in
    one transaction per FLUSH_EVERY_S (Tune's loop turns often), and all of them at the experiment's end
    (Tune calls it on Ctrl-C too), so a trivial trial costs one write, not four.
    """

    def __init__(self, registry: Registry | str, experiment_id: int, metric: str, mode: str,
                 uri_scheme: str | None = None):
        url = registry.url if isinstance(registry, Registry) else registry
        # Tune pickles its callbacks into the experiment folder: only the URL without its password is kept
        # there; the live connection (password included) is rebuilt from the environment after a restore
        self.registry_url = public_url(url)
        self.uri_scheme = uri_scheme  # remote storage (s3, gs): Tune's paths are recorded as scheme://bucket/...
        self.experiment_id = experiment_id
        self.metric = metric
        self.mode = mode
        self._best: dict[str, float] = {}
        self._last_beat = 0.0
        self._registry: Registry | None = Registry(url)
        self._pending: dict[str, dict[str, Any]] = {}
        self._last_flush = 0.0

    def __getstate__(self) -> dict:  # the Tuner pickles its callbacks: keep the connection out
        return {**self.__dict__, "_registry": None, "_pending": {}}

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(credentialed_url(self.registry_url))
        return self._registry

    def _upsert(self, trial, **fields: Any) -> None:
        self._pending.setdefault(trial.trial_id, {}).update(fields)
        self._flush_due()

    def _flush_due(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write every pending trial update (one transaction)."""
        pending, self._pending = self._pending, {}
        self._last_flush = time.monotonic()
        if pending:
            started = time.perf_counter()
            try:
                self.registry.upsert_trials(self.experiment_id, pending)
                profile.add("registry_writes", time.perf_counter() - started)
            except BaseException:
                for trial_id, fields in pending.items():  # keep them for the next flush
                    self._pending[trial_id] = {**fields, **self._pending.get(trial_id, {})}
                raise

    def on_experiment_end(self, trials, **info):
        profile.mark("experiment_end")
        self.flush()

    def on_step(self, iteration, trials, **info):
        """Tune's driver loop turns about once a second: beat every HEARTBEAT_EVERY_S (see `lab ls`)."""
        if self._pending:
            self._flush_due()
        if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY_S:
            self._last_beat = time.monotonic()
            self.registry.heartbeat(self.experiment_id)

    def _uri(self, path: str | None) -> str | None:
        if not path or not self.uri_scheme or "://" in path:
            return path
        return f"{self.uri_scheme}://{path.lstrip('/')}"

    def on_trial_start(self, iteration, trials, trial, **info):
        profile.mark("trial_start")
        self._upsert(trial, status="RUNNING", config=trial.config, logdir=self._uri(trial.path))

    def on_trial_restore(self, iteration, trials, trial, **info):
        # a restore after a failure, or a PBT exploit: then the config is the mutated one
        self._upsert(trial, status="RUNNING", config=trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if profile.mark("first_result"):
            profile.add("first_iteration", float(result.get("time_this_iter_s") or 0.0))
        metrics = clean_metrics(result)
        fields = {"status": "RUNNING", "iterations": int(result.get("training_iteration", 0)), "last_result": metrics}
        value = metrics.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = self._best.get(trial.trial_id)
            if best is None or (value > best if self.mode == "max" else value < best):
                self._best[trial.trial_id] = value
                fields.update(best_metric=float(value), best_result=metrics)
        self._upsert(trial, **fields)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self._upsert(trial, checkpoint_path=self._uri(getattr(checkpoint, "path", None)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        checkpoint = trial.checkpoint
        self._upsert(trial, status="TERMINATED", checkpoint_path=self._uri(checkpoint.path) if checkpoint else None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._upsert(trial, status="ERROR", error=trial_error(trial))


def trial_error(trial) -> str:
    """The trial's error as 'Type: message' (the last line of its traceback), plus the file with the rest."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and os.path.exists(path):
        with open(path, errors="replace") as handle:
            text = handle.read()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    summary = lines[-1].strip() if lines else "the trial failed (no error file)"
    return f"{summary}\n(traceback: {path})" if path else summary
