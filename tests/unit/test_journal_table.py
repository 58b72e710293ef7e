"""The shipped journal: entries into a table, queried with the same filters as structured.jsonl, followed as they come.

Runs on an SQLite file here (the same Core code); tests/integration/test_metrics_postgres.py runs it on PostgreSQL
from several processes.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from vy_nexus.events import Event
from vy_nexus.observability.journal_table import JournalTable, follow_table, query_table
from vy_nexus.observability.logquery import LogFilter, QueryStats
from vy_nexus.observability.metrics_db import MetricsDatabase

T0 = 1_700_000_000.0


def event(message: str, at: float, *, component: str = "coordinator", **fields: Any) -> Event:
    return Event("task.note", component, message, timestamp=at, **fields)


def test_entries_are_queried_with_the_log_filters(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "journal.db")
    table = JournalTable(database, retention_days=1e6)
    table.write(
        [
            event("routed to code", T0, component="gating", task_id="t1"),
            event("100% done_ok", T0 + 1, task_id="t1"),
            event("expert broke", T0 + 2, level="error", category="error", task_id="t2", expert_id="code"),
            event("Warned Loudly", T0 + 3, level="warn"),
        ]
    )

    def messages(flt: LogFilter, newest: int | None = None) -> list[str]:
        return [entry.message for entry in query_table(database, flt, newest=newest)]

    assert messages(LogFilter()) == ["routed to code", "100% done_ok", "expert broke", "Warned Loudly"]
    assert messages(LogFilter(level="warn")) == ["expert broke", "Warned Loudly"]
    assert messages(LogFilter(component="gating")) == ["routed to code"]
    assert messages(LogFilter(task_id="t1")) == ["routed to code", "100% done_ok"]
    assert messages(LogFilter(since=T0 + 1, until=T0 + 2)) == ["100% done_ok", "expert broke"]
    assert messages(LogFilter(grep="% DONE_")) == ["100% done_ok"]  # literal, any case
    assert messages(LogFilter(grep="%")) == ["100% done_ok"]
    assert messages(LogFilter(), newest=2) == ["expert broke", "Warned Loudly"]
    stats = QueryStats()
    [broke] = query_table(database, LogFilter(level="error"), stats)
    record = json.loads(broke.raw)
    assert record["process"] == f"{socket.gethostname()}:{os.getpid()}" == broke.record["process"]
    assert record["expert_id"] == "code" and record["timestamp"].startswith("2023-11-14T22:13:22")
    assert stats.matched == 1
    database.close()


def test_an_empty_database_has_no_entries(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "journal.db")
    assert list(query_table(database, LogFilter())) == []
    database.close()


def test_follow_yields_what_is_there_then_what_comes(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "journal.db")
    table = JournalTable(database, retention_days=1e6)
    table.write([event("before", T0), event("noise", T0, component="gating")])
    stop = threading.Event()
    seen: list[str] = []

    def later() -> None:
        table.write([event("after", T0 + 5), event("more noise", T0 + 5, component="gating")])

    writer = threading.Timer(0.2, later)
    writer.start()
    for entry in follow_table(database, LogFilter(component="coordinator"), poll_seconds=0.05, should_stop=stop.is_set):
        seen.append(entry.message)
        if len(seen) == 2:
            stop.set()
    writer.join()
    assert seen == ["before", "after"]
    database.close()


def test_old_entries_are_deleted(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "journal.db")
    JournalTable(database, retention_days=1e6).write([event("ancient", T0), event("fresh", T0 + 10**9)])
    JournalTable(database, retention_days=1.0).open()  # a process starting later applies its retention
    assert [entry.message for entry in query_table(database, LogFilter())] == ["fresh"]
    database.close()
