"""The metrics collector: events and system samples in, rows of metrics/performance.db out.

A ``MetricsCollector`` is a sink: ``write(items)`` turns a batch into rows and inserts them with multi-row
``INSERT``s inside one ``BEGIN IMMEDIATE`` transaction (SQLite in WAL mode, so several processes on one home write
one after another and readers never wait). ``Observability`` calls it from its writer thread, never from the flow.

Events read (metadata keys in brackets):

* ``task.aggregated``  → ``tasks``     [task_type, duration_ms, success, experts, method, confidence]
* ``task.routed``      → ``routing``   [experts, confidences, strategy, cache_hit, fallback, out_of_scope, latency_ms]
* ``expert.finished`` / ``expert.failed`` → ``executions`` [duration_ms, success, error, task_type, attempts]
* ``llm.completed``    → ``llm``       [duration_ms, model, provider, operation, input_tokens, output_tokens, error,
  time_to_first_token_ms]

Retention (``metrics.retention_days``) runs when the database is first opened and then hourly, on the writer thread.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vy_nexus.events import Event
from vy_nexus.observability.journal_format import to_json
from vy_nexus.observability.metrics_schema import apply_retention, connect

OBSERVED_KINDS = frozenset({"task.aggregated", "task.routed", "expert.finished", "expert.failed", "llm.completed"})

RETENTION_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class SystemSample:
    timestamp: float
    cpu_percent: float | None
    memory_percent: float | None
    rss_bytes: int | None
    disk_percent: float | None
    disk_free_bytes: int | None
    queue_depth: int


def _number(metadata: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = metadata.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _optional_float(metadata: dict[str, Any], key: str) -> float | None:
    value = metadata.get(key)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _optional_int(metadata: dict[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def execution_row(event: Event) -> tuple[Any, ...]:
    meta = event.metadata
    duration = _number(meta, "duration_ms")
    success = bool(meta.get("success", event.kind == "expert.finished"))
    error = meta.get("error") if not success else None
    return (
        event.task_id,
        event.expert_id or str(meta.get("expert_id", "")),
        meta.get("task_type"),
        event.timestamp - duration / 1000.0,
        duration,
        int(success),
        None if error is None else str(error),
        int(_number(meta, "attempts", 1.0)),
    )


def task_row(event: Event) -> tuple[Any, ...]:
    meta = event.metadata
    raw_experts = meta.get("experts")
    experts = [str(e) for e in raw_experts] if isinstance(raw_experts, list) else []
    return (
        event.task_id,
        meta.get("task_type"),
        event.timestamp,
        _number(meta, "duration_ms"),
        int(bool(meta.get("success", False))),
        to_json(experts).decode(),
        meta.get("method"),
        _number(meta, "confidence"),
    )


def routing_row(event: Event) -> tuple[Any, ...]:
    meta = event.metadata
    raw_experts = meta.get("experts")
    experts = [str(e) for e in raw_experts] if isinstance(raw_experts, list) else []
    raw_confidences = meta.get("confidences")
    confidences: dict[str, Any] = raw_confidences if isinstance(raw_confidences, dict) else {}
    top = experts[0] if experts else None
    top_confidence = _number(confidences, top) if top is not None else 0.0
    return (
        event.task_id,
        event.timestamp,
        to_json(experts).decode(),
        top,
        top_confidence,
        to_json(confidences).decode(),
        str(meta.get("strategy", "unknown")),
        int(bool(meta.get("cache_hit", False))),
        int(bool(meta.get("fallback", False))),
        _number(meta, "latency_ms"),
        int(bool(meta.get("out_of_scope", False))),
    )


def llm_row(event: Event) -> tuple[Any, ...]:
    meta = event.metadata
    error = meta.get("error")
    return (
        event.timestamp,
        event.task_id,
        event.expert_id,
        str(meta.get("provider", "unknown")),
        str(meta.get("model", "unknown")),
        str(meta.get("operation", "chat")),
        _number(meta, "duration_ms"),
        _optional_int(meta, "input_tokens"),
        _optional_int(meta, "output_tokens"),
        None if error is None else str(error),
        _optional_float(meta, "time_to_first_token_ms"),
    )


_INSERTS = {
    "tasks": "INSERT INTO tasks (task_id, task_type, finished_at, duration_ms, success, experts, method, confidence)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "executions": "INSERT INTO executions (task_id, expert_id, task_type, started_at, duration_ms, success, error,"
    " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "routing": "INSERT INTO routing (task_id, timestamp, experts, top_expert, confidence, confidences, strategy,"
    " cache_hit, fallback, latency_ms, out_of_scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "llm": "INSERT INTO llm (timestamp, task_id, expert_id, provider, model, operation, duration_ms, input_tokens,"
    " output_tokens, error, ttft_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "system": "INSERT INTO system (timestamp, cpu_percent, memory_percent, rss_bytes, disk_percent, disk_free_bytes,"
    " queue_depth) VALUES (?, ?, ?, ?, ?, ?, ?)",
}

ROWS_PER_STATEMENT = 200
"""Rows per multi-row INSERT. Python's sqlite3 releases the GIL around every statement step, and each time the writer
wants it back it waits for the hot path's switch interval; one step per 200 rows instead of per row keeps the writer
from ping-ponging the GIL (it measurably slows the flow otherwise)."""


def insert_rows(connection: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` into ``table`` with multi-row INSERT statements (``ROWS_PER_STATEMENT`` rows each)."""
    single = _INSERTS[table]
    head, values = single.split(" VALUES ")
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        statement = f"{head} VALUES {','.join([values] * len(chunk))}"
        connection.execute(statement, [value for row in chunk for value in row])


