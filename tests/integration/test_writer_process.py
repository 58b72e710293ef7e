"""The default writer: a real child process renders and writes the journal and metrics; the parent only queues.

Covers the protocol served in-process (``serve``), a real child behind ``VyNexus`` (files, rows, Prometheus text
parsed back, flush, restart), the child dying (fallback to threads, nothing after it lost), a child that cannot
start, and the parent dying (the child still writes everything it was sent).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from vy_nexus.config import Settings, load_settings
from vy_nexus.events import Event
from vy_nexus.interfaces.cli import app
from vy_nexus.observability.process_link import WriterProcessLink
from vy_nexus.observability.wire import CONFIG, DATA, EXPOSITION, FLUSH, encode_event, read_frame, write_frame
from vy_nexus.observability.writer_process import serve
from vy_nexus.observability.writers import WriterConfig
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


@pytest.fixture
def process_settings(home: Path) -> Settings:
    return load_settings(home, environ={"VY_NEXUS_LOGGING__WRITER": "process"})


def journal_kinds(settings: Settings) -> list[str]:
    path = settings.logs_dir / "structured.jsonl"
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()] if path.exists() else []


def count_rows(settings: Settings, table: str) -> int:
    with sqlite3.connect(settings.metrics_db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def routed(task_id: str) -> Event:
    metadata = {"experts": ["code"], "confidences": {"code": 0.9}, "strategy": "keyword", "latency_ms": 0.2}
    return Event("task.routed", "gating", "routed to code", category="decision", task_id=task_id, metadata=metadata)


def test_serve_answers_the_protocol(tmp_path: Path) -> None:
    config = WriterConfig(logs_dir=tmp_path / "logs", metrics_db=tmp_path / "metrics.db")
    requests = io.BytesIO()
    write_frame(requests, CONFIG, config.to_json())
    write_frame(requests, DATA, encode_event(routed("t1")) + encode_event(routed("t2")))
    write_frame(requests, DATA, b"not json\n")  # logged and skipped
    write_frame(requests, b"?", b"")  # unknown kind: ignored
    write_frame(requests, FLUSH, b"7")
    write_frame(requests, EXPOSITION, b"8")
    requests.seek(0)
    replies = io.BytesIO()
    assert serve(requests, replies) == 0
    replies.seek(0)
    assert read_frame(replies) == (FLUSH, b"7")
    kind, payload = read_frame(replies) or (b"", b"")
    number, _, text = payload.partition(b"\n")
    assert kind == EXPOSITION and number == b"8"
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert families["vy_nexus_routing_cache_misses"].samples[0].value == 2
    lines = (tmp_path / "logs" / "structured.jsonl").read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == ["t1", "t2"]
    with sqlite3.connect(tmp_path / "metrics.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM routing").fetchone() == (2,)


def test_serve_wants_a_config_first() -> None:
    requests = io.BytesIO()
    write_frame(requests, DATA, b"")
    requests.seek(0)
    assert serve(requests, io.BytesIO()) == 2
    assert serve(io.BytesIO(), io.BytesIO()) == 0  # an empty stream is a clean end


def test_a_system_writes_through_its_writer_process(process_settings: Settings) -> None:
    with VyNexus(process_settings) as system:
        observability = system.observability
        assert observability is not None
        link = observability.writers
        assert isinstance(link, WriterProcessLink)
        child = link.process_id
        assert child is not None and child != os.getpid()
        for text in ("fix this python code", "write an essay about rivers"):
            system.run(Task(description=text))
        assert observability.flush(timeout=10)
        assert observability.backlog() == 0
        assert count_rows(process_settings, "routing") == 2 and count_rows(process_settings, "executions") == 2
        families = {f.name: f for f in text_string_to_metric_families(observability.exposition().decode())}
        tasks = families["vy_nexus_tasks"].samples
        assert sum(s.value for s in tasks if s.name == "vy_nexus_tasks_total") == 2
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    kinds = journal_kinds(process_settings)
    assert kinds[0] == "system.started" and kinds[-1] == "system.stopped"
    assert kinds.count("task.aggregated") == 2
    assert "**decision** · gating" in (process_settings.logs_dir / "daily.md").read_text()
    assert count_rows(process_settings, "system") >= 1  # the sampler's last sample crossed the pipe too


def test_stop_then_start_runs_a_new_writer(process_settings: Settings) -> None:
    system = VyNexus(process_settings)
    observability = system.observability
    assert observability is not None
    link = observability.writers
    assert isinstance(link, WriterProcessLink)
    assert b"vy_nexus_tasks" in observability.exposition()  # before start: an empty registry
    system.start()
    first = link.process_id
    system.stop()
    assert link.process_id is None
    system.start()
    second = link.process_id
    system.run(Task(description="fix this python code"))
    system.stop()
    assert first is not None and second is not None and first != second
    assert journal_kinds(process_settings).count("system.started") == 2


def test_a_dead_writer_process_falls_back_to_threads(
    process_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with VyNexus(process_settings) as system:
        observability = system.observability
        assert observability is not None
        link = observability.writers
        assert isinstance(link, WriterProcessLink)
        system.run(Task(description="fix this python code"))
        assert observability.flush(timeout=10)
        pid = link.process_id
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(10)
        system.run(Task(description="write an essay about rivers"))
        with caplog.at_level(logging.WARNING):
            observability.flush(timeout=10)
            assert observability.flush(timeout=10)  # now through the fallback threads
        assert link.fallback is not None
        assert "writing the journal and metrics from this process instead" in caplog.text
        assert b"vy_nexus_tasks_total" in observability.exposition()
    assert count_rows(process_settings, "routing") == 2
    assert journal_kinds(process_settings)[-1] == "system.stopped"


def test_a_writer_that_cannot_start_falls_back_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = WriterConfig(logs_dir=tmp_path / "logs", metrics_db=tmp_path / "metrics.db")
    link = WriterProcessLink(config, command=(str(tmp_path / "no-such-python"),))
    with caplog.at_level(logging.WARNING):
        link.start()
    link(routed("t1"))
    assert link.flush(timeout=10)
    link.stop()
    assert "could not start the observability writer process" in caplog.text
    assert (tmp_path / "logs" / "structured.jsonl").read_text().count('"task_id":"t1"') == 1


def test_a_writer_that_exits_early_is_noticed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = WriterConfig(logs_dir=tmp_path / "logs", metrics_db=tmp_path / "metrics.db")
    link = WriterProcessLink(config, command=(sys.executable, "-c", "pass"))
    with caplog.at_level(logging.WARNING):
        link.start()
        pid = link.process_id
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(10)  # it is gone before the first request
        link(routed("t1"))
        link.flush(timeout=10)
        assert link.flush(timeout=10)
        link.stop()
    assert link.fallback is not None
    assert (tmp_path / "logs" / "structured.jsonl").read_text().count('"task_id":"t1"') == 1


def test_ctrl_c_is_not_for_the_writer_process(process_settings: Settings) -> None:
    with VyNexus(process_settings) as system:
        observability = system.observability
        assert observability is not None and isinstance(observability.writers, WriterProcessLink)
        pid = observability.writers.process_id
        assert pid is not None
        assert os.getpgid(pid) != os.getpgid(0)  # its own session: a terminal's Ctrl-C does not reach it
        assert observability.flush(timeout=10)  # an answer: it serves, so its SIGINT handler is in place
        os.kill(pid, signal.SIGINT)
        system.run(Task(description="fix this python code"))
        assert observability.flush(timeout=10)
        assert observability.writers.fallback is None
    assert journal_kinds(process_settings).count("task.aggregated") == 1


PARENT_THAT_DIES = textwrap.dedent(
    """
    import os, sys, time
    from vy_nexus.config import load_settings
    from vy_nexus.experts.base import BaseExpert, ExpertOutput
    from vy_nexus.system import VyNexus
    from vy_nexus.tasks import Task

    class Echo(BaseExpert):
        id = "echo"
        name = "Echo"
        capabilities = ("echo",)

        async def execute(self, task):
            return ExpertOutput(task.description, confidence=1.0)

    settings = load_settings(sys.argv[1], environ={"VY_NEXUS_LOGGING__WRITER": "process"})
    system = VyNexus(settings, register_builtins=False, load_plugins=False)
    system.register(Echo())
    system.start()
    for i in range(50):
        system.run(Task(description=f"echo {i}"))
    time.sleep(0.5)  # the link hands its outbox to the child every 0.1 s
    print(system.observability.writers.process_id, flush=True)
    os._exit(1)  # no stop, no flush
    """
)


@pytest.mark.slow  # a crash test: a whole second interpreter
def test_the_writer_process_outlives_a_dying_parent(process_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PARENT_THAT_DIES, str(process_settings.home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    child = int(result.stdout.strip())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(child)
    kinds = journal_kinds(process_settings)
    assert kinds.count("task.aggregated") == 50 and "system.stopped" not in kinds
    assert count_rows(process_settings, "tasks") == 50


def test_the_cli_writes_through_the_writer_process(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VY_NEXUS_LOGGING__WRITER", "process")
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(home), "run", "fix this python code"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["--home", str(home), "logs", "--component", "gating", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[0])["kind"] == "task.routed"
