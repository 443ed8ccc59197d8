"""agent-lab: the Hands-On ML curriculum as tracked Ray Tune experiments, from the `lab` CLI or from Python.

    import lab
    result = lab.run("svc-digits", num_samples=2)
    lab.experiments(where="status = completed"), lab.trials(result.experiment_id), lab.load(result.experiment_id)

`import lab` stays light: the functions below load their modules (and TensorFlow, Ray, pandas) on first call.
"""
from __future__ import annotations

import importlib
from typing import Any

from lab.errors import ClusterError, DataError, LabError, RegistryError, SpecError, UnknownExperiment

# public name -> the module that defines it (imported on first use)
_API = {name: "lab.api" for name in (
    "run", "rerun", "experiments", "trials", "leaderboard", "compare", "load", "tag", "note", "Result")}
_API.update(history="lab.results.history", importance="lab.results.insight", report="lab.results.insight",
            QueryError="lab.registry.query")

__all__ = [*_API, "LabError", "SpecError", "RegistryError", "ClusterError", "DataError", "UnknownExperiment"]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
