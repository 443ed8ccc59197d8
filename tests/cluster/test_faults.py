"""Faults: the registry heartbeat (schema version 2), a driver killed with SIGKILL, a worker node lost."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lab import registry as reg
from lab.registry import Registry, display_status, normalize_url
from tests import plugins
from tests.conftest import lab

SPEC = {"name": "exp", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max"}


# ------------------------------------------------------------------ heartbeat and its migration
def _fresh_url(kind: str, tmp_path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    base = request.getfixturevalue("postgres_url")
    name = f"lab_migrate_{tmp_path.name[-12:].replace('-', '_').lower()}"
    with sa.create_engine(normalize_url(base), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_1_registry_is_migrated_in_place(kind, tmp_path, request):
    url = _fresh_url(kind, tmp_path, request)
    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:  # the schema as version 1 of the lab wrote it, with one experiment in it
        reg.metadata.create_all(conn)
        conn.exec_driver_sql("ALTER TABLE experiments DROP COLUMN heartbeat_at")
        conn.execute(sa.insert(reg.meta_table).values(key="schema_version", value="1"))
        conn.exec_driver_sql(
            "INSERT INTO experiments (name, workload, status, spec, metric, mode, started_at) "
            "VALUES ('old', 'sklearn_cv', 'completed', '{}', 'cv/accuracy', 'max', '2026-01-01 00:00:00')")
    engine.dispose()

    registry = Registry(url)
    (old,) = registry.experiments()
    assert old["name"] == "old" and old["heartbeat_at"] is None and display_status(old) == "completed"
    with registry.engine.connect() as conn:
        version = conn.execute(sa.select(reg.meta_table.c.value).where(reg.meta_table.c.key == "schema_version"))
        assert int(version.scalar()) == reg.SCHEMA_VERSION >= 2
    new_id = registry.create_experiment(SPEC)
    registry.heartbeat(new_id)
    assert registry.experiment(new_id)["heartbeat_at"] is not None
    assert Registry(url).experiment(old["id"])["name"] == "old"  # a second open does not migrate again
    registry.engine.dispose()


def test_a_running_experiment_without_heartbeat_shows_as_stale(lab_home, monkeypatch):
    registry = Registry()
    alive, dead = registry.create_experiment(SPEC), registry.create_experiment(SPEC)
    registry.update_experiment(dead, heartbeat_at=reg.now() - dt.timedelta(minutes=5))
    assert display_status(registry.experiment(alive)) == "running"
    assert display_status(registry.experiment(dead)) == "stale"
    registry.update_experiment(dead, status="interrupted")
    assert display_status(registry.experiment(dead)) == "interrupted"  # only 'running' can be stale
    registry.update_experiment(dead, status="running")
    listed = lab("ls")
    rows = {line.split()[0]: line.split()[3] for line in listed.stdout.splitlines()[1:]}
    assert rows == {str(alive): "running", str(dead): "stale"}, listed.stdout
    shown = lab("show", str(dead))
    assert "stale (no heartbeat since" in shown.stdout and f"lab resume {dead}" in shown.stdout


# ------------------------------------------------------------------ faults on the local multi-node cluster
ITERATIONS = 16
HELD_AT = 8  # where the driver-SIGKILL test holds every trial but the first
HELD_SWEEP = f"""
name: NAME
workload: sleepy
params: {{seconds: 0.05, hold: HOLD}}
search:
  hold_at: {{grid: HOLD_AT}}
