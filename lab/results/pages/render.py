"""The pages as HTML: Jinja2 templates with autoescape on (every registry value is escaped), plotly's figures
as `<div>`s that use one `plotly.min.js` loaded by the page (written once beside the pages, or served by `lab ui`).

    report_html(3)                       # one experiment: headline, curves or ranking, trials, spec
    compare_html([3, 4], "cv/accuracy")  # several experiments on one metric
    write_page(html, "out/page.html")    # and out/plotly.min.js when it is not there yet
"""
from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from typing import Any

from lab.errors import LabError
from lab.results.history import HISTORY_DROP, read_progress
from lab.results.pages import facts, figures

PLOTLY_JS = "plotly.min.js"
TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


@lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, duration=_duration, when=_when, signed=_signed)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(plotly_src=context.pop("plotly_src", PLOTLY_JS),
                                                       nav=context.pop("nav", None), **context)


# ------------------------------------------------------------------ one experiment
def report_context(experiment_id: int, registry=None) -> dict[str, Any]:
    """Everything the report template shows about one experiment (figures as HTML fragments)."""
    from lab.registry import Registry

    registry = registry or Registry()
    exp = registry.experiment(int(experiment_id))
    trials = registry.trials(int(experiment_id))
    best = registry.best_trial(int(experiment_id))
    keys = facts.searched(exp, trials)
    declared = facts.declared_metrics(exp)
    refused: list[str] = []
    if facts.one_iteration(trials):
        figs = [figures.ranking(exp, trials, keys), figures.heatmap(exp, trials, keys) if len(keys) == 2 else None]
    else:  # the ranking metric, and the reference's own when it is another (test/accuracy for val/accuracy)
        frame, ref = _history(trials, refused), facts.reference(exp)
        figs = [figures.curves(exp, frame, metric) for metric in dict.fromkeys([exp["metric"], *(ref or ())[:1]])]
    figs.append(figures.parallel(exp, trials, keys))
    spec = facts.spec_of(exp)
    return {
        "exp": exp, "headline": facts.headline(exp, trials, best), "figures": [fragment(f) for f in figs if f],
        "best": _best(best, declared, spec), "trials": _trial_rows(trials, keys), "searched": keys,
        "tags": registry.tags(int(experiment_id)), "notes": registry.notes(int(experiment_id)),
        "spec_yaml": _yaml(spec), "environment": _environment(exp), "refused": refused,
    }


def _history(trials: list[dict[str, Any]], refused: list[str]):
    """The trials' iterations as `lab.history` has them; a trial whose folder the lab refuses to read (outside
    the storage root) is left out, its one-line reason added to `refused`."""
    import pandas as pd

    frames = []
    for t in trials:
        try:
            frame = read_progress(t.get("logdir"))
        except LabError as exc:
            refused.append(f"trial {t.get('trial_id')}: {exc}")
            continue
        if frame is not None and not frame.empty:
            frame = frame[[c for c in frame.columns if not c.startswith("config/") and c not in HISTORY_DROP]]
            frame.insert(0, "trial_id", t["trial_id"])
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["trial_id", "training_iteration"])


def report_html(experiment_id: int, plotly_src: str = PLOTLY_JS, nav: dict[str, str] | None = None) -> str:
    return render("report.html", plotly_src=plotly_src, nav=nav, **report_context(experiment_id))


def _best(best, declared, spec) -> dict[str, Any] | None:
    if best is None:
        return None
    final = facts.final(best)
    metrics = [(facts.natural(k, None)[0], facts.natural(k, facts.number(final.get(k)))[1])
               for k in facts.shown(final, declared)]
    fixed = spec.get("params") if isinstance(spec.get("params"), dict) else {}
    config = sorted((str(k), figures._short(v)) for k, v in facts.config(best).items() if k not in fixed)
    return {"trial_id": best.get("trial_id"), "config": config, "metrics": metrics,
            "checkpoint": best.get("checkpoint_path")}


def _trial_rows(trials, keys) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        config = facts.config(t)
        rows.append({"trial_id": t.get("trial_id"), "status": t.get("status"), "iterations": t.get("iterations"),
                     "best": facts.number(t.get("best_metric")),
                     "params": " ".join(f"{k}={figures._short(config.get(k))}" for k in keys),
                     "error": (str(t.get("error") or "").strip().splitlines() or [""])[-1]})
    return rows


