"""Log queries: each filter, time ranges (with bisection), damaged lines, following a growing file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from vy_nexus.errors import ConfigError
from vy_nexus.observability.logquery import LogFilter, QueryStats, follow, query
from vy_nexus.observability.timeutil import iso_utc, parse_deadline, parse_time

START = 1_780_000_000.0  # 2026-05-28


def record(i: int, *, level: str = "info", component: str = "gating", task: str | None = None) -> str:
    data: dict[str, object] = {
        "timestamp": iso_utc(START + i),
        "level": level,
        "phase": "runtime",
        "component": component,
        "kind": "k",
        "category": "observation",
        "message": f"message number {i}",
    }
    if task is not None:
        data["task_id"] = task
    data["metadata"] = {"i": i}
    return json.dumps(data, separators=(",", ":")) + "\n"


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "structured.jsonl"
    levels = ("debug", "info", "warn", "error")
    components = ("system", "gating", "coordinator")
    path.write_text(
        "".join(record(i, level=levels[i % 4], component=components[i % 3], task=f"task-{i % 10}") for i in range(600))
    )
    return path


def messages(path: Path, flt: LogFilter, stats: QueryStats | None = None) -> list[int]:
    return [int(entry.message.rsplit(" ", 1)[1]) for entry in query(path, flt, stats)]


def test_no_filter_returns_everything_in_order(journal: Path) -> None:
    stats = QueryStats()
    assert messages(journal, LogFilter(), stats) == list(range(600))
    assert stats.lines == stats.matched == 600 and stats.malformed == 0 and stats.partial_tail == 0


def test_level_is_a_minimum(journal: Path) -> None:
    assert messages(journal, LogFilter(level="error")) == list(range(3, 600, 4))
    warn_up = messages(journal, LogFilter(level="warn"))
    assert warn_up == [i for i in range(600) if i % 4 >= 2]
    with pytest.raises(ConfigError, match="unknown log level"):
        LogFilter(level="loud")  # type: ignore[arg-type]


def test_component_task_and_grep(journal: Path) -> None:
    assert messages(journal, LogFilter(component="coordinator")) == list(range(2, 600, 3))
    assert messages(journal, LogFilter(task_id="task-7")) == list(range(7, 600, 10))
    assert messages(journal, LogFilter(grep="NUMBER 59")) == [59, *range(590, 600)]
    both = messages(journal, LogFilter(component="system", task_id="task-3", level="info"))
    assert both == [i for i in range(600) if i % 3 == 0 and i % 10 == 3 and i % 4 >= 1]


def test_time_range(journal: Path) -> None:
    assert messages(journal, LogFilter(since=START + 100, until=START + 104)) == [100, 101, 102, 103, 104]
    assert messages(journal, LogFilter(until=START + 2)) == [0, 1, 2]


def test_since_bisects_instead_of_reading_everything(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    total = 20_000
    with path.open("w") as handle:
        handle.writelines(record(i) for i in range(total))
    stats = QueryStats()
    found = messages(path, LogFilter(since=START + total - 10), stats)
    assert found == list(range(total - 10, total))
    assert stats.lines < total // 4  # started near the end (slack of 300 s plus one bisection block)


def test_malformed_lines_and_a_partial_tail_are_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "structured.jsonl"
    path.write_bytes(
        (record(0) + "not json\n" + "[1, 2]\n" + record(1)).encode() + b"\xff\xfe\n" + record(2)[:30].encode()
    )
    stats = QueryStats()
    assert messages(path, LogFilter(), stats) == [0, 1]
    assert stats.malformed == 3
    assert stats.partial_tail == 30


def test_missing_file_yields_nothing(tmp_path: Path) -> None:
    assert list(query(tmp_path / "absent.jsonl", LogFilter())) == []


def test_follow_sees_new_lines_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "structured.jsonl"
    path.write_text(record(0))
    seen: list[int] = []
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.05)
        with path.open("a") as handle:
            line = record(1, level="error")
            handle.write(line[:20])  # a line still being written is held back...
            handle.flush()
            time.sleep(0.05)
            handle.write(line[20:])  # ...until it is complete
            handle.write(record(2))
        time.sleep(0.05)
        path.unlink()  # rotation: a new file starts
        path.write_text(record(3, level="error"))

    thread = threading.Thread(target=writer)
    thread.start()
    for entry in follow(path, LogFilter(level="info"), poll_seconds=0.01, should_stop=done.is_set):
        seen.append(int(entry.message.rsplit(" ", 1)[1]))
        if len(seen) == 4:
            done.set()
    thread.join()
    assert seen == [0, 1, 2, 3]


def test_follow_waits_for_the_file_to_appear(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    stop_at = time.monotonic() + 5

    def writer() -> None:
        time.sleep(0.05)
        path.write_text(record(5))

    thread = threading.Thread(target=writer)
    thread.start()
    stats = QueryStats()
    entries = follow(path, LogFilter(), stats=stats, poll_seconds=0.01, should_stop=lambda: time.monotonic() > stop_at)
    first = next(entries)
    entries.close()
    thread.join()
    assert first.message == "message number 5" and stats.matched == 1


def test_follow_from_the_end_skips_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "structured.jsonl"
    path.write_text(record(0) + record(1))

    def writer() -> None:
        time.sleep(0.05)
        with path.open("a") as handle:
            handle.write(record(2))

    thread = threading.Thread(target=writer)
    thread.start()
    entries = follow(path, LogFilter(), poll_seconds=0.01, from_start=False)
    first = next(entries)
    entries.close()
    thread.join()
    assert first.message == "message number 2"


def test_follow_with_since_starts_near_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    total = 20_000
    with path.open("w") as handle:
        handle.writelines(record(i) for i in range(total))
    stats = QueryStats()
    entries = follow(path, LogFilter(since=START + total - 2), stats=stats, poll_seconds=0.01)
    assert [next(entries).message for _ in range(2)] == [f"message number {total - 2}", f"message number {total - 1}"]
    entries.close()
    assert stats.lines < total // 4


def test_parse_time_forms() -> None:
    now = 1_000_000.0
    assert parse_time("1h", now=now) == now - 3600
    assert parse_time("30m", now=now) == now - 1800
    assert parse_time("2d", now=now) == now - 172800
    assert parse_time("45s", now=now) == now - 45
    assert parse_time("1w", now=now) == now - 604800
    assert parse_time("2026-05-28T00:00:00Z") == parse_time("2026-05-28T00:00")
    assert parse_time("2026-05-28T02:00:00+02:00") == parse_time("2026-05-28")
    with pytest.raises(ConfigError, match="cannot read the time 'yesterday'"):
        parse_time("yesterday")


def test_parse_deadline_forms() -> None:
    from datetime import UTC, datetime

    now = 1_800_000_000.0
    assert parse_deadline("90s", now=now).timestamp() == now + 90
    assert parse_deadline("2h", now=now) == datetime.fromtimestamp(now + 7200, UTC)
    assert parse_deadline("2026-12-03T05:00") == datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
    assert parse_deadline("2026-12-03T05:00+01:00").utcoffset() is not None
    for bad in ("soon", "99999999999d", ""):
        with pytest.raises(ConfigError, match="cannot read the deadline"):
            parse_deadline(bad, now=now)
