"""Metrics and the journal on a real PostgreSQL (127.0.0.1:5432): the same code as on SQLite, shared by processes.

Each test gets a fresh database (the ``pg_url`` fixture) and skips, naming what to install, when no PostgreSQL
answers. The two-process test runs real ``vy-nexus`` commands from separate homes, as machines of a cluster would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vy_nexus.events import Event
from vy_nexus.observability.metrics import COLUMNS, MetricsCollector, SystemSample
from vy_nexus.observability.metrics_db import MetricsDatabase, insert_rows
from vy_nexus.observability.metrics_retention import apply_retention
from vy_nexus.observability.metrics_schema import SERVER_SCHEMA
from vy_nexus.observability.metricsquery import build_report, export_table
from vy_nexus.observability.prometheus import PrometheusMetrics

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cluster" / "cluster_experts.py"
CLI = Path(sys.executable).with_name("vy-nexus")


def finished(task: str, at: float, duration: float, **meta: object) -> Event:
    metadata = {"duration_ms": duration, "success": True, "task_type": "code", **meta}
    return Event("expert.finished", "coordinator", "", task_id=task, expert_id="code", timestamp=at, metadata=metadata)


def routed(task: str, at: float, *, cache_hit: bool) -> Event:
    metadata = {"experts": ["code"], "strategy": "keyword", "cache_hit": cache_hit, "latency_ms": 1.5}
    return Event("task.routed", "gating", "", task_id=task, timestamp=at, metadata=metadata)


@pytest.fixture
def database(pg_url: str) -> Iterator[MetricsDatabase]:
    metrics = MetricsDatabase(pg_url)
    try:
        yield metrics
    finally:
        metrics.close()


def test_metrics_on_postgresql_work_as_on_sqlite(database: MetricsDatabase, pg_url: str) -> None:
    collector = MetricsCollector(database, retention_days=30)
    now = time.time()
    old = now - 40 * 86400
    collector.write(
        [
            finished("t1", old, 100.0),
            finished("t2", old + 1, 300.0, worker="node-2:77"),
            finished("t3", now, 50.0, worker="node-2:77"),
            routed("t1", old, cache_hit=True),
            routed("t3", now, cache_hit=False),
            Event("expert.failed", "c", "", task_id="t4", expert_id="nul\x00", metadata={"error": "a\x00b"}),
            SystemSample(now, 12.0, 40.0, 5 * 2**32, 50.0, 10**12, 3),
        ]
    )
    with database.engine().connect() as conn:  # the tables live in their own schema, beside the task store's
        assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM {SERVER_SCHEMA}.metrics").scalar() == 7
    # Retention (the collector ran it on open, before these rows existed): roll up, then again with a larger max.
    assert apply_retention(database, 30, now=now) == 3
    collector.write([finished("t5", old + 2, 700.0)])
    assert apply_retention(database, 30, now=now) == 1
    with database.engine().connect() as conn:
        daily = conn.exec_driver_sql(
            f"SELECT expert_id, count, successes, total_ms, max_ms FROM {SERVER_SCHEMA}.executions_daily"
        ).all()
        assert [tuple(row) for row in daily] == [("code", 3, 3, 1100.0, 700.0)]
        assert conn.exec_driver_sql(f"SELECT count, cache_hits FROM {SERVER_SCHEMA}.routing_daily").one() == (1, 1)
    report = build_report(database)
    assert {g.group["expert_id"]: g.stats.count for g in report.experts} == {"code": 1, "nul\ufffd": 1}
    assert report.system is not None and report.system.rss_bytes_max == 5 * 2**32
    assert {p.process: p.expert_runs for p in report.processes}["node-2:77"] == 1
    assert report.database == MetricsDatabase(pg_url).label and "postgresql" in report.database
    out = io.StringIO()
    assert export_table(database, "executions", "json", out) == 2
    assert json.loads(out.getvalue().splitlines()[0])["error"] is None


def test_prometheus_catches_up_with_a_batch_that_commits_after_a_later_one(database: MetricsDatabase) -> None:
    engine = database.engine()
    metrics = PrometheusMetrics()
    metrics.skip_recorded(database)
    rows = [("t", "code", "code", time.time(), 1.0, 1, None, 1, "p:1")] * 3
    with engine.connect() as slow:
        slow.begin()
        insert_rows(slow, "executions", COLUMNS["executions"], rows)  # takes ids 1-3, not committed yet
        with engine.begin() as fast:
            insert_rows(fast, "executions", COLUMNS["executions"], rows)  # ids 4-6, committed first
        assert metrics.catch_up(database) == 3
        slow.commit()
    assert metrics.catch_up(database) == 3  # the late batch is found, once
    assert metrics.catch_up(database) == 0


def write_home(root: Path, name: str, store_url: str) -> Path:
    home = root / name
    (home / "experts").mkdir(parents=True)
    shutil.copy(FIXTURE, home / "experts" / FIXTURE.name)
    config = {"store": {"url": store_url}, "logging": {"flush_interval_seconds": 0.1}}
    (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return home


def vy(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VY_NEXUS_")}, "COLUMNS": "200"}
    env["VY_NEXUS_ROUTING__STRATEGY"] = "keyword"
    return subprocess.run(
        [str(CLI), "--home", str(home), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_two_processes_record_into_one_postgresql_and_the_cli_shows_both(pg_url: str, tmp_path: Path) -> None:
    """Two machines (two homes, nothing shared but the database) run a task each, at the same time; a third
    home's `vy-nexus metrics report` and `vy-nexus logs` see both."""
    marks = tmp_path / "marks"
    marks.mkdir()
    payload = tmp_path / "input.json"
    payload.write_text(json.dumps({"marks": str(marks)}), encoding="utf-8")
    homes = [write_home(tmp_path, f"machine-{n}", pg_url) for n in (1, 2)]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VY_NEXUS_")}}
    env["VY_NEXUS_ROUTING__STRATEGY"] = "keyword"
    runs = [
        subprocess.Popen(
            [str(CLI), "--home", str(home), "run", "alpha work", "--expert", expert, "--input", str(payload), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for home, expert in zip(homes, ("alpha", "beta"), strict=True)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    pids = {int((marks / expert).read_text().split()[0]) for expert in ("alpha", "beta")}
    assert len(pids) == 2

    viewer = write_home(tmp_path, "viewer", pg_url)
    shown = vy(viewer, "metrics", "report", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert sorted(group["group"]["expert_id"] for group in report["experts"]) == ["alpha", "beta"]
    assert sum(group["stats"]["count"] for group in report["tasks"]) == 2
    processes = {entry["process"].rsplit(":", 1)[1]: entry for entry in report["processes"]}
    assert {str(pid) for pid in pids} <= set(processes)
    assert all(processes[str(pid)]["expert_runs"] == 1 for pid in pids)
    table = vy(viewer, "metrics", "report")
    assert table.returncode == 0 and "Processes" in table.stdout
    assert all(f":{pid}" in table.stdout for pid in pids)

    logs = vy(viewer, "logs", "--component", "coordinator", "--json")
    assert logs.returncode == 0, logs.stderr
    entries = [json.loads(line) for line in logs.stdout.splitlines()]
    finished_by = {entry["expert_id"]: entry["process"] for entry in entries if entry["kind"] == "expert.finished"}
    assert sorted(finished_by) == ["alpha", "beta"]
    assert {process.rsplit(":", 1)[1] for process in finished_by.values()} == {str(pid) for pid in pids}
    human = vy(viewer, "logs", "--grep", "finished")
    assert all("process=" in line for line in human.stdout.splitlines()) and human.stdout.count("\n") >= 2
    local = vy(viewer, "logs", "--local")  # the viewer's own file: it ran nothing
    assert local.stdout == "" and "no journal yet" in local.stderr
