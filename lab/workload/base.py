"""The one workload protocol and the workload registry.

A workload is one trainable thing (a scikit-learn pipeline, a Keras model, a TF-Agents agent).
It knows nothing of Ray or TensorBoard files: the Tune adapter (`lab.run.trainable`) drives it.

    class MyWorkload(Workload):               # registered in pyproject.toml:
        name = "my_workload"                  # [project.entry-points."agent_lab.workloads"]
                                              # my_workload = "my_package.my_module:MyWorkload"

        @dataclass
        class Config:
            seed: int = 0
            learning_rate: float = 1e-3

        test_params = {"learning_rate": 1e-2}    # a tiny run for the conformance test

        def setup(self): ...                      # heavy work: data, model
        def step(self) -> dict[str, float]: ...   # one unit of training, flat namespaced metrics
        def save(self, checkpoint_dir): ...
        def restore(self, checkpoint_dir): ...
        def export(self, out_dir) -> str: ...     # optional: the model in a portable format (`lab export`)
        @classmethod
        def load_exported(cls, path): ...         # optional: what export wrote, loaded (lab.workload.testing checks it)
        @classmethod
        def metric_names(cls, config): ...        # the keys step() reports (specs and lab.workload.testing check them)

Workloads are found through the `agent_lab.workloads` entry points (`lab.plugins`): `get(name)`
imports only that workload's module, `discover()` all of them. Workload modules must not import
TensorFlow or Ray at module level (import them inside `setup`), so that specs validate, and the CLI
starts, without paying for those imports.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, ClassVar, Literal

from lab import plugins
from lab.errors import LabError, SpecError

WORKLOADS: dict[str, type[Workload]] = {}


@dataclasses.dataclass
class TrialContext:
    """What the adapter gives a workload: where to write, how to log media, which devices it has."""

    trial_dir: str
    trial_id: str = "local"
    num_gpus: float = 0.0
    logger: Any = None  # lab.results.tboard.MediaLogger: .image(tag, array), .text(tag, str), .figure(tag, fig)
    policy_only: bool = False  # rebuilt only to export or evaluate its model (`lab export`, `lab eval`): an RL
    #   workload then builds its policy and networks, not its replay buffer or training machinery


class Workload:
    """Base class of every workload; subclasses set `name` and `Config` and override the methods."""

    name: ClassVar[str]
    Config: ClassVar[type]
    test_params: ClassVar[dict[str, Any]] = {}  # a tiny run (seconds) for the conformance test

    def __init__(self, config: Any, context: TrialContext):
        self.config = config
        self.context = context

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Validate a plain dict into `Config`; raise SpecError naming the first problem."""
        return build_dataclass(cls.Config, params, owner=f"workload '{cls.name}'")

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The params as they should be recorded (called once, after validation, when a spec is loaded):
        e.g. a data file by its absolute path and content hash, so a rerun or resume means the same data."""
        return params

    @classmethod
    def searchable_params(cls, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Parameters beyond `Config` that `params` may also set, grouped ({group: {name: default}}):
        e.g. a scikit-learn pipeline's `step__param` names by step (`lab params` lists them)."""
        return {}

    @classmethod
    def metric_names(cls, config: Any) -> frozenset[str] | None:
        """The metric keys `step()` reports under `config` (before `setup`); None: not declared.

        Specs are checked against it: a `metric`, `stop` key or scheduler metric outside it is refused
        before anything runs. The conformance suite checks it against a real `step()`.
        """
        return None

    def setup(self) -> None:
        """Load data, build models. Called once, in the trial's process."""

    def step(self) -> dict[str, Any]:
        """Train one unit (an epoch, N env steps, one CV run); return flat namespaced metrics.

        Keys look like `eval/average_return`, `train/loss`, `charts/sps`. Return `done: True` once
        the workload's own budget is spent.
        """
        raise NotImplementedError

    def save(self, checkpoint_dir: str) -> None:
        """Write everything needed to resume into `checkpoint_dir` (no pickle)."""
        raise NotImplementedError

    def restore(self, checkpoint_dir: str) -> None:
        """Load the state written by `save`."""
        raise NotImplementedError

    def export(self, out_dir: str) -> str:
        """Write the trained model in a portable, safe format under `out_dir`; return the written path.

        Optional (`lab export`): scikit-learn -> skops, Keras -> `.keras`, TF-Agents -> PolicySaver.
        """
        raise LabError(f"workload '{self.name}' cannot export its model")

    @classmethod
    def load_exported(cls, path: str) -> Any:
        """Load what `export` wrote at `path` (the conformance suite loads it in a fresh process)."""
        raise LabError(f"workload '{cls.name}' cannot load an exported model")

    def close(self) -> None:
        """Release resources (environments, sessions)."""


