"""Schema versions of the metrics database: a new file gets the current schema, an older one (versions 2, 3 and 4) is
upgraded in place by the first process that opens it, a reader too (its rows kept; what they did not record stays
empty), and two processes upgrading at once do no harm."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from vy_nexus.events import Event
from vy_nexus.observability.dashboard_stats import experts_figures, routing_quality
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import SCHEMA_VERSION
from vy_nexus.observability.metricsquery import build_report

VERSION_2 = """
CREATE TABLE tasks (id INTEGER PRIMARY KEY, task_id TEXT, task_type TEXT, finished_at REAL NOT NULL,
    duration_ms REAL NOT NULL, success INTEGER NOT NULL, experts TEXT NOT NULL, method TEXT, confidence REAL);
CREATE TABLE executions (id INTEGER PRIMARY KEY, task_id TEXT, expert_id TEXT NOT NULL, task_type TEXT,
    started_at REAL NOT NULL, duration_ms REAL NOT NULL, success INTEGER NOT NULL, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 1);
CREATE TABLE routing (id INTEGER PRIMARY KEY, task_id TEXT, timestamp REAL NOT NULL, experts TEXT NOT NULL,
    top_expert TEXT, confidence REAL NOT NULL, confidences TEXT NOT NULL, strategy TEXT NOT NULL,
    cache_hit INTEGER NOT NULL, fallback INTEGER NOT NULL DEFAULT 0, latency_ms REAL NOT NULL);
CREATE TABLE system (id INTEGER PRIMARY KEY, timestamp REAL NOT NULL, cpu_percent REAL, memory_percent REAL,
    rss_bytes INTEGER, disk_percent REAL, disk_free_bytes INTEGER, queue_depth INTEGER);
CREATE TABLE llm (id INTEGER PRIMARY KEY, timestamp REAL NOT NULL, task_id TEXT, expert_id TEXT,
    provider TEXT NOT NULL, model TEXT NOT NULL, operation TEXT NOT NULL, duration_ms REAL NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, error TEXT);
CREATE TABLE executions_daily (day TEXT NOT NULL, expert_id TEXT NOT NULL, task_type TEXT NOT NULL,
    count INTEGER NOT NULL, successes INTEGER NOT NULL, total_ms REAL NOT NULL, max_ms REAL NOT NULL,
    PRIMARY KEY (day, expert_id, task_type));
CREATE TABLE routing_daily (day TEXT NOT NULL, strategy TEXT NOT NULL, count INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL, total_latency_ms REAL NOT NULL, max_latency_ms REAL NOT NULL,
    PRIMARY KEY (day, strategy));
CREATE VIEW metrics (kind, timestamp, task_id, name, value) AS
    SELECT 'task', finished_at, task_id, task_type, duration_ms FROM tasks
    UNION ALL SELECT 'execution', started_at, task_id, expert_id, duration_ms FROM executions
    UNION ALL SELECT 'routing', timestamp, task_id, top_expert, latency_ms FROM routing
    UNION ALL SELECT 'system', timestamp, NULL, 'cpu_percent', cpu_percent FROM system
    UNION ALL SELECT 'llm', timestamp, task_id, provider || '/' || model, duration_ms FROM llm;
