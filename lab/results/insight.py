"""What an experiment's trials say: hyperparameter importance (fANOVA) and a self-contained HTML report.

    lab.importance(3)                 # pandas Series: param -> importance (sums to 1), most important first
    lab.report(3, "report.html")      # learning curves, parallel coordinates, best trial, spec, environment
"""
from __future__ import annotations

import html
import json
import os
from typing import Any

from lab.errors import LabError


# ------------------------------------------------------------------ importance
def importance(experiment_id: int, seed: int = 0):
    """fANOVA importance (Optuna's evaluator) of the searched params for the experiment's metric."""
    import pandas as pd

    from lab.registry import Registry
    from lab.spec import installed

    if not installed("optuna"):
        raise LabError("lab importance needs optuna: pip install 'agent-lab[search]'")
    registry = Registry()
    exp = registry.experiment(experiment_id)
    search = exp["spec"].get("search") or {}
    scored = [t for t in registry.trials(experiment_id) if t["best_metric"] is not None]
    if not search:
        raise LabError(f"experiment {experiment_id} searched no parameters: nothing to rank")
    if len(scored) < 2:
        raise LabError(f"experiment {experiment_id} has {len(scored)} trial(s) that reported "
                       f"'{exp['metric']}': importance needs at least 2")
    varying = [k for k in search if len({json.dumps(t["config"].get(k), sort_keys=True) for t in scored}) > 1]
    if not varying:
        raise LabError(f"no searched parameter of experiment {experiment_id} took more than one value")
    scores = _fanova(exp, {k: search[k] for k in varying}, scored, seed)
    series = pd.Series(scores, name="importance").sort_values(ascending=False)
    series.attrs.update(metric=exp["metric"], trials=len(scored))
    return series


def _fanova(exp: dict[str, Any], search: dict[str, Any], scored: list[dict], seed: int) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {key: _distribution(dist, [t["config"].get(key) for t in scored]) for key, dist in search.items()}
    study = optuna.create_study(direction="maximize" if exp["mode"] == "max" else "minimize")
    study.add_trials([
        optuna.trial.create_trial(
            params={k: _categorical_value(t["config"].get(k)) if _is_categorical(d) else t["config"].get(k)
                    for k, d in distributions.items()},
            distributions=distributions, value=t["best_metric"])
        for t in scored
    ])
    return dict(optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed)))


