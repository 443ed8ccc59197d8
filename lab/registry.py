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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from lab import settings
from lab.errors import RegistryError

SCHEMA_VERSION = 2  # 2: experiments.heartbeat_at

HEARTBEAT_EVERY_S = 10.0  # a running driver touches its experiment's heartbeat this often


def stale_after_s() -> float:
    """A 'running' experiment whose heartbeat is older than this is shown as stale (its driver died)."""
    return float(os.environ.get("LAB_STALE_AFTER_S") or 60)

metadata = sa.MetaData()

meta_table = sa.Table(
    "lab_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("workload", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # running, completed, failed, interrupted
    sa.Column("spec", sa.Text, nullable=False),  # the spec as run, JSON
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(3), nullable=False),
    sa.Column("user", sa.String(100)),
    sa.Column("host", sa.String(200)),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("storage_path", sa.Text),  # the Tune experiment folder (resume from here)
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),  # touched by the live driver (schema version 2)
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False, index=True),
    sa.Column("trial_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # RUNNING, TERMINATED, ERROR
    sa.Column("config", sa.Text, nullable=False),  # JSON
    sa.Column("iterations", sa.Integer, nullable=False, default=0),
    sa.Column("last_result", sa.Text),  # JSON: final metrics
    sa.Column("best_result", sa.Text),  # JSON: metrics of the iteration with the best metric
    sa.Column("best_metric", sa.Float),
    sa.Column("checkpoint_path", sa.Text),
    sa.Column("logdir", sa.Text),  # TensorBoard run folder
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("experiment_id", "trial_id", name="uq_trial"),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: sa.URL | str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable registry URL>"


class Registry:
    """Read and write experiments and trials. Opens (and creates or migrates) the schema lazily."""

    def __init__(self, url: str | None = None, create: bool = True):
        self.url = normalize_url(url or settings.registry_url())
        self._create = create
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
        except Exception:
            raise RegistryError(f"invalid registry URL {safe_url(self.url)!r}") from None
        if url.get_backend_name() == "sqlite":
            engine = self._sqlite_engine(url)
        else:
            try:
                engine = sa.create_engine(url, pool_pre_ping=True, connect_args=_connect_timeout(url))
            except Exception as exc:
                raise RegistryError(f"cannot use registry {safe_url(url)}: {_one_line(exc)}") from None
        try:
            with engine.begin() as conn:
                if self._create:
                    metadata.create_all(conn)
                self._check_version(conn)
        except SQLAlchemyError as exc:
            raise RegistryError(f"cannot reach the registry at {safe_url(url)}: {_one_line(exc)}") from None
        return engine

    def _sqlite_engine(self, url: sa.URL) -> sa.Engine:
        if url.database and url.database != ":memory:":
            folder = Path(url.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(f"cannot create the registry folder {folder}: {exc.strerror}") from None
        engine = sa.create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
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
            raise RegistryError(f"registry {safe_url(self.url)}: {_one_line(exc)}") from None

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
            "status": "running",
            "started_at": now(),
            "heartbeat_at": now(),
            **fields,
        }
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
    def experiments(self, limit: int = 50) -> list[dict[str, Any]]:
        counts = (
            sa.select(trials.c.experiment_id, sa.func.count().label("num_trials"),
                      sa.func.sum(sa.case((trials.c.status == "ERROR", 1), else_=0)).label("num_errors"))
            .group_by(trials.c.experiment_id).subquery()
        )
        query = (
            sa.select(experiments, counts.c.num_trials, counts.c.num_errors)
            .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
            .order_by(experiments.c.id.desc()).limit(limit)
        )
        return self._run(lambda conn: [dict(r._mapping) for r in conn.execute(query)])

    def experiment(self, experiment_id: int) -> dict[str, Any]:
        row = self._run(lambda conn: conn.execute(
            sa.select(experiments).where(experiments.c.id == experiment_id)
        ).first())
        if row is None:
            raise RegistryError(f"no experiment with id {experiment_id} in {safe_url(self.url)}")
        record = dict(row._mapping)
        record["spec"] = json.loads(record["spec"])
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


def display_status(record: dict[str, Any], at: dt.datetime | None = None) -> str:
    """The experiment's status, or 'stale' when it says running but its driver stopped beating."""
    beat = record.get("heartbeat_at") or record.get("started_at")
    if record.get("status") != "running" or beat is None:
        return record.get("status") or "-"
    if beat.tzinfo is None:  # SQLite hands back naive datetimes: they were written in UTC
        beat = beat.replace(tzinfo=dt.timezone.utc)
    return "stale" if ((at or now()) - beat).total_seconds() > stale_after_s() else "running"


def _add_nothing(conn: sa.Connection) -> None:  # pragma: no cover - the first version has nothing to migrate
    pass


def _add_heartbeat(conn: sa.Connection) -> None:
    """Version 2: experiments.heartbeat_at, so that a driver killed with SIGKILL shows up as stale."""
    if "heartbeat_at" in {c["name"] for c in sa.inspect(conn).get_columns("experiments")}:
        return
    kind = sa.DateTime(timezone=True).compile(dialect=conn.dialect)
    guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""  # two processes migrating at once
    conn.exec_driver_sql(f"ALTER TABLE experiments ADD COLUMN {guard}heartbeat_at {kind}")


# version -> function bringing the schema from version-1 to version (ALTER TABLE ... on both databases)
MIGRATIONS = {1: _add_nothing, 2: _add_heartbeat}


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


def _connect_timeout(url: sa.URL) -> dict[str, Any]:
    return {"connect_timeout": 10} if url.get_backend_name() == "postgresql" else {}


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