def _yaml(spec: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(spec, default=str)), sort_keys=False)


def _environment(exp: dict[str, Any]) -> list[str]:
    from lab.results.environment import format_lines

    env = exp.get("environment")
    try:
        return format_lines(env if isinstance(env, dict) else {})
    except (AttributeError, TypeError):
        return [json.dumps(env, default=str)[:2000]]


def fragment(fig) -> str:
    """A figure as a `<div>` and its inline call (plotly escapes `<`, `>` and `/` inside the JSON)."""
    from markupsafe import Markup

    # plotly's own HTML (its JSON escaped by plotly): the one fragment the templates do not escape
    html = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return Markup(html)  # noqa: S704


# ------------------------------------------------------------------ several experiments
def compare_context(experiment_ids: list[int], metric: str | None = None, registry=None) -> dict[str, Any]:
    """Several experiments on one metric: each one's best trial as a curve, and their headlines."""
    from lab.registry import Registry

    if len(experiment_ids) < 2:
        raise LabError("a comparison needs at least two experiment ids")
    registry = registry or Registry()
    rows, series, frames = [], [], {}
    exps = [registry.experiment(int(i)) for i in experiment_ids]
    metric = metric or exps[0]["metric"]
    for exp in exps:
        trials = registry.trials(exp["id"])
        best = registry.best_trial(exp["id"])
        rows.append({"exp": exp, "headline": facts.headline(exp, trials, best), "searched": facts.searched(exp, trials)})
        try:
            frame = read_progress(best.get("logdir")) if best else None
        except LabError:  # a folder outside the storage root: not read
            frame = None
        if frame is not None and metric in frame.columns:
            frames[exp["id"]] = frame.dropna(subset=[metric])
        elif best is not None and metric == exp["metric"] and facts.number(best.get("best_metric")) is not None:
            frames[exp["id"]] = None  # no history: its best value as one point
    xs = {facts.natural_x(f) for f in frames.values() if f is not None}
    x, label = xs.pop() if len(xs) == 1 else facts.ITERATION
    for exp in exps:
        if exp["id"] not in frames:
            continue
        frame = frames[exp["id"]]
        best = registry.best_trial(exp["id"])
        if frame is None or x not in frame.columns:
            points = ([best.get("iterations") or 1], [best["best_metric"]]) if frame is None else \
                (list(range(1, len(frame) + 1)), list(frame[metric]))
        else:
            points = (list(frame[x]), list(frame[metric]))
        series.append({"name": f"{exp['id']} {exp['name']}", "x": points[0], "y": points[1]})
    reference_exp = next((e for e in exps if (facts.reference(e) or ("",))[0] == metric), None)
    fig = figures.compare(series, metric, label, reference_exp)
    missing = [e["id"] for e in exps if e["id"] not in frames]
    return {"metric": facts.natural(metric, None)[0], "rows": rows, "figures": [fragment(fig)] if fig else [],
            "missing": missing, "ids": [e["id"] for e in exps]}


def compare_html(experiment_ids: list[int], metric: str | None = None, plotly_src: str = PLOTLY_JS,
                 nav: dict[str, str] | None = None) -> str:
    return render("compare.html", plotly_src=plotly_src, nav=nav, **compare_context(experiment_ids, metric))


# ------------------------------------------------------------------ files
def write_page(page: str, out: str) -> str:
    """Write `page` to `out` (atomically) and plotly.min.js beside it unless the same one is there; the path."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise LabError(f"cannot write {out}: folder {folder} does not exist")
    write_plotly_js(folder)
    temporary = f"{out}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(temporary, out)
    return out


def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def write_plotly_js(folder: str) -> str:
    """plotly.min.js in `folder`, written once: every page of the folder shares it."""
    path = os.path.join(folder, PLOTLY_JS)
    code = plotly_js()
    if not (os.path.isfile(path) and os.path.getsize(path) == len(code.encode())):
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(code)
        os.replace(temporary, path)
    return path


# ------------------------------------------------------------------ filters
def _num(value: Any) -> str:
    from lab.registry import views

    return views.fmt(value)


def _signed(value: Any) -> str:
    return "-" if value is None else f"{value:+.4g}"


def _duration(seconds: Any) -> str:
    if facts.number(seconds) is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, dt.datetime) else str(value or "-")
