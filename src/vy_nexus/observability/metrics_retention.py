"""Retention of the metrics tables: rows older than ``metrics.retention_days`` are folded into ``executions_daily`` /
``routing_daily`` (count, successes or cache hits, summed and maximum durations per UTC day) and deleted, so the
database stays bounded while the long-term trend survives.

The same Core statements run on SQLite and PostgreSQL: an ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` (both
dialects' upsert), the larger of two maxima as a ``CASE`` (SQLite's two-argument ``MAX`` is PostgreSQL's
``GREATEST``), and the UTC day of a Unix time as ``utc_day`` (compiled per dialect). On PostgreSQL the run holds an
advisory lock, so two processes retaining at once cannot both fold the same rows.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import (
    TIME_COLUMNS,
    api,
    executions,
    executions_daily,
    llm,
    routing,
    routing_daily,
    system,
    tasks,
)


class utc_day(FunctionElement[str]):  # noqa: N801 - an SQL function, named as one
    """``YYYY-MM-DD`` of a Unix time, in UTC."""

    type = sa.Text()
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, 'unixepoch')"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(to_timestamp({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _upsert(conn: sa.Connection, table: sa.Table) -> Any:
    # The dialect modules load here, on the first retention run: a CLI command that only routes does not pay.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _larger(current: sa.ColumnElement[Any], new: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.case((new > current, new), else_=current)


def _roll_up_executions(conn: sa.Connection, cutoff: float) -> None:
    e, d = executions, executions_daily
    day, task_type = utc_day(e.c.started_at), sa.func.coalesce(e.c.task_type, sa.literal_column("''"))
    source = (
        sa.select(
            day,
            e.c.expert_id,
            task_type,
            sa.func.count(),
            sa.func.sum(e.c.success),
            sa.func.sum(e.c.duration_ms),
            sa.func.max(e.c.duration_ms),
        )
        .where(e.c.started_at < cutoff)
        .group_by(day, e.c.expert_id, task_type)
    )
    insert = _upsert(conn, d).from_select(
        ["day", "expert_id", "task_type", "count", "successes", "total_ms", "max_ms"], source
    )
    new = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[d.c.day, d.c.expert_id, d.c.task_type],
            set_={
                "count": d.c.count + new.count,
                "successes": d.c.successes + new.successes,
                "total_ms": d.c.total_ms + new.total_ms,
                "max_ms": _larger(d.c.max_ms, new.max_ms),
            },
        )
    )


def _roll_up_routing(conn: sa.Connection, cutoff: float) -> None:
    r, d = routing, routing_daily
    day = utc_day(r.c.timestamp)
    source = (
        sa.select(
            day,
            r.c.strategy,
            sa.func.count(),
            sa.func.sum(r.c.cache_hit),
            sa.func.sum(r.c.latency_ms),
            sa.func.max(r.c.latency_ms),
        )
        .where(r.c.timestamp < cutoff)
        .group_by(day, r.c.strategy)
    )
    insert = _upsert(conn, d).from_select(
        ["day", "strategy", "count", "cache_hits", "total_latency_ms", "max_latency_ms"], source
    )
    new = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[d.c.day, d.c.strategy],
            set_={
                "count": d.c.count + new.count,
                "cache_hits": d.c.cache_hits + new.cache_hits,
                "total_latency_ms": d.c.total_latency_ms + new.total_latency_ms,
                "max_latency_ms": _larger(d.c.max_latency_ms, new.max_latency_ms),
            },
        )
    )


def apply_retention(database: MetricsDatabase, retention_days: float, *, now: float | None = None) -> int:
    """Roll rows older than ``retention_days`` up into the daily tables and delete them; returns rows removed."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400.0
    removed = 0
    with database.engine().begin() as conn:
        database.lock(conn)
        _roll_up_executions(conn, cutoff)
        _roll_up_routing(conn, cutoff)
        for table in (tasks, executions, routing, system, llm, api):
            removed += conn.execute(sa.delete(table).where(TIME_COLUMNS[table.name] < cutoff)).rowcount
    return removed
