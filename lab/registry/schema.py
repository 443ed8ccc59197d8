"""The registry's tables (SQLAlchemy Core, one schema for SQLite and PostgreSQL) and its version."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SCHEMA_VERSION = 4  # 2: experiments.heartbeat_at; 3: tags, notes, experiments.dataset and .environment;
#                     4: experiments.uuid (the storage folder's identity), dataset filled from workload defaults


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
    sa.Column("dataset", sa.String(200)),  # params.dataset or params.env_id: what a leaderboard groups by (v3)
    sa.Column("environment", sa.Text),  # JSON: Python and package versions, commit, dirty flag (v3)
    sa.Column("uuid", sa.String(36)),  # the experiment's identity, also in its folder's marker (v4)
)


# indexes the queries of `lab ls --where` and `lab leaderboard` use (created by migration 3 on older schemas)
EXPERIMENT_INDEXES = (
    sa.Index("ix_experiments_workload_dataset", experiments.c.workload, experiments.c.dataset),
    sa.Index("ix_experiments_status", experiments.c.status),
)
UUID_INDEX = sa.Index("ix_experiments_uuid", experiments.c.uuid, unique=True)


tags = sa.Table(
    "tags",
    metadata,
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.String(500), nullable=False),
    sa.Index("ix_tags_key_value", "key", "value"),
)


notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("user", sa.String(100)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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


TRIAL_INDEXES = (sa.Index("ix_trials_best_metric", trials.c.best_metric),)


def dataset_of(spec: dict[str, Any]) -> str:
    """What an experiment learns from: its params' data set or env id, else its workload's default one
    ('' when it has neither)."""
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        params = {}
    named = params.get("dataset") or params.get("env_id")
    return str(named) if named else workload_default_dataset(spec.get("workload"))


def workload_default_dataset(name: object) -> str:
    """The default `dataset` or `env_id` of workload `name`'s Config ('' for none, or an unknown workload)."""
    import dataclasses

    from lab import workload as workloads

    try:
        config = workloads.get(str(name)).Config
        fields = {f.name: f for f in dataclasses.fields(config)}
    except Exception:  # noqa: BLE001 - an uninstalled plugin, a Config that is no dataclass
        return ""
    for key in ("dataset", "env_id"):
        field = fields.get(key)
        if field is not None and isinstance(field.default, str):
            return field.default
    return ""
