"""The metrics database on SQLite: files of an older vy-nexus are upgraded in place, readers never create anything,
text no database can hold is stored replaced, and a reader of an append-only table misses no late commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from vy_nexus.errors import StoreError
from vy_nexus.events import Event
from vy_nexus.interfaces.cli import app
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import SCHEMA_VERSION, executions
from vy_nexus.observability.metricsquery import build_report
from vy_nexus.observability.new_rows import NewRows

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
INSERT INTO executions (task_id, expert_id, task_type, started_at, duration_ms, success)
    VALUES ('old', 'code', 'code', {recent}, 12.0, 1);
PRAGMA user_version=2;
"""


def finished(task: str, expert: str = "code", **meta: object) -> Event:
    metadata = {"duration_ms": 5.0, "success": True, "task_type": "code", **meta}
    return Event("expert.finished", "coordinator", "", task_id=task, expert_id=expert, metadata=metadata)


def test_a_file_of_the_previous_version_is_upgraded_by_a_reader_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "performance.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(VERSION_2.format(recent=time.time() - 60))
    report = build_report(MetricsDatabase.sqlite(path))  # a reader first: it brings the file up to date
    assert [(g.group["expert_id"], g.stats.count) for g in report.experts] == [("code", 1)]
    collector = MetricsCollector(MetricsDatabase.sqlite(path))
    collector.write([finished("new", worker="worker-host:42")])
    collector.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        rows = conn.execute("SELECT task_id, process FROM executions ORDER BY id").fetchall()
        assert rows == [("old", None), ("new", "worker-host:42")]
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (2,)
    [worker] = build_report(MetricsDatabase.sqlite(path)).processes
    assert (worker.process, worker.expert_runs) == ("worker-host:42", 1)


def test_readers_create_nothing(tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "performance.db"
    report = build_report(MetricsDatabase.sqlite(path))
    assert report.experts == [] and report.processes == [] and report.database == str(path)
    assert not path.parent.exists()


def test_text_no_database_can_hold_is_stored_replaced(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    collector = MetricsCollector(database)
    collector.write([finished("t1", expert="odd\udc00", success=False, error="nul\x00 here")])
    collector.close()
    with database.reading() as conn:
        assert conn is not None
        row = conn.execute(sa.select(executions.c.expert_id, executions.c.error)).one()
    assert tuple(row) == ("odd\ufffd", "nul\ufffd here")  # the refused batch, cleaned
    collector.write([Event("expert.failed", "c", "", task_id="t2", expert_id="x", metadata={"error": "a\x00b"})])
    with database.reading() as conn:
        assert conn is not None
        errors = conn.execute(sa.select(executions.c.error).where(executions.c.task_id == "t2")).scalars().all()
    assert errors == ["a\x00b"]  # SQLite holds NUL: only a refused batch is cleaned
    collector.close()


def test_an_unreachable_server_database_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    url = "postgresql://postgres:secret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError, match=r"cannot open the metrics database at postgresql://postgres:\*\*\*@"):
        build_report(MetricsDatabase(url))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.yaml").write_text(f"store:\n  url: {url}\n", encoding="utf-8")
    for args in (["metrics", "report"], ["logs"], ["metrics", "export"]):
        result = CliRunner().invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 7, (args, result.output)
        assert "127.0.0.1:1" in result.stderr and "secret" not in result.stderr
        assert "Traceback" not in result.stderr


def test_new_rows_finds_rows_committed_after_higher_ids() -> None:
    clock = [0.0]
    reader = NewRows(horizon_seconds=10.0, clock=lambda: clock[0])
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    engine = sa.create_engine("sqlite://")
    table.create(engine)

    def commit(*ids: int) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [{"id": i} for i in ids])

    def read(largest: int) -> list[int]:
        with engine.connect() as conn:
            found = list(conn.execute(sa.select(table.c.id).where(reader.where(table.c.id, largest))).scalars())
        reader.saw(found)
        return sorted(found)

    commit(1, 2, 5, 6)  # 3 and 4 belong to a transaction still running
    assert read(6) == [1, 2, 5, 6]
    commit(3, 4, 7)
    assert read(7) == [3, 4, 7]  # the late ones, once, and the new one
    assert read(7) == []
    commit(9)  # 8 never commits (rolled back)
    assert read(9) == [9]
    clock[0] = 11.0
    assert read(9) == []
    assert reader._gaps == []  # forgotten after the horizon
    with engine.begin() as conn:
        conn.execute(sa.delete(table))  # emptied by retention: ids start again
    commit(1)
    assert read(1) == [1]


def test_retention_also_trims_the_api_table(tmp_path: Path) -> None:
    from vy_nexus.observability.metrics_retention import apply_retention

    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    with database.engine().begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO api (timestamp, route, method, status, latency_ms) VALUES (?, '/x', 'GET', 200, 1.0)",
            (time.time() - 90 * 86400,),
        )
    assert apply_retention(database, 30) == 1
    database.close()
