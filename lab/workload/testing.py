"""Conformance checks every workload must pass, public in the spirit of scikit-learn's `check_estimator`.

    from lab.workload import testing
    testing.check_workload("my_workload")          # every fast check; AssertionError naming the broken promise
    workload = testing.make("dqn", {"max_env_steps": 500})   # one workload, set up outside Ray

Each check takes a registered workload's name and runs it on its tiny `test_params`, outside Ray, in
this process, and raises AssertionError naming the broken promise:

- `check_default_config`: the Config's defaults and test_params are valid;
- `check_imports_light`: the module imports (in a fresh process) without TensorFlow, TF-Agents or Ray;
- `check_declared_metrics` over `run_to_done`: `metric_names(config)` is exactly what the steps of a run
  report, and the run reports `done` within DONE_BUDGET steps;
- `check_seed_determinism`: two fresh runs report the same first step (timings apart);
- `check_restore_equivalence`: after save and restore into a fresh instance, the next step's metrics (for
  agents: the Q-values or action distributions, where training changed them) equal the uninterrupted run's;
- `check_export_round_trip`: what `export` writes, `load_exported` reads back in a fresh process.

`tests/workload/test_conformance.py` runs them over every registered workload.
"""
from __future__ import annotations

import math
import tempfile
from typing import Any

from lab import settings
from lab import workload as workloads

DONE_BUDGET = 40  # steps within which a workload's test_params run must report done


def make(name: str, params: dict | None = None, trial_dir: str | None = None) -> workloads.Workload:
    """Workload `name` built from `params` (default: its test_params) and set up, with a TensorBoard logger.

    Its `close()` also closes the logger's writer.
    """
    from lab.workload.tboard import MediaLogger, SummaryWriter

    settings.apply_worker_env()
    cls = workloads.get(name)
    config = cls.make_config(dict(cls.test_params if params is None else params))
    trial_dir = trial_dir or tempfile.mkdtemp(prefix=f"lab-{name}-")
    writer = SummaryWriter(trial_dir)
    context = workloads.TrialContext(trial_dir=trial_dir, logger=MediaLogger(writer))
    instance = cls(config, context)
    try:
        instance.setup()
    except BaseException:
        writer.close()
        raise
    close = instance.close

    def close_all() -> None:  # the workload, then its TensorBoard writer
        try:
            close()
        finally:
            writer.close()

    instance.close = close_all
    return instance


def check_metrics_are_namespaced(name: str, metrics: dict[str, Any]) -> None:
    """Keys are `kind/name` (or `done`); values are finite numbers, `done` a bool."""
    assert metrics, f"{name}.step() returned nothing"
    for key, value in metrics.items():
        if key == "done":
            assert isinstance(value, bool), f"{name}: done={value!r} is not a bool"
            continue
        assert "/" in key, f"{name}: metric '{key}' is not namespaced (kind/name)"
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{name}: {key}={value!r}"


def run_to_done(name: str, budget: int = DONE_BUDGET, trial_dir: str | None = None) -> list[dict[str, Any]]:
    """Every step's metrics of a test_params run, which must report `done` within `budget` steps."""
    workload = make(name, trial_dir=trial_dir)
    results = []
    try:
        while len(results) < budget:
            results.append(workload.step())
            check_metrics_are_namespaced(name, results[-1])
            if results[-1].get("done"):
                return results
    finally:
        workload.close()
    raise AssertionError(f"{name} did not report done within {budget} steps of its test_params")


def check_declared_metrics(name: str, results: list[dict[str, Any]] | None = None) -> None:
    """`metric_names(config)` equals what a test_params run to `done` reports (every step within it)."""
    cls = workloads.get(name)
    declared = cls.metric_names(cls.make_config(dict(cls.test_params)))
    assert declared is not None, f"{name} declares no metric_names"
    assert isinstance(declared, frozenset), f"{name}.metric_names must return a frozenset"
    results = run_to_done(name) if results is None else results
    for i, metrics in enumerate(results, 1):
        extra = set(metrics) - declared
        assert not extra, f"{name}: step {i} reported undeclared {sorted(extra)}"
    missing = declared - set().union(*results)
    assert not missing, f"{name}: declared {sorted(missing)}, never reported in a run to done"


# ------------------------------------------------------------------ the rest of the suite
TIMING_WORDS = ("seconds", "per_sec", "sps")  # metrics of speed: they differ from run to run


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics that a seeded run must reproduce: all but speed and timings."""
    return {k: v for k, v in metrics.items() if not any(word in k for word in TIMING_WORDS)}


def assert_same_metrics(name: str, first: dict[str, Any], second: dict[str, Any], what: str,
                        rtol: float = 1e-4) -> None:
    a, b = comparable(first), comparable(second)
    assert set(a) == set(b), f"{name}: {what}: metrics {sorted(set(a) ^ set(b))} differ in presence"
    differ = [k for k in a if not math.isclose(float(a[k]), float(b[k]), rel_tol=rtol, abs_tol=1e-6)]
    assert not differ, f"{name}: {what}: " + ", ".join(f"{k} {a[k]!r} != {b[k]!r}" for k in differ[:4])


def check_default_config(name: str) -> None:
    """The Config's defaults are a valid config, and test_params are too (seeded with 0)."""
    cls = workloads.get(name)
    cls.make_config({})
    assert cls.test_params, f"{name} needs test_params: a tiny run for the conformance suite"
    assert cls.make_config(dict(cls.test_params)).seed == 0


