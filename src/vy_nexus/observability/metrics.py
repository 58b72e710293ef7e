"""The metrics collector: events and system samples in, rows of the metrics database out.

A ``MetricsCollector`` is a sink: ``write(items)`` turns a batch into rows and inserts them with multi-row
``INSERT``s inside one transaction, in the home's SQLite file (WAL mode: several processes on one home write one after
another and readers never wait) or in the cluster's PostgreSQL (metrics_db.py). ``Observability`` calls it from its
writer thread, never from the flow.

Events read (metadata keys in brackets):

* ``task.aggregated``  → ``tasks``     [task_type, duration_ms, success, experts, method, confidence]
* ``task.routed``      → ``routing``   [experts, confidences, strategy, cache_hit, fallback, out_of_scope, latency_ms]
* ``expert.finished`` / ``expert.failed`` → ``executions`` [duration_ms, success, error, task_type, attempts, worker]
* ``llm.completed``    → ``llm``       [duration_ms, model, provider, operation, input_tokens, output_tokens, error,
  time_to_first_token_ms]

``process`` (``host:pid``) says which process sampled, called the LLM, or ran the expert (a Celery worker's, named by
``worker``; else this one). Text PostgreSQL cannot hold (NUL) or no database can (lone surrogates) is replaced by
U+FFFD, only when a batch is refused for it.

Retention (``metrics.retention_days``, metrics_retention.py) runs with the first write and then hourly, on the writer
thread.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vy_nexus.events import Event
from vy_nexus.observability.journal_format import to_json
from vy_nexus.observability.metrics_db import MetricsDatabase, insert_rows
from vy_nexus.observability.metrics_retention import apply_retention

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
    if type(value) is float:  # what the flow publishes: no conversion, no exception handling
        return value
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
        number = None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is None or -(2**63) <= number < 2**63 else None


def process_label() -> str:
    """``host:pid`` of this process, as workers name themselves."""
    return f"{socket.gethostname()}:{os.getpid()}"


def execution_row(event: Event, process: str) -> tuple[Any, ...]:
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
        str(meta.get("worker") or process),
    )


def task_row(event: Event, _process: str) -> tuple[Any, ...]:
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


def routing_row(event: Event, _process: str) -> tuple[Any, ...]:
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


def llm_row(event: Event, process: str) -> tuple[Any, ...]:
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
        process,
    )


COLUMNS: dict[str, tuple[str, ...]] = {
    "tasks": ("task_id", "task_type", "finished_at", "duration_ms", "success", "experts", "method", "confidence"),
    "executions": (
        "task_id",
        "expert_id",
        "task_type",
        "started_at",
        "duration_ms",
        "success",
        "error",
        "attempts",
        "process",
    ),
    "routing": (
        "task_id",
        "timestamp",
        "experts",
        "top_expert",
        "confidence",
        "confidences",
        "strategy",
        "cache_hit",
        "fallback",
        "latency_ms",
        "out_of_scope",
    ),
    "llm": (
        "timestamp",
        "task_id",
        "expert_id",
        "provider",
        "model",
        "operation",
        "duration_ms",
        "input_tokens",
        "output_tokens",
        "error",
        "ttft_ms",
        "process",
    ),
    "system": (
        "timestamp",
        "cpu_percent",
        "memory_percent",
        "rss_bytes",
        "disk_percent",
        "disk_free_bytes",
        "queue_depth",
        "process",
    ),
}
"""The columns each row builder fills, in its tuple's order."""

Rows = dict[str, list[tuple[Any, ...]]]


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _clean(value: Any) -> Any:
    return _UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else value


def cleaned(rows: Rows) -> Rows:
    """The rows with text every database can store (see the module docstring)."""
    return {table: [tuple(_clean(value) for value in row) for row in table_rows] for table, table_rows in rows.items()}


_ROW_BUILDERS: dict[str, tuple[str, Callable[[Event, str], tuple[Any, ...]]]] = {
    "task.aggregated": ("tasks", task_row),
    "task.routed": ("routing", routing_row),
    "expert.finished": ("executions", execution_row),
    "expert.failed": ("executions", execution_row),
    "llm.completed": ("llm", llm_row),
}


class MetricsCollector:
    """Records executions, routing decisions, LLM calls and system samples in the metrics database; a sink
    (``write``)."""

    def __init__(self, database: MetricsDatabase, *, retention_days: float = 30.0) -> None:
        self.database = database
        self.retention_days = retention_days
        self._process = process_label()
        self._pid = os.getpid()
        self._last_retention = 0.0

    @staticmethod
    def wants(event: Event) -> bool:
        return event.kind in OBSERVED_KINDS

    def open(self) -> None:
        """Open the database now (creating the schema, moving a damaged file aside) instead of on the first write.
        Retention waits for the first write: it runs on the writer thread."""
        self.database.engine()

    def close(self) -> None:
        self.database.close()

    def _engine(self) -> sa.Engine:
        if self._pid != os.getpid():  # forked: rows say which process recorded them
            self._pid, self._process = os.getpid(), process_label()
        engine = self.database.engine()
        now = time.time()
        if now - self._last_retention >= RETENTION_EVERY_SECONDS:
            self._last_retention = now
            apply_retention(self.database, self.retention_days, now=now)
        return engine

    def rows(self, items: Sequence[Event | SystemSample]) -> Rows:
        """The rows ``items`` become, by table. Other kinds are skipped."""
        process = self._process if self._pid == os.getpid() else process_label()
        rows: Rows = {}
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
                        process,
                    )
                )
                continue
            builder = _ROW_BUILDERS.get(item.kind)
            if builder is not None:
                table, make_row = builder
                rows.setdefault(table, []).append(make_row(item, process))
        return rows

    def write(self, items: Sequence[Event | SystemSample]) -> None:
        """Insert the rows for ``items`` now, in the calling thread, in one transaction."""
        rows = self.rows(items)
        if not rows:
            return
        engine = self._engine()
        try:
            self._insert(engine, rows)
        except (UnicodeError, sa.exc.DataError):  # text a database refuses: store it replaced instead
            self._insert(engine, cleaned(rows))

    @staticmethod
    def _insert(engine: sa.Engine, rows: Rows) -> None:
        with engine.begin() as conn:
            for table, table_rows in rows.items():
                insert_rows(conn, table, COLUMNS[table], table_rows)
