"""The experiment registry on SQLite and on a real PostgreSQL server."""
from __future__ import annotations

import multiprocessing as mp

import pytest

from lab.errors import RegistryError
from lab.registry import Registry

SPEC = {"name": "exp", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url = request.getfixturevalue("postgres_url")
    Registry(url).check()
    import sqlalchemy as sa

    from lab.registry import metadata, normalize_url

    with sa.create_engine(normalize_url(url)).begin() as conn:  # a clean schema per test
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return url


def test_experiment_and_trials_round_trip(registry_url):
    registry = Registry(registry_url)
    exp_id = registry.create_experiment(SPEC, user="u", host="h", git_commit="abc", storage_path="/s")
    registry.upsert_trial(exp_id, "t1", status="RUNNING", config={"C": 1.0, "layers": (64, 64)})
    registry.upsert_trial(exp_id, "t1", iterations=1, last_result={"cv/accuracy": 0.9}, best_metric=0.9,
                          best_result={"cv/accuracy": 0.9})
    registry.upsert_trial(exp_id, "t2", status="ERROR", config={"C": 10.0}, error="ValueError: boom")
    registry.upsert_trial(exp_id, "t3", status="TERMINATED", config={"C": 100.0}, best_metric=0.95)
    registry.update_experiment(exp_id, status="completed")

    exp = registry.experiment(exp_id)
    assert exp["status"] == "completed" and exp["spec"] == SPEC and exp["git_commit"] == "abc"
    trials = {t["trial_id"]: t for t in registry.trials(exp_id)}
    assert trials["t1"]["config"] == {"C": 1.0, "layers": [64, 64]}
    assert trials["t1"]["last_result"] == {"cv/accuracy": 0.9}
    assert trials["t2"]["error"] == "ValueError: boom"
    assert registry.best_trial(exp_id)["trial_id"] == "t3"
    listed = registry.experiments()
    assert listed[0]["id"] == exp_id and listed[0]["num_trials"] == 3 and listed[0]["num_errors"] == 1


def test_best_trial_respects_mode(registry_url):
    registry = Registry(registry_url)
    exp_id = registry.create_experiment({**SPEC, "metric": "val/loss", "mode": "min"})
    registry.upsert_trial(exp_id, "a", best_metric=0.5)
    registry.upsert_trial(exp_id, "b", best_metric=0.2)
    assert registry.best_trial(exp_id)["trial_id"] == "b"


def test_unknown_experiment_is_a_clear_error(registry_url):
    with pytest.raises(RegistryError, match="no experiment with id 999"):
        Registry(registry_url).experiment(999)


def _writer(url: str, exp_id: int, worker: int, count: int) -> None:
    registry = Registry(url)
    for i in range(count):
        registry.upsert_trial(exp_id, f"w{worker}-{i}", status="RUNNING", config={"i": i})
        registry.upsert_trial(exp_id, f"w{worker}-{i}", status="TERMINATED", iterations=1, best_metric=float(i))


def test_concurrent_writers_lose_nothing(registry_url):
    registry = Registry(registry_url)
    exp_id = registry.create_experiment(SPEC)
    workers, count = 8, 25
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(registry_url, exp_id, w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    trials = registry.trials(exp_id)
    assert len(trials) == workers * count
    assert len({t["trial_id"] for t in trials}) == workers * count
    assert all(t["status"] == "TERMINATED" and t["iterations"] == 1 for t in trials)


def test_unreachable_postgres_is_a_one_line_error():
    url = "postgresql://lab:secret@127.0.0.1:1/nowhere"
    with pytest.raises(RegistryError) as info:
        Registry(url).check()
    message = str(info.value)
    assert "cannot reach the registry" in message and "\n" not in message
    assert "secret" not in message  # credentials are never shown


def test_newer_schema_is_refused(tmp_path):
    import sqlalchemy as sa

    from lab.registry import meta_table

    url = f"sqlite:///{tmp_path / 'r.db'}"
    registry = Registry(url)
    registry.check()
    with registry.engine.begin() as conn:
        conn.execute(sa.update(meta_table).values(value="99"))
    with pytest.raises(RegistryError, match="schema version 99 is newer"):
        Registry(url).check()


@pytest.mark.postgres
def test_openers_of_a_fresh_postgresql_database_at_once_all_get_one_schema(postgres_url):
    """Two runs (or a run and `lab ls`) starting at once on an empty PostgreSQL database: each creates the
    schema if it is missing, and none fails on the other's half-made tables."""
    import threading

    import sqlalchemy as sa

    from lab.registry import meta_table, normalize_url

    admin = sa.create_engine(normalize_url(postgres_url.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT")
    fresh = postgres_url.rsplit("/", 1)[0] + "/schema_race"
    openers, errors = 8, []
    for _ in range(3):  # the race is lost within a few tries when nothing serializes it
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS schema_race")
            conn.exec_driver_sql("CREATE DATABASE schema_race")
        at_once = threading.Barrier(openers)

        def open_registry(at_once=at_once):
            registry = Registry(fresh)
            at_once.wait()
            try:
                registry.check()
            except RegistryError as exc:
                errors.append(str(exc))
            finally:
                if registry._engine is not None:
                    registry._engine.dispose()

        threads = [threading.Thread(target=open_registry) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[:2]
        check = sa.create_engine(normalize_url(fresh))
        with check.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(meta_table)).scalar() == 1
        check.dispose()
    admin.dispose()
