"""What the dashboard shows, read from the metrics database (metrics_db.py): the recent task rate, error rate and
latency, per-expert figures, and time series (routing quality, server resources) in fixed buckets.

Everything takes a window (``since``) and returns plain data (JSON-ready, ``None`` for "no data").
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from vy_nexus.observability import metrics_schema as schema
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import executions, routing, system, tasks
from vy_nexus.observability.metricsquery import build_report, percentile, share

MAX_POINTS = 120
"""Time series are folded into at most this many buckets."""


def no_nan(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


@dataclass(frozen=True)
class TaskFigures:
    window_seconds: float
    tasks: int
    tasks_per_second: float
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None


def task_figures(database: MetricsDatabase, *, since: float, now: float) -> TaskFigures:
    """Tasks finished in ``[since, now]``: rate, share that failed, p50/p95 duration."""
    window = max(now - since, 1e-9)
    with database.reading() as connection:
        rows = (
            []
            if connection is None
            else connection.execute(
                sa.select(tasks.c.duration_ms, tasks.c.success).where(tasks.c.finished_at.between(since, now))
            )
            .mappings()
            .all()
        )
    durations = [float(row["duration_ms"]) for row in rows]
    failed = sum(1 for row in rows if not row["success"])
    return TaskFigures(
        window_seconds=round(window, 3),
        tasks=len(rows),
        tasks_per_second=round(len(rows) / window, 4),
        error_rate=round(failed / len(rows), 4) if rows else None,
        p50_ms=no_nan(percentile(durations, 50)),
        p95_ms=no_nan(percentile(durations, 95)),
    )


def experts_figures(database: MetricsDatabase, *, since: float, now: float) -> dict[str, Any]:
    """Per expert: runs, success rate, p50/p95/p99, utilisation (busy time over the window), last error; per LLM
    backend: calls, output tokens per second of generation, mean call duration, p50/p95 time to first token."""
    window_ms = max(now - since, 1e-9) * 1000.0
    experts: list[dict[str, Any]] = []
    llm: list[dict[str, Any]] = []
    e, calls = executions, schema.llm
    with database.reading() as connection:
        if connection is not None:
            durations: dict[str, list[float]] = defaultdict(list)
            successes: dict[str, int] = defaultdict(int)
            last_error: dict[str, str] = {}
            for row in connection.execute(
                sa.select(e.c.expert_id, e.c.duration_ms, e.c.success, e.c.error)
                .where(e.c.started_at >= since)
                .order_by(e.c.started_at, e.c.id)
            ).mappings():
                expert = str(row["expert_id"])
                durations[expert].append(float(row["duration_ms"]))
                successes[expert] += int(row["success"])
                if row["error"]:
                    last_error[expert] = str(row["error"])
            for expert in sorted(durations):
                values = durations[expert]
                experts.append(
                    {
                        "expert_id": expert,
                        "runs": len(values),
                        "success_rate": round(successes[expert] / len(values), 4),
                        "p50_ms": no_nan(percentile(values, 50)),
                        "p95_ms": no_nan(percentile(values, 95)),
                        "p99_ms": no_nan(percentile(values, 99)),
                        "utilisation": round(sum(values) / window_ms, 4),
                        "last_error": last_error.get(expert),
                    }
                )
            firsts = _first_tokens(connection, since)
            for row in connection.execute(
                sa.select(
                    calls.c.provider,
                    calls.c.model,
                    sa.func.count().label("calls"),
                    sa.func.sum(calls.c.duration_ms).label("busy"),
                    sa.func.sum(calls.c.output_tokens).label("tokens"),
                )
                .where(calls.c.timestamp >= since)
                .group_by(calls.c.provider, calls.c.model)
                .order_by(calls.c.provider, calls.c.model)
            ).mappings():
                busy = float(row["busy"] or 0.0)
                tokens = None if row["tokens"] is None else int(row["tokens"])  # PostgreSQL sums into numeric
                ttft = firsts.get((row["provider"], row["model"]), [])
                llm.append(
                    {
                        "provider": row["provider"],
                        "model": row["model"],
                        "calls": row["calls"],
                        "output_tokens": tokens,
                        "tokens_per_second": round(tokens / (busy / 1000.0), 2) if tokens and busy > 0 else None,
                        "mean_ms": round(busy / row["calls"], 2) if row["calls"] else None,
                        "ttft_p50_ms": no_nan(percentile(ttft, 50)),
                        "ttft_p95_ms": no_nan(percentile(ttft, 95)),
                    }
                )
    return {"experts": experts, "llm": llm}


def _first_tokens(connection: sa.Connection, since: float) -> dict[tuple[str, str], list[float]]:
    """Time to first token of each call since ``since``, per (provider, model)."""
    calls = schema.llm
    firsts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in connection.execute(
        sa.select(calls.c.provider, calls.c.model, calls.c.ttft_ms).where(
            calls.c.timestamp >= since, calls.c.ttft_ms.is_not(None)
        )
    ):
        firsts[(row.provider, row.model)].append(float(row.ttft_ms))
    return firsts


def bucket_seconds(since: float, now: float) -> float:
    return max(1.0, math.ceil((now - since) / MAX_POINTS))


def routing_quality(database: MetricsDatabase, *, since: float, now: float) -> dict[str, Any]:
    """The routing report (confidence histogram, strategies, cache hit, fallback and out-of-scope rates, latency
    percentiles) and, per time bucket, decisions, fallback rate, out-of-scope rate (``None`` where no decision recorded
    it), cache hit rate and p50 routing latency."""
    report: dict[str, Any] | None = None
    step = bucket_seconds(since, now)
    buckets: dict[int, list[sa.RowMapping]] = defaultdict(list)
    r = routing
    recorded = False
    with database.reading() as connection:
        if connection is not None:
            recorded = True
            for row in connection.execute(
                sa.select(r.c.timestamp, r.c.fallback, r.c.out_of_scope, r.c.cache_hit, r.c.latency_ms)
                .where(r.c.timestamp >= since)
                .order_by(r.c.timestamp)
            ).mappings():
                buckets[int((row["timestamp"] - since) // step)].append(row)
    if recorded:
        report = build_report(database, since=since).as_dict().get("routing")
    series: dict[str, list[Any]] = {
        "t": [],
        "decisions": [],
        "fallback_rate": [],
        "out_of_scope_rate": [],
        "cache_hit_rate": [],
        "p50_ms": [],
    }
    for index in sorted(buckets):
        rows = buckets[index]
        series["t"].append(round(since + index * step, 3))
        series["decisions"].append(len(rows))
        series["fallback_rate"].append(round(sum(row["fallback"] for row in rows) / len(rows), 4))
        series["out_of_scope_rate"].append(no_nan(share([row["out_of_scope"] for row in rows])))
        series["cache_hit_rate"].append(round(sum(row["cache_hit"] for row in rows) / len(rows), 4))
        series["p50_ms"].append(no_nan(percentile([float(row["latency_ms"]) for row in rows], 50)))
    return {"summary": report, "bucket_seconds": step, "series": series}


def resources(database: MetricsDatabase, *, since: float, now: float) -> dict[str, Any]:
    """The server's periodic samples (CPU %, memory %, disk %, process RSS), averaged per time bucket."""
    step = bucket_seconds(since, now)
    columns = ("cpu_percent", "memory_percent", "disk_percent", "rss_bytes")
    sums: dict[int, list[float]] = {}
    counts: dict[int, int] = defaultdict(int)
    with database.reading() as connection:
        if connection is not None:
            for row in connection.execute(
                sa.select(system.c.timestamp, *(system.c[name] for name in columns))
                .where(system.c.timestamp >= since)
                .order_by(system.c.timestamp)
            ).mappings():
                index = int((row["timestamp"] - since) // step)
                totals = sums.setdefault(index, [0.0] * len(columns))
                for position, name in enumerate(columns):
                    totals[position] += float(row[name] or 0.0)
                counts[index] += 1
    series: dict[str, list[Any]] = {"t": [], **{name: [] for name in columns}}
    for index in sorted(sums):
        series["t"].append(round(since + index * step, 3))
        for position, name in enumerate(columns):
            series[name].append(round(sums[index][position] / counts[index], 2))
    return {"bucket_seconds": step, "series": series}


def as_dict(figures: TaskFigures) -> dict[str, Any]:
    return asdict(figures)
