"""The journal of every process in one place: entries shipped to the cluster's database, and queries over them.

With a PostgreSQL ``store.url`` (and ``logging.ship_to_store``, on by default) each process's writer thread also
inserts its structured journal lines into the table ``journal`` (schema ``vy_observability``, next to the metrics),
with the ``host:pid`` that wrote them. ``vy-nexus logs`` then reads that table, so one query sees the server and
every worker, on whichever machine they run. Why a table and not per-worker files merged by ``vy-nexus logs``:
a worker on another machine writes its files on that machine's disk, which the machine running ``vy-nexus logs``
cannot read; the database is the one place every process of a cluster already reaches. The files stay as they are
(daily.md for people, structured.jsonl for ``grep``), per machine.

Each row keeps the JSON line as written to structured.jsonl, plus the columns queries filter on (time, level,
component, task). Entries older than ``logging.store_retention_days`` are deleted hourly. ``follow`` polls for new
rows by id, also picking up rows another process's transaction committed late (new_rows.py).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from vy_nexus import json_text
from vy_nexus.events import Event
from vy_nexus.observability.journal import levels_at_or_above
from vy_nexus.observability.journal_format import TimestampFormatter, structured_line
from vy_nexus.observability.logquery import LogEntry, LogFilter, QueryStats
from vy_nexus.observability.metrics import cleaned
from vy_nexus.observability.metrics_db import MetricsDatabase, insert_rows
from vy_nexus.observability.metrics_schema import Id, schema_of
from vy_nexus.observability.new_rows import NewRows

RETENTION_EVERY_SECONDS = 3600.0

metadata = sa.MetaData()

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("component", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("task_id", sa.Text),
    sa.Column("expert_id", sa.Text),
    sa.Column("process", sa.Text, nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Index("journal_time", "timestamp"),
    sa.Index("journal_task", "task_id"),
)

COLUMNS = ("timestamp", "level", "component", "kind", "task_id", "expert_id", "process", "line")


def _create(conn: sa.Connection) -> None:
    schema = schema_of(conn)
    if schema is not None:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote_schema(schema)}")
    metadata.create_all(conn)


class JournalTable:
    """A sink like ``Journal``: ``write(events)`` inserts their structured lines, in one transaction."""

    def __init__(self, database: MetricsDatabase, *, retention_days: float = 14.0) -> None:
        self.database = database
        self.retention_days = retention_days
        self._format_time = TimestampFormatter()
        self._pid = 0
        self._process = ""
        self._created = False
        self._last_retention = 0.0

    def open(self) -> None:
        """Create the table if needed and apply retention (else done on the first write)."""
        self._engine()

    def _engine(self) -> sa.Engine:
        engine = self.database.engine()
        if self._pid != os.getpid():  # first use in this (maybe forked) process
            self._pid, self._process, self._created = os.getpid(), f"{socket.gethostname()}:{os.getpid()}", False
        now = time.time()
        if not self._created or now - self._last_retention >= RETENTION_EVERY_SECONDS:
            with engine.begin() as conn:
                self.database.lock(conn)
                _create(conn)
                cutoff = now - self.retention_days * 86400.0
                conn.execute(sa.delete(journal).where(journal.c.timestamp < cutoff))
            self._created, self._last_retention = True, now
        return engine

    def write(self, events: Sequence[Event]) -> None:
        if not events:
            return
        engine = self._engine()
        process = self._process
        rows = {
            "journal": [
                (
                    event.timestamp,
                    event.level,
                    event.component,
                    event.kind,
                    event.task_id,
                    event.expert_id,
                    process,
                    structured_line(event, self._format_time(event.timestamp))[:-1].decode(),
                )
                for event in events
            ]
        }
        try:
            self._insert(engine, rows)
        except (UnicodeError, sa.exc.DataError):
            self._insert(engine, cleaned(rows))

    @staticmethod
    def _insert(engine: sa.Engine, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        with engine.begin() as conn:
            insert_rows(conn, "journal", COLUMNS, rows["journal"])


# -- queries ----------------------------------------------------------------------------------------------------------


def _where(flt: LogFilter) -> list[sa.ColumnElement[bool]]:
    c = journal.c
    conditions: list[sa.ColumnElement[bool]] = []
    if flt.level is not None:
        conditions.append(c.level.in_(sorted(levels_at_or_above(flt.level))))
    if flt.component is not None:
        conditions.append(c.component == flt.component)
    if flt.since is not None:
        conditions.append(c.timestamp >= flt.since)
    if flt.until is not None:
        conditions.append(c.timestamp <= flt.until)
    if flt.task_id is not None:
        conditions.append(c.task_id == flt.task_id)
    if flt.grep:
        conditions.append(c.line.icontains(flt.grep, autoescape=True))
    return conditions


def _entry(row: Any, stats: QueryStats) -> LogEntry | None:
    stats.lines += 1
    try:
        record = json_text.loads(row.line)
    except json.JSONDecodeError:
        stats.malformed += 1
        return None
    if not isinstance(record, dict):
        stats.malformed += 1
        return None
    record["process"] = row.process
    stats.matched += 1
    return LogEntry(
        timestamp=str(record.get("timestamp", "")),
        level=str(record.get("level", "")),
        component=str(record.get("component", "")),
        message=str(record.get("message", "")),
        record=record,
        raw=json.dumps(record, ensure_ascii=False, separators=(",", ":")),
    )


def _exists(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table("journal", schema=schema_of(conn))


def query_table(
    database: MetricsDatabase, flt: LogFilter, stats: QueryStats | None = None, *, newest: int | None = None
) -> Iterator[LogEntry]:
    """Matching entries of every process, in time order; with ``newest`` only the last that many."""
    counts = stats if stats is not None else QueryStats()
    with database.connection() as conn:
        if not _exists(conn):
            return
        query = sa.select(journal.c.id, journal.c.process, journal.c.line).where(*_where(flt))
        if newest is not None:
            rows = conn.execute(query.order_by(journal.c.timestamp.desc(), journal.c.id.desc()).limit(newest)).all()
            for row in reversed(rows):
                entry = _entry(row, counts)
                if entry is not None:
                    yield entry
            return
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            query.order_by(journal.c.timestamp, journal.c.id)
        )
        for row in result:
            entry = _entry(row, counts)
            if entry is not None:
                yield entry


def follow_table(
    database: MetricsDatabase,
    flt: LogFilter,
    *,
    stats: QueryStats | None = None,
    poll_seconds: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[LogEntry]:
    """The matching entries there are, then new ones as any process ships them, until ``should_stop()``.

    Every new row's id is read (the filter decides only whether its line comes along), so rows the filter leaves
    out are not mistaken for rows still to commit."""
    counts = stats if stats is not None else QueryStats()
    reader = NewRows()
    conditions = _where(flt)
    hit = sa.and_(sa.true(), *conditions)
    rows: Sequence[Any] = []
    with database.connection() as conn:  # what is there: filtered in the database, in time order
        if _exists(conn):
            largest = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(journal.c.id), 0))).scalar() or 0)
            rows = conn.execute(
                sa.select(journal.c.id, journal.c.process, journal.c.line)
                .where(journal.c.id <= largest, *conditions)
                .order_by(journal.c.timestamp, journal.c.id)
            ).all()
            reader.skip_to(largest)
    for row in rows:
        entry = _entry(row, counts)
        if entry is not None:
            yield entry
    while not should_stop():
        time.sleep(poll_seconds)
        rows = []
        with database.connection() as conn:
            if _exists(conn):
                largest = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(journal.c.id), 0))).scalar() or 0)
                query = sa.select(
                    journal.c.id, journal.c.process, sa.case((hit, journal.c.line), else_=sa.null()).label("line")
                ).where(reader.where(journal.c.id, largest))
                rows = conn.execute(query.order_by(journal.c.id)).all()
                reader.saw(row.id for row in rows)
        for row in rows:
            if row.line is not None:
                entry = _entry(row, counts)
                if entry is not None:
                    yield entry
