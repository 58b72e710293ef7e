"""Every request recorded: route template, method, status and duration — in the ``api`` table of the metrics
database (metrics_db.py) for ``/api/metrics/report``, and in a Prometheus histogram served by ``/metrics``.

An ASGI middleware measures each request and queues one row; a background writer inserts the rows in batches, so a
request never waits on disk.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vy_nexus.observability.batching import BatchWriter
from vy_nexus.observability.metrics_db import MetricsDatabase, insert_rows
from vy_nexus.observability.metrics_schema import api
from vy_nexus.observability.metricsquery import DurationStats, GroupStats

Row = tuple[float, str, str, int, float]
COLUMNS = ("timestamp", "route", "method", "status", "latency_ms")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestLog:
    def __init__(self, database: MetricsDatabase, *, flush_interval: float = 0.5) -> None:
        self.database = database
        self.registry = CollectorRegistry()
        self.duration = Histogram(
            "vy_nexus_api_request_duration_seconds",
            "HTTP requests served by the vy-nexus API, by route template, method and status.",
            ("route", "method", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._writer: BatchWriter[Row] = BatchWriter(self._write, name="api-requests", interval=flush_interval)

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        self.duration.labels(route, method, str(status)).observe(seconds)
        self._writer.offer((time.time(), route, method, status, seconds * 1000.0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def start(self) -> None:
        self._writer.start()

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout)

    def stop(self) -> None:
        self._writer.stop()

    def summary(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per method and route: count, success rate (status < 500), mean and p50/p95/p99 ms, as ``metrics
        report`` groups them. Reads the table (call from a thread)."""
        self.flush()
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        ok: dict[tuple[str, str], int] = defaultdict(int)
        with self.database.reading() as connection:
            rows: Sequence[Any] = (
                []
                if connection is None
                else connection.execute(
                    sa.select(api.c.method, api.c.route, api.c.latency_ms, api.c.status).where(
                        api.c.timestamp >= (since or 0.0)
                    )
                ).all()
            )
            for method, route, latency_ms, status in rows:
                durations[(method, route)].append(float(latency_ms))
                ok[(method, route)] += int(status) < 500
        return [
            asdict(GroupStats({"method": key[0], "route": key[1]}, DurationStats.of(durations[key], ok[key])))
            for key in sorted(durations)
        ]

    def _write(self, rows: Sequence[Row]) -> None:
        with self.database.engine().begin() as connection:
            insert_rows(connection, "api", COLUMNS, rows)


class RequestLogMiddleware:
    """Times each HTTP request and records it under its route template (``/api/tasks/{task_id}``)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.log.record(_route(scope), scope["method"], status, time.perf_counter() - started)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"
