"""What a page says about an experiment, as plain data: its headline, the x its curves run along, the metrics
its workload declares, the parameters its search varied. Registry rows are untrusted: odd types become empty.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from lab.errors import LabError

# the x a workload's curves naturally run along, by the counter it reports; else Tune's iterations
NATURAL_X = (("charts/env_steps", "env steps"), ("charts/epoch", "epoch"))
ITERATION = ("training_iteration", "iteration")
# what Tune and the lab add to every result: never shown as a metric
INTERNAL = frozenset({
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "timesteps_total",
    "timesteps_since_restore", "iterations_since_restore", "episodes_total", "timestamp", "done", "hostname",
    "node_ip", "pid", "date", "experiment_tag", "trial_id", "checkpoint_dir_name", "should_checkpoint",
})


def number(value: Any) -> float | None:
    """A finite float, or None (a registry value of any other type)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def natural(name: str, value: float | None) -> tuple[str, float | None]:
    """A `neg_*` score under its plain name and sign (as the CLI's tables show it)."""
    from lab.registry import views

    return views.natural(str(name), value)


def spec_of(exp: dict[str, Any]) -> dict[str, Any]:
    return exp["spec"] if isinstance(exp.get("spec"), dict) else {}


def searched(exp: dict[str, Any], trials: list[dict[str, Any]]) -> list[str]:
    """The spec's searched parameters that took more than one value among the scored trials."""
    search = spec_of(exp).get("search")
    scored = [t for t in trials if number(t.get("best_metric")) is not None]
    keys = [str(k) for k in search] if isinstance(search, dict) else []
    return [k for k in keys if len({json.dumps(config(t).get(k), sort_keys=True, default=str) for t in scored}) > 1]


def config(trial: dict[str, Any]) -> dict[str, Any]:
    return trial["config"] if isinstance(trial.get("config"), dict) else {}


def final(trial: dict[str, Any]) -> dict[str, Any]:
    return trial["last_result"] if isinstance(trial.get("last_result"), dict) else {}


def reference(exp: dict[str, Any]) -> tuple[str, float] | None:
    """(metric, score) of the preset's reference, or None when it has none."""
    ref = spec_of(exp).get("reference")
    if not isinstance(ref, dict) or not ref.get("metric") or number(ref.get("score")) is None:
        return None
    return str(ref["metric"]), float(ref["score"])


def headline(exp: dict[str, Any], trials: list[dict[str, Any]], best: dict[str, Any] | None) -> dict[str, Any]:
    """The answer a page opens with: best score, against the reference (reached or not, by how much),
    wall time, and trials completed / failed / other."""
    statuses = [str(t.get("status")) for t in trials]
    line: dict[str, Any] = {
        "metric": natural(exp["metric"], None)[0], "best": None, "best_trial": None,
        "trials": len(trials), "completed": statuses.count("TERMINATED"), "failed": statuses.count("ERROR"),
        "wall_s": wall_seconds(exp), "reference": None,
    }
    line["other"] = line["trials"] - line["completed"] - line["failed"]
    if best is not None:
        line["best"] = natural(exp["metric"], number(best.get("best_metric")))[1]
        line["best_trial"] = str(best.get("trial_id"))
    ref = reference(exp)
    if ref is not None:
        metric, score = ref
        raw = best.get("best_metric") if best is not None and metric == exp["metric"] else \
            final(best).get(metric) if best is not None else None
        line["reference"] = against(metric, number(raw), score, exp.get("mode"))
    return line


def against(metric: str, value: float | None, score: float, mode: Any) -> dict[str, Any]:
    """A value against a reference score, in the metric's natural sign: reached (None: no value), and by how much."""
    name, shown_score = natural(metric, score)
    shown_value = natural(metric, value)[1]
    out = {"metric": name, "score": shown_score, "value": shown_value, "reached": None, "margin": None, "percent": None}
    if value is None:
        return out
    out["reached"] = value <= score if mode == "min" else value >= score
    out["margin"] = shown_value - shown_score
    out["percent"] = 100.0 * out["margin"] / abs(shown_score) if shown_score else None
    return out


def wall_seconds(exp: dict[str, Any]) -> float | None:
    """From start to end (to now while it runs); None when a time is missing."""
    start, end = exp.get("started_at"), exp.get("ended_at")
    if not isinstance(start, dt.datetime):
        return None
    if not isinstance(end, dt.datetime):
        if exp.get("status") != "running":
            return None
        end = dt.datetime.now(dt.UTC)
    aware = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in (start, end)]
    return max(0.0, (aware[1] - aware[0]).total_seconds())


def declared_metrics(exp: dict[str, Any]) -> frozenset[str] | None:
    """The metrics the experiment's workload declares for its spec; None when it declares none or the spec
    no longer builds (then every reported key but Tune's own is shown)."""
    from lab.spec import build_spec
    from lab.spec.metrics import declared_metrics as declared
    from lab.spec.runnable import typed_search, workload_configs

    try:
        spec = build_spec(spec_of(exp), f"experiment {exp['id']}")
        search, _ = typed_search(spec_of(exp))
        return declared(spec, workload_configs(spec.workload, spec.params, search))
    except (LabError, ValueError, TypeError, KeyError, AttributeError, ImportError):
        return None


def shown(names, declared: frozenset[str] | None) -> list[str]:
    """The metric names worth showing: the declared ones (`done` aside), else all but Tune's internals."""
    keep = [str(n) for n in names if str(n) not in INTERNAL and not str(n).startswith("config/")]
    return sorted(n for n in keep if declared is None or n in declared)


def natural_x(frame) -> tuple[str, str]:
    """(column, label) of the x a history's curves run along: env steps, epochs, else iterations."""
    for column, label in NATURAL_X:
        if column in frame.columns and frame[column].notna().any():
            return column, label
    return ITERATION


def one_iteration(trials: list[dict[str, Any]]) -> bool:
    """Every trial reported once (a scikit-learn sweep): curves would be dots, a ranking says more."""
    return all((t.get("iterations") or 0) <= 1 for t in trials)
