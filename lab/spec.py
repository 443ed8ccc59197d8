"""The experiment spec: what to run, over which search space, on which resources.

Layering, lowest first: the workload's Config defaults < the preset or YAML file < `--set key=value`.
A suite (e.g. the quickstart) is a YAML file with `suite: [preset or spec, ...]`: one experiment each.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.errors import SpecError
from lab.workload import build_dataclass, suggest

PRESET_PACKAGES = ("lab", "classical", "deep", "agents")
DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")
SCHEDULERS = ("fifo", "asha")


@dataclass(frozen=True)
class Scheduler:
    """Tune trial scheduler: `fifo` runs every trial to its stop; `asha` stops the weak ones early."""

    type: str = "fifo"
    max_t: int = 100  # ASHA: the most iterations a trial may run
    grace_period: int = 1  # ASHA: iterations before a trial may be stopped
    reduction_factor: float = 2.0  # ASHA: the fraction 1/rf of trials promoted at each rung

    def check(self) -> None:
        if self.type not in SCHEDULERS:
            raise ValueError(f"scheduler type must be one of {', '.join(SCHEDULERS)}, got {self.type!r}")
        if self.max_t < 1 or self.grace_period < 1 or self.reduction_factor <= 1:
            raise ValueError("scheduler needs max_t >= 1, grace_period >= 1 and reduction_factor > 1")


@dataclass(frozen=True)
class Resources:
    """Resources of one trial: CPUs and (fractional) GPUs."""

    cpu: float = 1.0
    gpu: float = 0.0

    def check(self) -> None:
        if self.cpu <= 0 and self.gpu <= 0:
            raise ValueError("resources need cpu > 0 or gpu > 0")
        if self.cpu < 0 or self.gpu < 0:
            raise ValueError("resources cannot be negative")
        if self.gpu > 1 and not float(self.gpu).is_integer():
            raise ValueError(f"a trial asking for more than one GPU needs a whole number, got {self.gpu}")


@dataclass(frozen=True)
class Reference:
    """The score a preset must reach (checked by the benchmarks and printed by `lab best`)."""

    metric: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class ExperimentSpec:
    """One Ray Tune experiment of a workload."""

    name: str
    workload: str
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # fixed workload parameters
    search: dict[str, Any] = field(default_factory=dict)  # param -> {grid|choice|uniform|loguniform|randint: ...}
    metric: str = ""  # the metric that ranks trials, e.g. eval/average_return
    mode: str = "max"  # max or min
    num_samples: int = 1  # samples of the search space (times every grid point)
    scheduler: Scheduler = Scheduler()
    stop: dict[str, float] = field(default_factory=dict)  # e.g. {training_iteration: 20, eval/average_return: 475}
    resources: Resources = Resources()
    seed: int = 0
    max_failures: int = 0  # retries of a failed trial, from its last checkpoint
    checkpoint_every: int = 1  # iterations between checkpoints (0: only at the end)
    time_budget_s: float = 0.0  # stop the whole experiment after this many seconds (0: none)
    reference: Reference = Reference()

    def check(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"name must be a non-empty word without slashes or spaces, got {self.name!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        if self.max_failures < 0 or self.checkpoint_every < 0 or self.time_budget_s < 0:
            raise ValueError("max_failures, checkpoint_every and time_budget_s cannot be negative")
        if not self.metric:
            raise ValueError("metric is required (the metric that ranks trials)")
        for key, value in self.stop.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"stop criterion '{key}' must be a number, got {value!r}")
        for key, dist in self.search.items():
            check_distribution(key, dist)
        overlap = set(self.search) & set(self.params)
        if overlap:
            raise ValueError(f"'{sorted(overlap)[0]}' is both in params and in search")

    @property
    def trial_params(self) -> dict[str, Any]:
        """The fixed params with the spec's seed filled in (every workload Config has a seed)."""
        return {"seed": self.seed, **self.params}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_distribution(key: str, dist: Any) -> None:
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ValueError(f"search '{key}' must be one of {{{'|'.join(DISTRIBUTIONS)}: ...}}, got {dist!r}")
    (kind, args), = dist.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"search '{key}' has unknown distribution '{kind}'{suggest(kind, DISTRIBUTIONS)}")
    if kind in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise ValueError(f"search '{key}': {kind} needs a non-empty list of values")
    else:
        if not (isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args)):
            raise ValueError(f"search '{key}': {kind} needs [low, high], got {args!r}")
        low, high = args
        if not low < high or (kind == "loguniform" and low <= 0):
            raise ValueError(f"search '{key}': {kind} needs 0 < low < high for loguniform, low < high otherwise")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------ loading
