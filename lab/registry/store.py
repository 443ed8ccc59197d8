"""The experiment registry: every experiment and trial the lab ran, in SQLite or PostgreSQL.

One SQLAlchemy Core schema; `LAB_REGISTRY_URL` picks the database (see `lab.settings`).
SQLite runs in WAL mode with a busy timeout and `BEGIN IMMEDIATE` transactions, so several
`lab run` processes can write at once; PostgreSQL needs nothing special.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lab import settings
from lab.errors import RegistryError, UnknownExperiment, one_line
from lab.registry.migrations import MIGRATIONS
from lab.registry.schema import (
    SCHEMA_VERSION,
    dataset_of,
    experiments,
    meta_table,
    metadata,
    notes,
    tags,
    trials,
)
from lab.registry.urls import connect_timeout_args, normalize_url, safe_url

HEARTBEAT_EVERY_S = 10.0  # a running driver touches its experiment's heartbeat this often


def stale_after_s() -> float:
    """A 'running' experiment whose heartbeat is older than this is shown as stale (its driver died)."""
    return float(os.environ.get("LAB_STALE_AFTER_S") or 60)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


SCHEMA_LOCK = 0x6C61625F72656769  # PostgreSQL advisory lock held while the schema is created or migrated


class Registry:
    """Read and write experiments and trials. Opens (and creates or migrates) the schema lazily."""

    def __init__(self, url: str | None = None, create: bool = True, timeout_s: float = 60.0):
        self.url = normalize_url(url or settings.registry_url())
        self._create = create
        self._timeout_s = timeout_s  # SQLite: how long a write waits for a lock; PostgreSQL: connect timeout (<= 10 s)
        self._engine: sa.Engine | None = None

    # ------------------------------------------------------------------ connection
    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = self._open()
        return self._engine

    def _open(self) -> sa.Engine:
        try:
            url = sa.make_url(self.url)
        except Exception:  # noqa: BLE001 - whatever the parser raises, one line
            raise RegistryError(f"invalid registry URL {safe_url(self.url)!r}") from None
        if url.get_backend_name() == "sqlite":
            engine = self._sqlite_engine(url)
        else:
            try:
                engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_timeout_args(url, self._timeout_s))
            except Exception as exc:  # noqa: BLE001 - a missing driver, a bad option: one line
                raise RegistryError(f"cannot use registry {safe_url(url)}: {one_line(exc)}") from None
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # openers of one database create or migrate it in turn
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
                if self._create:
                    metadata.create_all(conn)
                self._check_version(conn)
        except SQLAlchemyError as exc:
            raise RegistryError(f"cannot reach the registry at {safe_url(url)}: {one_line(exc)}") from None
        return engine

    def _sqlite_engine(self, url: sa.URL) -> sa.Engine:
        if url.database and url.database != ":memory:":
            database = Path(url.database).expanduser()
            try:
                _private_database(database)
            except OSError as exc:
                raise RegistryError(f"cannot create the registry {database}: {exc.strerror}") from None
        engine = sa.create_engine(url, connect_args={"timeout": self._timeout_s, "isolation_level": None})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(self._timeout_s * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks

        return engine

    def _check_version(self, conn: sa.Connection) -> None:
        row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
        if row is None:
            conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"the registry's schema version {version} is newer than this lab's ({SCHEMA_VERSION}): upgrade the lab"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](conn)
            conn.execute(
                sa.update(meta_table).where(meta_table.c.key == "schema_version").values(value=str(target))
            )

    def _run(self, fn):
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry {safe_url(self.url)}: {one_line(exc)}") from None

    def check(self) -> None:
        """Connect (creating the schema if needed); RegistryError if the database is unreachable."""
        self.engine  # noqa: B018

    # ------------------------------------------------------------------ writes
    def create_experiment(self, spec: dict[str, Any], **fields: Any) -> int:
        values = {
            "name": spec["name"],
            "workload": spec["workload"],
            "metric": spec["metric"],
            "mode": spec["mode"],
            "spec": _dumps(spec),
            "dataset": dataset_of(spec),
            "uuid": str(uuid.uuid4()),
            "status": "running",
            "started_at": now(),
            "heartbeat_at": now(),
            **fields,
        }
        if isinstance(values.get("environment"), dict):
            values["environment"] = _dumps(values["environment"])
        return self._run(lambda conn: conn.execute(sa.insert(experiments).values(**values)).inserted_primary_key[0])

    def update_experiment(self, experiment_id: int, **fields: Any) -> None:
        self._run(lambda conn: conn.execute(
            sa.update(experiments).where(experiments.c.id == experiment_id).values(**fields)
        ))

    def heartbeat(self, experiment_id: int) -> None:
        """The driver is alive: `lab ls` shows a running experiment without a recent heartbeat as stale."""
        self.update_experiment(experiment_id, heartbeat_at=now())

    def upsert_trial(self, experiment_id: int, trial_id: str, **fields: Any) -> None:
        """Insert or update one trial; JSON-encodes config and results."""
        self.upsert_trials(experiment_id, {trial_id: fields})

    def upsert_trials(self, experiment_id: int, rows: dict[str, dict[str, Any]]) -> None:
        """Insert or update several trials in one transaction (the callback's batched writes)."""
        stamp = now()
        encoded = {
            trial_id: {**{k: (_dumps(v) if k in ("config", "last_result", "best_result") else v)
                          for k, v in fields.items()}, "updated_at": stamp}
            for trial_id, fields in rows.items()
        }

        def write(conn: sa.Connection) -> None:
            for trial_id, values in encoded.items():
                updated = conn.execute(
                    sa.update(trials)
                    .where(trials.c.experiment_id == experiment_id, trials.c.trial_id == trial_id)
                    .values(**values)
                ).rowcount
                if not updated:
                    row = {"status": "PENDING", "config": "{}", "iterations": 0, "started_at": stamp, **values}
                    conn.execute(sa.insert(trials).values(experiment_id=experiment_id, trial_id=trial_id, **row))

        if encoded:
            self._run(write)

    # ------------------------------------------------------------------ reads
    def experiments(self, limit: int | None = 50, where: str | None = None,
                    tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Experiments, newest first, with trial and error counts; `where` is a `lab.registry.query` filter."""
        counts = (
            sa.select(trials.c.experiment_id, sa.func.count().label("num_trials"),
                      sa.func.sum(sa.case((trials.c.status == "ERROR", 1), else_=0)).label("num_errors"),
                      sa.func.max(trials.c.best_metric).label("best_max"),
                      sa.func.min(trials.c.best_metric).label("best_min"))
            .group_by(trials.c.experiment_id).subquery()
        )
        query = (
            sa.select(*[c for c in experiments.c if c.name not in ("spec", "environment")],
                      counts.c.num_trials, counts.c.num_errors, counts.c.best_max, counts.c.best_min)
            .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
            .where(*self._filters(where, tags))
            .order_by(experiments.c.id.desc()).limit(limit)
        )
        return self._run(lambda conn: [dict(r._mapping) for r in conn.execute(query)])

    def _filters(self, where: str | None, tags: dict[str, str] | None) -> list:
        from lab.registry import query

        conditions = query.parse(where) if where else []
        conditions += [query.Condition(f"tag.{k}", "=", str(v)) for k, v in (tags or {}).items()]
        return query.to_sql(conditions, self.engine.dialect.name)

    def experiment(self, experiment_id: int) -> dict[str, Any]:
        row = self._run(lambda conn: conn.execute(
            sa.select(experiments).where(experiments.c.id == experiment_id)
        ).first())
        if row is None:
            raise UnknownExperiment(f"no experiment with id {experiment_id} in {safe_url(self.url)}")
        record = dict(row._mapping)
        record["spec"] = json.loads(record["spec"])
        record["environment"] = json.loads(record["environment"]) if record.get("environment") else {}
        return record

    def trials(self, experiment_id: int) -> list[dict[str, Any]]:
        rows = self._run(lambda conn: conn.execute(
            sa.select(trials).where(trials.c.experiment_id == experiment_id).order_by(trials.c.trial_id)
        ).all())
        records = []
        for row in rows:
            record = dict(row._mapping)
            for key in ("config", "last_result", "best_result"):
                record[key] = json.loads(record[key]) if record[key] else {}
            records.append(record)
        return records

    def best_trial(self, experiment_id: int) -> dict[str, Any] | None:
        """The trial with the best value of the experiment's metric, or None if none reported it."""
        experiment = self.experiment(experiment_id)
        scored = [t for t in self.trials(experiment_id) if t["best_metric"] is not None]
        if not scored:
            return None
        pick = max if experiment["mode"] == "max" else min
        return pick(scored, key=lambda t: t["best_metric"])

    # ------------------------------------------------------------------ tags, notes, deletion (schema v3)
    def set_tags(self, experiment_id: int, values: dict[str, str]) -> None:
        self.experiment(experiment_id)  # RegistryError for an unknown id

        def write(conn: sa.Connection) -> None:
            for key, value in values.items():
                where = (tags.c.experiment_id == experiment_id) & (tags.c.key == key)
                if not conn.execute(sa.update(tags).where(where).values(value=str(value))).rowcount:
                    conn.execute(sa.insert(tags).values(experiment_id=experiment_id, key=key, value=str(value)))

        self._run(write)

    def remove_tag(self, experiment_id: int, key: str) -> None:
        known = self.tags(experiment_id)
        if key not in known:
            raise RegistryError(f"experiment {experiment_id} has no tag '{key}' (tags: {', '.join(known) or 'none'})")
        self._run(lambda conn: conn.execute(
            sa.delete(tags).where(tags.c.experiment_id == experiment_id, tags.c.key == key)))

    def tags(self, experiment_id: int) -> dict[str, str]:
        rows = self._run(lambda conn: conn.execute(
            sa.select(tags.c.key, tags.c.value).where(tags.c.experiment_id == experiment_id).order_by(tags.c.key)
        ).all())
        return {key: value for key, value in rows}

    def add_note(self, experiment_id: int, text: str, user: str | None = None) -> None:
        self.experiment(experiment_id)
        self._run(lambda conn: conn.execute(sa.insert(notes).values(
            experiment_id=experiment_id, text=text, user=user, created_at=now())))

    def notes(self, experiment_id: int) -> list[dict[str, Any]]:
        rows = self._run(lambda conn: conn.execute(
            sa.select(notes.c.text, notes.c.user, notes.c.created_at)
            .where(notes.c.experiment_id == experiment_id).order_by(notes.c.id)
        ).all())
        return [dict(r._mapping) for r in rows]

    def delete_experiment(self, experiment_id: int) -> None:
        """Delete the experiment's rows (trials, tags, notes, itself) in one transaction."""
        def delete(conn: sa.Connection) -> None:
            for table in (trials, tags, notes):
                conn.execute(sa.delete(table).where(table.c.experiment_id == experiment_id))
            conn.execute(sa.delete(experiments).where(experiments.c.id == experiment_id))

        self._run(delete)

    # ------------------------------------------------------------------ across experiments
    def leaderboard(self, workload: str | None = None, dataset: str | None = None, metric: str | None = None,
                    limit: int | None = 20, where: str | None = None) -> tuple[str | None, str, list[dict[str, Any]]]:
        """(metric, mode, rows): the best trials of every matching experiment, ranked by `metric`.

        `metric` defaults to the metric of the newest matching experiment; only experiments ranked by the
        same metric (and mode) take part, so the ranking compares like with like whatever the workload.
        """
        e, t = experiments, trials
        scope = [*self._filters(where, None)]
        if workload:
            scope.append(e.c.workload == workload)
        if dataset:
            scope.append(e.c.dataset == dataset)

        def read(conn: sa.Connection):
            pick = sa.select(e.c.metric, e.c.mode).where(*scope)
            pick = pick.where(e.c.metric == metric) if metric else pick
            head = conn.execute(pick.order_by(e.c.id.desc()).limit(1)).first()
            if head is None:
                return None, "max", []
            chosen, mode = head
            order = t.c.best_metric.desc() if mode == "max" else t.c.best_metric.asc()
            query = (
                sa.select(e.c.id.label("experiment_id"), e.c.name, e.c.workload, e.c.dataset, e.c.user,
                          t.c.trial_id, t.c.status, t.c.best_metric, t.c.config, t.c.iterations)
                .join(e, e.c.id == t.c.experiment_id)
                .where(*scope, e.c.metric == chosen, e.c.mode == mode, t.c.best_metric.is_not(None))
                .order_by(order, t.c.id).limit(limit)
            )
            rows = [dict(r._mapping) for r in conn.execute(query)]
            for row in rows:
                row["config"] = json.loads(row["config"]) if row["config"] else {}
            return chosen, mode, rows

        return self._run(read)


def display_status(record: dict[str, Any], at: dt.datetime | None = None) -> str:
    """The experiment's status, or 'stale' when it says running but its driver stopped beating."""
    beat = record.get("heartbeat_at") or record.get("started_at")
    if record.get("status") != "running" or beat is None:
        return record.get("status") or "-"
    if beat.tzinfo is None:  # SQLite hands back naive datetimes: they were written in UTC
        beat = beat.replace(tzinfo=dt.timezone.utc)
    return "stale" if ((at or now()) - beat).total_seconds() > stale_after_s() else "running"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True, allow_nan=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def clean_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe scalar part of a Tune result (no NaN, no nested config)."""
    clean = {}
    for key, value in result.items():
        if key in ("config", "hostname", "node_ip", "pid", "date", "trial_id", "experiment_tag"):
            continue
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bool) or isinstance(value, str):
            clean[key] = value
        elif isinstance(value, (int, float)):
            clean[key] = value if math.isfinite(value) else None
    return clean


def _private_database(database: Path) -> None:
    """An SQLite registry only its user can read: in LAB_HOME (0700) mode 0600, WAL files included (SQLite
    gives new ones the database's mode; older ones are set to 0600); elsewhere a new one is made 0600 and an
    existing one left as it is. Nothing but the database itself is ever created here."""
    home = settings.lab_home()
    inside = database.parent == home or home in database.parents
    if inside:
        settings.private_dir(database.parent)
    else:
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass
    if not inside:
        return
    for path in (database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))):
        try:
            info = path.lstat()
            if info.st_uid == os.getuid() and not path.is_symlink() and info.st_mode & 0o077:
                os.chmod(path, 0o600)
        except FileNotFoundError:
            continue