"""
"""The tables as schema version 2 (the seed's) created them."""

ADDED = {3: "ALTER TABLE llm ADD COLUMN ttft_ms REAL;", 4: "ALTER TABLE routing ADD COLUMN out_of_scope INTEGER;"}
"""What versions 3 and 4 added."""


def columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def older_database(path: Path, version: int) -> None:
    """A metrics database as schema ``version`` left it, with one LLM call, one routing decision and one run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(VERSION_2 + "".join(sql for added, sql in ADDED.items() if added <= version))
        connection.execute(f"PRAGMA user_version={version}")
        connection.execute(
            "INSERT INTO routing (timestamp, experts, confidence, confidences, strategy, cache_hit, fallback,"
            " latency_ms) VALUES (?, '[\"general\"]', 0.1, '{}', 'keyword', 0, 1, 0.5)",
            (time.time() - 60,),
        )
        connection.execute(
            "INSERT INTO llm (timestamp, provider, model, operation, duration_ms, output_tokens)"
            " VALUES (?, 'ollama', 'qwen', 'chat', 120.0, 6)",
            (time.time() - 60,),
        )
        connection.execute(
            "INSERT INTO executions (expert_id, started_at, duration_ms, success) VALUES ('code', ?, 5.0, 1)",
            (time.time() - 60,),
        )
    connection.close()


def llm_call(ttft: float) -> Event:
    meta = {"provider": "ollama", "model": "qwen", "duration_ms": 200.0, "time_to_first_token_ms": ttft}
    return Event("llm.completed", "reasoning", "", metadata=meta)


def routed(out_of_scope: bool) -> Event:
    meta = {"experts": ["general"], "strategy": "keyword", "fallback": True, "out_of_scope": out_of_scope}
    return Event("task.routed", "gating", "", metadata=meta)


def test_a_new_database_gets_the_current_schema(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    database.engine()
    database.close()
    with sqlite3.connect(tmp_path / "performance.db") as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) and SCHEMA_VERSION == 5
        assert columns(connection, "llm")[-2:] == ["ttft_ms", "process"]
        assert "out_of_scope" in columns(connection, "routing") and "process" in columns(connection, "executions")
        assert connection.execute("SELECT COUNT(*) FROM metrics").fetchone() == (0,)
    connection.close()


@pytest.mark.parametrize("version", [2, 3, 4])
def test_an_older_database_is_upgraded_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    db = tmp_path / "metrics" / "performance.db"
    older_database(db, version)
    collector = MetricsCollector(MetricsDatabase.sqlite(db))
    collector.write([llm_call(35.0), llm_call(45.0), routed(True), routed(False), routed(False)])
    collector.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert {"ttft_ms", "process"} <= set(columns(connection, "llm"))
        assert columns(connection, "routing")[-1] == "out_of_scope"
        assert connection.execute("SELECT ttft_ms FROM llm ORDER BY id").fetchall()[1:] == [(35.0,), (45.0,)]
        recorded = connection.execute("SELECT out_of_scope FROM routing ORDER BY id").fetchall()
        assert recorded == [(None,), (1,), (0,), (0,)]  # the old decision: not known
        assert connection.execute("SELECT process FROM executions").fetchall() == [(None,)]
        assert connection.execute("SELECT COUNT(*) FROM metrics").fetchone() == (8,)
    connection.close()
    report = build_report(MetricsDatabase.sqlite(db))
    (backend,) = report.llm
    assert backend.stats.count == 3 and backend.ttft_p50_ms == pytest.approx(40.0)
    assert report.routing is not None and report.routing.fallback_rate == 1.0
    assert report.routing.out_of_scope_rate == pytest.approx(1 / 3)  # of the decisions that recorded it


def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    """A column another process added first (its version not yet recorded), two processes opening one file."""
    db = tmp_path / "performance.db"
    older_database(db, 2)
    with sqlite3.connect(db) as connection:
        connection.execute(ADDED[3])  # added, version still 2
    connection.close()
    first, second = MetricsDatabase.sqlite(db), MetricsDatabase.sqlite(db)
    first.engine()
    second.engine()
    with sqlite3.connect(db) as connection:
        assert (
            columns(connection, "llm").count("ttft_ms") == 1
            and columns(connection, "routing").count("out_of_scope") == 1
        )
    connection.close()
    first.close()
    second.close()


def test_a_reader_brings_an_older_database_up_to_date_and_shows_what_it_did_not_record_as_no_data(
    tmp_path: Path,
) -> None:
    db = tmp_path / "performance.db"
    older_database(db, 2)
    database = MetricsDatabase.sqlite(db)
    report = build_report(database).as_dict()
    (backend,) = report["llm"]
    assert backend["stats"]["count"] == 1 and backend["ttft_p50_ms"] is None
    assert report["routing"]["fallback_rate"] == 1.0 and report["routing"]["out_of_scope_rate"] is None
    figures = experts_figures(database, since=time.time() - 3600, now=time.time())
    assert figures["llm"][0]["calls"] == 1 and figures["llm"][0]["ttft_p50_ms"] is None
    series = routing_quality(database, since=time.time() - 3600, now=time.time())["series"]
    assert series["fallback_rate"] == [1.0] and series["out_of_scope_rate"] == [None]
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    connection.close()
    database.close()
