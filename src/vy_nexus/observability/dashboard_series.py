"""Time series for the dashboard's overview and experts charts, read from the metrics database in the same fixed
buckets as the routing and resources series (at most ``MAX_POINTS``; ``t`` is each bucket's start, Unix seconds).

* ``task_series``: per bucket, tasks finished, the share that failed, p50/p95 task duration.
* ``expert_series``: per bucket, each expert's p50 run duration and each LLM backend's (``provider/model``) p50 time
  to first token and output tokens per second of generation. Every list is aligned on ``t``; ``None`` where that
  expert or backend did nothing in the bucket (a gap in its line).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from vy_nexus.observability.dashboard_stats import bucket_seconds, no_nan
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import executions, llm, tasks
from vy_nexus.observability.metricsquery import percentile


def task_series(database: MetricsDatabase, *, since: float, now: float) -> dict[str, Any]:
    step = bucket_seconds(since, now)
    buckets: dict[int, list[sa.RowMapping]] = defaultdict(list)
    with database.reading() as connection:
        if connection is not None:
            for row in connection.execute(
                sa.select(tasks.c.finished_at, tasks.c.duration_ms, tasks.c.success)
                .where(tasks.c.finished_at.between(since, now))
                .order_by(tasks.c.finished_at)
            ).mappings():
                buckets[int((row["finished_at"] - since) // step)].append(row)
    series: dict[str, list[Any]] = {"t": [], "tasks": [], "error_rate": [], "p50_ms": [], "p95_ms": []}
    for index in sorted(buckets):
        rows = buckets[index]
        durations = [float(row["duration_ms"]) for row in rows]
        series["t"].append(round(since + index * step, 3))
        series["tasks"].append(len(rows))
        series["error_rate"].append(round(sum(1 for row in rows if not row["success"]) / len(rows), 4))
        series["p50_ms"].append(no_nan(percentile(durations, 50)))
        series["p95_ms"].append(no_nan(percentile(durations, 95)))
    return {"bucket_seconds": step, "series": series}


def expert_series(database: MetricsDatabase, *, since: float, now: float) -> dict[str, Any]:
    step = bucket_seconds(since, now)
    runs: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    firsts: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    generation: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    e = executions
    with database.reading() as connection:
        if connection is not None:
            for row in connection.execute(
                sa.select(e.c.expert_id, e.c.started_at, e.c.duration_ms).where(e.c.started_at.between(since, now))
            ).mappings():
                runs[str(row["expert_id"])][int((row["started_at"] - since) // step)].append(float(row["duration_ms"]))
            for row in connection.execute(
                sa.select(
                    llm.c.provider, llm.c.model, llm.c.timestamp, llm.c.duration_ms, llm.c.output_tokens, llm.c.ttft_ms
                ).where(llm.c.timestamp.between(since, now))
            ).mappings():
                backend = f"{row['provider']}/{row['model']}"
                index = int((row["timestamp"] - since) // step)
                if row["ttft_ms"] is not None:
                    firsts[backend][index].append(float(row["ttft_ms"]))
                totals = generation[backend][index]
                totals[0] += float(row["output_tokens"] or 0)
                totals[1] += float(row["duration_ms"] or 0.0)
    indices = sorted({index for table in (runs, generation) for per_bucket in table.values() for index in per_bucket})
    return {
        "bucket_seconds": step,
        "t": [round(since + index * step, 3) for index in indices],
        "experts": {
            expert: [no_nan(percentile(runs[expert][i], 50)) if i in runs[expert] else None for i in indices]
            for expert in sorted(runs)
        },
        "llm": {
            backend: {
                "ttft_p50_ms": [
                    no_nan(percentile(firsts[backend][i], 50)) if i in firsts[backend] else None for i in indices
                ],
                "tokens_per_second": [_rate(generation[backend].get(i)) for i in indices],
            }
            for backend in sorted(generation)
        },
    }


def _rate(totals: list[float] | None) -> float | None:
    if not totals or totals[0] <= 0 or totals[1] <= 0:
        return None
    return round(totals[0] / (totals[1] / 1000.0), 2)
