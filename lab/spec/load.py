"""Reading a spec: its source (a preset, a YAML file, a suite), `--set` overrides, and the checks that make
it an `ExperimentSpec` (`lab.spec.model`) the runner can trust.

Layering, lowest first: the workload's Config defaults < the preset or YAML file < `--set key=value`.
A suite (e.g. the quickstart) is a YAML file with `suite: [preset or spec, ...]`: one experiment each.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import re
from pathlib import Path
from typing import Any

import yaml

from lab import plugins
from lab.errors import SpecError, quoted
from lab.spec.model import (
    ExperimentSpec,
    Reference,
    Resources,
    Scheduler,
    Searcher,
    check_distribution,
)
from lab.spec.safety import confirm_services, untrusted_services
from lab.workload.config import build_dataclass, suggest


class SpecLoader(yaml.SafeLoader):
    """`yaml.safe_load`'s loader (plain data only) with YAML 1.2's floats: `1e-2`, `1E2` and `3e-4` are
    numbers, as they are in `--set` (YAML 1.1, PyYAML's default, reads a float without a dot as a string).
    Aliases (`*name`) are refused: a few hundred bytes of them expand into gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not accepted in a spec: write the value out",
                self.peek_event().start_mark)
        return super().compose_node(parent, index)


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - a SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(f"malformed YAML in {source}{where}: {problem}") from None


def presets() -> dict[str, Any]:
    """Every preset shipped: the lab's own and those of the `agent_lab.presets` packages; name -> YAML resource."""
    found = {}
    packages = ["lab", *(entry.value for entry in plugins.entry_points(plugins.PRESETS).values())]
    for package in packages:
        folder = importlib.resources.files(package) / "presets"
        if folder.is_dir():
            for item in folder.iterdir():
                if item.name.endswith(".yaml"):
                    found[item.name[: -len(".yaml")]] = item
    return found


def read_source(source: str) -> tuple[dict[str, Any], str]:
    """The raw mapping of a preset name or a YAML path, and a label for messages."""
    path = Path(source)
    if source.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file not found: {source}")
        text, label = path.read_text(), str(path)
    else:
        known = presets()
        if source not in known:
            raise SpecError(f"unknown preset '{source}'{suggest(source, known)}")
        text, label = known[source].read_text(), f"preset '{source}'"
    raw = parse_yaml(text, label)
    if not isinstance(raw, dict):
        raise SpecError(f"{label} must be a mapping of spec fields, got {type(raw).__name__}")
    return raw, label


def parse_override(text: str) -> tuple[list[str], Any]:
    """'params.learning_rate=1e-3' -> (['params', 'learning_rate'], 0.001)."""
    if "=" not in text:
        raise SpecError(f"--set expects key=value, got {quoted(text)}")
    key, value = text.split("=", 1)
    if not key:
        raise SpecError(f"--set expects key=value, got {quoted(text)}")
    parsed = parse_yaml(value, f"--set {key}") if value else ""  # the spec's own number syntax
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str], say=None) -> dict[str, Any]:
    """Apply `--set a.b=value` to a copy of the raw spec; a bare param name goes to params.

    A fixed value for a searched parameter replaces its search (and a search replaces a fixed value);
    `say` (default: stderr) gets one line saying so.
    """
    raw = copy.deepcopy(raw)
    say = say or _say
    top_fields = {f.name for f in dataclasses.fields(ExperimentSpec)}
    for text in overrides:
        path, value = parse_override(text)
        if path[0] not in top_fields:
            path = ["params", *path]  # `--set learning_rate=0.01` means params.learning_rate
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(f"--set {'.'.join(path)}: '{part}' is not a mapping")
            node = child
        node[path[-1]] = value
        if path[0] == "params" and len(path) == 2:  # a fixed value replaces a search over it
            replaced = (raw.get("search") or {}).pop(path[1], None)
            if replaced is not None:
                say(f"lab: note: --set {text.split('=', 1)[0]}={_inline(value)} replaces the search over "
                    f"'{path[1]}' ({_inline(replaced)}): every trial gets {_inline(value)}")
        if path[0] == "search" and len(path) >= 2:  # and a search replaces the fixed value
            replaced = (raw.get("params") or {}).pop(path[1], None)
            if replaced is not None:
                say(f"lab: note: --set {text.split('=', 1)[0]} replaces the fixed '{path[1]}: {_inline(replaced)}' "
                    "with a search")
    return raw


