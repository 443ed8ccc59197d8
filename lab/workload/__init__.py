"""Workloads: the one protocol (`base`), how they are found (`registry`), their configs (`config`),
parameter help (`params`), the conformance checks (`testing`) and checkpoint manifests (`checkpoints`).
The names below are what the leaves use."""
from lab import plugins
from lab.workload.base import TrialContext, Workload
from lab.workload.config import build_dataclass, close_names, coerce, suggest
from lab.workload.registry import WORKLOADS, discover, get, register

__all__ = ["WORKLOADS", "TrialContext", "Workload", "build_dataclass", "close_names", "coerce", "discover", "get",
           "plugins", "register", "suggest"]
