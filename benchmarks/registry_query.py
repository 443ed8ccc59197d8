"""Registry queries over 10,000 trials: `lab ls`, `lab ls --where`, `lab leaderboard`, `lab.experiments()`.

A registry is generated (default 500 experiments x 20 trials, three workloads, tags, realistic specs,
configs and metric records) on SQLite and on PostgreSQL, then each query is timed: in-process (the
median of `--repeat` runs after a warm-up; a fresh connection each time, as a new `lab` command has)
and as the whole `lab` command in a subprocess (Python start-up included). The target: under 1 s each.

PostgreSQL: LAB_REGISTRY_URL if it names one, else a throwaway server (as benchmarks/registry_writes.py).
The load average is printed before and after: figures taken above a load of ~1.5 are not comparable.

    python benchmarks/registry_query.py [--experiments 500] [--trials 20] [--repeat 5]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

WORKLOADS = (  # (workload, data set or env, metric, the searched params)
    ("sklearn_cv", "digits", "cv/accuracy", ("svc__C", "svc__gamma")),
    ("keras_classifier", "fashion_mnist", "val/accuracy", ("learning_rate", "batch_size")),
    ("dqn", "CartPole-v1", "eval/average_return", ("learning_rate", "n_step_update")),
)
WHERE = "workload = sklearn_cv and status = completed and tag.team = vision and metric.cv/accuracy > 0.95"


def generate(url: str, experiments: int, trials: int, seed: int = 0) -> None:
    """Fill an empty registry with `experiments` x `trials` rows in a few bulk inserts."""
    from lab.registry import Registry, dataset_of
    from lab.registry import experiments as e_table
    from lab.registry import tags as tag_table
    from lab.registry import trials as t_table

    rng = random.Random(seed)
    registry = Registry(url)
    registry.check()
    now = dt.datetime.now(dt.timezone.utc)
    exp_rows, trial_rows, tag_rows = [], [], []
    for i in range(1, experiments + 1):
        workload, data, metric, searched = WORKLOADS[i % len(WORKLOADS)]
        key = "env_id" if workload == "dqn" else "dataset"
        spec = {"name": f"{workload}-{i}", "workload": workload, "metric": metric, "mode": "max",
                "params": {key: data, **{f"param_{j}": j for j in range(20)}},
                "search": {p: {"loguniform": [1e-4, 1.0]} for p in searched}, "num_samples": trials, "seed": i}
        started = now - dt.timedelta(hours=experiments - i)
        exp_rows.append({"id": i, "name": spec["name"], "workload": workload, "status": "completed",
                         "spec": json.dumps(spec), "metric": metric, "mode": "max", "user": f"user{i % 7}",
                         "host": "node", "git_commit": "0" * 40, "storage_path": f"/runs/{spec['name']}",
                         "started_at": started, "ended_at": started, "heartbeat_at": started,
                         "dataset": dataset_of(spec), "environment": json.dumps({"python": "3.11.9"})})
        if i % 5 == 0:
            tag_rows.append({"experiment_id": i, "key": "team", "value": "vision" if i % 10 == 0 else "rl"})
        for j in range(trials):
            value = rng.random() if workload != "dqn" else rng.uniform(0, 500)
            config = {**spec["params"], **{p: 10 ** rng.uniform(-4, 0) for p in searched}, "seed": i}
            result = {metric: value, "training_iteration": 10, "time_total_s": 12.5,
                      **{f"charts/m{k}": rng.random() for k in range(10)}}
            trial_rows.append({"experiment_id": i, "trial_id": f"{workload}_{j:05d}", "status": "TERMINATED",
                               "config": json.dumps(config), "iterations": 10, "last_result": json.dumps(result),
                               "best_result": json.dumps(result), "best_metric": value,
                               "checkpoint_path": f"/runs/{i}/{j}/checkpoint_000009", "logdir": f"/runs/{i}/{j}",
                               "started_at": started, "updated_at": started})
    with registry.engine.begin() as conn:
        conn.execute(e_table.insert(), exp_rows)
        conn.execute(t_table.insert(), trial_rows)
        if tag_rows:
            conn.execute(tag_table.insert(), tag_rows)
        if conn.dialect.name == "postgresql":  # an identity column filled with explicit ids: move it past them
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('experiments', 'id'), "
                                 "(SELECT MAX(id) FROM experiments))")
            conn.exec_driver_sql("ANALYZE")
    registry.engine.dispose()


def timed(fn, repeat: int) -> float:
    """The median seconds of `repeat` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def queries(url: str) -> dict:
    """name -> a callable doing what the command does, against a fresh connection."""
    import lab
    from lab import cli
    from lab.cli import experiments as commands

    def quiet(fn):
        def call():
            os.environ["LAB_REGISTRY_URL"] = url
            with contextlib.redirect_stdout(io.StringIO()):
                fn()
        return call

    def fresh(fn):
        def call():
            os.environ["LAB_REGISTRY_URL"] = url
            return fn()
        return call

    parser = cli.make_parser()
    return {
        "lab ls": quiet(lambda: commands.cmd_ls(parser.parse_args(["ls"]))),
        "lab ls --where": quiet(lambda: commands.cmd_ls(parser.parse_args(["ls", "--where", WHERE]))),
        "lab leaderboard": quiet(lambda: commands.cmd_leaderboard(parser.parse_args(
            ["leaderboard", "--workload", "sklearn_cv", "--dataset", "digits"]))),
        "lab.experiments()": fresh(lambda: lab.experiments()),
        "lab.experiments(where)": fresh(lambda: lab.experiments(where=WHERE)),
        "lab.leaderboard()": fresh(lambda: lab.leaderboard(workload="dqn", dataset="CartPole-v1", limit=100)),
    }


def command_seconds(url: str, args: list[str], repeat: int) -> float:
    """The whole `lab ...` command in a subprocess (Python start-up, imports, query, output)."""
    env = {**os.environ, "LAB_REGISTRY_URL": url}
    lab = str(Path(sys.executable).parent / "lab")
    command = [lab, *args] if os.path.exists(lab) else [sys.executable, "-m", "lab.cli", *args]

    def call():
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-500:]

    return timed(call, repeat)


def check(url: str, experiments: int, trials: int) -> str:
    import lab

    os.environ["LAB_REGISTRY_URL"] = url
    frame = lab.experiments()
    assert len(frame) == experiments and int(frame["num_trials"].sum()) == experiments * trials
    return f"{len(frame)} experiments, {int(frame['num_trials'].sum())} trials"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--trials", type=int, default=20, help="trials per experiment")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from registry_writes import registry_databases

    print(f"load average before: {os.getloadavg()[0]:.2f} (figures taken above ~1.5 are not comparable)")
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        for name, url in registry_databases(stack, folder).items():
            began = time.perf_counter()
            generate(url, args.experiments, args.trials)
            print(f"\n{name}: generated {check(url, args.experiments, args.trials)} "
                  f"in {time.perf_counter() - began:.1f} s")
            for label, fn in queries(url).items():
                seconds = timed(fn, args.repeat)
                print(f"  {label:<24} {seconds * 1000:8.1f} ms  {'ok' if seconds < 1 else 'OVER 1 s'}")
            for args_ in (["ls"], ["leaderboard", "--workload", "sklearn_cv", "--dataset", "digits"]):
                seconds = command_seconds(url, args_, max(1, args.repeat // 2))
                label = "`lab " + " ".join(args_[:1]) + "` (process)"
                print(f"  {label:<24} {seconds * 1000:8.1f} ms  {'ok' if seconds < 1 else 'OVER 1 s'}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
