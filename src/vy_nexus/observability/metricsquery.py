"""Reading metrics/performance.db: the report (counts, success rates, percentiles, distributions) and exports.

Percentiles use linear interpolation between closest ranks (NumPy's default ``linear`` method): for sorted values
``v[0..n-1]`` the q-th percentile sits at rank ``(n - 1) * q / 100``.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from vy_nexus.errors import ConfigError
from vy_nexus.observability.metrics_schema import RAW_TABLES, connect_readonly, has_column

TIME_COLUMNS = {
    "tasks": "finished_at",
    "executions": "started_at",
    "routing": "timestamp",
    "system": "timestamp",
    "llm": "timestamp",
}

CONFIDENCE_BUCKETS = 10

ExportFormat = Literal["csv", "json"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation; NaN for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def share(flags: Sequence[int | None]) -> float:
    """The share of true flags among the known ones (``None``: not recorded); NaN when none is known."""
    known = [flag for flag in flags if flag is not None]
    return sum(1 for flag in known if flag) / len(known) if known else math.nan


@dataclass(frozen=True)
class DurationStats:
    count: int
    successes: int
    success_rate: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, durations: Sequence[float], successes: int) -> DurationStats:
        count = len(durations)
        return cls(
            count=count,
            successes=successes,
            success_rate=successes / count if count else math.nan,
            mean_ms=sum(durations) / count if count else math.nan,
            p50_ms=percentile(durations, 50),
            p95_ms=percentile(durations, 95),
            p99_ms=percentile(durations, 99),
        )


@dataclass(frozen=True)
class GroupStats:
    """Duration statistics for one group (an expert and task type, a task type, an LLM model)."""

    group: dict[str, str]
    stats: DurationStats


@dataclass(frozen=True)
class LlmStats(GroupStats):
    """An LLM backend's calls (``group``: provider and model) and their time to first token (NaN: no call streamed
    a token, or all were recorded before the metrics database kept it)."""

    ttft_p50_ms: float = math.nan
    ttft_p95_ms: float = math.nan


@dataclass(frozen=True)
class RoutingStats:
    decisions: int
    cache_hit_rate: float
    fallback_rate: float
    """Share of decisions handed to the fallback expert, for any reason."""
    out_of_scope_rate: float
    """Share the strategy had no candidate for (part of the fallback rate); over decisions that recorded it."""
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    strategies: dict[str, int]
    confidence_histogram: list[dict[str, Any]]
    """Top-choice confidence in ten buckets: ``{"from": 0.0, "to": 0.1, "count": n}``, ..."""


@dataclass(frozen=True)
class SystemStats:
    samples: int
    cpu_percent_avg: float | None
    cpu_percent_max: float | None
    memory_percent_avg: float | None
    memory_percent_max: float | None
    rss_bytes_max: int | None
    disk_percent_last: float | None
    disk_free_bytes_last: int | None
    queue_depth_max: int | None


@dataclass(frozen=True)
class MetricsReport:
    since: float | None
    generated_at: float
    experts: list[GroupStats] = field(default_factory=list)
    tasks: list[GroupStats] = field(default_factory=list)
    routing: RoutingStats | None = None
    system: SystemStats | None = None
    llm: list[LlmStats] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = _finite(asdict(self))
        return cleaned


def _finite(value: Any) -> Any:
    """NaN (no data) becomes None so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _grouped(rows: Sequence[sqlite3.Row], keys: Sequence[str]) -> list[GroupStats]:
    durations: dict[tuple[str, ...], list[float]] = defaultdict(list)
    successes: dict[tuple[str, ...], int] = defaultdict(int)
    for row in rows:
        key = tuple(str(row[name]) if row[name] is not None else "" for name in keys)
        durations[key].append(float(row["duration"]))
        successes[key] += int(row["ok"])
    return [
        GroupStats(dict(zip(keys, key, strict=True)), DurationStats.of(durations[key], successes[key]))
        for key in sorted(durations)
    ]


def _llm(connection: sqlite3.Connection, since: float) -> list[LlmStats]:
    ttft = "ttft_ms" if has_column(connection, "llm", "ttft_ms") else "NULL AS ttft_ms"
    rows = connection.execute(
        f"SELECT provider, model, duration_ms AS duration, error IS NULL AS ok, {ttft} FROM llm WHERE timestamp >= ?",
        (since,),
    ).fetchall()
    firsts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["ttft_ms"] is not None:
            firsts[(str(row["provider"]), str(row["model"]))].append(float(row["ttft_ms"]))
    stats = []
    for group in _grouped(rows, ("provider", "model")):
        values = firsts[(group.group["provider"], group.group["model"])]
        stats.append(LlmStats(group.group, group.stats, percentile(values, 50), percentile(values, 95)))
    return stats


