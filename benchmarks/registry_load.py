"""A sweep of N trivial trials, 8 at a time, recorded in PostgreSQL: none lost, none twice; trials/min
and registry writes/s.

Each trial is one tiny sklearn_cv step (logistic regression on iris, 3-fold CV, no figures) at 1/8 of
a CPU, so 8 run side by side on any machine. The registry is LAB_REGISTRY_URL if it names a PostgreSQL
server, else a throwaway one (benchmarks/registry_writes.py). Writes are counted by the server
(`pg_stat_database.xact_commit` of the registry's database over the run, the driver's reads included).
The load average is printed with the figures: on a busy machine they are not comparable.

    python benchmarks/registry_load.py [--trials 500] [--concurrent 8]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = {"name": "registry-load", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max",
        "params": {"dataset": "iris", "model": "logistic", "cv_folds": 3, "log_figures": False},
        "search": {"logisticregression__C": {"loguniform": [0.01, 100.0]}},
        "stop": {"training_iteration": 1}}


def commits(url: str) -> int:
    import sqlalchemy as sa

    from lab.registry import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        count = int(value.scalar())
    engine.dispose()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=8)
    args = parser.parse_args()
    from benchmarks.registry_writes import throwaway_postgres

    url = os.environ.get("LAB_REGISTRY_URL", "")
    with contextlib.ExitStack() as stack:
        if not url.startswith("postgres"):
            url = stack.enter_context(throwaway_postgres())
            if url is None:
                print("PostgreSQL is not installed: nothing measured")
                return 1
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="lab-load-"))
        os.environ.update(LAB_HOME=home, LAB_REGISTRY_URL=url)
        from lab.infra.connect import connect
        from lab.registry import Registry
        from lab.execution import runner
        from lab.spec import validated

        cpus = os.cpu_count() or 2
        spec = validated({**SPEC, "num_samples": args.trials, "resources": {"cpu": cpus / args.concurrent}}, "load",
                         say=lambda line: None)
        registry = Registry(url)
        registry.check()
        connect(None, num_cpus=cpus)
        load_before, commits_before, start = os.getloadavg()[0], commits(url), time.perf_counter()
        outcome = runner.run(spec, registry=registry)
        seconds, writes = time.perf_counter() - start, commits(url) - commits_before
        trials = registry.trials(outcome.experiment_id)
        ids = [t["trial_id"] for t in trials]
        complete = [t for t in trials if t["status"] == "TERMINATED" and t["iterations"] == 1
                    and isinstance(t["last_result"].get("cv/accuracy"), float) and t["best_metric"] is not None]
        print(f"{args.trials} trials, {args.concurrent} concurrent, {cpus} CPUs, PostgreSQL")
        print(f"recorded {len(trials)} (unique {len(set(ids))}), complete with final metrics {len(complete)}")
        print(f"{args.trials / seconds * 60:.0f} trials/min ({seconds:.1f} s); registry: {writes} transactions, "
              f"{writes / seconds:.1f} writes/s; load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
        ok = len(trials) == len(set(ids)) == len(complete) == args.trials
        print("OK: every trial recorded once with its final metrics" if ok else "FAILED: lost or duplicated trials")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
