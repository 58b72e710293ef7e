"""The overview's and the experts' time series, from a real metrics database written by the collector."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vy_nexus.events import Event
from vy_nexus.observability.dashboard_series import expert_series, task_series
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_db import MetricsDatabase

NOW = 1_000_000.0
SINCE = NOW - 3600.0  # one hour: 30-second buckets


def task(at: float, duration: float, ok: bool) -> Event:
    meta = {"duration_ms": duration, "success": ok, "experts": ["code"]}
    return Event("task.aggregated", "coordinator", "", timestamp=at, metadata=meta)


def run(expert: str, at: float, duration: float) -> Event:
    # the collector stores a run's start: its end (the event) minus its duration
    meta = {"duration_ms": duration, "success": True}
    return Event("expert.finished", "coordinator", "", expert_id=expert, timestamp=at + duration / 1000, metadata=meta)


def llm(at: float, ttft: float | None, tokens: int, duration: float) -> Event:
    meta = {
        "provider": "ollama",
        "model": "qwen",
        "duration_ms": duration,
        "output_tokens": tokens,
        "time_to_first_token_ms": ttft,
    }
    return Event("llm.completed", "reasoning", "", timestamp=at, metadata=meta)


@pytest.fixture
def db(tmp_path: Path) -> MetricsDatabase:
    path = tmp_path / "performance.db"
    collector = MetricsCollector(MetricsDatabase.sqlite(path))
    collector._last_retention = time.time()  # as if retention had just run: these rows are from 1970
    collector.write(
        [
            task(NOW - 100, 10.0, True),
            task(NOW - 95, 30.0, False),
            task(NOW - 10, 50.0, True),
            task(NOW + 10, 1.0, True),  # after "now": not shown
            run("code", NOW - 100, 20.0),
            run("code", NOW - 95, 40.0),
            run("writing", NOW - 10, 900.0),
            llm(NOW - 98, 100.0, 20, 1000.0),
            llm(NOW - 96, 300.0, 20, 1000.0),
            llm(NOW - 9, None, 0, 5.0),  # failed before its first token
        ]
    )
    collector.close()
    return MetricsDatabase.sqlite(path)


def test_task_series_buckets_count_errors_and_latency(db: MetricsDatabase) -> None:
    data = task_series(db, since=SINCE, now=NOW)
    assert data["bucket_seconds"] == 30.0
    series = data["series"]
    assert series["tasks"] == [2, 1] and series["error_rate"] == [0.5, 0.0]
    assert series["p50_ms"] == [20.0, 50.0] and series["p95_ms"] == [29.0, 50.0]
    assert series["t"] == [SINCE + 116 * 30.0, SINCE + 119 * 30.0]


def test_expert_series_align_experts_and_backends_on_one_time_axis(db: MetricsDatabase) -> None:
    data = expert_series(db, since=SINCE, now=NOW)
    assert len(data["t"]) == 2
    assert data["experts"] == {"code": [30.0, None], "writing": [None, 900.0]}
    backend = data["llm"]["ollama/qwen"]
    assert backend["ttft_p50_ms"] == [200.0, None]  # the failed call has no first token
    assert backend["tokens_per_second"] == [20.0, None]  # 40 tokens over 2 s of generation; none after


def test_no_database_no_points(tmp_path: Path) -> None:
    assert task_series(MetricsDatabase.sqlite(tmp_path / "none.db"), since=SINCE, now=NOW)["series"]["t"] == []
    assert expert_series(MetricsDatabase.sqlite(tmp_path / "none.db"), since=SINCE, now=NOW) == {
        "bucket_seconds": 30.0,
        "t": [],
        "experts": {},
        "llm": {},
    }
