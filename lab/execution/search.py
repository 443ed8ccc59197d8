"""The spec's search strategy as Tune objects: the search space, the trial scheduler and the searcher.

    scheduler: {type: fifo | asha | hyperband | pbt, ...}      which trials run on, stop early, or get exploited
    searcher:  {type: random | optuna | hyperopt, max_concurrent: N}   how values are drawn from `search`

PBT mutates the spec's own search space: `choice`/`grid` values are stepped to a neighbouring value,
ranges are perturbed (x0.8 or x1.2) or resampled. Ray is imported inside the functions only.
"""
from __future__ import annotations

from typing import Any

from lab.spec import ExperimentSpec


def domain(kind: str, args: Any):
    """One search entry ({kind: args}) as a Tune domain."""
    from ray import tune

    makers = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda a: tune.uniform(*a),
        "loguniform": lambda a: tune.loguniform(*a),
        "randint": lambda a: tune.randint(*a),
    }
    return makers[kind](args)


def param_space(spec: ExperimentSpec) -> dict[str, Any]:
    """The trial config: the fixed params (seed included) and a Tune domain per searched param."""
    space = dict(spec.trial_params)
    for key, dist in spec.search.items():
        (kind, args), = dist.items()
        space[key] = domain(kind, args)
    return space


def mutations(spec: ExperimentSpec) -> dict[str, Any]:
    """PBT's hyperparam_mutations: a list of values for choice/grid (PBT steps to a neighbour), a domain for ranges."""
    keys = spec.scheduler.mutations or tuple(spec.search)
    found = {}
    for key in keys:
        (kind, args), = spec.search[key].items()
        found[key] = list(args) if kind in ("grid", "choice") else domain(kind, args)
    return found


def scheduler(spec: ExperimentSpec):
    """The Tune trial scheduler of the spec."""
    from ray.tune.schedulers import (
        ASHAScheduler,
        FIFOScheduler,
        HyperBandScheduler,
        PopulationBasedTraining,
    )

    s = spec.scheduler
    if s.type == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=s.max_t, grace_period=s.grace_period,
                             reduction_factor=s.reduction_factor)
    if s.type == "hyperband":
        return HyperBandScheduler(time_attr="training_iteration", max_t=s.max_t, reduction_factor=s.reduction_factor)
    if s.type == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=s.perturbation_interval,
            hyperparam_mutations=mutations(spec),
            quantile_fraction=s.quantile_fraction,
            resample_probability=s.resample_probability,
            synch=s.synchronous,
        )
    return FIFOScheduler()


def searcher(spec: ExperimentSpec):
    """The Tune search algorithm of the spec, seeded with the spec's seed (metric/mode come from TuneConfig)."""
    kind, limit = spec.searcher.type, spec.searcher.max_concurrent
    if kind == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(random_state=spec.seed, max_concurrent=limit)
    from lab.errors import SpecError

    try:
        if kind == "optuna":
            import optuna
            from ray.tune.search.optuna import OptunaSearch

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            algorithm = OptunaSearch(seed=spec.seed)
        else:
            from ray.tune.search.hyperopt import HyperOptSearch

            algorithm = HyperOptSearch(random_state_seed=spec.seed)
    except ImportError as exc:  # the spec checks this already; a Ray worker set-up may still lack it
        raise SpecError(f"searcher '{kind}' needs {exc.name or 'its package'}: pip install 'agent-lab[search]'") from None
    if limit:
        from ray.tune.search import ConcurrencyLimiter

        algorithm = ConcurrencyLimiter(algorithm, max_concurrent=limit)
    return algorithm
