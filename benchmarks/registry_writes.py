"""Registry writes per second with 8 concurrent writer processes, on SQLite and on PostgreSQL.

Each writer process records N trials the way a `lab run` driver does (RegistryCallback): one insert
(status RUNNING, config), then `--results` result updates (iterations, last_result, best_metric), then
the final TERMINATED update; each write is its own transaction (upsert_trial). Afterwards the rows are
counted: every trial exactly once, TERMINATED, with its last iteration (no lost or duplicated writes).
The baseline is the same work done by ONE writer, side by side: the ratio shows how much the database
gains (or loses) from concurrency, which is what a shared registry under many drivers needs.

PostgreSQL: LAB_REGISTRY_URL if it names one, else a throwaway server started like tests/conftest.py
(initdb + pg_ctl on 127.0.0.1, fsync off), removed at the end. SQLite: a fresh file (WAL, busy timeout).

    python benchmarks/registry_writes.py [--writers 8] [--trials 25] [--results 4]
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = {"name": "bench", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max"}


def writer(url: str, exp_id: int, worker: int, trials: int, results: int, start_at: float, times) -> None:
    from lab.registry import Registry

    registry = Registry(url)
    registry.check()
    while time.time() < start_at:  # every writer starts at once, connections already open
        time.sleep(0.001)
    began = time.time()
    try:
        for i in range(trials):
            trial_id = f"w{worker}-{i}"
            registry.upsert_trial(exp_id, trial_id, status="RUNNING", config={"worker": worker, "i": i})
            for it in range(1, results + 1):
                metrics = {"cv/accuracy": 0.5 + it / 100, "training_iteration": it}
                registry.upsert_trial(exp_id, trial_id, status="RUNNING", iterations=it, last_result=metrics,
                                      best_metric=metrics["cv/accuracy"], best_result=metrics)
            registry.upsert_trial(exp_id, trial_id, status="TERMINATED", iterations=results)
    finally:
        times.put((began, time.time()))  # even when failing: the parent is waiting for it


def measure(url: str, writers: int, trials: int, results: int) -> tuple[float, str]:
    """(writes per second, check) for `writers` processes writing `trials` trials each."""
    from lab.registry import Registry

    registry = Registry(url)
    exp_id = registry.create_experiment(SPEC)
    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0 + 0.5 * writers  # time for the spawned processes to import and connect
    times = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, exp_id, w, trials, results, start_at, times))
             for w in range(writers)]
    for p in procs:
        p.start()
    spans = [times.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(600)
    seconds = max(end for _, end in spans) - min(begin for begin, _ in spans)  # first write to last write
    rows = registry.trials(exp_id)
    expected = {f"w{w}-{i}" for w in range(writers) for i in range(trials)}
    ids = [r["trial_id"] for r in rows]
    problems = []
    if any(p.exitcode != 0 for p in procs):
        problems.append(f"{sum(p.exitcode != 0 for p in procs)} writers failed")
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicated trials")
    if set(ids) != expected:
        problems.append(f"{len(expected - set(ids))} lost trials")
    if any(r["status"] != "TERMINATED" or r["iterations"] != results for r in rows):
        problems.append("trials with a lost final write")
    writes = writers * trials * (results + 2)
    return writes / seconds, ("ok: " if not problems else "FAILED: ") + (", ".join(problems) or
                                                                       f"{len(rows)} trials, each once, all final")


def registry_databases(stack: contextlib.ExitStack, folder: str) -> dict[str, str]:
    """The registries a benchmark compares: SQLite in `folder`, and PostgreSQL (LAB_REGISTRY_URL if it names
    one, else a throwaway server kept open by `stack`) where it is installed."""
    databases = {"sqlite": f"sqlite:///{folder}/registry.db"}
    given = os.environ.get("LAB_REGISTRY_URL", "")
    pg = given if given.startswith("postgres") else stack.enter_context(throwaway_postgres())
    if pg:
        databases["postgresql"] = pg
    else:
        print("postgresql: not installed and LAB_REGISTRY_URL names none: skipped")
    return databases


@contextlib.contextmanager
def throwaway_postgres():
    """A PostgreSQL server on a free port of 127.0.0.1, as tests/conftest.py starts it; None if not installed."""
    from tests.conftest import _free_port, _pg_bin

    bindir = _pg_bin()
    if bindir is None:
        yield None
        return
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="lab-pg-bench-"))
    if run_as:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "lab", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"],
                   check=True, capture_output=True)
    try:
        psql = str(bindir / "psql") if (bindir / "psql").exists() else "psql"
        subprocess.run([psql, f"postgresql://lab@127.0.0.1:{port}/postgres", "-c", "CREATE DATABASE bench"],
                       check=True, capture_output=True)
        yield f"postgresql://lab@127.0.0.1:{port}/bench"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--results", type=int, default=4)
    args = parser.parse_args()
    from lab.registry import safe_url

    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{args.writers} writers x {args.trials} trials x {args.results + 2} writes, against 1 writer doing "
          f"{args.trials} trials, side by side\n")
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        for name, url in registry_databases(stack, folder).items():
            one, _ = measure(url, 1, args.trials, args.results)
            many, check = measure(url, args.writers, args.trials, args.results)
            print(f"{name:<10} {safe_url(url)}")
            print(f"  1 writer:  {one:8.0f} writes/s")
            print(f"  {args.writers} writers: {many:8.0f} writes/s  ({many / one:.2f}x)  {check}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