def check_imports_light(names: list[str]) -> None:
    """The workloads' modules import, in a fresh process, without TensorFlow, TF-Agents or Ray."""
    import subprocess
    import sys

    from lab import plugins

    entries = plugins.entry_points(plugins.WORKLOADS)
    modules = sorted({entries[name].value.split(":")[0] for name in names})
    code = (f"import importlib, sys\nfor module in {modules!r}:\n    importlib.import_module(module)\n"
            "print(sorted(m for m in ('tensorflow', 'tf_agents', 'ray', 'tf_keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"importing {modules} failed: {out.stderr.strip().splitlines()[-1:]}"
    assert out.stdout.strip() == "[]", f"importing {modules} imported {out.stdout.strip()}"


def check_seed_determinism(name: str, trial_dir: str, first_step: dict[str, Any] | None = None) -> None:
    """Two fresh runs of test_params report the same first step (timings apart); `first_step`: one
    run's, already taken (e.g. by `run_to_done`)."""
    runs = [] if first_step is None else [first_step]
    while len(runs) < 2:
        workload = make(name, trial_dir=f"{trial_dir}/{len(runs)}")
        try:
            runs.append(workload.step())
        finally:
            workload.close()
    assert_same_metrics(name, runs[0], runs[1], "two runs with the same seed")


def check_restore_equivalence(name: str, trial_dir: str) -> None:
    """After save and restore into a fresh instance, the state is the uninterrupted run's.

    Agents (with `policy_outputs`): on probe observations where the trained network and a fresh one (the
    same seed, untrained) differ, the restored instance's Q-values or action distributions equal the
    trained ones (their environments are not checkpointed, so the next step's episodes differ).
    Other workloads: the next step's metrics equal those of the run that went on without stopping.
    """
    import os

    import numpy as np

    first = make(name, trial_dir=f"{trial_dir}/first")
    second = None
    try:
        first.step()
        checkpoint = os.path.join(trial_dir, "checkpoint")
        os.makedirs(checkpoint)
        first.save(checkpoint)
        assert os.listdir(checkpoint), f"{name}.save() wrote nothing"
        second = make(name, trial_dir=f"{trial_dir}/second")
        if hasattr(first, "policy_outputs"):
            observations = first.probe_observations()
            trained, fresh = first.policy_outputs(observations), second.policy_outputs(observations)
            assert not np.allclose(trained, fresh, rtol=1e-5, atol=1e-6), \
                f"{name}: one step of training left the policy's outputs as they were: restore cannot be checked"
            second.restore(checkpoint)
            restored = second.policy_outputs(observations)
            assert np.allclose(restored, trained, rtol=1e-5, atol=1e-6), \
                f"{name}: the policy's outputs after save and restore are not the trained ones " \
                f"(largest difference {np.max(np.abs(restored - trained)):.3g})"
            second.step()  # a restored agent goes on training
        else:
            second.restore(checkpoint)
            assert_same_metrics(name, first.step(), second.step(), "the step after restore")
    finally:
        first.close()
        if second is not None:
            second.close()


def exports(name: str) -> bool:
    """Whether the workload overrides `export` (`lab export` writes its model)."""
    return workloads.get(name).export is not workloads.Workload.export


def check_export_round_trip(names: list[str], trial_dir: str) -> None:
    """`export` after one step writes a model that `load_exported` reads back in a fresh process (one process
    for all `names`: TensorFlow is imported once)."""
    import os
    import subprocess
    import sys

    paths = {}
    for name in names:
        workload = make(name, trial_dir=f"{trial_dir}/{name}/run")
        try:
            workload.step()
            out_dir = f"{trial_dir}/{name}/export"
            os.makedirs(out_dir, exist_ok=True)  # as `lab export --out` does
            paths[name] = workload.export(out_dir)
        finally:
            workload.close()
    code = ("import sys\nfrom lab import settings, workload\nsettings.apply_worker_env()\n"
            f"for name, path in {paths!r}.items():\n"
            "    loaded = workload.get(name).load_exported(path)\n"
            "    assert loaded is not None and loaded != {}, (name, loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, "loading the exports in a fresh process failed: " + \
        " | ".join(out.stderr.strip().splitlines()[-2:])


def check_workload(name: str, trial_dir: str | None = None, slow: bool = True) -> None:
    """Every check on one workload (`slow=False`: only those that run no training)."""
    trial_dir = trial_dir or tempfile.mkdtemp(prefix=f"lab-check-{name}-")
    check_default_config(name)
    check_imports_light([name])
    if not slow:
        return
    results = run_to_done(name, trial_dir=f"{trial_dir}/to-done")
    check_declared_metrics(name, results)
    check_seed_determinism(name, f"{trial_dir}/seed", results[0])
    check_restore_equivalence(name, f"{trial_dir}/restore")
    if exports(name):
        check_export_round_trip([name], f"{trial_dir}/export")
