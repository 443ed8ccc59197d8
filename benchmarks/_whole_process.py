"""Shared by the end-to-end benchmarks: `lab run` as whole processes, with the phases of each run (from
$LAB_PROFILE, see lab/execution/profile.py). Three kinds of run: through the lab server (the default: its
first run in a LAB_HOME starts it with a warm Ray; a later one finds it warm), and `--no-server`, in the
client's own process, cold (Ray started by the run) or on a warm `lab up` instance. Under the server the
run's process is forked from it: "imports" is the client's start to the run's "run" mark (the client, the
server's start on a first run, the fork)."""
from __future__ import annotations

import contextlib
import json
import math
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


def lab_run(args: list[str], home: str, server: bool = False) -> tuple[float, dict, dict]:
    """`lab run ARGS` in LAB_HOME=home, through the lab server or `--no-server`: (wall seconds, phases, best
    trial record)."""
    profile = Path(home) / f"profile-{time.time_ns()}.json"
    env = {**os.environ, "LAB_HOME": home, "LAB_PROFILE": str(profile)}
    env.pop("LAB_RAY_ADDRESS", None)
    env.pop("LAB_NO_SERVER", None)
    start = time.time()
    out = subprocess.run([LAB, "run", *args, *([] if server else ["--no-server"])], env=env, capture_output=True,
                         text=True)
    end = time.time()
    if out.returncode not in (0, 1):
        raise RuntimeError(f"lab run {' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    best = _best_trial(home)
    return end - start, phases(_profile(profile), start, end, best), best


def _profile(path: Path, timeout: float = 5.0) -> dict | None:
    """The run's profile; a forked run may write it after its client has exited (its teardown), so wait a
    little. None when none comes: profile.py writes it at exit (atexit), which a process leaving by
    os._exit (the server's forked runs) never reaches."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            if time.monotonic() > deadline:
                print(f"  (no profile at {path}: phases other than training unknown)", file=sys.stderr, flush=True)
                return None
            time.sleep(0.1)


def _best_trial(home: str) -> dict:
    code = ("import json; from lab.registry import Registry; r = Registry(); e = r.experiments(limit=1)[0]; "
            "b = r.best_trial(e['id']); print(json.dumps({'best_metric': b['best_metric'], "
            "'last_result': b['last_result'], 'best_result': b['best_result']}))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAB_HOME": home},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def phases(profile: dict | None, start: float, end: float, best: dict) -> dict[str, float]:
    """The run's wall time cut into PHASES (seconds); `other` is what no phase accounts for. Without a
    profile only training is known: the other phases are NaN, `other` the rest of the wall time."""
    training = float((best.get("last_result") or {}).get("time_total_s") or 0.0)
    if profile is None:
        return {**{p: math.nan for p in PHASES}, "training": training, "other": end - start - training}
    marks, totals = profile["marks"], profile["totals"]
    at = lambda name, default: marks.get(name, default)  # noqa: E731
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


@contextlib.contextmanager
def lab_server(home: str):
    """For the duration; at exit `lab down` in `home`: the lab server its runs started, with its warm Ray."""
    try:
        yield
    finally:
        env = {**os.environ, "LAB_HOME": home}
        env.pop("LAB_NO_SERVER", None)
        subprocess.run([LAB, "down"], env=env, capture_output=True, text=True, check=False)


def server_runs(args: list[str], label: str) -> list[tuple[str, float, dict, dict]]:
    """`lab run ARGS` through the lab server in a new LAB_HOME, twice: the first run starts the server (and
    its warm Ray), the second starts once the warm pool is full again. Rows (name, seconds, phases, best)."""
    home, rows = new_home(), []
    with lab_server(home):
        rows.append((f"{label}, first run (server starts)", *lab_run(args, home, server=True)))
        wait_warm(home)
        rows.append((f"{label}, server warm", *lab_run(args, home, server=True)))
    return rows


def wait_warm(home: str, timeout: float = 180.0) -> None:
    """Until the instance's idle warm workers are all started again (the previous run took some)."""
    code = "import sys; from lab.infra import warm; sys.exit(0 if warm.wait_warm(%r) else 1)" % timeout
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAB_HOME": home}, check=False)


def print_rows(rows: list[tuple[str, float, dict | None]], reference: float,
               target: float | dict[str, float] | None, reference_name: str) -> None:
    """Wall seconds, ratio to the reference and the phases of each side. `target`: one for every row but the
    reference's, or per row name (rows without one get none): each row met or MISSED against its own."""
    width = max(34, *(len(name) + 2 for name, *_ in rows))
    print(f"{'side':<{width}}{'wall s':>8}{'ratio':>8}{'target':>8}  " + "  ".join(f"{p:>10}" for p in PHASES))
    for name, seconds, cut in rows:
        ratio = seconds / reference
        goal = target.get(name) if isinstance(target, dict) else None if name == reference_name else target
        mark = "" if goal is None else ("met" if ratio <= goal else "MISSED")
        cells = "  ".join(f"{cut[p]:>10.2f}" for p in PHASES) if cut else ""
        print(f"{name:<{width}}{seconds:>8.2f}{ratio:>7.2f}x{(f'{goal:.2f}x' if goal else ''):>8}  {cells}  {mark}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