def _inline(value: Any) -> str:
    """A value as one line of YAML flow style (what the user would type)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()


def _say(line: str) -> None:
    from lab.quiet import terminal

    print(line, file=terminal(), flush=True)


def per_trial_seeds(raw: dict[str, Any], label: str) -> dict[str, Any]:
    """`seed: per_trial`: trial i of each sample gets seed i, as a grid over `seed` (num_samples of them).

    The spec then reads `search: {seed: {grid: [0, .., n-1]}}, num_samples: 1, seed: 0`: as many trials
    as before, each drawing the other searched values afresh, and the recorded spec says what ran.
    """
    if raw.get("seed") != "per_trial":
        return raw
    samples = raw.get("num_samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise SpecError(f"seed: per_trial in {label} needs num_samples >= 1 (the number of seeds), got {quoted(samples)}")
    search = dict(raw.get("search") or {})
    if "seed" in search or "seed" in (raw.get("params") or {}):
        raise SpecError(f"seed: per_trial in {label} cannot go with a 'seed' in params or search")
    searcher = (raw.get("searcher") or {}).get("type", "random") if isinstance(raw.get("searcher"), dict) else "random"
    if searcher != "random":
        raise SpecError(f"seed: per_trial in {label} needs searcher random (a grid of seeds), not {quoted(searcher)}")
    search["seed"] = {"grid": list(range(samples))}
    return {**raw, "seed": 0, "num_samples": 1, "search": search}


def whole_randint_bounds(raw: dict[str, Any]) -> dict[str, Any]:
    """`randint: [1e1, 1e2]` draws integers: its whole-number bounds become ints (YAML reads 1e1 as 10.0)."""
    search = raw.get("search")
    if not isinstance(search, dict):
        return raw
    fixed = {}
    for key, dist in search.items():
        bounds = dist.get("randint") if isinstance(dist, dict) and len(dist) == 1 else None
        if isinstance(bounds, list) and all(isinstance(b, float) and b.is_integer() for b in bounds):
            dist = {"randint": [int(b) for b in bounds]}
        fixed[key] = dist
    return {**raw, "search": fixed}


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


def build_spec(raw: dict[str, Any], label: str) -> ExperimentSpec:
    """Validate a raw mapping into an ExperimentSpec; SpecError names every problem found, one per line."""
    raw, problems = dict(raw), Problems()
    for key, cls in (("scheduler", Scheduler), ("searcher", Searcher), ("resources", Resources),
                     ("reference", Reference)):
        value = raw.pop(key, None)
        if isinstance(value, dict):
            built = problems.collect(build_dataclass, cls, value, owner=f"'{key}' in {label}")
            if built is not None:
                raw[key] = built
        elif value is not None:
            problems.add(f"'{key}' in {label} must be a mapping, got {quoted(value)}")
    for key in ("params", "search", "stop"):
        if raw.get(key) is None:
            raw.pop(key, None)
    spec = problems.collect(build_dataclass, ExperimentSpec, raw, owner=label)
    problems.raise_if_any()
    return spec


class Problems:
    """The problems of a spec, gathered from independent checks, raised together (one per line)."""

    def __init__(self):
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)

    def collect(self, check, *args, **kwargs) -> Any:
        """`check(*args, **kwargs)`, or None with its SpecError's lines kept."""
        try:
            return check(*args, **kwargs)
        except SpecError as exc:
            for line in str(exc).splitlines():
                self.add(line)
            return None

    def raise_if_any(self) -> None:
        if self.lines:
            raise SpecError("\n".join(self.lines))


