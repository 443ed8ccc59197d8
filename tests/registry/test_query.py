"""`lab ls --where`: the grammar, its one-line errors, and its SQL (bound parameters only) on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from lab.registry import Registry, experiments, query

SPEC = {"name": "svc", "workload": "sklearn_cv", "metric": "cv/accuracy", "mode": "max", "params": {"dataset": "digits"}}
DQN = {"name": "dqn one", "workload": "dqn", "metric": "eval/average_return", "mode": "max",
       "params": {"env_id": "CartPole-v1"}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request, tmp_path):
    if request.param == "sqlite":
        return Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    from tests.conftest import clean_postgres

    return Registry(clean_postgres(request.getfixturevalue("postgres_url")))


@pytest.fixture
def filled(registry):
    a = registry.create_experiment(SPEC, user="ann")
    b = registry.create_experiment(DQN, user="bob")
    registry.upsert_trial(a, "t1", status="TERMINATED", last_result={"cv/accuracy": 0.95, "test/accuracy": 0.9},
                          best_metric=0.95)
    registry.upsert_trial(a, "t2", status="ERROR", last_result={"cv/accuracy": 0.5}, best_metric=0.5)
    registry.upsert_trial(b, "t1", status="TERMINATED", last_result={"eval/average_return": 480.0}, best_metric=480.0)
    registry.update_experiment(a, status="completed")
    registry.set_tags(a, {"team": "vision", "stage": "baseline"})
    registry.set_tags(b, {"team": "rl"})
    return registry, a, b


def ids(registry, where=None, tags=None):
    return sorted(r["id"] for r in registry.experiments(where=where, tags=tags))


def test_filters_select_the_right_experiments(filled):
    registry, a, b = filled
    assert ids(registry, "status = completed") == [a]
    assert ids(registry, "status != completed") == [b]
    assert ids(registry, "workload = dqn and user = bob") == [b]
    assert ids(registry, "name ~ 'one'") == [b]
    assert ids(registry, 'name = "dqn one"') == [b]
    assert ids(registry, "dataset = CartPole-v1") == [b]
    assert ids(registry, "tag.team = vision") == [a]
    assert ids(registry, "tag.team != vision") == [b]
    assert ids(registry, "tag.stage ~ base and tag.team = vision") == [a]
    assert ids(registry, "metric.cv/accuracy >= 0.95") == [a]
    assert ids(registry, "metric.cv/accuracy > 0.95") == []
    assert ids(registry, "metric.eval/average_return > 475 AND workload = dqn") == [b]
    assert ids(registry, "best < 1") == [a]
    assert ids(registry, tags={"team": "rl"}) == [b]
    assert ids(registry, "tag.nobody = x") == []


def test_like_wildcards_are_plain_text(filled):
    registry, a, b = filled
    assert ids(registry, "name ~ '%'") == []  # autoescaped: % is a character, not a wildcard


@pytest.mark.parametrize("text, message", [
    ("", "empty filter"),
    ("status", "incomplete condition"),
    ("status =", "incomplete condition"),
    ("status = completed and", "incomplete condition"),
    ("colour = red", "unknown field 'colour'"),
    ("status < done", "'status' is text"),
    ("metric.cv/accuracy > high", "compares with a number"),
    ("metric.cv/accuracy > '0.9'", "got the string"),
    ("best ~ 1", "is a number"),
    ("status = a or status = b", "expected 'and'"),
    ("status = completed; DROP TABLE experiments", "unexpected ';'"),
    ("= completed", "expected a field name"),
    ("status completed x", "expected an operator"),
    ("tag. = x", "needs a key"),
])
def test_malformed_filters_are_one_line_errors(text, message):
    with pytest.raises(query.QueryError, match=message) as info:
        query.parse(text)
    assert "\n" not in str(info.value)


def test_values_reach_sql_only_as_bound_parameters():
    hostile = "x' OR '1'='1"
    conditions = query.parse(f"name = \"{hostile}\" and tag.k = '{hostile[:1]}' and metric.a/b > 1")
    for dialect in ("sqlite", "postgresql"):
        statement = sa.select(experiments.c.id).where(*query.to_sql(conditions, dialect))
        compiled = statement.compile(dialect=sa.create_engine(
            "sqlite://" if dialect == "sqlite" else "postgresql+psycopg://u@h/d").dialect)
        text = str(compiled)
        assert hostile not in text and "a/b" not in text and "'1'" not in text
        assert hostile in compiled.params.values()


def test_a_malformed_filter_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with pytest.raises(query.QueryError):
        Registry(url).experiments(where="status ==")
    assert not (tmp_path / "registry.db").exists()  # parsed before the registry is even opened
