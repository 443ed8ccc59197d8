"""Phase timestamps of one run, for the benchmarks: with $LAB_PROFILE set, written there as JSON at exit.

`mark(name)` records the first time a phase is reached; `add(name, seconds)` sums a cost (registry writes).
Nothing is recorded when $LAB_PROFILE is unset.
"""
from __future__ import annotations

import atexit
import json
import os
import time

_MARKS: dict[str, float] = {}
_TOTALS: dict[str, float] = {}


def enabled() -> bool:
    return bool(os.environ.get("LAB_PROFILE"))


def mark(name: str) -> bool:
    """Record the first time `name` is reached; True when this call recorded it."""
    if enabled() and name not in _MARKS:
        if not _MARKS:
            atexit.register(dump)
        _MARKS[name] = time.time()
        return True
    return False


def add(name: str, seconds: float) -> None:
    if enabled():
        _TOTALS[name] = _TOTALS.get(name, 0.0) + seconds


def dump() -> None:
    """Write the profile now (a run in the lab server ends with `os._exit`, which runs no atexit hook)."""
    if not _MARKS or not enabled():
        return
    _MARKS.setdefault("exit", time.time())
    with open(os.environ["LAB_PROFILE"], "w") as handle:
        json.dump({"marks": _MARKS, "totals": _TOTALS}, handle)
    _MARKS.clear()

