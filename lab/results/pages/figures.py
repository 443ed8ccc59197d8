"""The plotly figures of the pages. Every text taken from the registry is HTML-escaped before plotly sees it
(plotly.js renders a subset of HTML in titles, labels and legends)."""
from __future__ import annotations

import html
import json
from typing import Any

from lab.results.pages import facts

HEIGHT = 420
MAX_BARS = 40


def text(value: Any) -> str:
    return html.escape(str(value))


def sign(metric: str) -> float:
    """-1 for a `neg_*` score (shown in its natural sign), else 1."""
    return -1.0 if facts.natural(metric, 1.0)[1] == -1.0 else 1.0


def _layout(fig, title: str, x: str, y: str):
    fig.update_layout(title=text(title), xaxis_title=text(x), yaxis_title=text(y), template="plotly_white",
                      height=HEIGHT, margin={"t": 50, "r": 20})
    return fig


def _reference_line(fig, exp: dict[str, Any], metric: str, horizontal: bool = True) -> None:
    ref = facts.reference(exp)
    if ref is None or ref[0] != metric:
        return
    score = sign(metric) * ref[1]
    add = fig.add_hline if horizontal else fig.add_vline
    add(score, line_dash="dash", line_color="#c0392b", annotation_text=f"reference {score:.4g}",
        annotation_position="top right" if horizontal else "top",
        annotation_font_color="#c0392b")


def curves(exp: dict[str, Any], history, metric: str):
    """Each trial's `metric` against the workload's natural x (env steps, epochs), with the reference line."""
    import plotly.graph_objects as go

    if history.empty or metric not in history.columns:
        return None
    x, label = facts.natural_x(history)
    fig = go.Figure()
    for trial_id, frame in history.groupby("trial_id", sort=True):
        frame = frame.dropna(subset=[metric])
        fig.add_trace(go.Scatter(x=frame[x], y=sign(metric) * frame[metric], mode="lines", name=text(trial_id)))
    name = facts.natural(metric, None)[0]
    _reference_line(fig, exp, metric)
    return _layout(fig, f"{name} per trial", label, name)


def ranking(exp: dict[str, Any], trials: list[dict[str, Any]], keys: list[str]):
    """The trials ranked by their best value (a one-iteration sweep), best on top, with the reference line."""
    import plotly.graph_objects as go

    metric = exp["metric"]
    scored = [t for t in trials if facts.number(t.get("best_metric")) is not None]
    if not scored:
        return None
    scored.sort(key=lambda t: t["best_metric"], reverse=exp.get("mode") != "min")
    scored = scored[:MAX_BARS]
    labels = [text(_label(t, keys)) for t in scored]
    fig = go.Figure(go.Bar(x=[sign(metric) * t["best_metric"] for t in scored], y=labels, orientation="h",
                           marker_color="#2c7fb8"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=_span([sign(metric) * t["best_metric"] for t in scored], exp, metric))
    name = facts.natural(metric, None)[0]
    _reference_line(fig, exp, metric, horizontal=False)
    fig = _layout(fig, f"trials ranked by {name}" + (f" (best {MAX_BARS})" if len(trials) > MAX_BARS else ""),
                  name, "trial")
    fig.update_layout(height=max(HEIGHT, 60 + 22 * len(scored)))
    return fig


def _span(values: list[float], exp: dict[str, Any], metric: str) -> list[float]:
    """An x range that shows the differences between the bars (and the reference), not only their common base."""
    ref = facts.reference(exp)
    if ref is not None and ref[0] == metric:
        values = [*values, sign(metric) * ref[1]]
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or abs(high) * 0.05 or 1.0
    return [low - pad, high + pad]


def _label(trial: dict[str, Any], keys: list[str]) -> str:
    config = facts.config(trial)
    params = " ".join(f"{k}={_short(config.get(k))}" for k in keys)
    return f"{trial.get('trial_id')} {params}".strip()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, (list, dict)) \
        else str(value)


def heatmap(exp: dict[str, Any], trials: list[dict[str, Any]], keys: list[str]):
    """Mean best value over the grid of two searched parameters."""
    import plotly.graph_objects as go

    metric = exp["metric"]
    (a, b) = keys
    cells: dict[tuple[str, str], list[float]] = {}
    for t in trials:
        value = facts.number(t.get("best_metric"))
        if value is not None:
            config = facts.config(t)
            cells.setdefault((_short(config.get(a)), _short(config.get(b))), []).append(sign(metric) * value)
    xs = _ordered({k[0] for k in cells})
    ys = _ordered({k[1] for k in cells})
    z = [[sum(cells[(x, y)]) / len(cells[(x, y)]) if (x, y) in cells else None for x in xs] for y in ys]
    name = facts.natural(metric, None)[0]
    fig = go.Figure(go.Heatmap(x=[text(x) for x in xs], y=[text(y) for y in ys], z=z, colorscale="Viridis",
                               colorbar={"title": {"text": text(name)}}, texttemplate="%{z:.4g}"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return _layout(fig, f"{name} over {a} x {b}", a, b)


def _ordered(values: set[str]) -> list[str]:
    """Numbers in numeric order, then the rest alphabetically."""
    def key(v: str):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)
    return sorted(values, key=key)


def parallel(exp: dict[str, Any], trials: list[dict[str, Any]], keys: list[str]):
    """Parallel coordinates of the searched parameters against the metric: only with two or more of them."""
    import plotly.graph_objects as go

    scored = [t for t in trials if facts.number(t.get("best_metric")) is not None]
    if len(keys) < 2 or not scored:
        return None
    metric = exp["metric"]
    dimensions = []
    for key in keys:
        values = [facts.config(t).get(key) for t in scored]
        if all(facts.number(v) is not None for v in values):
            dimensions.append({"label": text(key), "values": values})
        else:
            labels = list(dict.fromkeys(_short(v) for v in values))
            dimensions.append({"label": text(key), "values": [labels.index(_short(v)) for v in values],
                               "tickvals": list(range(len(labels))), "ticktext": [text(v) for v in labels]})
    scores = [sign(metric) * t["best_metric"] for t in scored]
    name = facts.natural(metric, None)[0]
    dimensions.append({"label": text(name), "values": scores})
    fig = go.Figure(go.Parcoords(line={"color": scores, "colorscale": "Viridis", "showscale": True},
                                 dimensions=dimensions))
    fig.update_layout(title=text(f"searched parameters against {name} (best value of each trial)"), height=HEIGHT)
    return fig


def compare(series: list[dict[str, Any]], metric: str, x_label: str, reference_exp: dict[str, Any] | None):
    """Several experiments on one metric: each one's best trial against the common x."""
    import plotly.graph_objects as go

    if not series:
        return None
    fig = go.Figure()
    for item in series:
        mode = "lines" if len(item["x"]) > 1 else "markers"
        fig.add_trace(go.Scatter(x=item["x"], y=[sign(metric) * v for v in item["y"]], mode=mode,
                                 name=text(item["name"]), marker={"size": 10}))
    if reference_exp is not None:
        _reference_line(fig, reference_exp, metric)
    name = facts.natural(metric, None)[0]
    return _layout(fig, f"{name}: the best trial of each experiment", x_label, name)
