"""Schema versions of metrics/performance.db: a new file gets the current schema, an older one (versions 2 and 3) is
upgraded in place (its rows kept), and readers cope with a file no writer has upgraded yet."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from vy_nexus.events import Event
from vy_nexus.observability import metrics_schema
from vy_nexus.observability.dashboard_stats import experts_figures, routing_quality
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_schema import SCHEMA, SCHEMA_VERSION, connect
from vy_nexus.observability.metricsquery import build_report

ADDED_COLUMNS = {3: ",\n    ttft_ms REAL", 4: ",\n    out_of_scope INTEGER"}
"""What each schema version added to the tables (version 3: ``llm.ttft_ms``; version 4: ``routing.out_of_scope``)."""


def columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def older_database(path: Path, version: int) -> None:
    """A metrics database as schema ``version`` left it, with one LLM call, one routing decision and one run."""
    schema = SCHEMA
    for added, column in ADDED_COLUMNS.items():
        assert column in schema  # that version added exactly this column
        if added > version:
            schema = schema.replace(column, "")
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(schema)
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
    connection = connect(tmp_path / "performance.db")
    assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) and SCHEMA_VERSION == 4
    assert "ttft_ms" in columns(connection, "llm") and "out_of_scope" in columns(connection, "routing")
    connection.close()


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_database_is_upgraded_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    db = tmp_path / "metrics" / "performance.db"
    older_database(db, version)
    collector = MetricsCollector(db)
    collector.write([llm_call(35.0), llm_call(45.0), routed(True), routed(False), routed(False)])
    collector.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert "ttft_ms" in columns(connection, "llm") and columns(connection, "routing")[-1] == "out_of_scope"
        assert connection.execute("SELECT ttft_ms FROM llm ORDER BY id").fetchall()[1:] == [(35.0,), (45.0,)]
        recorded = connection.execute("SELECT out_of_scope FROM routing ORDER BY id").fetchall()
        assert recorded == [(None,), (1,), (0,), (0,)]  # the old decision: not known
        assert connection.execute("SELECT COUNT(*) FROM executions").fetchone() == (1,)
        assert connection.execute("SELECT COUNT(*) FROM metrics").fetchone() == (8,)
    connection.close()
    report = build_report(db)
    (backend,) = report.llm
    assert backend.stats.count == 3 and backend.ttft_p50_ms == pytest.approx(40.0)
    assert report.routing is not None and report.routing.fallback_rate == 1.0
    assert report.routing.out_of_scope_rate == pytest.approx(1 / 3)  # of the decisions that recorded it


def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    """Two processes opening one version 2 file at once both run the step; the second finds the column there."""
    db = tmp_path / "performance.db"
    older_database(db, 2)
    first = sqlite3.connect(db)
    second = sqlite3.connect(db)
    for step in (2, 3):
        metrics_schema._MIGRATIONS[step](first)
        metrics_schema._MIGRATIONS[step](second)
    assert columns(second, "llm").count("ttft_ms") == 1 and columns(second, "routing").count("out_of_scope") == 1
    first.close()
    second.close()
    connect(db).close()


def test_readers_of_a_database_not_yet_upgraded_show_what_it_does_not_know_as_no_data(tmp_path: Path) -> None:
    db = tmp_path / "performance.db"
    older_database(db, 2)
    report = build_report(db).as_dict()
    (backend,) = report["llm"]
    assert backend["stats"]["count"] == 1 and backend["ttft_p50_ms"] is None
    assert report["routing"]["fallback_rate"] == 1.0 and report["routing"]["out_of_scope_rate"] is None
    figures = experts_figures(db, since=time.time() - 3600, now=time.time())
    assert figures["llm"][0]["calls"] == 1 and figures["llm"][0]["ttft_p50_ms"] is None
    series = routing_quality(db, since=time.time() - 3600, now=time.time())["series"]
    assert series["fallback_rate"] == [1.0] and series["out_of_scope_rate"] == [None]
    with sqlite3.connect(db) as connection:  # readers never write: still version 2
        assert connection.execute("PRAGMA user_version").fetchone() == (2,)
    connection.close()