def _routing(connection: sqlite3.Connection, since: float) -> RoutingStats:
    out_of_scope = "out_of_scope" if has_column(connection, "routing", "out_of_scope") else "NULL AS out_of_scope"
    rows = connection.execute(
        f"SELECT confidence, cache_hit, fallback, latency_ms, strategy, {out_of_scope} FROM routing"
        " WHERE timestamp >= ?",
        (since,),
    ).fetchall()
    count = len(rows)
    buckets = [0] * CONFIDENCE_BUCKETS
    strategies: dict[str, int] = defaultdict(int)
    for row in rows:
        index = min(CONFIDENCE_BUCKETS - 1, max(0, int(float(row["confidence"]) * CONFIDENCE_BUCKETS)))
        buckets[index] += 1
        strategies[row["strategy"]] += 1
    latencies = [float(row["latency_ms"]) for row in rows]
    return RoutingStats(
        decisions=count,
        cache_hit_rate=sum(row["cache_hit"] for row in rows) / count if count else math.nan,
        fallback_rate=sum(row["fallback"] for row in rows) / count if count else math.nan,
        out_of_scope_rate=share([row["out_of_scope"] for row in rows]),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99),
        strategies=dict(sorted(strategies.items())),
        confidence_histogram=[
            {"from": i / CONFIDENCE_BUCKETS, "to": (i + 1) / CONFIDENCE_BUCKETS, "count": n}
            for i, n in enumerate(buckets)
        ],
    )


def _system(connection: sqlite3.Connection, since: float) -> SystemStats:
    row = connection.execute(
        "SELECT COUNT(*) AS n, AVG(cpu_percent) AS cpu_avg, MAX(cpu_percent) AS cpu_max,"
        " AVG(memory_percent) AS mem_avg, MAX(memory_percent) AS mem_max, MAX(rss_bytes) AS rss_max,"
        " MAX(queue_depth) AS queue_max FROM system WHERE timestamp >= ?",
        (since,),
    ).fetchone()
    last = connection.execute(
        "SELECT disk_percent, disk_free_bytes FROM system WHERE timestamp >= ? ORDER BY timestamp DESC LIMIT 1",
        (since,),
    ).fetchone()
    return SystemStats(
        samples=row["n"],
        cpu_percent_avg=row["cpu_avg"],
        cpu_percent_max=row["cpu_max"],
        memory_percent_avg=row["mem_avg"],
        memory_percent_max=row["mem_max"],
        rss_bytes_max=row["rss_max"],
        disk_percent_last=last["disk_percent"] if last else None,
        disk_free_bytes_last=last["disk_free_bytes"] if last else None,
        queue_depth_max=row["queue_max"],
    )


def build_report(db_path: Path, *, since: float | None = None, expert: str | None = None) -> MetricsReport:
    """Everything recorded since ``since`` (Unix time; None = all), optionally for one expert only."""
    now = time.time()
    if not db_path.exists():
        return MetricsReport(since=since, generated_at=now)
    start = since if since is not None else 0.0
    connection = connect_readonly(db_path)
    try:
        sql = (
            "SELECT expert_id, COALESCE(task_type, '') AS task_type, duration_ms AS duration, success AS ok"
            " FROM executions WHERE started_at >= ?"
        )
        params: tuple[Any, ...] = (start,)
        if expert is not None:
            sql += " AND expert_id = ?"
            params = (start, expert)
        experts = _grouped(connection.execute(sql, params).fetchall(), ("expert_id", "task_type"))
        tasks = _grouped(
            connection.execute(
                "SELECT COALESCE(task_type, '') AS task_type, duration_ms AS duration, success AS ok FROM tasks"
                " WHERE finished_at >= ?",
                (start,),
            ).fetchall(),
            ("task_type",),
        )
        llm = _llm(connection, start)
        return MetricsReport(
            since=since,
            generated_at=now,
            experts=experts,
            tasks=tasks,
            routing=_routing(connection, start),
            system=_system(connection, start),
            llm=llm,
        )
    finally:
        connection.close()


JSON_COLUMNS = frozenset({"experts", "confidences"})
"""Columns stored as JSON text; a JSON export writes them as lists and objects, not as strings."""


def export_table(db_path: Path, table: str, fmt: ExportFormat, out: TextIO, *, since: float | None = None) -> int:
    """Write the rows of one raw table (since ``since``) as CSV (with a header) or JSON lines; returns the count.

    Rows stream from SQLite to ``out``; nothing is held in memory.
    """
    if table not in RAW_TABLES:
        raise ConfigError(f"unknown metrics table {table!r}; choose one of {', '.join(RAW_TABLES)}")
    if fmt not in ("csv", "json"):
        raise ConfigError(f"unknown export format {fmt!r}; choose csv or json")
    if not db_path.exists():
        return 0
    connection = connect_readonly(db_path)
    try:
        # The table and column names come from fixed sets, never from the user's text.
        cursor = connection.execute(
            f"SELECT * FROM {table} WHERE {TIME_COLUMNS[table]} >= ? ORDER BY id",
            (since if since is not None else 0.0,),
        )
        columns = [description[0] for description in cursor.description]
        count = 0
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in cursor:
                writer.writerow(tuple(row))
                count += 1
        else:
            nested = [c in JSON_COLUMNS for c in columns]
            for row in cursor:
                values = [
                    json.loads(v) if is_json and isinstance(v, str) else v
                    for v, is_json in zip(row, nested, strict=True)
                ]
                out.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False) + "\n")
                count += 1
        return count
    finally:
        connection.close()
