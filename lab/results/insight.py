"""What an experiment's trials say: hyperparameter importance (fANOVA) and the HTML report.

    lab.importance(3)                 # pandas Series: param -> importance (sums to 1), most important first
    lab.report(3, "report.html")      # headline against the reference, curves or ranking, trials, spec
    lab.report([3, 4], "cmp.html")    # several experiments on one metric (plotly.min.js written beside, once)
"""
from __future__ import annotations

import json
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
def report(experiment_id, out: str = "", metric: str | None = None) -> str:
    """Write the HTML report of an experiment (or, given several ids, a page comparing them on `metric`)
    and `plotly.min.js` beside it (once per folder); the page's path. See lab/results/pages/."""
    from lab.results.pages import render

    ids = [int(i) for i in experiment_id] if isinstance(experiment_id, (list, tuple)) else [int(experiment_id)]
    if len(ids) == 1:
        out = out or f"report-{ids[0]}.html"
        page = render.report_html(ids[0])
    else:
        out = out or f"compare-{'-'.join(map(str, ids))}.html"
        page = render.compare_html(ids, metric)
    return render.write_page(page, out)
