"""Presets say only what differs from their workload's defaults (one source of truth), and keep a reference score."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from lab import spec as specs, workload as workloads
from lab.errors import SpecError


def restated_defaults(raw: dict) -> list[str]:
    """The params of a raw spec whose value equals the workload's default."""
    cls = workloads.get(raw["workload"])
    hints = typing.get_type_hints(cls.Config)
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls.Config) if f.init and (f.default is not dataclasses.MISSING
                                                                       or f.default_factory is not dataclasses.MISSING)}
    restated = []
    for key, value in (raw.get("params") or {}).items():
        if key in defaults:
            try:
                same = workloads.coerce(value, hints[key], key) == defaults[key]
            except SpecError:
                same = False
            if same:
                restated.append(key)
    return restated


def preset_specs():
    for name, resource in sorted(specs.presets().items()):
        raw = specs.parse_yaml(resource.read_text(), name)
        for member in raw.get("suite", [raw]):
            if isinstance(member, dict):
                yield name, member


@pytest.mark.parametrize("name, raw", list(preset_specs()), ids=lambda v: v if isinstance(v, str) else "")
def test_preset_restates_no_default(name, raw):
    assert restated_defaults(raw) == [], f"preset {name} restates the workload's defaults"


def test_the_check_finds_a_restated_default():
    assert restated_defaults({"workload": "dqn", "params": {"gamma": 0.99, "num_envs": 4, "fc_layers": [128, 128]}}) \
        == ["gamma", "fc_layers"]


@pytest.mark.parametrize("name, raw", [(n, r) for n, r in preset_specs() if "reference" in r or n != "quickstart"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_preset_keeps_a_reference_score(name, raw):
    reference = raw.get("reference") or {}
    assert reference.get("metric") and "score" in reference, f"preset {name} has no reference score"
