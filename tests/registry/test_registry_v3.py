"""Registry schema version 3 (tags, notes, dataset, environment record), migrated from version 2."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from lab.errors import RegistryError
from lab.registry import SCHEMA_VERSION, Registry, meta_table, metadata, normalize_url
from tests.conftest import clean_postgres

SPEC = {"name": "svc", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max", "params": {"dataset": "digits"}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return clean_postgres(request.getfixturevalue("postgres_url"))


def v2_schema() -> sa.MetaData:
    """The registry's tables as schema version 2 wrote them (lab/registry/schema.py before version 3)."""
    old = sa.MetaData()
    sa.Table("lab_meta", old, sa.Column("key", sa.String(64), primary_key=True),
             sa.Column("value", sa.String(256), nullable=False))
    sa.Table(
        "experiments", old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("workload", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(3), nullable=False),
        sa.Column("user", sa.String(100)),
        sa.Column("host", sa.String(200)),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("storage_path", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    )
    sa.Table(
        "trials", old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False, index=True),
        sa.Column("trial_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("iterations", sa.Integer, nullable=False, default=0),
        sa.Column("last_result", sa.Text),
        sa.Column("best_result", sa.Text),
        sa.Column("best_metric", sa.Float),
        sa.Column("checkpoint_path", sa.Text),
        sa.Column("logdir", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("experiment_id", "trial_id", name="uq_trial"),
    )
    return old


def write_v2_registry(url: str) -> None:
    """A version-2 registry with two experiments (an RL one) and a trial, as yesterday's lab left it."""
    old = v2_schema()
    engine = sa.create_engine(normalize_url(url))
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(old.tables["lab_meta"].insert().values(key="schema_version", value="2"))
        for spec in (SPEC, {**SPEC, "name": "dqn", "workload": "dqn", "params": {"env_id": "CartPole-v1"}}):
            conn.execute(old.tables["experiments"].insert().values(
                name=spec["name"], workload=spec["workload"], status="completed", spec=json.dumps(spec),
                metric=spec["metric"], mode="max", started_at=now, heartbeat_at=now))
        conn.execute(old.tables["trials"].insert().values(
            experiment_id=1, trial_id="t1", status="TERMINATED", config='{"C": 1.0}', iterations=1,
            last_result='{"cv/accuracy": 0.9}', best_metric=0.9))
    engine.dispose()


def test_version_2_registry_is_migrated_to_3(url):
    write_v2_registry(url)
    registry = Registry(url)
    listed = {r["id"]: r for r in registry.experiments()}
    assert listed[1]["dataset"] == "digits" and listed[2]["dataset"] == "CartPole-v1"  # filled from the specs
    assert listed[1]["num_trials"] == 1 and listed[1]["best_max"] == 0.9
    assert registry.experiment(1)["environment"] == {}  # not recorded before version 3
    registry.set_tags(1, {"team": "vision"})
    registry.add_note(1, "first sweep", user="ann")
    assert registry.tags(1) == {"team": "vision"} and registry.notes(1)[0]["text"] == "first sweep"
    assert [r["id"] for r in registry.experiments(where="tag.team = vision and dataset = digits")] == [1]
    new = registry.create_experiment(SPEC, environment={"python": "3.11"})
    assert registry.experiment(new)["environment"] == {"python": "3.11"}
    with registry.engine.connect() as conn:
        version = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("experiments")}
    assert int(version) == SCHEMA_VERSION == 4  # 4: experiments.uuid
    assert {"ix_experiments_workload_dataset", "ix_experiments_status", "ix_experiments_uuid"} <= indexes
    assert registry.experiment(1)["uuid"] is None and registry.experiment(new)["uuid"]
    assert Registry(url).experiments()  # a second open finds version 4 and migrates nothing


def test_a_fresh_registry_has_every_table(url):
    registry = Registry(url)
    registry.check()
    with registry.engine.connect() as conn:
        assert set(metadata.tables) <= set(sa.inspect(conn).get_table_names())


def test_tags_notes_and_deletion(url):
    registry = Registry(url)
    a = registry.create_experiment(SPEC)
    b = registry.create_experiment(SPEC)
    registry.upsert_trial(a, "t1", config={"C": 1}, best_metric=0.5)
    registry.set_tags(a, {"team": "vision"})
    registry.set_tags(a, {"team": "rl", "stage": "final"})  # an existing key is updated
    assert registry.tags(a) == {"stage": "final", "team": "rl"}
    registry.remove_tag(a, "stage")
    with pytest.raises(RegistryError, match="has no tag 'stage'"):
        registry.remove_tag(a, "stage")
    with pytest.raises(RegistryError, match="no experiment with id 99"):
        registry.set_tags(99, {"x": "y"})
    with pytest.raises(RegistryError, match="no experiment with id 99"):
        registry.add_note(99, "text")
    registry.add_note(a, "note")
    registry.delete_experiment(a)
    assert [r["id"] for r in registry.experiments()] == [b]
    assert registry.trials(a) == [] and registry.tags(a) == {} and registry.notes(a) == []


def test_leaderboard_ranks_trials_across_experiments_by_one_metric(url):
    registry = Registry(url)
    a = registry.create_experiment(SPEC, user="ann")
    b = registry.create_experiment(SPEC, user="bob")
    c = registry.create_experiment({**SPEC, "metric": "test/accuracy"}, user="bob")  # another metric: left out
    d = registry.create_experiment({**SPEC, "params": {"dataset": "wine"}})
    loss = registry.create_experiment({**SPEC, "workload": "keras_classifier", "metric": "val/loss", "mode": "min"})
    for exp, values in ((a, [0.8, 0.95]), (b, [0.9]), (c, [0.99]), (d, [1.0]), (loss, [0.3, 0.1])):
        for i, value in enumerate(values):
            registry.upsert_trial(exp, f"t{i}", config={"C": value}, best_metric=value)
    registry.upsert_trial(a, "unscored", config={})
    metric, mode, rows = registry.leaderboard(workload="sklearn_cv", dataset="digits", metric="cv/accuracy")
    assert (metric, mode) == ("cv/accuracy", "max")
    assert [(r["experiment_id"], r["best_metric"], r["user"]) for r in rows] == [
        (a, 0.95, "ann"), (b, 0.9, "bob"), (a, 0.8, "ann")]
    metric, mode, rows = registry.leaderboard(workload="keras_classifier")
    assert (metric, mode) == ("val/loss", "min") and [r["best_metric"] for r in rows] == [0.1, 0.3]
    assert registry.leaderboard(workload="nothing")[2] == []
