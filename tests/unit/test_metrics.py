"""The metrics collector's rows, the ``metrics`` view, retention, percentiles, the report and exports."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import socket
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from vy_nexus.errors import ConfigError
from vy_nexus.events import Event, EventBus
from vy_nexus.observability.metrics import MetricsCollector, SystemSample
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_retention import apply_retention
from vy_nexus.observability.metricsquery import build_report, export_table, percentile
from vy_nexus.observability.signals import publish_llm_completed


def routed(task: str, expert: str, confidence: float, *, cache_hit: bool = False, latency: float = 0.2) -> Event:
    return Event(
        "task.routed",
        "gating",
        "routed",
        task_id=task,
        metadata={
            "experts": [expert],
            "confidences": {expert: confidence},
            "strategy": "keyword",
            "cache_hit": cache_hit,
            "latency_ms": latency,
            "fallback": False,
        },
    )


def finished(task: str, expert: str, duration: float, *, ok: bool = True, task_type: str = "code") -> Event:
    meta: dict[str, object] = {"duration_ms": duration, "success": ok, "task_type": task_type, "attempts": 1}
    if not ok:
        meta["error"] = "boom"
    kind = "expert.finished" if ok else "expert.failed"
    return Event(kind, "coordinator", kind, task_id=task, expert_id=expert, metadata=meta)


def aggregated(task: str, duration: float, ok: bool = True) -> Event:
    meta = {"duration_ms": duration, "success": ok, "task_type": "code", "experts": ["code"], "method": "single"}
    return Event("task.aggregated", "coordinator", "done", task_id=task, metadata={**meta, "confidence": 0.9})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "metrics" / "performance.db"


def collector_for(db: Path, **options: float) -> MetricsCollector:
    return MetricsCollector(MetricsDatabase.sqlite(db), **options)


def test_rows_for_every_execution_and_routing_decision(db: Path) -> None:
    collector = collector_for(db)
    items: list[Event | SystemSample] = []
    for i in range(20):
        items += [
            routed(f"t{i}", "code", 0.9, cache_hit=i % 4 == 0),
            finished(f"t{i}", "code", 10.0 + i, ok=i % 5 != 0),
            aggregated(f"t{i}", 11.0 + i, ok=i % 5 != 0),
        ]
    items.append(Event("expert.started", "coordinator", "ignored"))  # not a metric
    assert not collector.wants(items[-1]) and collector.wants(items[0])
    items.append(SystemSample(time.time(), 12.5, 40.0, 1000, 50.0, 10**9, 3))
    collector.write(items)
    collector.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone() == (20,)
        assert conn.execute("SELECT COUNT(*) FROM routing").fetchone() == (20,)
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone() == (20,)
        assert conn.execute("SELECT COUNT(*) FROM system").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (61,)
        row = conn.execute(
            "SELECT task_id, expert_id, task_type, duration_ms, success, error, process FROM executions"
            " WHERE task_id='t5'"
        ).fetchone()
        assert row == ("t5", "code", "code", 15.0, 0, "boom", f"{socket.gethostname()}:{os.getpid()}")
        routing = conn.execute(
            "SELECT experts, top_expert, confidence, confidences, strategy, cache_hit, latency_ms FROM routing"
            " WHERE task_id='t4'"
        ).fetchone()
        assert routing == ('["code"]', "code", 0.9, '{"code":0.9}', "keyword", 1, 0.2)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_llm_events_become_rows(db: Path) -> None:
    collector = collector_for(db)
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    publish_llm_completed(
        bus,
        provider="embedded",
        model="smollm2",
        duration_ms=800.0,
        input_tokens=20,
        output_tokens=5,
        time_to_first_token_ms=95.5,
    )
    publish_llm_completed(bus, provider="ollama", model="m", duration_ms=5.0, error="connection refused")
    collector.write(seen)
    collector.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT provider, model, operation, input_tokens, output_tokens, error, ttft_ms FROM llm"
        ).fetchall()
        assert rows == [
            ("embedded", "smollm2", "chat", 20, 5, None, 95.5),
            ("ollama", "m", "chat", None, None, "connection refused", None),  # no token arrived: no TTFT
        ]


def test_the_report_gives_each_llm_backend_its_time_to_first_token(db: Path) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    for ttft in (40.0, 10.0, 30.0, 20.0):
        publish_llm_completed(
            bus, provider="ollama", model="qwen", duration_ms=200.0, output_tokens=8, time_to_first_token_ms=ttft
        )
    publish_llm_completed(bus, provider="ollama", model="qwen", duration_ms=3.0, error="refused")  # no token
    publish_llm_completed(bus, provider="embedded", model="smollm2", duration_ms=50.0, error="refused")
    collector = collector_for(db)
    collector.write(seen)
    collector.close()
    embedded, ollama = build_report(MetricsDatabase.sqlite(db)).llm
    assert ollama.group == {"provider": "ollama", "model": "qwen"} and ollama.stats.count == 5
    assert ollama.ttft_p50_ms == pytest.approx(25.0) and ollama.ttft_p95_ms == pytest.approx(38.5)
    assert np.isnan(embedded.ttft_p50_ms)
    shown = {
        (b["group"]["provider"], b["group"]["model"]): b
        for b in build_report(MetricsDatabase.sqlite(db)).as_dict()["llm"]
    }
    assert shown[("ollama", "qwen")]["ttft_p50_ms"] == pytest.approx(25.0)
    assert shown[("embedded", "smollm2")]["ttft_p50_ms"] is None


def test_retention_rolls_old_rows_up_and_deletes_them(db: Path) -> None:
    now = time.time()
    old = now - 40 * 86400
    collector = collector_for(db, retention_days=30)
    items: list[Event] = []
    for i, when in enumerate((old, old + 1, now)):
        items.append(
            Event(
                "expert.finished",
                "c",
                "",
                task_id=f"t{i}",
                expert_id="code",
                timestamp=when,
                metadata={"duration_ms": 100.0 * (i + 1), "success": True, "task_type": "code"},
            )
        )
        items.append(
            Event(
                "task.routed",
                "g",
                "",
                timestamp=when,
                metadata={"experts": ["code"], "strategy": "keyword", "cache_hit": i == 0, "latency_ms": 1.0},
            )
        )
    collector._last_retention = now  # as if retention had just run: this test runs it by hand
    collector.write(items)
    removed = apply_retention(collector.database, 30, now=now)
    assert removed == 4
    connection = sqlite3.connect(db)
    assert connection.execute("SELECT COUNT(*) FROM executions").fetchone() == (1,)
    day = time.strftime("%Y-%m-%d", time.gmtime(old))
    assert connection.execute(
        "SELECT day, expert_id, count, successes, total_ms, max_ms FROM executions_daily"
    ).fetchall() == [(day, "code", 2, 2, 300.0, 200.0)]
    assert connection.execute("SELECT count, cache_hits FROM routing_daily").fetchone() == (2, 1)
    assert apply_retention(collector.database, 30, now=now) == 0
    connection.close()
    collector.close()


def test_percentile_on_a_known_sample() -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(1).shuffle(values)
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    sample = [random.Random(2).lognormvariate(0, 1) for _ in range(997)]
    for q in (50, 90, 95, 99, 99.9):
        assert percentile(sample, q) == pytest.approx(float(np.percentile(sample, q)))
    assert np.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_report(db: Path) -> None:
    collector = collector_for(db)
    items: list[Event | SystemSample] = []
    for i in range(10):
        items += [
            routed(f"t{i}", "code", 0.05 + i / 10, cache_hit=i < 3, latency=float(i + 1)),
            finished(f"t{i}", "code", float(i + 1), ok=i != 9),
            finished(f"t{i}", "research", 100.0, task_type="research"),
            aggregated(f"t{i}", float(i + 2)),
        ]
    items.append(SystemSample(time.time(), 10.0, 40.0, 2000, 50.0, 123, 4))
    items.append(SystemSample(time.time() + 1, 30.0, 60.0, 1000, 55.0, 100, 1))
    collector.write(items)
    collector.close()
    report = build_report(MetricsDatabase.sqlite(db))
    code, research = report.experts
    assert code.group == {"expert_id": "code", "task_type": "code"}
    assert code.stats.count == 10 and code.stats.success_rate == pytest.approx(0.9)
    assert code.stats.p50_ms == pytest.approx(5.5) and code.stats.p99_ms == pytest.approx(9.91)
    assert research.group["expert_id"] == "research" and research.stats.p95_ms == 100.0
    assert report.tasks[0].stats.count == 10
    routing = report.routing
    assert routing is not None
    assert routing.decisions == 10 and routing.cache_hit_rate == pytest.approx(0.3)
    assert routing.latency_p50_ms == pytest.approx(5.5)
    assert [b["count"] for b in routing.confidence_histogram] == [1] * 10
    assert routing.strategies == {"keyword": 10}
    system = report.system
    assert system is not None and system.samples == 2 and system.cpu_percent_avg == pytest.approx(20.0)
    assert system.disk_free_bytes_last == 100 and system.queue_depth_max == 4
    only = build_report(MetricsDatabase.sqlite(db), expert="research")
    assert [g.group["expert_id"] for g in only.experts] == ["research"]
    assert build_report(MetricsDatabase.sqlite(db), since=time.time() + 3600).experts == []
    as_json = json.dumps(report.as_dict())  # NaN-free, serialisable
    assert '"success_rate": 0.9' in as_json
    empty = build_report(MetricsDatabase.sqlite(db.parent / "absent.db"))
    assert empty.experts == [] and empty.routing is None


def test_export_csv_and_json(db: Path) -> None:
    collector = collector_for(db)
    collector.write([finished(f"t{i}", "code", float(i)) for i in range(3)])
    collector.close()
    database = MetricsDatabase.sqlite(db)
    buffer = io.StringIO()
    assert export_table(database, "executions", "csv", buffer) == 3
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [r["task_id"] for r in rows] == ["t0", "t1", "t2"] and rows[2]["duration_ms"] == "2.0"
    buffer = io.StringIO()
    assert export_table(database, "executions", "json", buffer, since=time.time() + 60) == 0
    buffer = io.StringIO()
    export_table(database, "executions", "json", buffer)
    assert json.loads(buffer.getvalue().splitlines()[1])["task_id"] == "t1"
    with pytest.raises(ConfigError, match="unknown metrics table 'users'"):
        export_table(database, "users", "csv", buffer)
    with pytest.raises(ConfigError, match="unknown export format"):
        export_table(database, "llm", "xml", buffer)  # type: ignore[arg-type]
    assert export_table(MetricsDatabase.sqlite(db.parent / "absent.db"), "llm", "csv", buffer) == 0
