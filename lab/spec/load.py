"""Reading a spec: its source (a preset, a YAML file, a suite), `--set` overrides, per-trial seeds, and the
fields' own checks (`build_spec`); `lab.spec.runnable` puts them together with the workload's checks.

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
from lab.errors import SpecError, printable, quoted
from lab.spec.model import (
    ExperimentSpec,
    Reference,
    Resources,
    Scheduler,
    Searcher,
    Source,
)
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


def read_source(source: str, trust_spec: bool = False) -> tuple[dict[str, Any], Source]:
    """The raw mapping of a preset name or a YAML path, and its Source: a preset is trusted (it ships with
    the lab), a file only with `trust_spec`."""
    path = Path(source)
    if source.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file not found: {source}")
        text, origin = path.read_text(), Source.file(str(path), trusted=trust_spec)
    else:
        known = presets()
        if source not in known:
            raise SpecError(f"unknown preset '{printable(source)}'{suggest(source, known)}")
        text, origin = known[source].read_text(), Source.preset(source)
    raw = parse_yaml(text, origin.label)
    if not isinstance(raw, dict):
        raise SpecError(f"{origin.label} must be a mapping of spec fields, got {type(raw).__name__}")
    return raw, origin


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
