"""Every registered workload honours the protocol: setup / step / save / restore on a tiny config.

Like scikit-learn's common estimator checks: one test, parametrized over the whole registry.
"""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from lab import workload as workloads
from tests.workload_harness import make

NAMES = sorted(workloads.discover())


def test_registry_has_one_workload_of_each_kind():
    assert {"sklearn_cv", "keras_classifier", "dqn"} <= set(NAMES)


def test_discovery_imports_neither_tensorflow_nor_ray():
    code = ("import sys; from lab import workload; workload.discover(); "
            "heavy = [m for m in ('tensorflow', 'ray', 'tf_agents') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", NAMES)
def test_workload_protocol(name, tmp_path):
    cls = workloads.WORKLOADS[name]
    assert cls.test_params, f"{name} needs test_params for this test"
    config = cls.make_config(dict(cls.test_params))
    assert config.seed == 0

    first = make(name, dict(cls.test_params), trial_dir=str(tmp_path / "a"))
    metrics = first.step()
    assert metrics, f"{name}.step() returned nothing"
    for key, value in metrics.items():
        assert key == "done" or "/" in key, f"{name}: metric '{key}' is not namespaced"
        if key != "done":
            assert isinstance(value, (int, float)) and math.isfinite(value), f"{name}: {key}={value}"
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    first.save(str(checkpoint))
    assert any(checkpoint.iterdir()), f"{name}.save() wrote nothing"

    second = make(name, dict(cls.test_params), trial_dir=str(tmp_path / "b"))
    second.restore(str(checkpoint))
    second.step()  # a restored workload goes on training
    first.close()
    second.close()
