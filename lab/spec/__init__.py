"""Experiment specs: the dataclasses (`model`), reading and checking them (`load`), the metric check
(`metrics`) and what a spec may point at (`safety`). The names below are the package's public API."""
from lab.spec.load import (
                           apply_overrides,
                           build_spec,
                           load,
                           parse_yaml,
                           presets,
                           resolve_params,
                           validate_params,
                           validated,
)
from lab.spec.model import (
                           DISTRIBUTIONS,
                           ExperimentSpec,
                           Reference,
                           Resources,
                           Scheduler,
                           Searcher,
                           installed,
)

__all__ = ["DISTRIBUTIONS", "ExperimentSpec", "Reference", "Resources", "Scheduler", "Searcher", "apply_overrides",
           "build_spec", "installed", "load", "parse_yaml", "presets", "resolve_params", "validate_params", "validated"]
