"""The lab from Python (a notebook, a script): run experiments and read the registry as pandas DataFrames.

    import lab
    result = lab.run("svc-digits", num_samples=2)       # a preset, a YAML path or a dict; overrides as --set
    result.best, result.trials                           # the best trial (dict), every trial (DataFrame)
    lab.experiments(where="workload = sklearn_cv and metric.cv/accuracy > 0.9")
    lab.trials(3); lab.history(3); lab.leaderboard(workload="dqn", dataset="CartPole-v1")
    model = lab.load(3)                                  # the fitted pipeline, Keras model or TF-Agents policy

Errors are the CLI's, as the lab's exception types (`lab.LabError` and its subclasses), never a Tune traceback.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError

TRIAL_COLUMNS = ("experiment_id", "trial_id", "status", "iterations", "best_metric")


@dataclass
class Result:
    """One experiment `lab.run` ran: its registry id, final status, best trial and trials."""

    experiment_id: int
    name: str
    status: str
    num_trials: int
    num_errors: int
    best: dict[str, Any] | None
    trials: Any = field(repr=False)  # pandas.DataFrame, as lab.trials(experiment_id)

    def __repr__(self) -> str:
        best = f", best {self.best['trial_id']}={self.best['best_metric']:.4g}" if self.best else ""
        return (f"Result(experiment {self.experiment_id} '{self.name}': {self.status}, "
                f"{self.num_trials} trials, {self.num_errors} errors{best})")

    def _repr_html_(self) -> str:
        """A notebook shows the result once, as this line and the trials' table (`lab.run` prints nothing)."""
        from html import escape

        table = self.trials.to_html(max_rows=20, index=False) if self.trials is not None else ""
        return f"<p><code>{escape(repr(self))}</code></p>{table}"


# ------------------------------------------------------------------ running
def run(source: str | dict[str, Any], *, verbose: bool = False, address: str | None = None, trust_spec: bool = False,
        **overrides: Any) -> Result | list[Result]:
    """Run a preset name, a spec YAML path or a spec dict (a suite gives a list of Results).

    `overrides` are `--set` overrides: `num_samples=2`, `learning_rate=1e-3` (a param), or a dotted field
    through a dict: `**{"stop.training_iteration": 3}`. `verbose`: Tune's tables and the workers' logs
    (default: `lab run`'s compact progress lines). The Result is returned, not printed: a notebook shows it
    once (its `_repr_html_`), a script prints it if it likes.
    A spec file naming its own storage or MLflow server needs `trust_spec=True` (as `lab run --trust-spec`);
    a dict is the caller's own.
    """
    from lab import spec as specs

    texts = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(source, dict):
        spec_list = [specs.runnable(source, specs.Source.mapping(trusted=True), texts)]
    elif isinstance(source, str):
        spec_list = specs.load(source, texts, trust_spec=trust_spec)
    else:
        raise LabError(f"lab.run takes a preset name, a YAML path or a dict, got {type(source).__name__}")
    return _run_specs(spec_list, address, verbose)


def _run_specs(spec_list: list, address: str | None, verbose: bool) -> Result | list[Result]:
    from lab.registry import Registry
    from lab.execution import runner

    registry = Registry()  # checked by runner.run, once per experiment
    results = []
    for spec in spec_list:
        outcome = runner.run(spec, address=address, registry=registry, verbose=verbose)
        results.append(Result(outcome.experiment_id, outcome.name, outcome.status, outcome.num_trials,
                              outcome.num_errors, outcome.best, trials(outcome.experiment_id)))
    return results[0] if len(results) == 1 else results


def rerun(experiment_id: int, *, verbose: bool = False, address: str | None = None, trust_spec: bool = False) -> Result:
    """Run an experiment's recorded (resolved) spec again, as a new experiment."""
    return _run_specs([recorded_spec(experiment_id, trust_spec)], address, verbose)


def recorded_spec(experiment_id: int, trust_spec: bool = False):
    """The spec an experiment ran, as recorded, made runnable (`lab.spec.runnable`); on a shared registry it
    may be someone else's, so a storage or MLflow server it names is used only with `trust_spec` (or a yes at
    the terminal), as for a spec file."""
    from lab.registry import Registry
    from lab.spec import Source, runnable

    return runnable(Registry().experiment(experiment_id)["spec"], Source.recorded(experiment_id, trust_spec))


