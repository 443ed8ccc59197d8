"""Every registered workload passes the conformance suite of `lab.workload.testing` on its tiny test_params.

Like scikit-learn's common estimator checks: one test per check, parametrized over the whole registry
(the `agent_lab.workloads` entry points). Runs that train to `done` or export are marked slow.
"""
from __future__ import annotations

import pytest

from lab import workload as workloads
from lab.workload import testing

NAMES = sorted(workloads.discover())
EXPORTING = [name for name in NAMES if testing.exports(name)]


def test_registry_has_one_workload_of_each_kind():
    assert {"sklearn_cv", "keras_classifier", "dqn", "ppo_kl"} <= set(NAMES)


def test_every_workload_module_imports_without_tensorflow_or_ray():
    testing.check_imports_light(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_default_config_and_test_params_are_valid(name):
    testing.check_default_config(name)


@pytest.mark.parametrize("name", NAMES)
def test_restore_gives_the_uninterrupted_state(name, tmp_path):
    testing.check_restore_equivalence(name, str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_run_to_done_reports_its_declared_metrics_and_repeats_with_its_seed(name, tmp_path):
    results = testing.run_to_done(name, trial_dir=str(tmp_path / "to-done"))
    testing.check_declared_metrics(name, results)
    testing.check_seed_determinism(name, str(tmp_path / "again"), results[0])


@pytest.mark.slow
def test_exports_load_in_a_fresh_process(tmp_path):
    testing.check_export_round_trip(EXPORTING, str(tmp_path))


# ------------------------------------------------------------------ the checks themselves can fail
def test_an_undeclared_or_missing_metric_fails_the_check(monkeypatch):
    cls = workloads.get("sklearn_anomaly")
    run = [{"anomaly/roc_auc": 0.9, "done": True}]
    monkeypatch.setattr(cls, "metric_names", classmethod(lambda c, config: frozenset({"anomaly/roc_auc", "done"})))
    testing.check_declared_metrics("sklearn_anomaly", run)
    with pytest.raises(AssertionError, match=r"undeclared \['anomaly/recall'\]"):
        testing.check_declared_metrics("sklearn_anomaly", [{**run[0], "anomaly/recall": 0.5}])
    monkeypatch.setattr(cls, "metric_names",
                        classmethod(lambda c, config: frozenset({"anomaly/roc_auc", "anomaly/x", "done"})))
    with pytest.raises(AssertionError, match=r"never reported"):
        testing.check_declared_metrics("sklearn_anomaly", run)


def test_differing_metrics_and_a_lost_state_fail_their_checks(monkeypatch, tmp_path):
    testing.assert_same_metrics("x", {"a/b": 1.0, "charts/sps": 5.0}, {"a/b": 1.0, "charts/sps": 9.0}, "timings apart")
    with pytest.raises(AssertionError, match=r"a/b 1.0 != 2.0"):
        testing.assert_same_metrics("x", {"a/b": 1.0}, {"a/b": 2.0}, "changed")
    cls = workloads.get("keras_forecaster")
    monkeypatch.setattr(cls, "restore", lambda self, checkpoint_dir: None)  # forgets the trained epochs
    with pytest.raises(AssertionError, match=r"^keras_forecaster: the step after restore: train/loss"):
        testing.check_restore_equivalence("keras_forecaster", str(tmp_path))


@pytest.mark.parametrize("name", ["dqn", "ppo", "reinforce", "sac"])  # Q-values, logits, Gaussian parameters
def test_an_agent_whose_restore_does_nothing_fails_the_restore_check(name, monkeypatch, tmp_path):
    """Two instances built with one seed act alike before any training: only the restored Q-values or
    action distributions, compared where training changed them, tell a restore that did nothing."""
    monkeypatch.setattr(workloads.get(name), "restore", lambda self, checkpoint_dir: None)
    with pytest.raises(AssertionError, match=rf"^{name}: the policy's outputs after save and restore are not"):
        testing.check_restore_equivalence(name, str(tmp_path))


def test_a_workload_importing_tensorflow_at_module_level_fails_the_light_import_check(tmp_path, monkeypatch):
    (tmp_path / "heavy_workload.py").write_text(
        "import tensorflow\nfrom lab.workload import Workload\n"
        "from dataclasses import dataclass\n"
        "class Heavy(Workload):\n    name = 'heavy'\n    @dataclass\n    class Config:\n        seed: int = 0\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}")
    from importlib import metadata

    entry = metadata.EntryPoint(name="heavy", value="heavy_workload:Heavy", group="agent_lab.workloads")
    monkeypatch.setattr(workloads.plugins, "entry_points", lambda group: {"heavy": entry})
    with pytest.raises(AssertionError, match=r"imported \['tensorflow'"):
        testing.check_imports_light(["heavy"])
