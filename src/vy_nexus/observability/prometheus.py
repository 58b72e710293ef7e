"""Prometheus exposition of vy-nexus metrics, on a registry of its own (never prometheus_client's global one).

``PrometheusMetrics`` holds prometheus_client metrics, recorded from events (``__call__``) or from the rows of the
metrics database: ``replay`` reads every row since a time (the CLI's ``vy-nexus metrics prometheus``), ``catch_up``
the rows any process wrote since its previous call (``Observability.exposition``, so neither the flow nor the writer
thread pays for Prometheus, and a server's ``/metrics`` includes what its workers recorded, also rows a worker's
transaction committed late: new_rows.py). Retries come from the executions' ``attempts``.

* ``vy_nexus_task_duration_seconds``      histogram  {task_type, outcome}
* ``vy_nexus_tasks_total``                counter    {task_type, outcome}           outcome: success | failure
* ``vy_nexus_expert_duration_seconds``    histogram  {expert_id, task_type}
* ``vy_nexus_expert_executions_total``    counter    {expert_id, outcome}
* ``vy_nexus_expert_retries_total``       counter    {expert_id}
* ``vy_nexus_routing_latency_seconds``    histogram  {strategy}
* ``vy_nexus_routing_cache_hits_total`` / ``vy_nexus_routing_cache_misses_total``  counters
* ``gen_ai_client_operation_duration_seconds``  histogram (OpenTelemetry GenAI ``gen_ai.client.operation.duration``)
  {gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, error_type}
* ``gen_ai_client_token_usage``           histogram (``gen_ai.client.token.usage``) {..., gen_ai_token_type}

The GenAI bucket boundaries are the ones the OpenTelemetry semantic conventions recommend.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from vy_nexus.events import Event
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import (
    COUNTED_TABLES,
    TIME_COLUMNS,
    executions,
    largest_ids,
    llm,
    routing,
    tasks,
)
from vy_nexus.observability.new_rows import NewRows

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
ROUTING_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")


def _outcome(success: object) -> str:
    return "success" if success else "failure"


def _seconds(metadata: dict[str, Any], key: str = "duration_ms") -> float:
    """Milliseconds as seconds; a value that is not a finite, non-negative number counts as 0 (one infinite
    observation would make the histogram's ``_sum`` +Inf for the life of the process)."""
    try:
        milliseconds = float(metadata.get(key, 0.0))
    except (TypeError, ValueError):
        return 0.0
    return milliseconds / 1000.0 if math.isfinite(milliseconds) and milliseconds > 0.0 else 0.0


def _task_type(metadata: dict[str, Any]) -> str:
    """The task type label; a row written without one (NULL) is ``general``, like an event without one."""
    return str(metadata.get("task_type") or "general")


class PrometheusMetrics:
    """The registry and its metrics; call it with an event to record that event. Thread-safe (prometheus_client is)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        # ``labels()`` validates and locks on every call; the children it returns are kept, as prometheus_client's
        # docs advise for hot code. A writer thread records several per task.
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}
        self._new: dict[str, NewRows] = {table: NewRows() for table in _COLUMNS}
        self._catch_up_lock = threading.Lock()
        self.task_duration = Histogram(
            "vy_nexus_task_duration_seconds",
            "Time from routing to aggregated result, per task.",
            ("task_type", "outcome"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tasks = Counter(
            "vy_nexus_tasks", "Tasks finished, by outcome.", ("task_type", "outcome"), registry=registry
        )
        self.expert_duration = Histogram(
            "vy_nexus_expert_duration_seconds",
            "Time one expert spent on one task, retries included.",
            ("expert_id", "task_type"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.expert_executions = Counter(
            "vy_nexus_expert_executions", "Expert runs, by outcome.", ("expert_id", "outcome"), registry=registry
        )
        self.expert_retries = Counter("vy_nexus_expert_retries", "Expert retries.", ("expert_id",), registry=registry)
        self.routing_latency = Histogram(
            "vy_nexus_routing_latency_seconds",
            "Time the gating engine took to decide.",
            ("strategy",),
            buckets=ROUTING_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "vy_nexus_routing_cache_hits", "Routing decisions served from the cache.", registry=registry
        )
        self.cache_misses = Counter(
            "vy_nexus_routing_cache_misses", "Routing decisions computed (not in the cache).", registry=registry
        )
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
            (*GENAI_LABELS, "error_type"),
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        )
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per GenAI operation (OpenTelemetry gen_ai.client.token.usage).",
            (*GENAI_LABELS, "gen_ai_token_type"),
            buckets=GENAI_TOKEN_BUCKETS,
            registry=registry,
        )

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self) -> bytes:
        """The text format, as ``GET /metrics`` serves it."""
        return generate_latest(self.registry)

    def __call__(self, event: Event) -> None:
        meta = event.metadata
        kind = event.kind
        if kind == "task.aggregated":
            labels = (_task_type(meta), _outcome(meta.get("success")))
            self._child(self.task_duration, *labels).observe(_seconds(meta))
            self._child(self.tasks, *labels).inc()
        elif kind in ("expert.finished", "expert.failed"):
            expert = event.expert_id or "unknown"
            success = meta.get("success", kind == "expert.finished")
            self._child(self.expert_duration, expert, _task_type(meta)).observe(_seconds(meta))
            self._child(self.expert_executions, expert, _outcome(success)).inc()
        elif kind == "expert.retry":
            self._child(self.expert_retries, event.expert_id or "unknown").inc()
        elif kind == "task.routed":
            self._child(self.routing_latency, str(meta.get("strategy", "unknown"))).observe(
                _seconds(meta, "latency_ms")
            )
            (self.cache_hits if meta.get("cache_hit") else self.cache_misses).inc()
        elif kind == "llm.completed":
            self._observe_llm(meta)

    def _observe_llm(self, meta: dict[str, Any]) -> None:
        names = (
            str(meta.get("operation", "chat")),
            str(meta.get("provider", "unknown")),
            str(meta.get("model", "unknown")),
        )
        error = meta.get("error")
        error_type = "" if error is None else str(meta.get("error_type") or "error")
        self._child(self.genai_duration, *names, error_type).observe(_seconds(meta))
        for token_type, key in (("input", "input_tokens"), ("output", "output_tokens")):
            count = meta.get(key)
            if isinstance(count, int | float) and not isinstance(count, bool) and 0 <= count < math.inf:
                self._child(self.genai_tokens, *names, token_type).observe(float(count))

    def replay(self, database: MetricsDatabase, *, since: float | None = None) -> int:
        """Record every row of the metrics database (newer than ``since``); returns how many were replayed."""
        count = 0
        with database.reading() as conn:
            if conn is None:
                return 0
            for table, columns in _COLUMNS.items():
                query = sa.select(*columns).where(TIME_COLUMNS[table] >= (since or 0.0))
                for row in conn.execute(query).mappings():
                    self._record(table, row)
                    count += 1
        return count

    def skip_recorded(self, database: MetricsDatabase) -> None:
        """From now on ``catch_up`` records only rows written after this call (by any process)."""
        with database.reading() as conn:
            self.skip_to(largest_ids(conn))

    def skip_to(self, largest: dict[str, int]) -> None:
        """``catch_up`` records only rows above these ids (``metrics_schema.largest_ids``, taken earlier)."""
        with self._catch_up_lock:
            for table, reader in self._new.items():
                reader.skip_to(largest.get(table, 0))

    def catch_up(self, database: MetricsDatabase) -> int:
        """Record the rows written since the last ``catch_up`` (or ``skip_recorded``); returns how many."""
        count = 0
        with self._catch_up_lock, database.reading() as conn:
            if conn is None:
                return 0
            largest = largest_ids(conn)
            for table, columns in _COLUMNS.items():
                reader = self._new[table]
                id_column = _TABLES[table].c.id
                query = sa.select(id_column, *columns).where(reader.where(id_column, largest[table]))
                ids: list[int] = []
                for row in conn.execute(query).mappings():
                    ids.append(row["id"])
                    self._record(table, row)
                reader.saw(ids)
                count += len(ids)
        return count

    def _record(self, table: str, row: sa.RowMapping) -> None:
        for event in _events(table, row):
            self(event)


_TABLES = COUNTED_TABLES
_COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "tasks": [tasks.c.task_id, tasks.c.task_type, tasks.c.duration_ms, tasks.c.success],
    "executions": [
        executions.c.task_id,
        executions.c.expert_id,
        executions.c.task_type,
        executions.c.duration_ms,
        executions.c.success,
        executions.c.attempts,
    ],
    "routing": [routing.c.task_id, routing.c.strategy, routing.c.cache_hit, routing.c.latency_ms],
    "llm": [
        llm.c.provider,
        llm.c.model,
        llm.c.operation,
        llm.c.duration_ms,
        llm.c.input_tokens,
        llm.c.output_tokens,
        llm.c.error,
    ],
}


def _events(table: str, row: sa.RowMapping) -> Iterator[Event]:
    """One row of the metrics database as the event(s) that produced it (enough of them to re-record)."""
    if table == "tasks":
        meta = {"task_type": row["task_type"], "duration_ms": row["duration_ms"], "success": bool(row["success"])}
        yield Event("task.aggregated", "replay", "", task_id=row["task_id"], metadata=meta)
    elif table == "executions":
        meta = {"task_type": row["task_type"], "duration_ms": row["duration_ms"], "success": bool(row["success"])}
        kind = "expert.finished" if row["success"] else "expert.failed"
        yield Event(kind, "replay", "", task_id=row["task_id"], expert_id=row["expert_id"], metadata=meta)
        for _ in range(max(0, row["attempts"] - 1)):
            yield Event("expert.retry", "replay", "", task_id=row["task_id"], expert_id=row["expert_id"])
    elif table == "routing":
        meta = {"strategy": row["strategy"], "cache_hit": bool(row["cache_hit"]), "latency_ms": row["latency_ms"]}
        yield Event("task.routed", "replay", "", task_id=row["task_id"], metadata=meta)
    else:
        yield Event("llm.completed", "replay", "", metadata={key: row[key] for key in _LLM_KEYS})


_LLM_KEYS = ("provider", "model", "operation", "duration_ms", "input_tokens", "output_tokens", "error")
