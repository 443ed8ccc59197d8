"""What `lab ... --json` prints, and how the tables show a metric: the stable shapes of the CLI's output.

JSON keeps the recorded values as they are (a `neg_*` scikit-learn score stays negative); the tables
show a score in its natural sign under its plain name (`cv/neg_root_mean_squared_error` -0.5 is shown
as `cv/root_mean_squared_error` 0.5).
"""
from __future__ import annotations

import math
from typing import Any

EXPERIMENT_FIELDS = ("id", "name", "workload", "status", "metric", "mode", "started_at", "ended_at", "user",
                     "host", "git_commit", "storage_path", "error")
TRIAL_FIELDS = ("trial_id", "status", "iterations", "best_metric", "config", "metrics", "best_result",
                "checkpoint_path", "logdir", "error", "started_at", "updated_at")


def experiment(record: dict[str, Any]) -> dict[str, Any]:
    """An experiment row: EXPERIMENT_FIELDS (status as `lab ls` shows it, `stale` included), plus
    num_trials and num_errors when the row has them."""
    from lab.registry import display_status

    view = {key: jsonable(record.get(key)) for key in EXPERIMENT_FIELDS}
    view["status"] = display_status(record)
    if "num_trials" in record:
        view["num_trials"] = int(record["num_trials"] or 0)
        view["num_errors"] = int(record["num_errors"] or 0)
    return view


def trial(record: dict[str, Any], exp: dict[str, Any]) -> dict[str, Any]:
    """A trial: `experiment_id` (the experiment's id, as in `lab ls`), `metric` and `mode` (what ranks it),
    then TRIAL_FIELDS; `metrics` are its final metrics, `best_result` those of its best iteration."""
    view = {"experiment_id": exp["id"], "metric": exp["metric"], "mode": exp["mode"]}
    for key in TRIAL_FIELDS:
        value = record.get("last_result" if key == "metrics" else key)
        view[key] = jsonable(value)
    return view


def jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------ natural sign, readable numbers
def natural(name: str, value: Any) -> tuple[str, Any]:
    """A scikit-learn `neg_*` score under its plain name and sign (a spread, `*_std`, keeps its sign)."""
    head, _, last = name.rpartition("/")
    if not last.startswith("neg_"):
        return name, value
    plain = f"{head}/{last[4:]}" if head else last[4:]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not last.endswith("_std"):
        value = -value
    return plain, value


def fmt(value: Any) -> str:
    """A number as it reads best: fixed point with 4 significant digits from 0.001 to 10^7, else e-notation."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        magnitude = math.floor(math.log10(abs(value)))
        if -3 <= magnitude < 7:
            return f"{value:.{max(0, 3 - magnitude)}f}"
        return f"{value:.3e}"
    return str(value)


def fmt_metric(name: str, value: Any) -> str:
    """`name = value` in the metric's natural sign."""
    name, value = natural(name, value)
    return f"{name} = {fmt(value)}"
