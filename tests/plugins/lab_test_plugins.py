"""A workload whose steps take a set time: for tests that must act while a sweep is still running.

Found through its own entry point (`lab_test_plugins-1.0.dist-info`) when this folder is on PYTHONPATH,
as a third-party workload package would be: `tests.plugins.PATH` is that folder.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from lab.workload import Workload


class Sleepy(Workload):
    """Each step sleeps `seconds` and reports `x` as its score; from step `hold_at` on, a step also waits while
    the file `hold` exists (a test holds trials at a known point, and lets them go on)."""

    name = "sleepy"

    @dataclass
    class Config:
        seed: int = 0
        seconds: float = 0.5
        x: float = 0.0
        hold: str = ""
        hold_at: int = 0

    test_params = {"seconds": 0.01}

    @classmethod
    def metric_names(cls, config):
        return frozenset({"score"})

    def setup(self) -> None:
        self.steps = 0

    def step(self) -> dict[str, float]:
        if self.steps >= self.config.hold_at:
            while self.config.hold and Path(self.config.hold).exists():
                time.sleep(0.05)
        time.sleep(self.config.seconds)
        self.steps += 1
        return {"score": float(self.config.x)}

    def save(self, checkpoint_dir: str) -> None:
        Path(checkpoint_dir, "state.json").write_text(json.dumps({"steps": self.steps}))

    def restore(self, checkpoint_dir: str) -> None:
        self.steps = json.loads(Path(checkpoint_dir, "state.json").read_text())["steps"]
