"""Observability end to end: a real VyNexus writes the journal and metrics; the CLI reads them back."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from vy_nexus.config import Settings
from vy_nexus.errors import ExpertExecutionError
from vy_nexus.events import Event
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.interfaces.cli import app
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.signals import publish_llm_completed
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

runner = CliRunner()


class BrokenExpert(BaseExpert):
    id = "broken"
    name = "Broken"
    capabilities = ("explode",)

    async def execute(self, task: Task) -> ExpertOutput:
        raise ExpertExecutionError("kaboom", expert_id=self.id)


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def run_workload(settings: Settings) -> list[str]:
    """Three good tasks, one failing, one LLM call; returns the task ids."""
    tasks = [
        Task(description="fix this python code", type="code"),
        Task(description="fix this python code", type="code"),  # same text: a routing cache hit
        Task(description="write an essay about rivers", type="writing"),
        Task(description="explode please", type="code", context={"experts": ["broken"]}),
    ]
    with VyNexus(settings) as system:
        system.register(BrokenExpert(), source="test")
        for task in tasks:
            system.run(task)
        publish_llm_completed(
            system.events,
            provider="embedded",
            model="smollm2",
            duration_ms=120.0,
            input_tokens=9,
            output_tokens=3,
            time_to_first_token_ms=42.0,
        )
    return [task.id for task in tasks]


def test_a_run_leaves_journal_and_metrics_behind(settings: Settings) -> None:
    task_ids = run_workload(settings)
    lines = [json.loads(line) for line in (settings.logs_dir / "structured.jsonl").read_text().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "system.started" and kinds[-1] == "system.stopped"
    for kind in ("task.routed", "expert.finished", "expert.failed"):
        assert kind in kinds
    # Every task's routine steps are debug: at the default level the journal keeps decisions and outcomes.
    assert not {"task.received", "expert.started", "task.governed"} & set(kinds)
    assert kinds.count("task.aggregated") == 4 and "llm.completed" in kinds
    assert all({"timestamp", "level", "phase", "component", "message", "metadata"} <= set(line) for line in lines)
    failed = next(line for line in lines if line["kind"] == "expert.failed")
    assert failed["level"] == "error" and failed["expert_id"] == "broken" and failed["task_id"] == task_ids[3]
    daily = (settings.logs_dir / "daily.md").read_text()
    for category in ("milestone", "decision", "observation", "error", "thought"):
        assert f"**{category}**" in daily

    with sqlite3.connect(settings.metrics_db) as conn:
        executions = conn.execute("SELECT task_id, expert_id, success FROM executions ORDER BY id").fetchall()
        assert [(t, s) for t, _, s in executions] == [
            (task_ids[0], 1),
            (task_ids[1], 1),
            (task_ids[2], 1),
            (task_ids[3], 0),
        ]
        assert executions[3][1] == "broken"
        routing = conn.execute("SELECT task_id, cache_hit FROM routing ORDER BY id").fetchall()
        assert routing == [(task_ids[0], 0), (task_ids[1], 1), (task_ids[2], 0), (task_ids[3], 0)]
        assert conn.execute("SELECT COUNT(*) FROM system").fetchone()[0] >= 1
        counted = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        parts = sum(
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("tasks", "executions", "routing", "system", "llm")
        )
        assert counted == parts >= 4 + 4 + 4 + 1 + 1


def test_the_routine_steps_of_each_task_are_journaled_at_debug(settings: Settings) -> None:
    verbose = replace(settings, logging=replace(settings.logging, level="debug"))
    run_workload(verbose)
    lines = [json.loads(line) for line in (settings.logs_dir / "structured.jsonl").read_text().splitlines()]
    levels = {line["kind"]: line["level"] for line in reversed(lines)}  # each kind's first entry
    assert levels["task.received"] == levels["expert.started"] == levels["task.governed"] == "debug"
    assert levels["task.routed"] == levels["task.aggregated"] == "info"


def test_observe_false_writes_nothing(settings: Settings) -> None:
    with VyNexus(settings, observe=False) as system:
        assert system.observability is None
        system.run(Task(description="fix this python code"))
    assert not settings.logs_dir.exists() and not settings.metrics_db.exists()


def test_metrics_disabled_keeps_the_journal(home: Path, settings: Settings) -> None:
    disabled = replace(settings, metrics=replace(settings.metrics, enabled=False))
    with VyNexus(disabled) as system:
        system.run(Task(description="fix this python code"))
    assert (disabled.logs_dir / "structured.jsonl").exists() and not disabled.metrics_db.exists()


def test_observability_flush_and_close(settings: Settings) -> None:
    system = VyNexus(settings)
    observability = system.observability
    assert observability is not None
    observability.start()
    system.run(Task(description="fix this python code"))
    assert observability.flush(timeout=5)
    assert observability.backlog() == 0
    with sqlite3.connect(settings.metrics_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM routing").fetchone() == (1,)
    observability.close()
    system.run(Task(description="fix that python code"))  # no longer listening
    observability.flush()
    with sqlite3.connect(settings.metrics_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM routing").fetchone() == (1,)


def exposition_value(text: bytes, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_exposition_counts_what_every_process_on_the_home_recorded_since_start(settings: Settings) -> None:
    with VyNexus(settings) as earlier:
        earlier.run(Task(description="fix this python code"))  # before the server started: not counted
    other_process = MetricsCollector(MetricsDatabase.for_settings(settings))
    with VyNexus(settings) as server:
        assert server.observability is not None
        server.run(Task(description="fix this python code please"))
        # A worker on the same home records an execution with one retry.
        meta = {"duration_ms": 5.0, "success": True, "task_type": "code", "attempts": 2}
        other_process.write([Event("expert.finished", "worker", "", task_id="w1", expert_id="remote", metadata=meta)])
        server.observability.flush()
        text = server.observability.exposition()
        assert exposition_value(text, "vy_nexus_tasks_total", outcome="success") == 1
        assert exposition_value(text, "vy_nexus_expert_executions_total", expert_id="code") == 1
        assert exposition_value(text, "vy_nexus_expert_executions_total", expert_id="remote") == 1
        assert exposition_value(text, "vy_nexus_expert_retries_total", expert_id="remote") == 1
        server.run(Task(description="fix that python code"))
        server.observability.flush()
        again = server.observability.exposition()  # reads only the new rows, adds them
        assert exposition_value(again, "vy_nexus_tasks_total", outcome="success") == 2
        assert exposition_value(again, "vy_nexus_expert_executions_total", expert_id="remote") == 1
    other_process.close()


def test_astop_flushes(settings: Settings) -> None:
    async def scenario() -> None:
        system = VyNexus(settings)
        system.start()
        await system.submit(Task(description="fix this python code"))
        await system.astop("test")

    asyncio.run(scenario())
    assert '"kind":"system.stopped"' in (settings.logs_dir / "structured.jsonl").read_text()


def test_cli_logs_filters_and_formats(home: Path, settings: Settings) -> None:
    task_ids = run_workload(settings)
    code, out, _ = invoke(home, "logs")
    assert code == 0 and "vy-nexus started" in out and len(out.splitlines()) > 10
    code, out, _ = invoke(home, "logs", "--level", "error", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["level"] == "error" for r in records)
    code, out, _ = invoke(home, "logs", "--task", task_ids[2], "--component", "gating", "--json")
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["task.routed"]
    code, out, _ = invoke(home, "logs", "--grep", "KABOOM", "--limit", "1")
    assert len(out.splitlines()) == 1 and "kaboom" in out
    code, out, _ = invoke(home, "logs", "--since", "1h", "--until", "2000-01-01")
    assert code == 0 and out == ""
    code, _, err = invoke(home, "logs", "--since", "last tuesday")
    assert code == 2 and "cannot read the time 'last tuesday'" in err
    code, _, err = invoke(home, "logs", "--level", "loud")
    assert code == 2 and "unknown log level" in err
    with (settings.logs_dir / "structured.jsonl").open("a") as handle:
        handle.write('{"timestamp":"2026-')
    code, out, err = invoke(home, "logs", "--component", "system")
    assert code == 0 and "partial last line (19 bytes)" in err


def test_cli_logs_follow_stops_at_the_limit(home: Path, settings: Settings) -> None:
    run_workload(settings)
    code, out, _ = invoke(home, "logs", "--follow", "--limit", "2", "--component", "gating")
    assert code == 0 and len(out.splitlines()) == 2 and "routed to" in out


def test_cli_logs_without_a_journal(home: Path) -> None:
    code, out, err = invoke(home, "logs")
    assert code == 0 and out == "" and "no journal yet" in err


def test_cli_metrics_report_export_prometheus(home: Path, settings: Settings, tmp_path: Path) -> None:
    run_workload(settings)
    code, out, _ = invoke(home, "metrics", "report", "--json")
    assert code == 0
    report = json.loads(out)
    broken = next(g for g in report["experts"] if g["group"]["expert_id"] == "broken")
    assert broken["stats"]["count"] == 1 and broken["stats"]["success_rate"] == 0.0
    assert report["routing"]["decisions"] == 4 and report["routing"]["cache_hit_rate"] == 0.25
    assert report["llm"][0]["group"] == {"provider": "embedded", "model": "smollm2"}
    assert report["llm"][0]["ttft_p50_ms"] == 42.0 and report["llm"][0]["ttft_p95_ms"] == 42.0
    code, out, _ = invoke(home, "metrics", "report", "--expert", "broken")
    assert code == 0 and "Experts by task type" in out and "Routing" in out
    assert "TTFT" in out and "42.00" in out
    # At 80 columns a table too wide for the terminal is one line of labels and name=value pairs per row (rich cut
    # "provider" to "provid…" and split headers over three lines).
    narrow = runner.invoke(app, ["--home", str(home), "metrics", "report"], env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "…" not in narrow
    assert re.search(r"embedded / smollm2 +count=1  success=100\.0%  p50_ms=120\.00", narrow)
    assert "TTFT_p50_ms=42.00" in narrow
    code, out, _ = invoke(home, "metrics", "export", "--table", "routing")
    assert code == 0 and out.splitlines()[0].startswith("id,task_id,timestamp,experts") and len(out.splitlines()) == 5
    target = tmp_path / "exec.jsonl"
    code, _, err = invoke(home, "metrics", "export", "--format", "json", "-o", str(target))
    assert code == 0 and "4 rows" in err and len(target.read_text().splitlines()) == 4
    code, _, err = invoke(home, "metrics", "export", "--format", "xml")
    assert code == 2 and "unknown export format" in err
    code, out, _ = invoke(home, "metrics", "prometheus")
    assert code == 0
    families = {family.name: family for family in text_string_to_metric_families(out)}
    assert {
        "vy_nexus_expert_duration_seconds",
        "vy_nexus_routing_latency_seconds",
        "gen_ai_client_operation_duration_seconds",
    } <= set(families)
    hits = [s.value for s in families["vy_nexus_routing_cache_hits"].samples if s.name.endswith("_total")]
    assert hits == [1.0]


def test_cli_metrics_report_with_no_data(home: Path) -> None:
    code, out, _ = invoke(home, "metrics", "report")
    assert code == 0 and "no metrics recorded yet" in out


def test_configure_is_journaled(home: Path) -> None:
    # Approval of config changes is governance's business, not this test's.
    (home / "config.yaml").write_text("governance:\n  require_approval_for_destructive: false\n")
    code, _, _ = invoke(home, "configure", "routing.cache.ttl_seconds", "600", "--yes")
    assert code == 0
    lines = [json.loads(line) for line in (home / "research_logs" / "structured.jsonl").read_text().splitlines()]
    changed = [line for line in lines if line["kind"] == "config.changed"]
    assert len(changed) == 1
    assert changed[0]["metadata"] == {
        "key": "routing.cache.ttl_seconds",
        "previous": 300.0,
        "value": 600,
        "source": "cli",
    }
    assert changed[0]["category"] == "decision"
    assert "config.changed" not in (home / "research_logs" / "daily.md").read_text()  # people see the message
    assert "routing.cache.ttl_seconds changed from 300.0 to 600" in (home / "research_logs" / "daily.md").read_text()
