"""Registries filled as a finished run leaves them (rows, and progress.csv in each trial folder), for the report
and `lab ui` tests: a sweep, a DQN run, and an experiment whose every field is hostile markup."""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

from lab.registry import Registry
from tests.conftest import lab as lab_cli

TUNE_INTERNALS = {"time_since_restore": 1.5, "timestamp": 1765000000, "done": True, "time_this_iter_s": 0.4,
                  "iterations_since_restore": 1, "time_total_s": 1.5}

SVC = {"name": "svc-digits", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max",
       "params": {"dataset": "digits", "model": "svc"},
       "search": {"svc__C": {"grid": [1.0, 10.0, 100.0]}, "svc__gamma": {"grid": [0.001, 0.01, "scale"]}},
       "stop": {"training_iteration": 1}, "reference": {"metric": "cv/accuracy", "score": 0.97}}
DQN = {"name": "dqn-cartpole", "workload": "dqn", "metric": "eval/average_return", "mode": "max",
       "params": {"env_id": "CartPole-v1", "env_steps_per_step": 1000, "max_env_steps": 5000},
       "reference": {"metric": "eval/average_return", "score": 475.0}}


def experiment(home: Path, spec: dict, trials: list[dict], wall_s: float = 125.0, **fields) -> int:
    """An experiment as a finished run leaves it. Each trial: {"id", "config", "rows": [metrics per iteration],
    "status"}; progress.csv gets Tune's columns too, last_result Tune's internals."""
    registry = Registry()
    start = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    exp_id = registry.create_experiment(spec, user="ann", host="box", environment={"python": "3.11.9"},
                                        started_at=start, **fields)
    folder = home / "experiments" / f"{spec['name']}-{exp_id}"
    for t in trials:
        trial_dir = Path(t.get("logdir") or folder / f"trial_{t['id']}")
        trial_dir.mkdir(parents=True, exist_ok=True)
        rows = [{**row, **TUNE_INTERNALS, "training_iteration": i, "done": i == len(t["rows"]),
                 **{f"config/{k}": v for k, v in t["config"].items()}} for i, row in enumerate(t["rows"], 1)]
        with open(trial_dir / "progress.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        metric = spec["metric"]
        values = [r[metric] for r in t["rows"] if metric in r]
        best = (max if spec["mode"] != "min" else min)(values) if values else None
        registry.upsert_trial(exp_id, t["id"], status=t.get("status", "TERMINATED"), iterations=len(t["rows"]),
                              logdir=str(trial_dir), config=t["config"], best_metric=best,
                              last_result={**t["rows"][-1], **TUNE_INTERNALS}, best_result={metric: best})
    registry.update_experiment(exp_id, status=fields.get("status", "completed"), storage_path=str(folder),
                               ended_at=start + dt.timedelta(seconds=wall_s))
    return exp_id


def svc_sweep(home: Path, samples: int = 2, score=lambda C, gamma: 0.9 + 0.0005 * C, failed: int = 0, **kw) -> int:
    """svc-digits' 3 x 3 grid, `samples` times: one-iteration trials."""
    trials = []
    for s in range(samples):
        for C in (1.0, 10.0, 100.0):
            for gamma in (0.001, 0.01, "scale"):
                config = {"svc__C": C, "svc__gamma": gamma, "seed": s, "dataset": "digits", "model": "svc"}
                trials.append({"id": f"{len(trials):05d}", "config": config,
                               "rows": [{"cv/accuracy": score(C, gamma), "cv/accuracy_std": 0.01,
                                         "charts/fit_seconds": 0.2, "charts/wall_seconds": 0.3}]})
    for t in trials[:failed]:
        t["status"] = "ERROR"
    return experiment(home, SVC, trials, **kw)


def dqn_run(home: Path, returns=(20.0, 60.0, 150.0, 300.0, 490.0), spec=DQN) -> int:
    """One unsearched DQN trial, 5 iterations of 1000 env steps."""
    rows = [{"eval/average_return": r, "charts/env_steps": 1000 * i, "train/loss": 1.0 / i, "charts/sps": 900.0}
            for i, r in enumerate(returns, 1)]
    return experiment(home, spec, [{"id": "00000", "config": {"seed": 0, **spec["params"]}, "rows": rows}])


def report(exp_ids, out: Path, *extra: str) -> str:
    result = lab_cli("report", *map(str, exp_ids if isinstance(exp_ids, list) else [exp_ids]), "--out", str(out),
                     *extra)
    assert result.returncode == 0, result.stderr
    return out.read_text()


def plotted(page: str) -> list[tuple[list[dict], dict]]:
    """(traces, layout) of every plotly figure of a page, as plotly's `Plotly.newPlot(id, data, layout)` has them
    (arrays that plotly packed as base64 unpacked)."""
    decoder, figures = json.JSONDecoder(object_hook=_unpack), []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]*",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())
        figures.append((data, layout))
    return figures


