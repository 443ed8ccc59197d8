"""Tune's saved trials into the registry, where the registry missed or lags them.

Run after every fit (and by `lab resume`): a trial that finished while the database was away, or just
before the driver was killed, is recorded from Tune's experiment state. Rows are keyed by
(experiment, trial id), so nothing is recorded twice.
"""
from __future__ import annotations

import math

from lab.registry import Registry, clean_metrics

FINAL = ("TERMINATED", "ERROR")


def catch_up(registry: Registry, experiment_id: int, folder: str, metric: str, mode: str) -> int:
    """Record every finished trial of Tune's state that the registry lacks or shows unfinished; return
    how many rows were written."""
    from ray.tune import ExperimentAnalysis

    from lab.infra import storage
    from lab.execution.callbacks import trial_error

    where = storage.resolve(folder)
    try:
        analysis = ExperimentAnalysis(where.path, storage_filesystem=where.filesystem)
    except Exception:  # noqa: BLE001 - no experiment state saved (yet): nothing to catch up
        return 0
    recorded = {t["trial_id"]: t for t in registry.trials(experiment_id)}
    written = 0
    for trial in analysis.trials:
        if trial.status not in FINAL:
            continue
        result = clean_metrics(trial.last_result or {})
        iterations = int(result.get("training_iteration") or 0)
        row = recorded.get(trial.trial_id)
        if row and row["status"] == trial.status and row["iterations"] >= iterations:
            continue
        fields = {"status": trial.status, "config": trial.config, "iterations": iterations, "last_result": result}
        best = (trial.metric_analysis.get(metric) or {}).get(mode)
        if isinstance(best, (int, float)) and math.isfinite(best) and (row is None or row["best_metric"] is None):
            fields.update(best_metric=float(best), best_result=result)
        if trial.checkpoint is not None:
            fields["checkpoint_path"] = _uri(where, trial.checkpoint.path)
        if row is None:
            fields["logdir"] = _uri(where, trial.path)
        if trial.status == "ERROR":
            fields["error"] = trial_error(trial)
        registry.upsert_trial(experiment_id, trial.trial_id, **fields)
        written += 1
    return written


def _uri(where, path: str | None) -> str | None:
    if not path or where.is_local or "://" in path:
        return path
    return f"{where.scheme}://{path.lstrip('/')}"
