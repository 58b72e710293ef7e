"""Alerts over a real metrics database: which conditions hold, deduplication, acknowledge and clear, health; and the
dashboard's figures and time series over the same rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vy_nexus.config import AlertsSettings
from vy_nexus.interfaces.dashboard import formats
from vy_nexus.observability import dashboard_stats
from vy_nexus.observability.alerts import AlertBook, AlertNotFoundError, evaluate, health
from vy_nexus.observability.metrics_db import MetricsDatabase

NOW = 1_000_000.0


def metrics_db(
    tmp_path: Path, tasks: list[tuple[float, float, bool]], runs: list[tuple[str, float, bool]]
) -> MetricsDatabase:
    """``tasks``: (finished_at, duration_ms, success); ``runs``: (expert, started_at, success)."""
    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    database.engine()  # the schema
    database.close()
    connection = sqlite3.connect(tmp_path / "performance.db")
    with connection:
        connection.executemany(
            "INSERT INTO tasks (task_id, task_type, finished_at, duration_ms, success, experts) VALUES"
            " ('t', 'general', ?, ?, ?, '[]')",
            tasks,
        )
        connection.executemany(
            "INSERT INTO executions (task_id, expert_id, started_at, duration_ms, success, error) VALUES"
            " ('t', ?, ?, 10, ?, CASE WHEN ? THEN NULL ELSE 'boom' END)",
            [(expert, at, ok, ok) for expert, at, ok in runs],
        )
        connection.executemany(
            "INSERT INTO routing (task_id, timestamp, experts, confidence, confidences, strategy, cache_hit, fallback,"
            " out_of_scope, latency_ms) VALUES ('t', ?, '[]', ?, '{}', 'keyword', ?, ?, ?, ?)",
            [(NOW - 10, 0.95, 1, 0, 0, 2.0), (NOW - 5, 0.25, 0, 1, 1, 4.0)],
        )
        connection.executemany(
            "INSERT INTO system (timestamp, cpu_percent, memory_percent, rss_bytes, disk_percent)"
            " VALUES (?, ?, ?, ?, ?)",
            [(NOW - 20, 10.0, 40.0, 1000, 50.0), (NOW - 19.5, 30.0, 42.0, 1200, 50.0)],
        )
        connection.execute(
            "INSERT INTO llm (timestamp, provider, model, operation, duration_ms, output_tokens) VALUES"
            " (?, 'embedded', 'm', 'generate', 500, 20)",
            (NOW - 3,),
        )
    connection.close()
    return database


def test_nothing_holds_without_a_database_or_when_disabled(tmp_path: Path) -> None:
    assert evaluate(AlertsSettings(), MetricsDatabase.sqlite(tmp_path / "missing.db"), now=NOW) == []
    stopping = evaluate(
        AlertsSettings(enabled=False), MetricsDatabase.sqlite(tmp_path / "missing.db"), shutdown_reason="x", now=NOW
    )
    assert stopping == []


def test_error_rate_latency_expert_failures_and_the_kill_switch(tmp_path: Path) -> None:
    tasks = [(NOW - 10 - i, 90_000.0, i % 2 == 0) for i in range(6)]
    runs = [("flaky", NOW - 3, False), ("flaky", NOW - 2, False), ("flaky", NOW - 1, False), ("ok", NOW - 1, True)]
    db = metrics_db(tmp_path, tasks, runs)
    found = {c.key: c for c in evaluate(AlertsSettings(), db, shutdown_reason="operator", now=NOW)}
    assert set(found) == {"kill_switch", "error_rate", "latency", "expert_failing:flaky"}
    assert found["error_rate"].message.startswith("error rate 50% (3 of 6 tasks failed)")
    assert found["error_rate"].severity == "critical" and found["kill_switch"].severity == "critical"
    assert "last error: boom" in found["expert_failing:flaky"].message
    # A success among the last N runs, too few tasks, a window that misses them: nothing.
    recovering = metrics_db(tmp_path / "b", [], [*runs, ("flaky", NOW - 0.5, True)])
    assert evaluate(AlertsSettings(), recovering, now=NOW) == []
    assert evaluate(AlertsSettings(min_tasks=7), db, now=NOW)[0].key == "expert_failing:flaky"
    assert evaluate(AlertsSettings(window_seconds=0.1), db, now=NOW) == []


def test_the_book_deduplicates_acknowledges_and_clears(tmp_path: Path) -> None:
    runs = [("flaky", NOW - 3, False), ("flaky", NOW - 2, False), ("flaky", NOW - 1, False)]
    db = metrics_db(tmp_path, [], runs)
    book = AlertBook.for_home(tmp_path / "home")
    for moment in (NOW, NOW + 1, NOW + 2):
        alerts = book.record(evaluate(AlertsSettings(), db, cleared=book.cleared(), now=moment), now=moment)
    assert [(a.key, a.first_seen, a.last_seen) for a in alerts] == [("expert_failing:flaky", NOW, NOW + 2)]
    assert health(alerts).status == "degraded"
    book.acknowledge("expert_failing:flaky", "api:ops", now=NOW + 3)
    assert book.alerts()[0].acknowledged_by == "api:ops" and health(book.alerts()).status == "healthy"
    book.clear("expert_failing:flaky", now=NOW + 4)
    # The same failures do not count again after a clear; only new ones would.
    assert evaluate(AlertsSettings(), db, cleared=book.cleared(), now=NOW + 5) == []
    assert book.record([], now=NOW + 5) == []
    with pytest.raises(AlertNotFoundError, match="no alert 'expert_failing:flaky'"):
        book.clear("expert_failing:flaky")


def test_an_alert_whose_condition_ended_stays_until_cleared_and_a_damaged_book_starts_over(tmp_path: Path) -> None:
    db = metrics_db(tmp_path, [], [])
    book = AlertBook(tmp_path / "alerts.json")
    book.record(evaluate(AlertsSettings(), db, shutdown_reason="stop", now=NOW), now=NOW)
    assert health(book.alerts(), shutdown_reason="stop").status == "critical"
    [ended] = book.record([], now=NOW + 1)
    assert ended.active is False and health([ended]).status == "healthy"
    book.path.write_text("{not json", encoding="utf-8")
    assert book.alerts() == []


def test_dashboard_figures_and_series(tmp_path: Path) -> None:
    db = metrics_db(tmp_path, [(NOW - 10, 100.0, True), (NOW - 5, 300.0, False)], [("a", NOW - 8, False)])
    figures = dashboard_stats.task_figures(db, since=NOW - 100, now=NOW)
    assert (figures.tasks, figures.error_rate, figures.p50_ms) == (2, 0.5, 200.0)
    assert figures.tasks_per_second == 0.02
    experts = dashboard_stats.experts_figures(db, since=NOW - 100, now=NOW)
    assert experts["experts"][0]["last_error"] == "boom" and experts["experts"][0]["success_rate"] == 0.0
    assert experts["llm"][0]["tokens_per_second"] == 40.0
    routing = dashboard_stats.routing_quality(db, since=NOW - 100, now=NOW)
    assert routing["summary"]["decisions"] == 2 and sum(routing["series"]["decisions"]) == 2
    assert routing["series"]["fallback_rate"][-1] == 1.0 and routing["series"]["cache_hit_rate"][0] == 1.0
    assert routing["series"]["out_of_scope_rate"] == [0.0, 1.0] and routing["summary"]["out_of_scope_rate"] == 0.5
    resources = dashboard_stats.resources(db, since=NOW - 100, now=NOW)
    assert resources["series"]["cpu_percent"] == [20.0]  # two samples in one bucket, averaged
    empty = dashboard_stats.routing_quality(MetricsDatabase.sqlite(tmp_path / "none.db"), since=NOW - 100, now=NOW)
    assert empty["summary"] is None and empty["series"]["t"] == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (5.2, "5s"), (75, "1m 15s"), (3700, "1h 1m"), (90000, "1d 1h")],
)
def test_durations_print_for_people(value: float | None, text: str) -> None:
    assert formats.duration(value) == text


def test_numbers_print_for_people() -> None:
    assert (formats.percent(0.123), formats.percent(None)) == ("12.3%", "—")
    assert (formats.ms(12.34), formats.ms(1500), formats.ms(None)) == ("12.3 ms", "1.50 s", "—")
    assert formats.clock(None) == "—" and formats.clock(0).count(":") == 2
    assert formats.pretty("text") == "text" and formats.pretty({"a": 1}) == '{\n  "a": 1\n}'


def test_the_documented_alert_config_loads(tmp_path: Path) -> None:
    import re

    from vy_nexus.config import load_settings

    doc = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
    (tmp_path / "config.yaml").write_text(block, encoding="utf-8")
    rules = load_settings(tmp_path).alerts
    assert (rules.error_rate, rules.latency_p95_ms, rules.expert_failures) == (0.1, 20000.0, 5)
