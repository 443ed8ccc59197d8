"""Tune callbacks, run on the driver: the registry record of every trial.

Writes are flushed at the end of a turn of Tune's driver loop, after Tune saved its experiment state
(the runner has it saved in every turn in which a trial stopped): the registry never says a trial
finished that a resume would run again. When the database is away (a PostgreSQL restart, a long SQLite lock) the sweep goes
on, the buffer keeps the latest fields of every trial, and it is written once the database answers
again. Past `LAB_REGISTRY_OUTAGE_S` the run says so once; `lab resume ID` records what it missed.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from ray.tune import Callback

from lab.errors import RegistryError
from lab.registry import (
    HEARTBEAT_EVERY_S,
    Registry,
    clean_metrics,
    credentialed_url,
    public_url,
)
from lab.execution import profile

FLUSH_EVERY_S = 1.0  # the registry trails Tune by at most this much while an experiment runs
RETRY_EVERY_S = (0.5, 1.0, 2.0, 5.0)  # back-off between attempts while the database is away
WRITE_TIMEOUT_S = 2.0  # a locked SQLite or a dead server holds the driver loop at most this long


def outage_limit_s() -> float:
    """How long the run waits for an unreachable registry before it says so (it keeps buffering)."""
    return float(os.environ.get("LAB_REGISTRY_OUTAGE_S") or 300)


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
        self._registry: Registry | None = Registry(url, timeout_s=WRITE_TIMEOUT_S)
        self._pending: dict[str, dict[str, Any]] = {}  # trial id -> fields not yet written
        self._last_flush = 0.0
        self._down_since: float | None = None  # monotonic time of the first failed write of an outage
        self._next_try = 0.0
        self._failures = 0
        self._said_gone = False
        self.writes = 0  # registry transactions done (benchmarks)

    def __getstate__(self) -> dict:  # the Tuner pickles its callbacks: keep the connection out
        return {**self.__dict__, "_registry": None, "_pending": {}}

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(credentialed_url(self.registry_url), timeout_s=WRITE_TIMEOUT_S)
        return self._registry

    def _upsert(self, trial, **fields: Any) -> None:
        self._pending.setdefault(trial.trial_id, {}).update(fields)

    def flush(self, force: bool = False) -> bool:
        """Write every pending trial update (one transaction); False while the registry is unreachable
        (they stay buffered, retried with back-off)."""
        now = time.monotonic()
        if not self._pending or (not force and (now < self._next_try or now - self._last_flush < FLUSH_EVERY_S)):
            return not self._pending
        pending, self._pending = self._pending, {}
        self._last_flush = now
        started = time.perf_counter()
        try:
            self.registry.upsert_trials(self.experiment_id, pending)
        except RegistryError as exc:
            for trial_id, fields in pending.items():  # keep them for the next flush
                self._pending[trial_id] = {**fields, **self._pending.get(trial_id, {})}
            self._outage(now, exc)
            return False
        self.writes += 1
        profile.add("registry_writes", time.perf_counter() - started)
        if self._down_since is not None:
            _say(f"registry reachable again after {now - self._down_since:.0f} s: caught up")
            self._down_since, self._failures, self._said_gone = None, 0, False
        return True

    def _outage(self, now: float, exc: RegistryError) -> None:
        if self._down_since is None:
            self._down_since = now
            _say(f"registry unreachable, the sweep goes on and its records wait: {str(exc).splitlines()[0]}")
        self._failures += 1
        self._next_try = now + RETRY_EVERY_S[min(self._failures, len(RETRY_EVERY_S)) - 1]
        if not self._said_gone and now - self._down_since > outage_limit_s():
            self._said_gone = True
            _say(f"registry unreachable for {now - self._down_since:.0f} s: the sweep goes on; once the database "
                 f"is back, `lab resume {self.experiment_id}` records what it missed")

    def on_step_end(self, iteration, trials, **info):
        """After Tune saved its experiment state in this turn of its loop: write what is buffered."""
        self.flush()
        self._beat()

    def on_experiment_end(self, trials, **info):
        profile.mark("experiment_end")
        deadline = time.monotonic() + min(outage_limit_s(), 60.0)
        while not self.flush(force=True) and time.monotonic() < deadline:
            time.sleep(RETRY_EVERY_S[-1] if self._failures > 2 else RETRY_EVERY_S[0])

    def _beat(self) -> None:
        """Tune's driver loop turns several times a second: beat every HEARTBEAT_EVERY_S (see `lab ls`)."""
        if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY_S and self._down_since is None:
            self._last_beat = time.monotonic()
            try:
                self.registry.heartbeat(self.experiment_id)
            except RegistryError:
                pass  # the trial writes notice the outage; a missed beat only risks a 'stale' display

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


def _say(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


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