# ------------------------------------------------------------------ reading the registry
def experiments(where: str | None = None, tags: dict[str, str] | None = None, limit: int | None = None):
    """Experiments (newest first) matching a `--where` filter and tags, as a DataFrame."""
    import pandas as pd

    from lab.registry import Registry, display_status

    rows = Registry().experiments(limit=limit, where=where, tags=tags)
    columns = ["id", "name", "workload", "dataset", "status", "metric", "mode", "best", "num_trials", "num_errors",
               "user", "host", "started_at", "ended_at", "git_commit"]
    records = []
    for r in rows:
        best = r["best_max"] if r["mode"] == "max" else r["best_min"]
        records.append({**r, "status": display_status(r), "best": best,
                        "num_trials": r["num_trials"] or 0, "num_errors": r["num_errors"] or 0})
    return pd.DataFrame.from_records(records, columns=columns)


def trials(experiment_id: int):
    """An experiment's trials: status, iterations, best metric, `config.*` and final metric columns."""
    import pandas as pd

    from lab.registry import Registry

    registry = Registry()
    registry.experiment(experiment_id)  # UnknownExperiment, as every call that takes an id
    records = [flat_trial(t) for t in registry.trials(experiment_id)]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=[*TRIAL_COLUMNS, "checkpoint_path", "logdir", "error"])
    first = [*TRIAL_COLUMNS]
    configs = sorted(c for c in frame.columns if c.startswith("config."))
    rest = [c for c in frame.columns if c not in first and c not in configs]
    return frame[[*first, *configs, *rest]]


def flat_trial(t: dict[str, Any]) -> dict[str, Any]:
    row = {k: t.get(k) for k in TRIAL_COLUMNS}
    row.update({f"config.{k}": _scalar(v) for k, v in t["config"].items()})
    row.update({k: v for k, v in t["last_result"].items() if k not in row})
    row.update(checkpoint_path=t.get("checkpoint_path"), logdir=t.get("logdir"),
               error=(t.get("error") or "").splitlines()[0] if t.get("error") else None)
    return row


def leaderboard(workload: str | None = None, dataset: str | None = None, metric: str | None = None,
                limit: int | None = 20, where: str | None = None):
    """Trials ranked across experiments (and users) by one metric: one table whatever the workload.

    The DataFrame's `attrs` name the metric and mode it ranks by (the newest matching experiment's,
    unless `metric` is given); `config` holds the params whose values differ between the rows.
    """
    import pandas as pd

    chosen, mode, records = leaderboard_rows(workload, dataset, metric, limit, where)
    frame = pd.DataFrame.from_records(records, columns=LEADERBOARD_COLUMNS)
    frame.attrs.update(metric=chosen, mode=mode)
    return frame


LEADERBOARD_COLUMNS = ["rank", "experiment_id", "name", "workload", "dataset", "user", "trial_id", "status",
                       "metric", "value", "config"]


def leaderboard_rows(workload=None, dataset=None, metric=None, limit=20, where=None):
    """(metric, mode, rows) of `leaderboard` as plain dicts (the CLI prints them without pandas)."""
    from lab.registry import Registry

    chosen, mode, rows = Registry().leaderboard(workload, dataset, metric, limit, where)
    varying = {k for k in {k for r in rows for k in r["config"]}
               if len({json.dumps(r["config"].get(k), sort_keys=True) for r in rows}) > 1}
    records = [{"rank": i, "experiment_id": r["experiment_id"], "name": r["name"], "workload": r["workload"],
                "dataset": r["dataset"], "user": r["user"], "trial_id": r["trial_id"], "status": r["status"],
                "metric": chosen, "value": r["best_metric"],
                "config": _short_config({k: v for k, v in r["config"].items() if k in varying})}
               for i, r in enumerate(rows, 1)]
    return chosen, mode, records