metric: score
stop: {{training_iteration: {ITERATIONS}}}
resources: {{cpu: 1}}
checkpoint_every: 1
max_failures: 2
"""


def held_sweep(path, name: str, hold, hold_at: list[int]) -> None:
    """A sweep of `sleepy` trials, one per `hold_at` value: each waits at that step while the file `hold`
    exists, so that a test acts while trials are at a known point (the first three run at once, one per node)."""
    path.write_text(HELD_SWEEP.replace("NAME", name).replace("HOLD_AT", str(hold_at)).replace("HOLD", str(hold)))


@pytest.fixture(scope="module")
def cluster():
    """A head and two worker nodes of one CPU each: three trials at once, one per node."""
    from tests.conftest import local_cluster_of

    with local_cluster_of(2, 1, env={"PYTHONPATH": plugins.pythonpath()}) as (address, _dashboard, env):
        yield address, env  # its workers find the tests' `sleepy` workload


@pytest.fixture
def pg_registry(request, lab_home):
    """The registry on the real PostgreSQL server of conftest.py when there is one, else SQLite."""
    try:
        url = request.getfixturevalue("postgres_url")
    except pytest.skip.Exception:
        url = f"sqlite:///{lab_home / 'registry.db'}"
    return url


def _runs(registry: Registry, exp_id: int, storage: str) -> dict[str, list[dict]]:
    """Every result Tune recorded per trial (result.json), restarts included."""
    import json
    from pathlib import Path

    out = {}
    for trial in registry.trials(exp_id):
        lines = (Path(storage) / Path(trial["logdir"]).name / "result.json").read_text().splitlines()
        out[trial["trial_id"]] = [json.loads(line) for line in lines if line.strip()]
    return out


def _wait_for(registry: Registry, predicate, timeout: float = 240):
    import time

    deadline, trials = time.time() + timeout, []
    while time.time() < deadline:
        try:
            experiments = registry.experiments(limit=1)
            if experiments and predicate(trials := registry.trials(experiments[0]["id"])):
                return experiments[0]["id"]
        except Exception:  # noqa: BLE001 - the registry is being created by the run
            pass
        time.sleep(0.2)
    states = [(t["status"], t["iterations"]) for t in trials]
    raise AssertionError(f"the sweep never reached the expected state; its trials: {states}")


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume(cluster, pg_registry, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    address, _ = cluster
    env = {"LAB_REGISTRY_URL": pg_registry}
    registry = Registry(pg_registry)
    hold = tmp_path / "hold"
    hold.touch()
    spec = tmp_path / "faults.yaml"
    held_sweep(spec, "faults", hold, [ITERATIONS, HELD_AT, HELD_AT + 1, HELD_AT + 2])  # the first is never held
    # Tune saves its experiment state every TUNE_GLOBAL_CHECKPOINT_S (else up to ~10 s apart): a trial that
    # finished after the last save would run again after a SIGKILL, so save often and let one save pass
    log = tmp_path / "driver.log"
    with log.open("w") as out:
        driver = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec), "--address", address],
                                  stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, **env, "PYTHONPATH": plugins.pythonpath(),
                                       "TUNE_GLOBAL_CHECKPOINT_S": "0.5"})
    # the first trial has ended and the three others wait, checkpointed, at their hold step until the resume
    try:
        exp_id = _wait_for(registry, lambda ts: len(ts) == 4 and sum(t["status"] == "TERMINATED" for t in ts) == 1
                           and all(t["status"] == "RUNNING" and t["iterations"] >= HELD_AT for t in ts
                                   if t["status"] != "TERMINATED"))
    except AssertionError as error:
        driver.kill()
        raise AssertionError(f"{error}\n{log.read_text()[-3000:]}") from None
    before = {t["trial_id"]: t for t in registry.trials(exp_id) if t["status"] == "TERMINATED"}
    time.sleep(1.0)  # a few experiment-state saves after that trial ended
    os.kill(driver.pid, signal.SIGKILL)  # no handler runs: the registry still says 'running'
    driver.wait(30)
    hold.unlink()
    assert registry.experiment(exp_id)["status"] == "running"
    listed = lab("ls", env={**env, "LAB_STALE_AFTER_S": "0"})
    rows = {line.split()[0]: line.split()[3] for line in listed.stdout.splitlines()[1:]}
    assert rows[str(exp_id)] == "stale", listed.stdout

    resumed = lab("resume", str(exp_id), "--address", address, env={**env, "PYTHONPATH": plugins.pythonpath()})
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    after = {t["trial_id"]: t for t in registry.trials(exp_id)}
    assert registry.experiment(exp_id)["status"] == "completed"
    assert len(after) == 4 and all(t["status"] == "TERMINATED" and t["iterations"] == ITERATIONS for t in after.values())
    for trial_id, trial in before.items():  # finished trials were not run again
        assert after[trial_id]["updated_at"] == trial["updated_at"]
        assert after[trial_id]["iterations"] == trial["iterations"] == ITERATIONS


@pytest.mark.slow
def test_a_lost_worker_node_restarts_its_trial_from_the_checkpoint(cluster, pg_registry, tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import CLUSTER_SCRIPT as SCRIPT

    address, cluster_env = cluster
    env = {"LAB_REGISTRY_URL": pg_registry}
    registry = Registry(pg_registry)
    hold = tmp_path / "hold"
    hold.touch()
    spec = tmp_path / "faults.yaml"
    held_sweep(spec, "node-loss", hold, [3, 4, 5, 6])
    driver = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "run", str(spec), "--address", address],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **env, "PYTHONPATH": plugins.pythonpath()})
    # three trials run, one per node, each held after checkpointing 3 times or more: worker node 2 is lost
    _wait_for(registry, lambda ts: sum(t["status"] == "RUNNING" and t["iterations"] >= 3 for t in ts) >= 3)
    killed = subprocess.run([str(SCRIPT), "kill-node", "2"], capture_output=True, text=True, env=cluster_env)
    assert int(killed.stdout.strip() or 0) >= 3, killed.stdout + killed.stderr  # raylet, agents, the trial
    kill_time = time.time()
    hold.unlink()
    output, _ = driver.communicate(timeout=400)
    assert driver.returncode == 0, output[-3000:]
    (experiment,) = registry.experiments(limit=1)
    assert experiment["name"] == "node-loss" and experiment["status"] == "completed"
    trials = registry.trials(experiment["id"])
    assert len(trials) == 4 and all(t["status"] == "TERMINATED" and t["iterations"] == ITERATIONS for t in trials)
    runs = _runs(registry, experiment["id"], experiment["storage_path"])
    restored = [tid for tid, rows in runs.items() if any(r["iterations_since_restore"] < r["training_iteration"]
                                                         for r in rows)]
    assert len(restored) == 1, {tid: [(r["training_iteration"], r["iterations_since_restore"]) for r in rows]
                                for tid, rows in runs.items()}
    rows = runs[restored[0]]
    first_after = next(r for r in rows if r["iterations_since_restore"] < r["training_iteration"])
    # it went on from a checkpoint (iteration >= 1; the newest one may not be committed when the node dies):
    # a restart from scratch would have iterations_since_restore == training_iteration, and not be in `restored`
    assert first_after["training_iteration"] >= 2
    for tid, rows in runs.items():  # the other trials ran once, start to end
        if tid != restored[0]:
            assert [r["training_iteration"] for r in rows] == list(range(1, ITERATIONS + 1)), (tid, kill_time)