def register(cls: type[Workload]) -> type[Workload]:
    """Check a workload class and add it to `WORKLOADS` under `cls.name` (entry points are loaded through it)."""
    if not dataclasses.is_dataclass(cls.Config):
        raise TypeError(f"{cls.__name__}.Config must be a dataclass")
    if "seed" not in {f.name for f in dataclasses.fields(cls.Config)}:
        raise TypeError(f"{cls.__name__}.Config needs a 'seed' field: every trial is seeded")
    if cls.name in WORKLOADS and WORKLOADS[cls.name] is not cls:
        raise ValueError(f"workload name '{cls.name}' registered twice")
    WORKLOADS[cls.name] = cls
    return cls


def discover() -> dict[str, type[Workload]]:
    """Load every workload entry point (importing their modules); name -> class."""
    for name, entry in plugins.entry_points(plugins.WORKLOADS).items():
        _load(name, entry)
    return WORKLOADS


def get(name: str) -> type[Workload]:
    """The workload class called `name` (importing its module only), or a SpecError suggesting close names."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    entries = plugins.entry_points(plugins.WORKLOADS)
    if name not in entries:
        raise SpecError(f"unknown workload '{name}'{suggest(name, {*entries, *WORKLOADS})}")
    return _load(name, entries[name])


def _load(name: str, entry) -> type[Workload]:
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, Workload)) or getattr(cls, "name", None) != name:
        raise TypeError(f"entry point {name} = {entry.value} is not a Workload named '{name}'")
    return register(cls)


def suggest(word: str, choices, limit: int = 30) -> str:
    """' (did you mean ...?)' for close matches in any spelling (see `close_names`), else a short list of
    what is known (nothing when there are more than `limit`)."""
    choices = sorted(choices)
    close = close_names(word, choices)
    if close:
        return f" (did you mean {', '.join(repr(c) for c in close)}?)"
    return f" (known: {', '.join(choices)})" if len(choices) <= limit else ""


def close_names(word: str, choices, n: int = 3) -> list[str]:
    """Names of `choices` that `word` may mean, best first, across the ways a name is spelt:
    the short name of a `step__param` (`max_depth` -> `randomforestclassifier__max_depth`), initials
    (`lr` -> `learning_rate`), a different case or separator, and plain typos (difflib)."""
    choices = list(choices)
    key = _normal(word)
    found: list[str] = []

    def add(names) -> None:
        found.extend(name for name in names if name not in found)

    add(c for c in choices if _normal(c) == key)
    add(c for c in choices if _normal(_short(c)) == key)
    add(c for c in choices if _normal(c).endswith("_" + key) or _normal(_short(c)).startswith(key + "_"))
    add(c for c in choices if len(key) >= 2 and _initials(_short(c)) == key)
    add(difflib.get_close_matches(word, choices, n=n, cutoff=0.6))
    shorts: dict[str, list[str]] = {}
    for c in choices:
        shorts.setdefault(_normal(_short(c)), []).append(c)
    for short in difflib.get_close_matches(key, list(shorts), n=n, cutoff=0.6):
        add(shorts[short])
    if not found:
        add(difflib.get_close_matches(word, choices, n=n, cutoff=0.5))
    return found[:n]


def _short(name: str) -> str:
    return name.rsplit("__", 1)[-1].rsplit(".", 1)[-1]


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def _initials(name: str) -> str:
    return "".join(part[0] for part in _normal(name).split("_") if part)


# ---------------------------------------------------------------- dataclass validation
def build_dataclass(cls: type, params: dict[str, Any], owner: str) -> Any:
    """Build dataclass `cls` from `params`, checking names and types; SpecError with every problem, one a line."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values, problems = {}, []
    for key, value in params.items():
        if not isinstance(key, str):  # YAML keys may be numbers, lists, null
            problems.append(f"parameter names of {owner} must be words, got {key!r}")
            continue
        if key not in fields:
            hint = suggest(key, fields, limit=12) or " (`lab params WORKLOAD` lists them)"
            problems.append(f"unknown parameter '{key}' for {owner}{hint}")
            continue
        try:
            values[key] = coerce(value, hints[key], f"parameter '{key}' of {owner}")
        except SpecError as exc:
            problems.append(str(exc))
    problems += [
        f"missing parameter '{n}' for {owner}" for n, f in fields.items()
        if n not in params and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if problems:
        raise SpecError("\n".join(problems))
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None:
        try:
            check()
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{owner}: {exc}") from None
    return config


def coerce(value: Any, hint: Any, what: str) -> Any:
    """Check `value` against a type hint, converting the harmless cases (int->float, '1e-3'->float)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, what)
            except SpecError:
                pass
        raise SpecError(f"{what} must be {_hint_name(hint)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise SpecError(f"{what} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{what} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(coerce(v, item, what) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"{what} must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise SpecError(f"{what} must be a finite number, got {value!r}")
            return float(value)
        if isinstance(value, str):
            try:
                return coerce(float(value), float, what)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise SpecError(f"{what} must be {_hint_name(hint)}, got {value!r}")


def _hint_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(h) for h in typing.get_args(hint) if h is not type(None))
    return str(hint)
