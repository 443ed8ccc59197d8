"""One way in: every spec that runs is made by `runnable(raw, source)`, whichever way it came in (`lab run`,
`lab submit`, `lab.run` with a preset, a file or a dict, `lab rerun` and `lab resume` with a recorded row,
`lab baselines` with its own), so each gets the same checks, each run once:

1. `--set` overrides, `seed: per_trial`, and the search space typed (`Distribution`: a randint's
   whole-number bounds as ints);
2. the fields (`build_spec`: a location carrying a credential fails here, never shown), then the services
   the spec names (storage, MLflow) asked about unless `source.trusted`;
3. one workload config per fixed params and per searched value (unknown parameters, wrong types), then the
   metric names against those same configs;
4. the workload's resolution of params (a CSV by absolute path and content hash: a changed file fails);
5. the identical-trials warning.

The result is a `RunnableSpec`; `lab.execution.runner.run` sends any other ExperimentSpec through here first.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from lab.errors import SpecError
from lab.spec.load import (
    Problems,
    _say,
    apply_overrides,
    build_spec,
    per_trial_seeds,
    read_source,
)
from lab.spec.metrics import check_metrics
from lab.spec.model import Distribution, ExperimentSpec, RunnableSpec, Source
from lab.spec.safety import confirm_services, untrusted_services


def runnable(raw: Any, source: Source, overrides: list[str] = (), say=None) -> RunnableSpec:
    """The spec `raw` from `source` with `--set` `overrides`, checked once: SpecError naming every problem
    (one per line), else a RunnableSpec. `say` (default: stderr) gets the notes and the warning."""
    say = say or _say
    if not isinstance(raw, dict):
        raise SpecError(f"{source.label} must be a mapping of spec fields, got {type(raw).__name__}")
    raw = apply_overrides(raw, list(overrides), say)
    raw = per_trial_seeds(raw, source.label)
    distributions, raw = typed_search(raw)
    problems = Problems()
    spec = problems.collect(build_spec, raw, source.label)  # a location carrying a credential fails here
    if spec is not None and not source.trusted:  # an untrusted source does not choose the services on its own
        overridden = {text.split("=", 1)[0].split(".", 1)[0] for text in overrides}
        confirm_services(untrusted_services(raw, overridden), source.label, trusted=False)
    workload = spec.workload if spec is not None else raw.get("workload")
    if isinstance(workload, str):  # the spec may be wrong, but its params can still be checked
        params = spec.trial_params if spec is not None else {"seed": 0, **_mapping(raw.get("params"))}
        configs = problems.collect(workload_configs, workload, params, distributions)
        if spec is not None and configs is not None:
            problems.collect(check_metrics, spec, configs)
    problems.raise_if_any()
    spec = resolve_params(spec)
    warning = identical_trials(spec)
    if warning:
        say(warning)
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(ExperimentSpec)}
    return RunnableSpec(**fields, source=source, distributions=distributions)


def as_runnable(spec: ExperimentSpec) -> RunnableSpec:
    """`spec` itself when it came through `runnable`, else `spec` sent through it (the caller's own object)."""
    if isinstance(spec, RunnableSpec):
        return spec
    return runnable(spec.to_dict(), Source.mapping(f"spec '{spec.name}'"))


def load(source: str, overrides: list[str] = (), trust_spec: bool = False, say=None) -> list[RunnableSpec]:
    """The experiments a preset name or YAML file describes (several for a suite), each made by `runnable`.

    A spec file (not a preset) that names a storage or an MLflow server is used only with `trust_spec` or
    the user's yes at a terminal (lab/spec/safety.py). The notes and warnings go to `say` (default: stderr)
    once every spec is valid.
    """
    said: list[str] = []
    raw, origin = read_source(source, trust_spec)
    if "suite" in raw:
        members = raw["suite"]
        if not isinstance(members, list) or not members:
            raise SpecError(f"'suite' in {origin.label} must be a non-empty list of presets or specs")
        sources = [read_source(member, trust_spec) if isinstance(member, str) else (member, origin)
                   for member in members]
        if any(not isinstance(member_raw, dict) for member_raw, _ in sources):
            raise SpecError(f"suite member in {origin.label} must be a preset name or a mapping")
    else:
        sources = [(raw, origin)]
    specs = [runnable(member_raw, member_source, overrides, said.append) for member_raw, member_source in sources]
    for line in said:
        (say or _say)(line)
    return specs


def validated(raw: dict[str, Any], label: str, say=None) -> RunnableSpec:
    """`runnable` for a mapping the caller made itself (trusted), named `label` in messages."""
    return runnable(raw, Source.mapping(label), say=say)


def typed_search(raw: dict[str, Any]) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """The well-formed search entries typed, and `raw` with them normalised (the malformed ones are left for
    `build_spec` to name)."""
    search = raw.get("search")
    if not isinstance(search, dict):
        return {}, raw
    typed, normalised = {}, {}
    for key, dist in search.items():
        try:
            typed[key] = Distribution.parse(key, dist)
            normalised[key] = typed[key].to_raw()
        except ValueError:
            normalised[key] = dist
    return typed, {**raw, "search": normalised}


def workload_configs(workload: str, params: dict[str, Any], search: dict[str, Distribution]) -> list:
    """The workload's config of the fixed `params`, then of each value (or range bound) the search can
    produce: each made once; SpecError with every distinct problem, one per line."""
    from lab import workload as workloads

    cls = workloads.get(workload)
    problems = Problems()
    configs = [problems.collect(cls.make_config, params)]
    for key, dist in search.items():
        configs += [problems.collect(cls.make_config, {**params, key: value}) for value in dist.candidates]
    problems.raise_if_any()
    return configs


def validate_params(spec: ExperimentSpec) -> None:
    """The params and metric checks of `runnable` for an ExperimentSpec already built."""
    distributions, _ = typed_search({"search": spec.search})
    check_metrics(spec, workload_configs(spec.workload, spec.trial_params, distributions))


def resolve_params(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with its workload's own resolution of params (e.g. a data file by absolute path and hash)."""
    from lab import workload as workloads

    params = workloads.get(spec.workload).resolve_params(dict(spec.params))
    return spec if params == spec.params else dataclasses.replace(spec, params=params)


def identical_trials(spec: ExperimentSpec) -> str | None:
    """A one-line warning when the spec would run the same trial several times, else None."""
    if spec.num_samples <= 1:
        return None
    if not spec.search:
        return (f"lab: warning: the {spec.num_samples} trials of '{spec.name}' would be identical (no search, "
                f"one seed {spec.seed}): vary them with --set seed=per_trial, add a search, or set num_samples=1")
    if all("grid" in dist for dist in spec.search.values()):
        return (f"lab: warning: '{spec.name}' runs each grid point {spec.num_samples} times with the same seed "
                "(identical trials): vary them with --set seed=per_trial, or set num_samples=1")
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