def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(f"malformed YAML in {source}{where}: {problem}") from None


def presets() -> dict[str, Any]:
    """Every preset shipped in the packages: name -> resource (a YAML file)."""
    found = {}
    for package in PRESET_PACKAGES:
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
        raise SpecError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    if not key:
        raise SpecError(f"--set expects key=value, got {text!r}")
    parsed = parse_yaml(value, f"--set {key}") if value else ""
    if isinstance(parsed, str):
        try:
            parsed = float(parsed) if any(c in parsed for c in ".eE") else parsed
        except ValueError:
            pass
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set a.b=value` to a copy of the raw spec; a bare param name goes to params."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
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
        if path[0] == "params" and len(path) == 2:
            (raw.get("search") or {}).pop(path[1], None)  # a fixed value replaces a search over it
        if path[0] == "search" and len(path) >= 2:
            (raw.get("params") or {}).pop(path[1], None)  # and a search replaces the fixed value
    return raw


def build_spec(raw: dict[str, Any], label: str) -> ExperimentSpec:
    """Validate a raw mapping into an ExperimentSpec; SpecError names the first problem."""
    raw = dict(raw)
    for key, cls in (("scheduler", Scheduler), ("resources", Resources), ("reference", Reference)):
        value = raw.get(key)
        if value is None:
            raw.pop(key, None)
        elif isinstance(value, dict):
            raw[key] = build_dataclass(cls, value, owner=f"'{key}' in {label}")
        else:
            raise SpecError(f"'{key}' in {label} must be a mapping, got {value!r}")
    for key in ("params", "search", "stop"):
        if raw.get(key) is None:
            raw.pop(key, None)
    return build_dataclass(ExperimentSpec, raw, owner=label)


def load(source: str, overrides: list[str] = ()) -> list[ExperimentSpec]:
    """The experiments a preset name or YAML file describes (several for a suite), validated.

    Validation reaches into the workload: unknown parameters and wrong types fail here, before
    Ray starts or the registry is touched.
    """
    raw, label = read_source(source)
    if "suite" in raw:
        members = raw["suite"]
        if not isinstance(members, list) or not members:
            raise SpecError(f"'suite' in {label} must be a non-empty list of presets or specs")
        specs = []
        for member in members:
            member_raw, member_label = (read_source(member) if isinstance(member, str) else (member, label))
            if not isinstance(member_raw, dict):
                raise SpecError(f"suite member in {label} must be a preset name or a mapping")
            specs.append(_validated(apply_overrides(member_raw, list(overrides)), member_label))
        return specs
    return [_validated(apply_overrides(raw, list(overrides)), label)]


def _validated(raw: dict[str, Any], label: str) -> ExperimentSpec:
    spec = build_spec(raw, label)
    validate_params(spec)
    return spec


def validate_params(spec: ExperimentSpec) -> None:
    """Check the fixed params and every value the search can produce against the workload's Config."""
    from lab import workload as workloads

    cls = workloads.get(spec.workload)
    params = spec.trial_params
    cls.make_config(params)  # the fixed params alone
    for key, dist in spec.search.items():  # and every value the search can produce
        (kind, args), = dist.items()
        for value in args:  # the listed values, or the two bounds of a range
            cls.make_config({**params, key: value})
