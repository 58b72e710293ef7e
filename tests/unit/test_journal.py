"""The journal writes both files with the right fields, filters by level, rotates, and repairs a torn tail."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vy_nexus.events import Event, EventBus
from vy_nexus.observability.batching import BatchWriter
from vy_nexus.observability.journal import Journal
from vy_nexus.observability.logquery import LogFilter, QueryStats, query

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DAY1 = datetime(2026, 3, 1, 23, 59, 58, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_both_files_hold_every_event_with_the_right_fields(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "logs")
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    bus.publish("task.received", "system", "task received: hi", task_id="t1", metadata={"type": "code"})
    bus.publish(
        "expert.failed",
        "coordinator",
        "code failed:\nboom",
        level="error",
        category="error",
        task_id="t1",
        expert_id="code",
        metadata={"error": "boom", "when": datetime(2026, 1, 1, tzinfo=UTC), "file": Path("/x/y")},
    )
    bus.publish("system.started", "system", "vy-nexus started", category="milestone", phase="boot")
    journal.write(seen)

    lines = read_lines(journal.structured_path)
    assert [line["kind"] for line in lines] == ["task.received", "expert.failed", "system.started"]
    first, failed, started = lines
    assert list(first)[:7] == ["timestamp", "level", "phase", "component", "kind", "category", "message"]
    assert ISO_UTC.match(str(first["timestamp"]))
    assert first["level"] == "info" and first["phase"] == "runtime" and first["component"] == "system"
    assert first["task_id"] == "t1" and "expert_id" not in first
    assert first["metadata"] == {"type": "code"}
    assert failed["level"] == "error" and failed["expert_id"] == "code"
    assert failed["metadata"] == {"error": "boom", "when": "2026-01-01T00:00:00+00:00", "file": "/x/y"}
    assert "task_id" not in started and started["phase"] == "boot"

    daily = journal.daily_path.read_text(encoding="utf-8").splitlines()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert daily[0] == f"# vy-nexus research log — {today} (UTC)"
    entries = [line for line in daily if line.startswith("- ")]
    assert len(entries) == 3
    assert "**observation** · system · task `t1` — task received: hi" in entries[0]
    assert "**error** · coordinator · **ERROR** · task `t1` · expert `code` — code failed: boom" in entries[1]
    assert '`{"error":"boom"' in entries[1]
    assert "**milestone** · system — vy-nexus started" in entries[2]
    assert re.match(r"^- \d\d:\d\d:\d\d · ", entries[0])


def test_the_journal_wants_its_level_and_above(tmp_path: Path) -> None:
    journal = Journal(tmp_path, level="warn")
    wanted = [journal.wants(Event("x.y", "test", "m", level=level)) for level in ("debug", "info", "warn", "error")]
    assert wanted == [False, False, True, True]


def test_daily_md_rotates_when_the_day_changes(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.write([Event("a", "test", "late on day one", timestamp=DAY1)])
    journal.write([Event("b", "test", "early on day two", timestamp=DAY2)])
    archived = tmp_path / "archive" / "daily-2026-03-01.md"
    assert archived.read_text().startswith("# vy-nexus research log — 2026-03-01 (UTC)")
    assert "late on day one" in archived.read_text() and "early on day two" not in archived.read_text()
    current = journal.daily_path.read_text()
    assert current.startswith("# vy-nexus research log — 2026-03-02 (UTC)") and "early on day two" in current
    # A new journal on the same directory keeps appending to day two's file, and rotates on day three.
    again = Journal(tmp_path)
    again.write([Event("c", "test", "still day two", timestamp=DAY2 + 60)])
    again.write([Event("d", "test", "day three", timestamp=DAY2 + 86400)])
    assert "still day two" in (tmp_path / "archive" / "daily-2026-03-02.md").read_text()
    assert "day three" in journal.daily_path.read_text()


def test_one_batch_across_midnight_and_late_entries_land_in_their_own_day(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.write(
        [
            Event("a", "test", "day one", timestamp=DAY1),
            Event("b", "test", "day two", timestamp=DAY2),
            Event("c", "test", "day one, late", timestamp=DAY1 + 1),  # a batch is not sorted by time
        ]
    )
    journal.write([Event("d", "test", "day one, later still", timestamp=DAY1 + 1.5)])
    journal.write([Event("e", "test", "a day with no file yet", timestamp=DAY1 - 86400)])
    day1 = (tmp_path / "archive" / "daily-2026-03-01.md").read_text()
    day2 = journal.daily_path.read_text()
    assert day1.count("# vy-nexus research log — 2026-03-01") == 1
    assert "— day one\n" in day1
    assert "day one, late" in day1 and "day one, later still" in day1 and "day two" not in day1
    assert day2.startswith("# vy-nexus research log — 2026-03-02") and "day one" not in day2
    day0 = (tmp_path / "archive" / "daily-2026-02-28.md").read_text()
    assert day0.startswith("# vy-nexus research log — 2026-02-28 (UTC)") and "a day with no file yet" in day0


def test_daily_md_rotates_past_the_size_limit(tmp_path: Path) -> None:
    journal = Journal(tmp_path, daily_max_bytes=1024)
    journal.write([Event("a", "test", f"entry {i:02d} " + "x" * 60, timestamp=DAY1 - 100 + i) for i in range(30)])
    journal.write([Event("a", "test", f"entry {i:02d} " + "x" * 60, timestamp=DAY1 - 100 + i) for i in range(30, 40)])
    archives = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert {"daily-2026-03-01.md", "daily-2026-03-01.1.md"} <= set(archives)
    files = [tmp_path / "archive" / name for name in archives] + [journal.daily_path]
    assert all(f.stat().st_size <= 1024 + 200 for f in files)
    text = "".join(f.read_text() for f in files)
    assert all(f"entry {i:02d}" in text for i in range(40))


def test_a_torn_last_line_stays_one_skipped_line(tmp_path: Path) -> None:
    path = tmp_path / "structured.jsonl"
    path.write_bytes(b'{"timestamp":"2026-03-01T00:00:00.000000Z","level":"info"}\n{"timestamp":"2026-03-0')
    stats = QueryStats()
    assert len(list(query(path, LogFilter(), stats))) == 1
    assert stats.partial_tail == len(b'{"timestamp":"2026-03-0')
    journal = Journal(tmp_path)
    journal.write([Event("after.crash", "test", "written after the crash")])
    stats = QueryStats()
    entries = list(query(path, LogFilter(), stats))
    assert [e.record.get("kind") for e in entries] == [None, "after.crash"]
    assert stats.malformed == 1 and stats.partial_tail == 0


def test_batch_writer_flush_stop_and_drops() -> None:
    written: list[list[int]] = []
    writer: BatchWriter[int] = BatchWriter(lambda batch: written.append(list(batch)), name="t", batch_size=3)
    for i in range(7):
        writer.offer(i)
    assert writer.flush()  # no thread: drained here
    assert written == [[0, 1, 2], [3, 4, 5], [6]]
    writer.start()
    writer.offer(7)
    assert writer.flush(timeout=5)
    assert written[-1] == [7] and writer.written == 8
    writer.stop()
    writer.stop()  # twice is fine
    assert not writer.running
    small: BatchWriter[int] = BatchWriter(lambda batch: None, name="s", max_pending=2)
    for i in range(5):
        small.offer(i)
    assert small.pending == 2 and small.dropped == 3


def test_batch_writer_survives_a_failing_sink(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[Sequence[int]] = []

    def sink(batch: Sequence[int]) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise OSError("disk full")

    writer: BatchWriter[int] = BatchWriter(sink, name="failing", batch_size=1, interval=0.01)
    writer.start()
    writer.offer(1)
    writer.offer(2)
    assert writer.flush(timeout=5)
    writer.stop()
    assert writer.failed_batches == 1 and writer.written == 1
    assert "writing a batch of 1 failed" in caplog.text


def test_batch_writer_thread_writes_on_its_interval() -> None:
    written: list[int] = []
    writer: BatchWriter[int] = BatchWriter(written.extend, name="t", interval=0.02)
    writer.start()
    writer.start()  # idempotent
    writer.offer(1)
    deadline = time.monotonic() + 5
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == [1]  # no flush() asked for it: the thread did it on its own
    writer.stop()
    assert not writer.running


def test_batch_writer_in_a_forked_child_writes_only_the_childs_items(tmp_path: Path) -> None:
    out = tmp_path / "child.txt"

    def sink(batch: Sequence[str]) -> None:
        with out.open("a") as handle:
            handle.write("".join(batch))

    writer: BatchWriter[str] = BatchWriter(sink, name="fork", interval=60)
    writer.start()
    writer.offer("parent ")  # queued in the parent when a prefork pool forks
    with writer._drain_lock:  # forked while the parent's thread was writing
        pid = os.fork()
    if pid == 0:  # the child (a Celery prefork worker, say)
        try:
            writer.offer("child")
            writer.flush(timeout=5)
            writer.stop()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0 and out.read_text() == "child"
    writer.stop()
    assert out.read_text() == "childparent "
