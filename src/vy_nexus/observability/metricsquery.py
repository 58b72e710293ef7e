"""Reading the metrics database (metrics_db.py): the report (counts, success rates, percentiles, distributions, and
what each process did) and exports. The same Core queries on the SQLite file and on a cluster's PostgreSQL.

Percentiles use linear interpolation between closest ranks (NumPy's default ``linear`` method): for sorted values
``v[0..n-1]`` the q-th percentile sits at rank ``(n - 1) * q / 100``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TextIO

import sqlalchemy as sa

from vy_nexus.errors import ConfigError
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import RAW_TABLES, TIME_COLUMNS, executions, llm, routing, system, tasks

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
class ProcessStats:
    """What one process (``host:pid``) recorded: the expert runs it ran, its LLM calls and its system samples."""

    process: str
    expert_runs: int
    expert_successes: int
    expert_p50_ms: float
    llm_calls: int
    samples: int
    cpu_percent_avg: float | None
    rss_bytes_max: int | None
    last_seen: float


@dataclass(frozen=True)
class MetricsReport:
    since: float | None
    generated_at: float
    experts: list[GroupStats] = field(default_factory=list)
    tasks: list[GroupStats] = field(default_factory=list)
    routing: RoutingStats | None = None
    system: SystemStats | None = None
    llm: list[LlmStats] = field(default_factory=list)
    processes: list[ProcessStats] = field(default_factory=list)
    database: str = ""
    """Where the numbers come from: the SQLite file, or the server database's URL without its password."""

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


def _grouped(rows: Sequence[sa.RowMapping], keys: Sequence[str]) -> list[GroupStats]:
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


def _routing(conn: sa.Connection, since: float) -> RoutingStats:
    r = routing
    rows = (
        conn.execute(
            sa.select(
                r.c.confidence, r.c.cache_hit, r.c.fallback, r.c.latency_ms, r.c.strategy, r.c.out_of_scope
            ).where(r.c.timestamp >= since)
        )
        .mappings()
        .all()
    )
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


