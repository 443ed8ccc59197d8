"""What the `lab` commands print: aligned tables, values and times, experiment outcomes, exit codes.

Public helpers for every command module, the leaves' included (`classical/commands.py`).
"""
from __future__ import annotations

import json
from typing import Any

from lab.spec.safety import printable


def exit_code(outcomes) -> int:
    """0 only when every experiment completed and no trial failed."""
    return 0 if all(o.status == "completed" and not o.num_errors for o in outcomes) else 1


def print_outcomes(outcomes) -> None:
    from lab.registry import Registry

    registry = Registry()
    print()
    for outcome in outcomes:
        exp = registry.experiment(outcome.experiment_id)
        print(f"experiment {outcome.experiment_id} ({outcome.name}): {outcome.status}, "
              f"{outcome.num_trials} trials, {outcome.num_errors} errors")
        if outcome.best:
            print_best(exp, outcome.best, indent="  ")
        if outcome.status == "interrupted":
            print(f"  continue it with: lab resume {outcome.experiment_id}")
    ids = " ".join(str(o.experiment_id) for o in outcomes)
    print(f"\nexperiment ids: {ids}")
    print(f"TensorBoard:    lab tensorboard {ids}")


def print_provenance(registry, exp: dict[str, Any]) -> None:
    """Tags, notes and the environment record (Python, packages, commit) of `lab show`."""
    from lab.results.environment import format_lines

    tags = registry.tags(exp["id"])
    if tags:
        print(printable(f"  tags     {' '.join(f'{k}={v}' for k, v in tags.items())}"))
    for note in registry.notes(exp["id"]):
        print(printable(f"  note     {fmt_time(note['created_at'])} {note['user'] or ''}: {note['text']}"))
    params = exp["spec"].get("params") or {}
    if params:
        print(printable(f"  params   {' '.join(f'{k}={json.dumps(v)}' for k, v in params.items())}"))
    for i, line in enumerate(format_lines(exp.get("environment") or {})):
        print(printable(f"  {'env' if i == 0 else '':<8} {line}"))


def print_best(exp: dict[str, Any], best: dict[str, Any], indent: str = "") -> None:
    from lab.registry import views

    metric = exp["metric"]
    print(printable(f"{indent}best trial {best['trial_id']}: {views.fmt_metric(metric, best['best_metric'])}"))
    reference = exp["spec"].get("reference") or {}
    if reference.get("metric"):
        # the reference score is checked on the best trial's final value (its best value when it is the metric)
        value = best["best_metric"] if reference["metric"] == metric else best["last_result"].get(reference["metric"])
        if isinstance(value, (int, float)):
            reached = value >= reference["score"] if exp["mode"] == "max" else value <= reference["score"]
            print(f"{indent}  reference: {views.fmt_metric(reference['metric'], value)} against "
                  f"{views.fmt(views.natural(reference['metric'], float(reference['score']))[1])}: "
                  f"{'reached' if reached else 'NOT reached'}")
    searched = exp["spec"].get("search") or {}
    if searched:
        config = best["config"]
        print(printable(f"{indent}  config: {' '.join(f'{k}={fmt(config.get(k))}' for k in searched)}"))
    if best.get("checkpoint_path"):
        print(printable(f"{indent}  checkpoint: {best['checkpoint_path']}"))


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Aligned columns; a column with no value in any row is left out."""
    cells = [[printable(c) for c in row] for row in rows]  # registry values must not drive the terminal
    keep = [i for i in range(len(header)) if not cells or any(row[i] != "" for row in cells)]
    cells = [[header[i] for i in keep], *[[row[i] for i in keep] for row in cells]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keep))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


TUNE_COUNTERS = ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "time_since_restore",
                 "iterations_since_restore", "timesteps_total", "episodes_total", "done", "timesteps_since_restore")


def print_metrics(trials: list[dict[str, Any]]) -> None:
    """Every final metric of the trials, in its natural sign: one row per metric, one column per trial."""
    from lab.registry import views

    names = sorted({k for t in trials for k, v in t["last_result"].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in TUNE_COUNTERS})
    if not names:
        return
    print()
    rows = [[views.natural(name, 0.0)[0], *[fmt(views.natural(name, t["last_result"].get(name))[1]) for t in trials]]
            for name in names]
    print_table(["FINAL METRIC", *[t["trial_id"] for t in trials]], rows)


def fmt(value: Any) -> str:
    from lab.registry import views

    return views.fmt(value)


def fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
