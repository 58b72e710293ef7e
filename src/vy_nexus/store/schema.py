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
)

# Indexes earlier versions created that no query uses (recovery finds live tasks by state); dropped on open, since
# every index costs each insert (~1 µs a row in SQLite, benchmarks/overhead.py).
RETIRED_INDEXES = ("ix_tasks_owner_state",)

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

# One row per expert call run on a worker (executor.kind: celery): the dedupe key (task id, expert id) and the
# result. A redelivered message finds the row: ``done`` means answer with the stored result, ``running`` counts
# one more delivery (bounded by executor.max_redeliveries). ``attempt`` is Celery's retry number, so a retry is
# a new attempt, not a redelivery. The server reads the results here: the store is the cluster's result backend.
expert_calls = sa.Table(
    "expert_calls",
    metadata,
    sa.Column("task_id", sa.String(128), primary_key=True),
    sa.Column("expert_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("deliveries", sa.Integer, nullable=False, default=1),
    sa.Column("worker", sa.String(255)),
    sa.Column("result", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index("ix_expert_calls_finished", "finished_at"),
)

# The heartbeat of each worker pool process (``host:pid``, as ``expert_calls.worker`` names it), refreshed every
# second while it runs a call. A running call whose worker stopped beating (or, on the same host, whose process is
# gone) has lost it: the next delivery takes the call over, or its server sends it again. A new table, created where
# missing, so the schema version stays: an older vy-nexus ignores it.
worker_beats = sa.Table(
    "worker_beats",
    metadata,
    sa.Column("worker", sa.String(255), primary_key=True),
    sa.Column("beat_at", sa.Float, nullable=False),
)
