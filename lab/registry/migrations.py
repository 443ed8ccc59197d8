"""The registry's schema migrations: version -> the function bringing the schema there from the one before."""
from __future__ import annotations

import json

import sqlalchemy as sa

from lab.registry.schema import (
    EXPERIMENT_INDEXES,
    TRIAL_INDEXES,
    UUID_INDEX,
    dataset_of,
    experiments,
    notes,
    tags,
)


def _add_nothing(conn: sa.Connection) -> None:  # pragma: no cover - the first version has nothing to migrate
    pass


def _add_heartbeat(conn: sa.Connection) -> None:
    """Version 2: experiments.heartbeat_at, so that a driver killed with SIGKILL shows up as stale."""
    if "heartbeat_at" in {c["name"] for c in sa.inspect(conn).get_columns("experiments")}:
        return
    kind = sa.DateTime(timezone=True).compile(dialect=conn.dialect)
    guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""  # two processes migrating at once
    conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN {guard}heartbeat_at {kind}")


def _add_tags_notes_environment(conn: sa.Connection) -> None:
    """Version 3: tags and notes tables, experiments.dataset (filled from each spec) and .environment, indexes."""
    tags.create(conn, checkfirst=True)
    notes.create(conn, checkfirst=True)
    present = {c["name"] for c in sa.inspect(conn).get_columns("experiments")}
    guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
    for name, kind in (("dataset", sa.String(200)), ("environment", sa.Text())):
        if name not in present:
            conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN {guard}{name} {kind.compile(dialect=conn.dialect)}")
    for row in conn.execute(sa.select(experiments.c.id, experiments.c.spec).where(experiments.c.dataset.is_(None))):
        try:
            spec = json.loads(row.spec)
        except ValueError:
            continue
        conn.execute(sa.update(experiments).where(experiments.c.id == row.id).values(dataset=dataset_of(spec)))
    for index in (*EXPERIMENT_INDEXES, *TRIAL_INDEXES):
        index.create(conn, checkfirst=True)


def _add_uuid_fill_datasets(conn: sa.Connection) -> None:
    """Version 4: experiments.uuid (unique; NULL for older rows, whose folders carry no marker), and the
    dataset of every row that relied on its workload's default (svc-digits, dqn-cartpole) filled in."""
    if "uuid" not in {c["name"] for c in sa.inspect(conn).get_columns("experiments")}:
        guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN {guard}uuid {sa.String(36).compile(dialect=conn.dialect)}")
    UUID_INDEX.create(conn, checkfirst=True)
    empty = sa.or_(experiments.c.dataset.is_(None), experiments.c.dataset == "")
    for row in conn.execute(sa.select(experiments.c.id, experiments.c.spec).where(empty)).all():
        try:
            spec = json.loads(row.spec)
        except ValueError:
            continue
        dataset = dataset_of(spec) if isinstance(spec, dict) else ""
        if dataset:
            conn.execute(sa.update(experiments).where(experiments.c.id == row.id).values(dataset=dataset))


# version -> function bringing the schema from version-1 to version (ALTER TABLE ... on both databases)
MIGRATIONS = {1: _add_nothing, 2: _add_heartbeat, 3: _add_tags_notes_environment, 4: _add_uuid_fill_datasets}
