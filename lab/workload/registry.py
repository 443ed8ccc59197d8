"""The workload registry: classes found through the `agent_lab.workloads` entry points (`lab.plugins`),
`get(name)` importing only that workload's module, `discover()` all of them."""
from __future__ import annotations

import dataclasses

from lab import plugins
from lab.errors import SpecError
from lab.workload.base import Workload
from lab.workload.config import suggest

WORKLOADS: dict[str, type[Workload]] = {}


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