_ROW_BUILDERS: dict[str, tuple[str, Callable[[Event], tuple[Any, ...]]]] = {
    "task.aggregated": ("tasks", task_row),
    "task.routed": ("routing", routing_row),
    "expert.finished": ("executions", execution_row),
    "expert.failed": ("executions", execution_row),
    "llm.completed": ("llm", llm_row),
}


class MetricsCollector:
    """Records executions, routing decisions, LLM calls and system samples in SQLite; a sink (``write``)."""

    def __init__(
        self, db_path: Path, *, retention_days: float = 30.0, on_damage: Callable[[str], None] | None = None
    ) -> None:
        self.db_path = db_path
        self.retention_days = retention_days
        self.on_damage = on_damage
        self._connection: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._last_retention = 0.0

    @staticmethod
    def wants(event: Event) -> bool:
        return event.kind in OBSERVED_KINDS

    def open(self) -> None:
        """Open the database now (moving a damaged one aside) instead of on the first write."""
        self._database()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _database(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: a SQLite connection must not cross a fork, the parent keeps its own
            self._pid, self._connection = os.getpid(), None
        if self._connection is None:
            # Used by the writer thread, and by the stopping thread once the writer has ended: never both at once.
            self._connection = connect(self.db_path, check_same_thread=False, on_damage=self.on_damage)
        now = time.time()
        if now - self._last_retention >= RETENTION_EVERY_SECONDS:
            self._last_retention = now
            apply_retention(self._connection, self.retention_days, now=now)
        return self._connection

    def write(self, items: Sequence[Event | SystemSample]) -> None:
        """Insert the rows for ``items`` now, in the calling thread, in one transaction. Other kinds are skipped."""
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for item in items:
            if isinstance(item, SystemSample):
                rows.setdefault("system", []).append(
                    (
                        item.timestamp,
                        item.cpu_percent,
                        item.memory_percent,
                        item.rss_bytes,
                        item.disk_percent,
                        item.disk_free_bytes,
                        item.queue_depth,
                    )
                )
                continue
            builder = _ROW_BUILDERS.get(item.kind)
            if builder is not None:
                table, make_row = builder
                rows.setdefault(table, []).append(make_row(item))
        if not rows:
            return
        connection = self._database()
        with connection:
            for table, table_rows in rows.items():
                insert_rows(connection, table, table_rows)
