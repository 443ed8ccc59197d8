"""Metrics are known before a run: a spec naming a metric its workload never reports fails up front,
and an error raised inside Tune reaches the user as one line, its traceback in the experiment's log."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from lab import workload as workloads
from lab.errors import LabError, SpecError
from lab.registry import Registry
from lab.spec import build_spec, validate_params


class Declared(workloads.Workload):
    """A workload that declares its metrics, one of them only for one of its modes."""

    name = "test_declared_metrics"

    @dataclass
    class Config:
        seed: int = 0
        mode: str = "plain"

    @classmethod
    def metric_names(cls, config):
        return frozenset({"eval/score", "train/loss"} | ({"eval/extra"} if config.mode == "extra" else set()))


@pytest.fixture(autouse=True)
def declared_workload():
    """Registered for these tests only: the registry of workloads otherwise holds the entry points alone."""
    workloads.register(Declared)
    yield
    workloads.WORKLOADS.pop(Declared.name, None)


def _spec(**fields):
    raw = {"name": "m", "workload": Declared.name, "metric": "eval/score", **fields}
    spec = build_spec(raw, "test spec")
    validate_params(spec)
    return spec


def test_declared_metrics_and_tune_keys_pass():
    _spec(stop={"training_iteration": 3, "eval/score": 0.9, "time_total_s": 10})
    _spec(metric="eval/extra", search={"mode": {"choice": ["plain", "extra"]}})  # one searched value reports it


@pytest.mark.parametrize("fields, message", [
    ({"metric": "eval/scor"}, "metric 'eval/scor' is not reported by workload 'test_declared_metrics' "
                              "(did you mean 'eval/score'"),
    ({"stop": {"train/los": 0.1}}, "stop key 'train/los' is not reported"),
    ({"metric": "eval/extra"}, "metric 'eval/extra' is not reported"),
    ({"reference": {"metric": "eval/acc", "score": 1}}, "reference metric 'eval/acc' is not reported"),
])
def test_an_undeclared_metric_fails_before_anything_runs(fields, message, lab_home):
    with pytest.raises(SpecError) as caught:
        _spec(**fields)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    from lab.execution import runner

    spec = build_spec({"name": "m", "workload": Declared.name, "metric": "eval/scor"}, "test spec")
    with pytest.raises(SpecError):
        runner.run(spec)  # the runner checks too (lab baselines, the API): nothing recorded
    assert not (lab_home / "registry.db").exists() or Registry().experiments() == []


@pytest.mark.slow
def test_an_error_inside_tune_is_one_line_with_its_traceback_in_the_log(lab_home, monkeypatch, ray_shared):
    """A workload that does not declare its metrics: Tune itself finds the metric missing."""
    from lab.execution import runner

    cls = workloads.get("sklearn_cv")
    monkeypatch.setattr(cls, "metric_names", classmethod(lambda c, config: None))
    spec = build_spec({"name": "tune-error", "workload": "sklearn_cv", "metric": "cv/acuracy",
                       "params": {"dataset": "iris", "model": "logistic", "cv_folds": 3},
                       "stop": {"training_iteration": 1}}, "test spec")
    with pytest.raises(LabError) as caught:
        runner.run(spec)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 600, message
    assert "did not include the specified metric" in message and "Traceback" not in message
    log = lab_home / "logs" / "experiment-1.log"
    assert f"(traceback: {log})" in message
    assert "Traceback (most recent call last)" in log.read_text()
    (experiment,) = Registry().experiments()
    assert experiment["status"] == "failed" and "did not include" in experiment["error"]
