"""A spec's metric names against what its workload declares it reports, before anything runs.

Tune only finds out at the first result that a trial never reports the spec's `metric` (a TuneError
after the experiment is recorded); `Workload.metric_names(config)` says it up front.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lab.errors import SpecError
from lab.workload.config import suggest

if TYPE_CHECKING:
    from lab.spec.model import ExperimentSpec

# the keys Tune adds to every result (ray.tune.result.AUTO_RESULT_KEYS and the counters), usable in `stop`
TUNE_KEYS = frozenset({
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "timesteps_total",
    "timesteps_since_restore", "iterations_since_restore", "episodes_total", "timestamp", "done",
})


def declared_metrics(spec: ExperimentSpec, configs: list) -> frozenset[str] | None:
    """Every metric a trial of `spec` may report, over the workload `configs` of every value its search can
    produce (`lab.spec.runnable.workload_configs`), or None when the workload does not declare them."""
    from lab import workload as workloads

    cls = workloads.get(spec.workload)
    names: set[str] = set()
    for config in configs:
        declared = cls.metric_names(config)
        if declared is None:
            return None
        names |= set(declared)
    return frozenset(names)


def check_metrics(spec: ExperimentSpec, configs: list) -> None:
    """SpecError when the spec's `metric`, a `stop` key or the reference metric is never reported by any of
    the workload `configs` (those the params check made: nothing is made twice)."""
    declared = declared_metrics(spec, configs)
    if declared is None:
        return
    known = declared | TUNE_KEYS
    wanted = [("metric", spec.metric)] + [("stop key", key) for key in spec.stop]
    if spec.reference.metric:
        wanted.append(("reference metric", spec.reference.metric))
    for what, name in wanted:
        if name not in known:
            raise SpecError(f"{what} '{name}' is not reported by workload '{spec.workload}'"
                            f"{suggest(name, known)}")