def _unpack(value: dict):
    import base64

    import numpy as np

    if set(value) == {"dtype", "bdata"} or set(value) == {"dtype", "bdata", "shape"}:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return array.reshape([int(n) for n in str(value["shape"]).split(",")] if "shape" in value else -1).tolist()
    return value


def kinds(page: str) -> list[str]:
    return [trace.get("type", "scatter") for data, _ in plotted(page) for trace in data]


def text_of(page: str) -> str:
    """The page's text with its figures' scripts left out."""
    return re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)


RUN = "document.documentElement.setAttribute('data-ran',String.fromCharCode(89,69,83))"
HOSTILE = (f"x tabindex=1 autofocus onfocus={RUN} y\" tabindex=1 autofocus onfocus=\"{RUN}\" y' onfocus='{RUN}' "
           f"<img src=x onerror=\"{RUN}\"><b>bold</b><a href=\"javascript:{RUN}\">link</a></script><script>{RUN}</script>"
           f"<svg onload=\"{RUN}\">{{{{7*7}}}}")
PATH_SAFE = f"<img src=x onerror=\"{RUN}\"> x' onfocus='{RUN}'"  # a folder name (no '/', under 255 bytes)


def hostile_experiment(home: Path) -> int:
    """Every column of every table the report reads set to markup that runs script if it is not escaped."""
    h = HOSTILE
    spec = {"name": h, "workload": h, "metric": h, "mode": h, "description": h, "params": {h: h, "dataset": h},
            "search": {h: {"choice": [h, "b"]}, "b": {"grid": [h, 1]}}, "reference": {"metric": h, "score": 1.0},
            "stop": {h: 1}}
    registry = Registry()
    exp_id = registry.create_experiment(spec, user=h, host=h, git_commit=h, error=h, dataset=h,
                                        environment={"python": h, "platform": h, "packages": {h: h}, "git_commit": h})
    registry.update_experiment(exp_id, status=h, storage_path=h)
    registry.set_tags(exp_id, {h: h, "team": "red"})
    registry.add_note(exp_id, h, user=h)
    for i in range(3):
        trial_dir = home / "experiments" / f"{PATH_SAFE}{i}"
        trial_dir.mkdir(parents=True)
        with open(trial_dir / "progress.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([h, "charts/env_steps", "training_iteration", f"config/{h}"])
            writer.writerows([[0.1 * i + j, 1000 * j, j, h] for j in (1, 2)])
        registry.upsert_trial(exp_id, f"{h}{i}", status=h, iterations=2, best_metric=0.1 * i + 2,
                              config={h: [h, "b"][i % 2], "b": [h, 1][i % 2], "seed": h},
                              last_result={h: 0.5, f"{h}2": h}, best_result={h: h}, checkpoint_path=h,
                              logdir=str(trial_dir) if i else h, error=h)
    return exp_id


def assert_nothing_ran(dom: str) -> None:
    assert 'data-ran="YES"' not in dom
    assert "<b>bold</b>" not in dom and "&lt;b&gt;bold&lt;/b&gt;" in dom  # shown as text
