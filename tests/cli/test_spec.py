"""Experiment specs: presets, layering of --set overrides, and every kind of bad input."""
from __future__ import annotations

import pytest

from lab import spec as specs
from lab.errors import SpecError


def write(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


VALID = """
name: t
workload: sklearn_cv
params: {dataset: iris, model: svc}
search:
  svc__C: {loguniform: [0.1, 10.0]}
  svc__kernel: {choice: [rbf, linear]}
metric: cv/accuracy
scheduler: {type: asha, max_t: 4}
resources: {cpu: 0.5}
"""


def test_every_preset_validates():
    presets = specs.presets()
    assert {"quickstart", "svc-digits"} <= set(presets)
    for name in presets:
        assert specs.load(name), name


def test_valid_file_and_overrides(tmp_path):
    (spec,) = specs.load(write(tmp_path, VALID), ["num_samples=3", "params.cv_folds=3", "test_size=0.25",
                                                  "resources.cpu=1", "svc__C=2.0"])
    assert spec.num_samples == 3 and spec.resources.cpu == 1.0 and spec.scheduler.type == "asha"
    assert spec.params == {"dataset": "iris", "model": "svc", "cv_folds": 3, "test_size": 0.25, "svc__C": 2.0}
    assert "svc__C" not in spec.search  # a fixed value replaces the search over it
    assert spec.trial_params["seed"] == 0


def test_quickstart_is_a_suite_of_every_kind():
    workloads = {spec.workload for spec in specs.load("quickstart")}
    assert workloads == {"sklearn_cv", "keras_classifier", "dqn"}


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed", "malformed YAML"),
    ("- just\n- a list", "must be a mapping"),
    (VALID.replace("sklearn_cv", "sklearn_cvv"), "unknown workload 'sklearn_cvv' \\(did you mean 'sklearn_cv'"),
    (VALID.replace("dataset: iris", "datset: iris"), "unknown parameter 'datset'"),
    (VALID.replace("model: svc}", "model: svc, cv_folds: many}"), "'cv_folds' .* must be an integer"),
    (VALID.replace("model: svc}", "model: svc, svc__Cc: 1}"), "unknown parameter 'svc__Cc' for model 'svc'"),
    (VALID.replace("model: svc}", "model: svc, svc__tol: -1}"), "'tol' parameter"),
    (VALID.replace("loguniform: [0.1, 10.0]", "loguniform: [0, 10.0]"), "loguniform"),
    (VALID.replace("loguniform", "lognormal"), "unknown distribution 'lognormal'"),
    (VALID.replace("type: asha", "type: pbt2"), "scheduler type must be one of"),
    (VALID.replace("cpu: 0.5", "cpu: 0"), "resources need cpu > 0"),
    (VALID.replace("metric: cv/accuracy", "metric: cv/accuracy\nmode: maximum"), "mode must be 'max' or 'min'"),
    (VALID.replace("metric: cv/accuracy", "metric: cv/accuracy\nfoo: 1"), "unknown parameter 'foo'"),
    (VALID.replace("model: svc}", "model: svm}"), "unknown model 'svm'"),
    (VALID.replace("rbf, linear", "rbf, cubic"), "kernel"),
])
def test_bad_specs_raise_one_line_errors(tmp_path, text, message):
    with pytest.raises(SpecError, match=message) as info:
        specs.load(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(SpecError, match="unknown preset 'svc-digit' \\(did you mean 'svc-digits'"):
        specs.load("svc-digit")


def test_bad_override(tmp_path):
    with pytest.raises(SpecError, match="--set expects key=value"):
        specs.load(write(tmp_path, VALID), ["num_samples"])
    with pytest.raises(SpecError, match="num_samples must be at least 1"):
        specs.load(write(tmp_path, VALID), ["num_samples=0"])
