"""Schedulers and searchers of the spec: every field validated, and a real small sweep of each kind."""
from __future__ import annotations

import glob
import json
import os
import sys

import pytest

from lab import spec as specs
from lab.errors import SpecError
from lab.registry import Registry
from lab.execution import search


def write(tmp_path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


SVC = """
name: svc
workload: sklearn_cv
params: {dataset: iris, model: svc, cv_folds: 3, log_figures: false}
search:
  svc__C: {loguniform: [0.01, 10.0]}
  svc__kernel: {choice: [rbf, linear]}
metric: cv/accuracy
num_samples: 4
stop: {training_iteration: 1}
resources: {cpu: 1}
"""

# a Keras MLP on the 8x8 digits: ~0.5 s an epoch, so schedulers have iterations to work with
MLP = """
name: mlp
workload: keras_classifier
params: {dataset: digits, model: mlp, hidden_units: [32], batch_size: 64, max_epochs: 4, log_images: 0}
search:
  learning_rate: {grid: [1.0e-5, 3.0e-2]}
metric: val/accuracy
stop: {training_iteration: 4}
resources: {cpu: 1}
"""


# ------------------------------------------------------------------ validation (fast)
@pytest.mark.parametrize("override, message", [
    ("scheduler.type=hyperbnd", ("scheduler type must be one of fifo, asha, hyperband, pbt, got 'hyperbnd' "
                                 "\\(did you mean 'hyperband'")),
    ("scheduler.type=pbt2", "did you mean 'pbt'"),
    ("scheduler.max_t=0", "max_t >= 1"),
    ("scheduler.reduction_factor=1", "reduction_factor > 1"),
    ("scheduler.grace_period=200", "asha needs grace_period <= max_t"),
    ("scheduler.perturbation_interval=0", "perturbation_interval must be >= 1"),
    ("scheduler.quantile_fraction=0.7", "quantile_fraction must be in \\(0, 0.5\\]"),
    ("scheduler.resample_probability=1.5", "resample_probability must be in \\[0, 1\\]"),
    ("scheduler.mutations=[svc__C]", "mutations and synchronous are PBT settings, not asha's"),
    ("scheduler.schedule=x", "unknown parameter 'schedule' for 'scheduler'"),
    ("searcher.type=optuma", ("searcher type must be one of random, optuna, hyperopt, got 'optuma' "
                              "\\(did you mean 'optuna'")),
    ("searcher.max_concurrent=-1", "max_concurrent cannot be negative"),
    ("searcher.seed=3", "unknown parameter 'seed' for 'searcher'"),
    ("searcher=optuna", "'searcher' in .* must be a mapping"),
    ("storage=ftp://host/x", "storage scheme 'ftp://' is not supported"),
    ("storage=s3://b/p?access_key=AK&secret_key=xyz", "storage must not carry credentials"),
])
def test_bad_scheduler_and_searcher_fields(tmp_path, override, message):
    with pytest.raises(SpecError, match=message) as info:
        specs.load(write(tmp_path, SVC.replace("resources", "scheduler: {type: asha, max_t: 4}\nresources")), [override])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, overrides, message", [
    (SVC, ["scheduler.type=pbt", "search={}"], "scheduler pbt needs a search space to mutate"),
    (SVC, ["scheduler.type=pbt", "scheduler.mutations=[svc__c]"],
     "pbt mutation 'svc__c' is not in the search space \\(did you mean 'svc__C'"),
    (SVC, ["scheduler.type=pbt", "searcher.max_concurrent=1"], "scheduler pbt needs trials side by side"),
    (MLP, ["searcher.type=optuna"], "searcher 'optuna' cannot take grid values \\('learning_rate'\\): use choice"),
    (MLP, ["searcher.type=hyperopt"], "searcher 'hyperopt' cannot take grid values"),
])
def test_strategy_against_the_search_space(tmp_path, text, overrides, message):
    with pytest.raises(SpecError, match=message) as info:
        specs.load(write(tmp_path, text), overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("searcher, module", [("optuna", "optuna"), ("hyperopt", "hyperopt")])
def test_missing_search_package_names_the_extra(tmp_path, monkeypatch, searcher, module):
    monkeypatch.setitem(sys.modules, module, None)  # what an install without the extra looks like to import
    with pytest.raises(SpecError, match=rf"searcher '{searcher}' needs the {module} package: "
                                        r"pip install 'agent-lab\[search\]'"):
        specs.load(write(tmp_path, SVC), [f"searcher.type={searcher}"])


def test_missing_mlflow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(SpecError, match=r"pip install 'agent-lab\[mlflow\]'"):
        specs.load(write(tmp_path, SVC), ["mlflow=file:///tmp/mlruns"])


def test_schedulers_built_from_the_spec(tmp_path):
    from ray.tune.schedulers import (
        ASHAScheduler,
        FIFOScheduler,
        HyperBandScheduler,
        PopulationBasedTraining,
    )

    kinds = {"fifo": FIFOScheduler, "asha": ASHAScheduler, "hyperband": HyperBandScheduler,
             "pbt": PopulationBasedTraining}
    for kind, cls in kinds.items():
        (spec,) = specs.load(write(tmp_path, SVC), [f"scheduler.type={kind}", "scheduler.max_t=8"])
        assert type(search.scheduler(spec)) is cls, kind
    (spec,) = specs.load(write(tmp_path, SVC), ["scheduler.type=pbt", "scheduler.perturbation_interval=3",
                                                "scheduler.quantile_fraction=0.5"])
    pbt = search.scheduler(spec)
    assert pbt._perturbation_interval == 3 and pbt._quantile_fraction == 0.5
    mutations = search.mutations(spec)
    assert mutations["svc__kernel"] == ["rbf", "linear"]  # choices: PBT steps to a neighbouring value
    assert mutations["svc__C"].lower == 0.01 and mutations["svc__C"].upper == 10.0  # ranges: perturbed/resampled
    (spec,) = specs.load(write(tmp_path, SVC), ["scheduler.type=pbt", "scheduler.mutations=[svc__C]"])
    assert list(search.mutations(spec)) == ["svc__C"]


def test_searchers_built_from_the_spec(tmp_path):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.hyperopt import HyperOptSearch
    from ray.tune.search.optuna import OptunaSearch

    (spec,) = specs.load(write(tmp_path, SVC))
    assert spec.searcher.type == "random" and type(search.searcher(spec)) is BasicVariantGenerator
    (spec,) = specs.load(write(tmp_path, SVC), ["searcher.type=optuna", "seed=7"])
    optuna = search.searcher(spec)
    assert type(optuna) is OptunaSearch and optuna._seed == 7  # its TPE sampler is seeded with the spec's seed
    (spec,) = specs.load(write(tmp_path, SVC), ["searcher.type=hyperopt", "searcher.max_concurrent=2"])
    limited = search.searcher(spec)
    assert type(limited) is ConcurrencyLimiter and limited.max_concurrent == 2
    assert type(limited.searcher) is HyperOptSearch


# ------------------------------------------------------------------ real sweeps (the session's Ray)
def run(tmp_path, text: str, overrides: list[str]):
    from lab.execution import runner

    (spec,) = specs.load(write(tmp_path, text), overrides)
    outcome = runner.run(spec)
    registry = Registry()
    return outcome, registry.experiment(outcome.experiment_id), registry.trials(outcome.experiment_id)


def progress(trial: dict) -> list[dict]:
    """The trial's results with their config, iteration by iteration (Tune's result.json in the trial folder)."""
    with open(os.path.join(trial["logdir"], "result.json")) as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.slow
def test_hyperband_stops_weak_trials_early(tmp_path, ray_shared):
    """max_t 2, reduction factor 2: Tune's HyperBand fills a bracket of 2 trials that run to max_t, then
    one of 2 trials halved after 1 iteration; the grid puts a hopeless learning rate into the second."""
    outcome, exp, trials = run(tmp_path, MLP, [
        "search.learning_rate={grid: [3.0e-2, 1.0e-2, 1.0e-6, 2.0e-2]}", "max_epochs=2",
        "stop.training_iteration=2", "scheduler={type: hyperband, max_t: 2, reduction_factor: 2}"])
    assert exp["status"] == "completed" and outcome.num_trials == 4 and outcome.num_errors == 0
    iterations = {t["config"]["learning_rate"]: t["iterations"] for t in trials}
    assert iterations == {3e-2: 2, 1e-2: 2, 1e-6: 1, 2e-2: 2}, iterations
    assert all(t["status"] == "TERMINATED" for t in trials)


@pytest.mark.slow
def test_pbt_exploit_restores_the_donors_checkpoint(tmp_path, ray_shared):
    """Two trials, one with a hopeless learning rate: at iteration 2 it takes the good trial's weights.
    Synchronous PBT: both trials wait at iteration 2, so the exploit does not depend on their pace."""
    outcome, exp, trials = run(tmp_path, MLP, [
        ("scheduler={type: pbt, perturbation_interval: 2, quantile_fraction: 0.5, resample_probability: 0,"
         " synchronous: true}")])
    assert exp["status"] == "completed" and outcome.num_trials == 2 and outcome.num_errors == 0
    assert all(t["status"] == "TERMINATED" and t["checkpoint_path"] for t in trials)
    rows = {t["trial_id"]: progress(t) for t in trials}
    # the trial that started at 1e-5 learned nothing on its own (~chance) ...
    (recipient,) = [t for t in trials if rows[t["trial_id"]][0]["val/accuracy"] < 0.5]
    (donor,) = [t for t in trials if t is not recipient]
    mine, donors = rows[recipient["trial_id"]], rows[donor["trial_id"]]
    assert [r["training_iteration"] for r in mine] == [1, 2, 3, 4] and mine[0]["config"]["learning_rate"] == 1e-5
    assert mine[1]["val/accuracy"] < 0.5 and donors[1]["val/accuracy"] > 0.8
    # ... then continued from the donor's iteration-2 checkpoint: with the same weights, data order and
    # (PBT stepped 3e-2 to a neighbouring grid value: the ends clamp, so 3e-2 or 1e-5) its next epoch is
    # the donor's own (same rate) or at least keeps the donor's accuracy (1e-5 barely moves the weights)
    assert mine[2]["val/accuracy"] >= donors[1]["val/accuracy"] - 0.05, (mine, donors)
    # the registry records the recipient's config after the exploit (as Tune ran it), and its iterations
    assert recipient["config"]["learning_rate"] == mine[-1]["config"]["learning_rate"] and recipient["iterations"] == 4
    if recipient["config"]["learning_rate"] == 3e-2:
        assert mine[2]["val/accuracy"] == donors[2]["val/accuracy"]  # the very same training step


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["optuna", "hyperopt"])
def test_model_based_searchers_run_a_sweep(tmp_path, ray_shared, kind):
    outcome, exp, trials = run(tmp_path, SVC, [f"searcher={{type: {kind}, max_concurrent: 2}}", "seed=3"])
    assert exp["status"] == "completed" and outcome.num_trials == 4 and outcome.num_errors == 0
    values = [t["config"]["svc__C"] for t in trials]
    assert len(set(values)) == 4 and all(0.01 <= v <= 10.0 for v in values)
    assert {t["config"]["svc__kernel"] for t in trials} <= {"rbf", "linear"}
    assert outcome.best["best_metric"] > 0.9
    # Tune saved the searcher's own state (the model-based search can be resumed)
    assert glob.glob(os.path.join(exp["storage_path"], "searcher-state-*.pkl"))