def compare(*experiment_ids: int):
    """Experiments side by side: spec fields and best-trial configs that differ, then best-trial metrics.

    Rows are `spec.*` (differing fields only), `config.*` (the best trial's, differing only) and the metrics
    of each best trial; columns are the experiment ids.
    """
    import pandas as pd

    from lab.registry import Registry

    if len(experiment_ids) < 2:
        raise LabError("compare needs at least two experiment ids")
    registry = Registry()
    columns: dict[int, dict[str, Any]] = {}
    for exp_id in experiment_ids:
        exp = registry.experiment(int(exp_id))
        best = registry.best_trial(int(exp_id))
        column = {f"spec.{k}": _scalar(v) for k, v in _flatten(exp["spec"]).items()}
        column["best.trial_id"] = best["trial_id"] if best else None
        column[f"best.{exp['metric']}"] = best["best_metric"] if best else None
        if best:
            column.update({f"config.{k}": _scalar(v) for k, v in best["config"].items()})
            column.update({f"metric.{k}": v for k, v in best["last_result"].items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)})
        columns[int(exp_id)] = column
    frame = pd.DataFrame(columns)
    keep = [key for key in frame.index
            if key.startswith(("metric.", "best.")) or frame.loc[key].astype(str).nunique(dropna=False) > 1]
    order = sorted(keep, key=lambda k: ({"spec": 0, "config": 1, "best": 2, "metric": 3}[k.split(".", 1)[0]], k))
    return frame.loc[order]


# ------------------------------------------------------------------ the trained object
def load(experiment_id: int, trial: str | None = None):
    """The trial's trained object (default: the best trial), through the lab's safe export and its loaders.

    The trial is restored from its checkpoint and exported as `lab export` does (into a temporary
    folder), then read back by the public loader its workload's package declares (entry point group
    `agent_lab.loaders`): scikit-learn, the fitted pipeline (skops, an exact list of trusted types); Keras,
    the model (`.keras`, safe mode; a dict of name -> model when the workload exports several); TF-Agents,
    the saved greedy policy, with SB3's `predict(observation)` (agents/saved_policy.py). LabError when the
    trial has no checkpoint; nothing is changed. The libraries' warnings go to `$LAB_HOME/logs/lab.log`, and
    the temporary export is removed once loaded.
    """
    from lab import quiet
    from lab import workload as workloads
    from lab.registry import Registry
    from lab.results.artifacts import export_trial

    loader = package_loader(workloads.get(Registry().experiment(int(experiment_id))["workload"]))
    with quiet.libraries_to_log(f"lab.load({experiment_id})"), tempfile.TemporaryDirectory(prefix="lab-load-") as out:
        path, _ = export_trial(int(experiment_id), os.path.join(out, "export"), trial)
        several = sorted(f for f in os.listdir(path) if f.endswith(".keras")) if os.path.isdir(path) else []
        if len(several) > 1:  # e.g. an autoencoder's encoder and decoder: the export this call just wrote
            return {f[: -len(".keras")]: loader(os.path.join(path, f), trust=True) for f in several}
        return loader(path)  # read into memory: the temporary folder goes


def package_loader(workload):
    """The loader of exports declared by the package that provides `workload` (the core imports no leaf)."""
    from lab import plugins

    package = workload.__module__.split(".")[0]
    entry = plugins.entry_points(plugins.LOADERS).get(package)
    if entry is None:
        raise LabError(f"the '{package}' package declares no loader of its exports "
                       f"(entry point group {plugins.LOADERS}): use `lab export` instead")
    return entry.load()


# ------------------------------------------------------------------ tags and notes
def tag(experiment_id: int, **values: str) -> None:
    """Set tags on an experiment: `lab.tag(3, team="vision", stage="baseline")`."""
    from lab.registry import Registry

    if not values:
        raise LabError("lab.tag needs at least one key=value")
    Registry().set_tags(int(experiment_id), {k: str(v) for k, v in values.items()})


def note(experiment_id: int, text: str) -> None:
    """Append a note to an experiment."""
    from lab.registry import Registry
    from lab.execution.runner import _user

    if not text.strip():
        raise LabError("a note needs some text")
    Registry().add_note(int(experiment_id), text, user=_user())


# ------------------------------------------------------------------ helpers
def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, item in value.items():
        if isinstance(item, dict) and item and key not in ("search",):
            flat.update(_flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def _scalar(value: Any) -> Any:
    """Lists and dicts as JSON text, so that a DataFrame column holds comparable scalars."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _short_config(config: dict[str, Any]) -> str:
    skip = ("seed",)
    return " ".join(f"{k}={_fmt(v)}" for k, v in sorted(config.items()) if k not in skip)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
