"""The layout of metrics/performance.db, and its retention.

Raw tables (one row per thing that happened; times are Unix seconds, durations milliseconds):

* ``tasks``       one finished task: type, end, duration, success, contributing experts, aggregation, confidence
* ``executions``  one expert run: task, expert, task type, start, duration, success, error, attempts
* ``routing``     one routing decision: chosen experts, top confidence, all confidences, strategy, cache hit, fallback,
  out of scope, latency
* ``system``      one periodic sample: CPU %, memory %, process RSS, disk %, free disk, observer queue depth
* ``llm``         one LLM call: provider, model, operation, duration, input/output tokens, error, time to first token

``metrics`` is a view over all raw tables (``kind``, ``timestamp``, ``task_id``, ``name``, ``value``), so
``SELECT COUNT(*) FROM metrics`` counts every recorded row.

Retention: rows older than ``metrics.retention_days`` are folded into ``executions_daily`` / ``routing_daily`` (count,
successes or cache hits, summed and maximum durations per UTC day) and deleted, so the file stays bounded while the
long-term trend survives.

Migrations: ``PRAGMA user_version`` holds the schema version. Opening an older database runs each step from its
version up (``_MIGRATIONS``), then the ``CREATE ... IF NOT EXISTS`` schema. A step that adds a column does nothing
when the table does not exist yet (a new database: the schema creates it whole) or already has the column (another
process upgraded the file first).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from vy_nexus.errors import StateError

SCHEMA_VERSION = 4

Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def run(connection: sqlite3.Connection) -> None:
        connection.executescript(sql)

    return run


def _add_column(table: str, column: str, declaration: str) -> Migration:
    """A step adding ``column`` to ``table``; nothing to do when another process added it first."""

    def run(connection: sqlite3.Connection) -> None:
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if not present or column in present:
            return
        try:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        except sqlite3.OperationalError as exc:
            if "duplicate column name" not in str(exc):
                raise

    return run


_MIGRATIONS: dict[int, Migration] = {
    # Version 2 drops the ``api`` table, which nothing filled yet; the ``metrics`` view is rebuilt without it.
    1: _script("DROP VIEW IF EXISTS metrics; DROP TABLE IF EXISTS api;"),
    # Version 3 records each LLM call's time to first token (NULL: no token arrived, or recorded before version 3).
    2: _add_column("llm", "ttft_ms", "REAL"),
    # Version 4 tells an out-of-scope decision (the strategy had no candidate) from a low-confidence fallback
    # (NULL: decided before version 4, not known).
    3: _add_column("routing", "out_of_scope", "INTEGER"),
}

RAW_TABLES = ("tasks", "executions", "routing", "system", "llm")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    task_id TEXT,
    task_type TEXT,
    finished_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    success INTEGER NOT NULL,
    experts TEXT NOT NULL,
    method TEXT,
    confidence REAL
);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at);

CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    task_id TEXT,
    expert_id TEXT NOT NULL,
    task_type TEXT,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    success INTEGER NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS executions_started ON executions (started_at);
CREATE INDEX IF NOT EXISTS executions_expert ON executions (expert_id, task_type);

CREATE TABLE IF NOT EXISTS routing (
    id INTEGER PRIMARY KEY,
    task_id TEXT,
    timestamp REAL NOT NULL,
    experts TEXT NOT NULL,
    top_expert TEXT,
    confidence REAL NOT NULL,
    confidences TEXT NOT NULL,
    strategy TEXT NOT NULL,
    cache_hit INTEGER NOT NULL,
    fallback INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL,
    out_of_scope INTEGER
);
CREATE INDEX IF NOT EXISTS routing_time ON routing (timestamp);

CREATE TABLE IF NOT EXISTS system (
    id INTEGER PRIMARY KEY,
    timestamp REAL NOT NULL,
    cpu_percent REAL,
    memory_percent REAL,
    rss_bytes INTEGER,
    disk_percent REAL,
    disk_free_bytes INTEGER,
    queue_depth INTEGER
);
CREATE INDEX IF NOT EXISTS system_time ON system (timestamp);

CREATE TABLE IF NOT EXISTS llm (
    id INTEGER PRIMARY KEY,
    timestamp REAL NOT NULL,
    task_id TEXT,
    expert_id TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    operation TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    error TEXT,
    ttft_ms REAL
);
CREATE INDEX IF NOT EXISTS llm_time ON llm (timestamp);

CREATE TABLE IF NOT EXISTS executions_daily (
    day TEXT NOT NULL,
    expert_id TEXT NOT NULL,
    task_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    total_ms REAL NOT NULL,
    max_ms REAL NOT NULL,
    PRIMARY KEY (day, expert_id, task_type)
);

CREATE TABLE IF NOT EXISTS routing_daily (
    day TEXT NOT NULL,
    strategy TEXT NOT NULL,
    count INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    total_latency_ms REAL NOT NULL,
    max_latency_ms REAL NOT NULL,
    PRIMARY KEY (day, strategy)
);

CREATE VIEW IF NOT EXISTS metrics (kind, timestamp, task_id, name, value) AS
    SELECT 'task', finished_at, task_id, task_type, duration_ms FROM tasks
    UNION ALL SELECT 'execution', started_at, task_id, expert_id, duration_ms FROM executions
    UNION ALL SELECT 'routing', timestamp, task_id, top_expert, latency_ms FROM routing
    UNION ALL SELECT 'system', timestamp, NULL, 'cpu_percent', cpu_percent FROM system
    UNION ALL SELECT 'llm', timestamp, task_id, provider || '/' || model, duration_ms FROM llm;
"""

