"""The task store's tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 1

metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    # JSON documents are stored as text, serialised once by pydantic/orjson (the JSON type would encode again).
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("input", sa.Text),
    sa.Column("owner", sa.String(200)),
    # ",code,research," so one LIKE finds the tasks of an expert on every database.
    sa.Column("experts", sa.Text, nullable=False, default=""),
    sa.Column("decision", sa.Text),
    sa.Column("ruling", sa.Text),
    sa.Column("results", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("duration_ms", sa.Float),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_tasks_state_created", "state", "created_at"),
    sa.Index("ix_tasks_created", "created_at"),
    sa.Index("ix_tasks_owner_state", "owner", "state"),
)

# Every process that accepts tasks keeps a row here and refreshes ``heartbeat_at``; on start, a process marks the
# live tasks of owners that are gone (dead pid on this host, or a heartbeat older than the lease) as interrupted.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
