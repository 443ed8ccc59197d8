"""Shared by the end-to-end benchmarks: `lab` runs as whole processes, cold or on a warm `lab up`
instance, with the phases of each run (from $LAB_PROFILE, see lab/execution/profile.py)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = str(Path(sys.executable).parent / "lab")
PHASES = ("imports", "ray start/connect", "tuner set-up", "setup+tracing", "training", "registry writes",
          "shut-down", "other")


def new_home() -> str:
    return tempfile.mkdtemp(prefix="lab-bench-")


def lab_run(args: list[str], home: str) -> tuple[float, dict, dict]:
    """`lab run ARGS` in LAB_HOME=home: (wall seconds, phases, best trial record)."""
    profile = Path(home) / f"profile-{time.time_ns()}.json"
    env = {**os.environ, "LAB_HOME": home, "LAB_PROFILE": str(profile)}
    env.pop("LAB_RAY_ADDRESS", None)
    start = time.time()
    out = subprocess.run([LAB, "run", *args], env=env, capture_output=True, text=True)
    end = time.time()
    if out.returncode not in (0, 1):
        raise RuntimeError(f"lab run {' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    best = _best_trial(home)
    return end - start, phases(json.loads(profile.read_text()), start, end, best), best


def _best_trial(home: str) -> dict:
    code = ("import json; from lab.registry import Registry; r = Registry(); e = r.experiments(limit=1)[0]; "
            "b = r.best_trial(e['id']); print(json.dumps({'best_metric': b['best_metric'], "
            "'last_result': b['last_result'], 'best_result': b['best_result']}))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAB_HOME": home},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def phases(profile: dict, start: float, end: float, best: dict) -> dict[str, float]:
    """The run's wall time cut into PHASES (seconds); `other` is what no phase accounts for."""
    marks, totals = profile["marks"], profile["totals"]
    at = lambda name, default: marks.get(name, default)  # noqa: E731
    training = float((best.get("last_result") or {}).get("time_total_s") or 0.0)
    first_iteration = totals.get("first_iteration", 0.0)
    cut = {
        "imports": at("run", start) - start,
        "ray start/connect": at("connected", at("run", start)) - at("run", start),
        "tuner set-up": at("fit", at("connected", start)) - at("connected", start),
        # from Tuner.fit() to the first result, less the first iteration: Tune's start, the worker (a warm one
        # or a fresh process importing TensorFlow), the trial's setup with its tracing
        "setup+tracing": max(0.0, at("first_result", at("fit", start)) - at("fit", start) - first_iteration),
        "training": training,
        "registry writes": totals.get("registry_writes", 0.0),
        "shut-down": end - at("experiment_end", end),
    }
    cut["other"] = (end - start) - sum(cut.values())
    return cut


@contextlib.contextmanager
def warm_instance(home: str, cpus: int | None = None):
    """`lab up` in `home` for the duration (not timed); waits until its pool of warm workers is full."""
    env = {**os.environ, "LAB_HOME": home}
    up = subprocess.run([LAB, "up", *(["--cpus", str(cpus)] if cpus else [])], env=env, capture_output=True, text=True)
    if up.returncode:
        raise RuntimeError(f"lab up failed: {up.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([LAB, "down"], env=env, capture_output=True, text=True)


def wait_warm(home: str, timeout: float = 180.0) -> None:
    """Until the instance's idle warm workers are all started again (the previous run took some)."""
    code = "import sys; from lab.infra import warm; sys.exit(0 if warm.wait_warm(%r) else 1)" % timeout
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAB_HOME": home}, check=False)


def print_rows(rows: list[tuple[str, float, dict | None]], reference: float, target: float | None,
               reference_name: str) -> None:
    """Wall seconds, ratio to the reference and the phases of each side."""
    print(f"{'side':<34}{'wall s':>8}{'ratio':>8}{'target':>8}  " + "  ".join(f"{p:>10}" for p in PHASES))
    for name, seconds, cut in rows:
        ratio = seconds / reference
        mark = "" if target is None or name == reference_name else ("met" if ratio <= target else "MISSED")
        cells = "  ".join(f"{cut[p]:>10.2f}" for p in PHASES) if cut else ""
        print(f"{name:<34}{seconds:>8.2f}{ratio:>7.2f}x{(f'{target:.2f}x' if target else ''):>8}  {cells}  {mark}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