_ROLL_UP = (
    """
    INSERT INTO executions_daily (day, expert_id, task_type, count, successes, total_ms, max_ms)
    SELECT date(started_at, 'unixepoch'), expert_id, COALESCE(task_type, ''), COUNT(*), SUM(success),
           SUM(duration_ms), MAX(duration_ms)
    FROM executions WHERE started_at < :cutoff GROUP BY 1, 2, 3
    ON CONFLICT (day, expert_id, task_type) DO UPDATE SET
        count = count + excluded.count, successes = successes + excluded.successes,
        total_ms = total_ms + excluded.total_ms, max_ms = MAX(max_ms, excluded.max_ms)
    """,
    """
    INSERT INTO routing_daily (day, strategy, count, cache_hits, total_latency_ms, max_latency_ms)
    SELECT date(timestamp, 'unixepoch'), strategy, COUNT(*), SUM(cache_hit), SUM(latency_ms), MAX(latency_ms)
    FROM routing WHERE timestamp < :cutoff GROUP BY 1, 2
    ON CONFLICT (day, strategy) DO UPDATE SET
        count = count + excluded.count, cache_hits = cache_hits + excluded.cache_hits,
        total_latency_ms = total_latency_ms + excluded.total_latency_ms,
        max_latency_ms = MAX(max_latency_ms, excluded.max_latency_ms)
    """,
    "DELETE FROM tasks WHERE finished_at < :cutoff",
    "DELETE FROM executions WHERE started_at < :cutoff",
    "DELETE FROM routing WHERE timestamp < :cutoff",
    "DELETE FROM system WHERE timestamp < :cutoff",
    "DELETE FROM llm WHERE timestamp < :cutoff",
)


def connect(
    path: Path, *, check_same_thread: bool = True, on_damage: Callable[[str], None] | None = None
) -> sqlite3.Connection:
    """Open (creating if needed) the metrics database in WAL mode with the current schema. A file that is not a
    database (or is malformed) is moved aside, ``on_damage`` hears of it, and a new database is started: the
    metrics it held are lost, the ones after it are not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(path, check_same_thread)
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        aside = move_aside(path)
        if on_damage is not None:
            on_damage(f"the metrics database {path} was damaged ({exc}); moved it to {aside.name}, started a new one")
        return _open(path, check_same_thread)


def _open(path: Path, check_same_thread: bool) -> sqlite3.Connection:
    # IMMEDIATE: a write transaction takes the write lock at BEGIN, so a process waiting for another one's commit
    # waits in the busy handler (``timeout``) instead of failing on a stale snapshot.
    connection = sqlite3.connect(path, timeout=30.0, check_same_thread=check_same_thread, isolation_level="IMMEDIATE")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            for step in range(version, SCHEMA_VERSION):
                migrate = _MIGRATIONS.get(step)
                if migrate is not None:
                    migrate(connection)
            connection.executescript(SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc)
    return "not a database" in text or "malformed" in text


def move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL files) to ``<name>.damaged-<UTC time>``; returns the new path."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    path.replace(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(aside.with_name(aside.name + suffix))
    return aside


def has_column(connection: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether ``table`` has ``column``: readers of a database no writer has upgraded yet ask before selecting a
    column a later version added."""
    return any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})"))


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection for reports and exports; the file must exist. A damaged file is a ``StateError``
    that says what happens next (readers never move files)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise StateError(
            f"the metrics database {path} is damaged ({exc}); the next vy-nexus run that records metrics moves it"
            " aside and starts a new one"
        ) from exc
    return connection


def apply_retention(connection: sqlite3.Connection, retention_days: float, *, now: float | None = None) -> int:
    """Roll rows older than ``retention_days`` up into the daily tables and delete them; returns rows removed."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400.0
    removed = 0
    with connection:
        for statement in _ROLL_UP:
            cursor = connection.execute(statement, {"cutoff": cutoff})
            if statement.startswith("DELETE"):
                removed += cursor.rowcount
    return removed
