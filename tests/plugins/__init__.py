"""Workload packages of the tests' own, installed by putting PATH on PYTHONPATH (see lab_test_plugins)."""
import os
from pathlib import Path

PATH = str(Path(__file__).resolve().parent)


def pythonpath() -> str:
    """PYTHONPATH for a lab process (and its Ray workers) that should find these workloads."""
    return os.pathsep.join(filter(None, [PATH, os.environ.get("PYTHONPATH")]))
