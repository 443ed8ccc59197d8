"""Experiment specs: the dataclasses (`model`), reading them (`load`), the one way in that checks them
(`runnable`), the metric check (`metrics`) and what a spec may point at (`safety`). The names below are the
package's public API."""
from lab.spec.load import apply_overrides, build_spec, parse_yaml, presets
from lab.spec.model import (
                           DISTRIBUTIONS,
                           Distribution,
                           ExperimentSpec,
                           Reference,
                           Resources,
                           RunnableSpec,
                           Scheduler,
                           Searcher,
                           Source,
                           installed,
)
from lab.spec.runnable import (
                           as_runnable,
                           load,
                           resolve_params,
                           runnable,
                           validate_params,
                           validated,
)

__all__ = ["DISTRIBUTIONS", "Distribution", "ExperimentSpec", "Reference", "Resources", "RunnableSpec", "Scheduler",
           "Searcher", "Source", "apply_overrides", "as_runnable", "build_spec", "installed", "load", "parse_yaml",
           "presets", "resolve_params", "runnable", "validate_params", "validated"]
