"""The metrics tables in SQLAlchemy Core: one definition for the SQLite file and the cluster's PostgreSQL.

Raw tables (one row per thing that happened; times are Unix seconds, durations milliseconds):

* ``tasks``       one finished task: type, end, duration, success, contributing experts, aggregation, confidence
* ``executions``  one expert run: task, expert, task type, start, duration, success, error, attempts, and the
                  process that ran it (``host:pid``; a Celery worker's pool process, or the process itself)
* ``routing``     one routing decision: chosen experts, top confidence, all confidences, strategy, cache hit, fallback,
                  latency, out of scope
* ``system``      one periodic sample: CPU %, memory %, process RSS, disk %, free disk, observer queue depth, process
* ``llm``         one LLM call: provider, model, operation, duration, input/output tokens, error, time to first token,
                  process
* ``api``         one HTTP request the API served: route template, method, status, latency

``metrics`` is a view over the first five, so ``SELECT COUNT(*) FROM metrics`` counts every recorded row.
``executions_daily`` / ``routing_daily`` keep the roll-up of rows older than ``metrics.retention_days``
(metrics_retention.py).

Where: by default the SQLite file ``<home>/metrics/performance.db``; with a PostgreSQL ``store.url`` the tables live
in that database under the schema ``vy_observability`` (the task store's own ``tasks`` table sits in the default
schema). The tables are defined without a schema; the PostgreSQL engine maps them into it
(``schema_translate_map``), so every query is the same Core statement on both.

Evolving: a new column is added nullable at the end of its table; ``upgrade`` adds the columns an existing
database lacks (``ALTER TABLE ... ADD COLUMN``, the same on both) and records ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import sqlalchemy as sa

from vy_nexus.observability.metrics_names import RAW_TABLES, SERVER_SCHEMA

__all__ = ["RAW_TABLES", "SCHEMA_VERSION", "SERVER_SCHEMA", "metadata", "schema_of", "stored_version", "upgrade"]

SCHEMA_VERSION = 5
"""2: the seed's tables and the ``metrics`` view. 3: ``llm.ttft_ms`` (time to first token; NULL when no token came,
or recorded before). 4: ``routing.out_of_scope`` (the strategy had no candidate; NULL before). 5: ``process`` on
executions, system and llm; ``api`` among the tables."""


Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit identity on PostgreSQL; ``INTEGER PRIMARY KEY`` (the rowid) on SQLite."""

metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("task_id", sa.Text),
    sa.Column("task_type", sa.Text),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("success", sa.Integer, nullable=False),
    sa.Column("experts", sa.Text, nullable=False),
    sa.Column("method", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Index("tasks_finished", "finished_at"),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("task_id", sa.Text),
    sa.Column("expert_id", sa.Text, nullable=False),
    sa.Column("task_type", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("success", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("process", sa.Text),
    sa.Index("executions_started", "started_at"),
    sa.Index("executions_expert", "expert_id", "task_type"),
)

routing = sa.Table(
    "routing",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("task_id", sa.Text),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("experts", sa.Text, nullable=False),
    sa.Column("top_expert", sa.Text),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("confidences", sa.Text, nullable=False),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("cache_hit", sa.Integer, nullable=False),
    sa.Column("fallback", sa.Integer, nullable=False, server_default="0"),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("out_of_scope", sa.Integer),
    sa.Index("routing_time", "timestamp"),
)

system = sa.Table(
    "system",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("cpu_percent", sa.Float),
    sa.Column("memory_percent", sa.Float),
    sa.Column("rss_bytes", sa.BigInteger),
    sa.Column("disk_percent", sa.Float),
    sa.Column("disk_free_bytes", sa.BigInteger),
    sa.Column("queue_depth", sa.Integer),
    sa.Column("process", sa.Text),
    sa.Index("system_time", "timestamp"),
)

llm = sa.Table(
    "llm",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("task_id", sa.Text),
    sa.Column("expert_id", sa.Text),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("input_tokens", sa.BigInteger),
    sa.Column("output_tokens", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("process", sa.Text),
    sa.Index("llm_time", "timestamp"),
)

api = sa.Table(
    "api",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Index("api_time", "timestamp"),
)

executions_daily = sa.Table(
    "executions_daily",
    metadata,
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("expert_id", sa.Text, primary_key=True),
    sa.Column("task_type", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("total_ms", sa.Float, nullable=False),
    sa.Column("max_ms", sa.Float, nullable=False),
)

routing_daily = sa.Table(
    "routing_daily",
    metadata,
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("strategy", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("cache_hits", sa.BigInteger, nullable=False),
    sa.Column("total_latency_ms", sa.Float, nullable=False),
    sa.Column("max_latency_ms", sa.Float, nullable=False),
)

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
"""The schema version on PostgreSQL (an SQLite file keeps it in ``PRAGMA user_version``, as it always has)."""

TABLES: dict[str, sa.Table] = {table.name: table for table in (tasks, executions, routing, system, llm, api)}
"""The tables rows are written to, by name."""

TIME_COLUMNS: dict[str, sa.Column[float]] = {
    "tasks": tasks.c.finished_at,
    "executions": executions.c.started_at,
    "routing": routing.c.timestamp,
    "system": system.c.timestamp,
    "llm": llm.c.timestamp,
    "api": api.c.timestamp,
}

_VIEW = """
{create} {prefix}metrics (kind, timestamp, task_id, name, value) AS
    SELECT 'task', finished_at, task_id, task_type, duration_ms FROM {prefix}tasks
    UNION ALL SELECT 'execution', started_at, task_id, expert_id, duration_ms FROM {prefix}executions
    UNION ALL SELECT 'routing', timestamp, task_id, top_expert, latency_ms FROM {prefix}routing
    UNION ALL SELECT 'system', timestamp, NULL, 'cpu_percent', cpu_percent FROM {prefix}system
    UNION ALL SELECT 'llm', timestamp, task_id, provider || '/' || model, duration_ms FROM {prefix}llm
"""


def _prefix(conn: sa.Connection) -> str:
    schema = schema_of(conn)
    return "" if schema is None else conn.dialect.identifier_preparer.quote_schema(schema) + "."


def schema_of(conn: sa.Connection) -> str | None:
    """The schema the tables live in on this connection (None: the database's default, as on SQLite)."""
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    schema: str | None = translate.get(None)
    return schema


def stored_version(conn: sa.Connection) -> int:
    """The schema version of the database behind ``conn`` (0: nothing created yet)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not sa.inspect(conn).has_table("schema_info", schema=schema_of(conn)):
        return 0
    version = conn.execute(sa.select(schema_info.c.version).where(schema_info.c.name == "metrics")).scalar()
    return int(version or 0)


def upgrade(conn: sa.Connection) -> None:
    """Create what is missing and bring an older database to ``SCHEMA_VERSION``, inside the caller's transaction
    (which holds the write lock: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL)."""
    version = stored_version(conn)
    if version >= SCHEMA_VERSION:
        return
    schema = schema_of(conn)
    prefix = _prefix(conn)
    if schema is not None:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote_schema(schema)}")
    if 0 < version < 2:  # version 1 had an ``api`` table of another shape, which nothing filled
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {prefix}metrics")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}api")
    tables = [t for t in metadata.sorted_tables if t is not schema_info or schema]
    # One query for what exists, instead of one per table; a new database (every new home) then only creates.
    present = set(sa.inspect(conn).get_table_names(schema=schema))
    metadata.create_all(conn, tables=[t for t in tables if t.name not in present], checkfirst=False)
    older = [t for t in tables if t.name in present]
    if older:
        metadata.create_all(conn, tables=older)
        _add_missing_columns(conn, schema, older)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_VIEW.format(create="CREATE VIEW IF NOT EXISTS", prefix=prefix))
        conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
        return
    conn.exec_driver_sql(_VIEW.format(create="CREATE OR REPLACE VIEW", prefix=prefix))
    conn.execute(sa.delete(schema_info).where(schema_info.c.name == "metrics"))
    conn.execute(sa.insert(schema_info).values(name="metrics", version=SCHEMA_VERSION))


def _add_missing_columns(conn: sa.Connection, schema: str | None, tables: list[sa.Table]) -> None:
    """Columns added since a table was created (always nullable, so existing rows stay valid)."""
    inspector = sa.inspect(conn)
    preparer = conn.dialect.identifier_preparer
    for table in tables:
        present = {column["name"] for column in inspector.get_columns(table.name, schema=schema)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            target = f"{_prefix(conn)}{preparer.quote(table.name)}"
            conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {preparer.quote(column.name)} {kind}")


COUNTED_TABLES = {"tasks": tasks, "executions": executions, "routing": routing, "llm": llm}
"""The tables the Prometheus exposition counts from, by name."""


def largest_ids(conn: sa.Connection | None) -> dict[str, int]:
    """The largest row id of each counted table (0 when empty); empty without a database."""
    if conn is None:
        return {}
    return {
        name: int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar() or 0)
        for name, table in COUNTED_TABLES.items()
    }