def _distribution(dist: dict[str, Any], observed: list[Any]):
    """The Optuna distribution of a spec's search entry, widened to the values seen (PBT perturbs past bounds)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    (kind, args), = dist.items()
    numbers = [v for v in observed if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if kind in ("uniform", "loguniform") and len(numbers) == len(observed):
        low, high = min([float(args[0]), *numbers]), max([float(args[1]), *numbers])
        return FloatDistribution(low, high, log=kind == "loguniform" and low > 0)
    if kind == "randint" and len(numbers) == len(observed):
        return IntDistribution(min([int(args[0]), *map(int, numbers)]), max([int(args[1]) - 1, *map(int, numbers)]))
    choices = list(dict.fromkeys(_categorical_value(v) for v in [*args, *observed]))
    return CategoricalDistribution(choices)


def _is_categorical(distribution) -> bool:
    return type(distribution).__name__ == "CategoricalDistribution"


def _categorical_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value, sort_keys=True)


# ------------------------------------------------------------------ report
def report(experiment_id: int, out: str = "") -> str:
    """Write one self-contained HTML page (plotly's JavaScript inlined) about the experiment; its path."""
    from lab.registry import Registry
    from lab.results.history import history

    out = out or f"report-{experiment_id}.html"
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise LabError(f"cannot write {out}: folder {folder} does not exist")
    registry = Registry()
    exp = registry.experiment(experiment_id)
    trials = registry.trials(experiment_id)
    best = registry.best_trial(experiment_id)
    curves = history(experiment_id)
    figures = [_learning_curves(exp, curves), _parallel_coordinates(exp, trials)]
    page = _page(exp, trials, best, registry.tags(experiment_id), registry.notes(experiment_id),
                 [f for f in figures if f is not None])
    temporary = f"{out}.tmp"
    with open(temporary, "w") as handle:
        handle.write(page)
    os.replace(temporary, out)
    return out


def _learning_curves(exp: dict[str, Any], curves):
    import plotly.graph_objects as go

    metric = exp["metric"]
    if curves.empty or metric not in curves.columns:
        return None
    x = "training_iteration" if "training_iteration" in curves.columns else None
    fig = go.Figure()
    for trial_id, frame in curves.groupby("trial_id", sort=True):
        frame = frame.dropna(subset=[metric])
        fig.add_trace(go.Scatter(x=frame[x] if x else list(range(1, len(frame) + 1)), y=frame[metric],
                                 mode="lines+markers", name=str(trial_id)))
    fig.update_layout(title=f"Learning curves: {metric} per trial", xaxis_title="iteration", yaxis_title=metric,
                      template="plotly_white", height=450)
    return fig


def _parallel_coordinates(exp: dict[str, Any], trials: list[dict]):
    import plotly.graph_objects as go

    scored = [t for t in trials if t["best_metric"] is not None]
    keys = [k for k in (exp["spec"].get("search") or {})
            if len({json.dumps(t["config"].get(k), sort_keys=True) for t in scored}) > 1]
    if not scored:
        return None
    dimensions = []
    for key in keys:
        values = [t["config"].get(key) for t in scored]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dimensions.append({"label": key, "values": values})
        else:
            labels = list(dict.fromkeys(json.dumps(v) for v in values))
            dimensions.append({"label": key, "values": [labels.index(json.dumps(v)) for v in values],
                               "tickvals": list(range(len(labels))), "ticktext": labels})
    metric_values = [t["best_metric"] for t in scored]
    dimensions.append({"label": exp["metric"], "values": metric_values})
    fig = go.Figure(go.Parcoords(line={"color": metric_values, "colorscale": "Viridis", "showscale": True},
                                 dimensions=dimensions))
    fig.update_layout(title=f"Parameters against {exp['metric']} (best value of each trial)", height=450)
    return fig


def _page(exp, trials, best, tags, notes, figures) -> str:
    import yaml

    from lab.results.environment import format_lines

    e = html.escape
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    searched = exp["spec"].get("search") or {}
    rows = []
    for t in trials:
        value = "" if t["best_metric"] is None else f"{t['best_metric']:.4g}"
        params = " ".join(f"{k}={v}" for k, v in t["config"].items() if k in searched)
        rows.append(f"<tr><td>{e(t['trial_id'])}</td><td>{e(t['status'])}</td><td>{t['iterations']}</td>"
                    f"<td>{value}</td><td>{e(params)}</td></tr>")
    rows = "".join(rows)
    best_html = "<p>no trial reported the metric</p>" if not best else (
        f"<p>trial <b>{e(best['trial_id'])}</b>: {e(exp['metric'])} = {best['best_metric']:.6g}</p>"
        f"<pre>{e(json.dumps(best['config'], indent=2, sort_keys=True, default=str))}</pre>"
        f"<pre>{e(json.dumps(best['last_result'], indent=2, sort_keys=True, default=str))}</pre>")
    env = exp.get("environment") or {}
    notes_html = "".join(f"<li>{e(str(n['created_at']))} {e(n['user'] or '')}: {e(n['text'])}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Experiment {exp['id']}: {e(exp['name'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}pre{{background:#f6f6f6;padding:8px;overflow:auto}}</style>
</head><body>
<h1>Experiment {exp['id']}: {e(exp['name'])}</h1>
<p>workload <b>{e(exp['workload'])}</b>, status <b>{e(exp['status'])}</b>, metric {e(exp['metric'])} ({exp['mode']}),
started {e(str(exp['started_at']))} by {e(str(exp['user']))}@{e(str(exp['host']))}</p>
<p>tags: {e(' '.join(f'{k}={v}' for k, v in tags.items()) or 'none')}</p>
{f'<ul>{notes_html}</ul>' if notes_html else ''}
<h2>Best trial</h2>{best_html}
<h2>Plots</h2>{''.join(parts) or '<p>no metrics recorded yet</p>'}
<h2>Trials</h2><table><tr><th>trial</th><th>status</th><th>iterations</th><th>best</th><th>params</th></tr>{rows}</table>
<h2>Spec</h2><pre>{e(yaml.safe_dump(exp['spec'], sort_keys=False))}</pre>
<h2>Environment</h2><pre>{e(chr(10).join(format_lines(env)))}</pre>
</body></html>
"""
