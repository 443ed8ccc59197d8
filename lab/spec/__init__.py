"""Experiment specs: the dataclasses (`model`), reading and checking them (`load`), the metric check
(`metrics`) and what a spec may point at (`safety`). The names below are the package's public API."""
from lab.spec.load import (DISTRIBUTIONS, ExperimentSpec, Reference, Resources, apply_overrides, build_spec,
                           installed, load, parse_yaml, presets, validate_params, validated)

__all__ = ["DISTRIBUTIONS", "ExperimentSpec", "Reference", "Resources", "apply_overrides", "build_spec",
           "installed", "load", "parse_yaml", "presets", "validate_params", "validated"]
