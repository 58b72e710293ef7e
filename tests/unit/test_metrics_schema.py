"""Schema versions of metrics/performance.db: a new file gets the current schema, an older one is upgraded in place
(its rows kept), and readers cope with a file no writer has upgraded yet."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from vy_nexus.events import Event
from vy_nexus.observability import metrics_schema
from vy_nexus.observability.dashboard_stats import experts_figures
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_schema import SCHEMA, SCHEMA_VERSION, connect
from vy_nexus.observability.metricsquery import build_report

TTFT_COLUMN = ",\n    ttft_ms REAL"


def columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def version_2_database(path: Path) -> None:
    """A metrics database as schema version 2 left it (no time to first token), with one LLM call and one run."""
    assert TTFT_COLUMN in SCHEMA  # version 3 added exactly this column
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA.replace(TTFT_COLUMN, ""))
        connection.execute("PRAGMA user_version=2")
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


def test_a_new_database_gets_the_current_schema(tmp_path: Path) -> None:
    connection = connect(tmp_path / "performance.db")
    assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) and SCHEMA_VERSION == 3
    assert "ttft_ms" in columns(connection, "llm")
    connection.close()


def test_a_version_2_database_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "metrics" / "performance.db"
    version_2_database(db)
    collector = MetricsCollector(db)
    collector.write([llm_call(35.0), llm_call(45.0)])
    collector.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
        assert columns(connection, "llm")[-1] == "ttft_ms"
        assert connection.execute("SELECT ttft_ms FROM llm ORDER BY id").fetchall() == [(None,), (35.0,), (45.0,)]
        assert connection.execute("SELECT COUNT(*) FROM executions").fetchone() == (1,)
        assert connection.execute("SELECT COUNT(*) FROM metrics").fetchone() == (4,)
    connection.close()
    (backend,) = build_report(db).llm
    assert backend.stats.count == 3 and backend.ttft_p50_ms == pytest.approx(40.0)


def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    """Two processes opening one version 2 file at once both run the step; the second finds the column there."""
    db = tmp_path / "performance.db"
    version_2_database(db)
    first = sqlite3.connect(db)
    second = sqlite3.connect(db)
    metrics_schema._MIGRATIONS[2](first)
    metrics_schema._MIGRATIONS[2](second)
    assert columns(second, "llm").count("ttft_ms") == 1
    first.close()
    second.close()
    connect(db).close()


def test_readers_of_a_database_not_yet_upgraded_show_no_time_to_first_token(tmp_path: Path) -> None:
    db = tmp_path / "performance.db"
    version_2_database(db)
    (backend,) = build_report(db).as_dict()["llm"]
    assert backend["stats"]["count"] == 1 and backend["ttft_p50_ms"] is None
    figures = experts_figures(db, since=time.time() - 3600, now=time.time())
    assert figures["llm"][0]["calls"] == 1 and figures["llm"][0]["ttft_p50_ms"] is None
    with sqlite3.connect(db) as connection:  # readers never write: still version 2
        assert connection.execute("PRAGMA user_version").fetchone() == (2,)
    connection.close()
