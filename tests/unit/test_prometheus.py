"""The Prometheus exposition, read back with prometheus_client's own parser."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from vy_nexus.events import Event, EventBus
from vy_nexus.observability.metrics import MetricsCollector, SystemSample
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.prometheus import PrometheusMetrics
from vy_nexus.observability.sampler import SystemSampler
from vy_nexus.observability.signals import publish_llm_completed


def samples(metrics: PrometheusMetrics) -> dict[str, list[Sample]]:
    parsed: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            parsed.setdefault(sample.name, []).append(sample)
    return parsed


def value(parsed: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matches = [s.value for s in parsed.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, parsed.get(name))
    return matches[0]


def flow_events() -> list[Event]:
    events = []
    for i, (duration, ok, hit) in enumerate([(4.0, True, False), (40.0, True, True), (400.0, False, False)]):
        meta = {"experts": ["code"], "strategy": "keyword", "cache_hit": hit, "latency_ms": 0.3}
        events.append(Event("task.routed", "gating", "", task_id=f"t{i}", metadata=meta))
        kind = "expert.finished" if ok else "expert.failed"
        meta2 = {"duration_ms": duration, "success": ok, "task_type": "code"}
        events.append(Event(kind, "coordinator", "", task_id=f"t{i}", expert_id="code", metadata=meta2))
        meta3 = {"duration_ms": duration + 1, "success": ok, "task_type": "code"}
        events.append(Event("task.aggregated", "coordinator", "", task_id=f"t{i}", metadata=meta3))
    events.append(Event("expert.retry", "coordinator", "", expert_id="code"))
    return events


def test_exposition_parses_back_with_the_right_numbers() -> None:
    metrics = PrometheusMetrics()
    for event in flow_events():
        metrics(event)
    bus = EventBus()
    bus.subscribe(metrics)
    publish_llm_completed(
        bus, provider="embedded", model="smollm2", duration_ms=250.0, input_tokens=30, output_tokens=7
    )
    publish_llm_completed(
        bus, provider="ollama", model="m", duration_ms=3.0, error="down", error_type="ConnectionError"
    )
    parsed = samples(metrics)

    assert value(parsed, "vy_nexus_expert_duration_seconds_count", expert_id="code", task_type="code") == 3
    assert value(parsed, "vy_nexus_expert_duration_seconds_sum", expert_id="code") == 0.444
    assert value(parsed, "vy_nexus_expert_duration_seconds_bucket", expert_id="code", le="0.005") == 1
    assert value(parsed, "vy_nexus_expert_duration_seconds_bucket", expert_id="code", le="0.05") == 2
    assert value(parsed, "vy_nexus_expert_executions_total", expert_id="code", outcome="success") == 2
    assert value(parsed, "vy_nexus_expert_executions_total", expert_id="code", outcome="failure") == 1
    assert value(parsed, "vy_nexus_tasks_total", task_type="code", outcome="failure") == 1
    assert value(parsed, "vy_nexus_task_duration_seconds_count", task_type="code", outcome="success") == 2
    assert value(parsed, "vy_nexus_routing_latency_seconds_count", strategy="keyword") == 3
    assert value(parsed, "vy_nexus_routing_cache_hits_total") == 1
    assert value(parsed, "vy_nexus_routing_cache_misses_total") == 2
    assert value(parsed, "vy_nexus_expert_retries_total", expert_id="code") == 1

    genai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "embedded", "gen_ai_request_model": "smollm2"}
    assert value(parsed, "gen_ai_client_operation_duration_seconds_sum", **genai, error_type="") == 0.25
    assert value(parsed, "gen_ai_client_operation_duration_seconds_count", error_type="ConnectionError") == 1
    assert value(parsed, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="input") == 30
    assert value(parsed, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="output") == 7
    assert value(parsed, "gen_ai_client_token_usage_bucket", **genai, gen_ai_token_type="output", le="16.0") == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first(Event("expert.retry", "c", "", expert_id="x"))
    assert value(samples(first), "vy_nexus_expert_retries_total", expert_id="x") == 1
    assert "vy_nexus_expert_retries_total" not in samples(second)
    assert REGISTRY.get_sample_value("vy_nexus_expert_retries_total", {"expert_id": "x"}) is None
    assert first.content_type.startswith("text/plain")


def test_replay_reproduces_what_was_recorded_live(tmp_path: Path) -> None:
    db = MetricsDatabase.sqlite(tmp_path / "performance.db")
    live = PrometheusMetrics()
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    publish_llm_completed(
        bus, provider="embedded", model="smollm2", duration_ms=250.0, input_tokens=30, output_tokens=7
    )
    events = flow_events() + seen
    for event in events:
        live(event)
    collector = MetricsCollector(db)
    collector.write(events)
    collector.close()
    replayed = PrometheusMetrics()
    assert replayed.replay(db) == 10  # 9 flow rows + 1 LLM (retries are not stored)
    names = (
        "vy_nexus_expert_duration_seconds_count",
        "vy_nexus_task_duration_seconds_count",
        "vy_nexus_routing_latency_seconds_count",
        "vy_nexus_routing_cache_hits_total",
        "gen_ai_client_token_usage_count",
    )
    live_samples, replayed_samples = samples(live), samples(replayed)
    for name in names:
        assert sorted(s.value for s in live_samples[name]) == sorted(s.value for s in replayed_samples[name]), name
    assert PrometheusMetrics().replay(MetricsDatabase.sqlite(tmp_path / "absent.db")) == 0
    assert replayed.replay(db, since=time.time() + 60) == 0


def test_catch_up_records_only_new_rows_even_after_retention_emptied_a_table(tmp_path: Path) -> None:
    path = tmp_path / "performance.db"
    db = MetricsDatabase.sqlite(path)
    assert PrometheusMetrics().catch_up(db) == 0  # no database yet
    collector = MetricsCollector(db)
    collector.write(flow_events())
    metrics = PrometheusMetrics()
    metrics.skip_recorded(db)
    assert metrics.catch_up(db) == 0
    collector.write(flow_events()[:3])
    assert metrics.catch_up(db) == 3 and metrics.catch_up(db) == 0
    with sqlite3.connect(path) as conn:
        for table in ("tasks", "executions", "routing"):
            conn.execute(f"DELETE FROM {table}")  # as retention does to rows older than retention_days
    collector.write(flow_events()[:3])  # row ids start again from 1
    assert metrics.catch_up(db) == 3
    collector.close()
    assert value(samples(metrics), "vy_nexus_routing_latency_seconds_count", strategy="keyword") == 2


def test_system_sampler_records_periodically_and_on_stop(tmp_path: Path) -> None:
    got: list[SystemSample] = []
    sampler = SystemSampler(got.append, interval=0.02, disk_path=tmp_path / "not" / "yet", queue_depth=lambda: 7)
    sampler.start()
    sampler.start()  # idempotent
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    sampler.stop()
    assert len(got) >= 3
    last = got[-1]
    assert last.queue_depth == 7 and last.rss_bytes is not None and last.rss_bytes > 0
    assert last.disk_percent is not None and 0 <= last.disk_percent <= 100
    assert last.memory_percent is not None and last.cpu_percent is not None