def load(source: str, overrides: list[str] = (), trust_spec: bool = False, say=None) -> list[ExperimentSpec]:
    """The experiments a preset name or YAML file describes (several for a suite), validated.

    Validation reaches into the workload: unknown parameters and wrong types fail here, before
    Ray starts or the registry is touched. `say` (default: stderr) gets the one-line notes and
    warnings: an override that replaced a search, a spec whose trials would all be identical. A spec
    file (not a preset) that names a storage or an MLflow server is used only with `trust_spec` or the
    user's yes at a terminal (lab/spec/safety.py).
    """
    said: list[str] = []  # notes and warnings, told only once every spec is valid
    raw, label = read_source(source)
    overridden = {text.split("=", 1)[0].split(".", 1)[0] for text in overrides}
    if "suite" in raw:
        members = raw["suite"]
        if not isinstance(members, list) or not members:
            raise SpecError(f"'suite' in {label} must be a non-empty list of presets or specs")
        specs = []
        for member in members:
            member_raw, member_label = (read_source(member) if isinstance(member, str) else (member, label))
            if not isinstance(member_raw, dict):
                raise SpecError(f"suite member in {label} must be a preset name or a mapping")
            _confirm(member_raw, member_label, overridden, trust_spec)
            specs.append(validated(apply_overrides(member_raw, list(overrides), said.append), member_label, said.append))
    else:
        _confirm(raw, label, overridden, trust_spec)
        specs = [validated(apply_overrides(raw, list(overrides), said.append), label, said.append)]
    for line in said:
        (say or _say)(line)
    return specs


def _confirm(raw: dict[str, Any], label: str, overridden: set[str], trust_spec: bool) -> None:
    """Presets ship with the lab; a spec file from elsewhere does not choose the services on its own."""
    if not (label.startswith("preset '") and not Path(label).exists()):
        confirm_services(untrusted_services(raw, label, overridden), label, trust_spec)


def validated(raw: dict[str, Any], label: str, say=None) -> ExperimentSpec:
    """The spec and its workload params checked together: every problem of both in one SpecError."""
    raw = whole_randint_bounds(per_trial_seeds(raw, label))
    problems = Problems()
    spec = problems.collect(build_spec, raw, label)
    if spec is not None:
        problems.collect(validate_params, spec)
    elif isinstance(raw.get("workload"), str):  # the spec is wrong, but its params can still be checked
        search = raw.get("search") if isinstance(raw.get("search"), dict) else {}
        params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        problems.collect(check_params, raw["workload"], {"seed": 0, **params},
                         {k: d for k, d in search.items() if _well_formed(k, d)})
    problems.raise_if_any()
    spec = resolve_params(spec)
    warning = identical_trials(spec)
    if warning:
        (say or _say)(warning)
    return spec


def _well_formed(key: str, dist: Any) -> bool:
    try:
        check_distribution(key, dist)
    except ValueError:
        return False
    return True


def validate_params(spec: ExperimentSpec) -> None:
    """Check the fixed params and every value the search can produce against the workload's Config,
    then the metric, stop keys and reference against the metrics the workload declares."""
    from lab.spec.metrics import check_metrics

    check_params(spec.workload, spec.trial_params, spec.search)
    check_metrics(spec)


def check_params(workload: str, params: dict[str, Any], search: dict[str, Any]) -> None:
    """The fixed `params`, then each listed value (or range bound) of `search`, against the workload's
    Config; a SpecError with every distinct problem, one per line."""
    from lab import workload as workloads

    cls = workloads.get(workload)
    problems = Problems()
    problems.collect(cls.make_config, params)  # the fixed params alone
    for key, dist in search.items():  # and every value the search can produce
        (kind, args), = dist.items()
        for value in args:  # the listed values, or the two bounds of a range
            problems.collect(cls.make_config, {**params, key: value})
    problems.raise_if_any()


def resolve_params(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with its workload's own resolution of params (e.g. a data file by absolute path and hash)."""
    from lab import workload as workloads

    params = workloads.get(spec.workload).resolve_params(dict(spec.params))
    return spec if params == spec.params else dataclasses.replace(spec, params=params)