def _llm(conn: sa.Connection, since: float) -> list[LlmStats]:
    rows = (
        conn.execute(
            sa.select(
                llm.c.provider,
                llm.c.model,
                llm.c.duration_ms.label("duration"),
                llm.c.error.is_(None).label("ok"),
                llm.c.ttft_ms,
            ).where(llm.c.timestamp >= since)
        )
        .mappings()
        .all()
    )
    firsts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["ttft_ms"] is not None:
            firsts[(str(row["provider"]), str(row["model"]))].append(float(row["ttft_ms"]))
    stats = []
    for group in _grouped(rows, ("provider", "model")):
        values = firsts[(group.group["provider"], group.group["model"])]
        stats.append(LlmStats(group.group, group.stats, percentile(values, 50), percentile(values, 95)))
    return stats


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _system(conn: sa.Connection, since: float) -> SystemStats:
    s = system
    row = (
        conn.execute(
            sa.select(
                sa.func.count().label("n"),
                sa.func.avg(s.c.cpu_percent).label("cpu_avg"),
                sa.func.max(s.c.cpu_percent).label("cpu_max"),
                sa.func.avg(s.c.memory_percent).label("mem_avg"),
                sa.func.max(s.c.memory_percent).label("mem_max"),
                sa.func.max(s.c.rss_bytes).label("rss_max"),
                sa.func.max(s.c.queue_depth).label("queue_max"),
            ).where(s.c.timestamp >= since)
        )
        .mappings()
        .one()
    )
    last = (
        conn.execute(
            sa.select(s.c.disk_percent, s.c.disk_free_bytes)
            .where(s.c.timestamp >= since)
            .order_by(s.c.timestamp.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return SystemStats(
        samples=row["n"],
        cpu_percent_avg=_optional(row["cpu_avg"]),
        cpu_percent_max=_optional(row["cpu_max"]),
        memory_percent_avg=_optional(row["mem_avg"]),
        memory_percent_max=_optional(row["mem_max"]),
        rss_bytes_max=row["rss_max"],
        disk_percent_last=last["disk_percent"] if last else None,
        disk_free_bytes_last=last["disk_free_bytes"] if last else None,
        queue_depth_max=row["queue_max"],
    )


def _processes(conn: sa.Connection, since: float, runs: Sequence[sa.RowMapping]) -> list[ProcessStats]:
    """Per process: its expert runs (from ``runs``), LLM calls and system samples since ``since``."""
    durations: dict[str, list[float]] = defaultdict(list)
    successes: dict[str, int] = defaultdict(int)
    last_seen: dict[str, float] = defaultdict(float)
    for run in runs:
        if run["process"] is not None:
            name = str(run["process"])
            durations[name].append(float(run["duration"]))
            successes[name] += int(run["ok"])
            last_seen[name] = max(last_seen[name], float(run["at"]))
    calls: dict[str, int] = {}
    for row in conn.execute(
        sa.select(llm.c.process, sa.func.count().label("n"), sa.func.max(llm.c.timestamp).label("last"))
        .where(llm.c.timestamp >= since, llm.c.process.is_not(None))
        .group_by(llm.c.process)
    ).mappings():
        calls[row["process"]] = row["n"]
        last_seen[row["process"]] = max(last_seen[row["process"]], float(row["last"]))
    samples: dict[str, sa.RowMapping] = {}
    for row in conn.execute(
        sa.select(
            system.c.process,
            sa.func.count().label("n"),
            sa.func.avg(system.c.cpu_percent).label("cpu"),
            sa.func.max(system.c.rss_bytes).label("rss"),
            sa.func.max(system.c.timestamp).label("last"),
        )
        .where(system.c.timestamp >= since, system.c.process.is_not(None))
        .group_by(system.c.process)
    ).mappings():
        samples[row["process"]] = row
        last_seen[row["process"]] = max(last_seen[row["process"]], float(row["last"]))
    return [
        ProcessStats(
            process=name,
            expert_runs=len(durations[name]),
            expert_successes=successes[name],
            expert_p50_ms=percentile(durations[name], 50),
            llm_calls=calls.get(name, 0),
            samples=int(samples[name]["n"]) if name in samples else 0,
            cpu_percent_avg=_optional(samples[name]["cpu"]) if name in samples else None,
            rss_bytes_max=samples[name]["rss"] if name in samples else None,
            last_seen=last_seen[name],
        )
        for name in sorted(last_seen)
    ]


def build_report(database: MetricsDatabase, *, since: float | None = None, expert: str | None = None) -> MetricsReport:
    """Everything recorded since ``since`` (Unix time; None = all), optionally for one expert only."""
    now = time.time()
    start = since if since is not None else 0.0
    with database.reading() as conn:
        if conn is None:
            return MetricsReport(since=since, generated_at=now, database=database.label)
        e = executions
        query = sa.select(
            e.c.expert_id,
            sa.func.coalesce(e.c.task_type, "").label("task_type"),
            e.c.duration_ms.label("duration"),
            e.c.success.label("ok"),
            e.c.process,
            e.c.started_at.label("at"),
        ).where(e.c.started_at >= start)
        if expert is not None:
            query = query.where(e.c.expert_id == expert)
        runs = conn.execute(query).mappings().all()
        task_rows = (
            conn.execute(
                sa.select(
                    sa.func.coalesce(tasks.c.task_type, "").label("task_type"),
                    tasks.c.duration_ms.label("duration"),
                    tasks.c.success.label("ok"),
                ).where(tasks.c.finished_at >= start)
            )
            .mappings()
            .all()
        )
        return MetricsReport(
            since=since,
            generated_at=now,
            experts=_grouped(runs, ("expert_id", "task_type")),
            tasks=_grouped(task_rows, ("task_type",)),
            routing=_routing(conn, start),
            system=_system(conn, start),
            llm=_llm(conn, start),
            processes=_processes(conn, start, runs),
            database=database.label,
        )


JSON_COLUMNS = frozenset({"experts", "confidences"})
"""Columns stored as JSON text; a JSON export writes them as lists and objects, not as strings."""


def export_table(
    database: MetricsDatabase, table: str, fmt: ExportFormat, out: TextIO, *, since: float | None = None
) -> int:
    """Write the rows of one raw table (since ``since``) as CSV (with a header) or JSON lines; returns the count.

    Rows stream from the database to ``out``; nothing is held in memory.
    """
    if table not in RAW_TABLES:
        raise ConfigError(f"unknown metrics table {table!r}; choose one of {', '.join(RAW_TABLES)}")
    if fmt not in ("csv", "json"):
        raise ConfigError(f"unknown export format {fmt!r}; choose csv or json")
    with database.reading() as conn:
        if conn is None:
            return 0
        source = TIME_COLUMNS[table].table
        query = sa.select(source).where(TIME_COLUMNS[table] >= (since if since is not None else 0.0))
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(query.order_by(source.c.id))
        columns = list(result.keys())
        count = 0
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in result:
                writer.writerow(tuple(row))
                count += 1
        else:
            nested = [c in JSON_COLUMNS for c in columns]
            for row in result:
                values = [
                    json.loads(v) if is_json and isinstance(v, str) else v
                    for v, is_json in zip(row, nested, strict=True)
                ]
                out.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False) + "\n")
                count += 1
        return count
