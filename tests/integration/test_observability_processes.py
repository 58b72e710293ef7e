"""Several processes observing into one home: every journal entry lands in its own day's file, no metrics row is lost.

Two real processes (``observer_process.py``) share a home and publish on clocks the test sets, across a UTC midnight:
first in a fixed interleaving (one of them rotates daily.md, the other still has yesterday's entries to write and then
crosses midnight itself), then both at once in bursts that straddle midnight.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

# Real child processes on one home (the slow suite, run by .ci/run).
pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("observer_process.py")
# Today's UTC midnight: metrics retention (30 days) would delete rows from a fixed date long past.
MIDNIGHT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


DAY1, DAY2, DAY3 = day_of(MIDNIGHT - 1), day_of(MIDNIGHT), day_of(MIDNIGHT + 86400)
HEADER = re.compile(r"^# vy-nexus research log — (\d{4}-\d\d-\d\d) \(UTC\)$")
ENTRY = re.compile(r"^- (\d\d:\d\d:\d\d) · \*\*observation\*\* · test — (\w+) (\S+)")


class Observer:
    def __init__(self, home: Path, name: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(home), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, command: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def done(self) -> None:
        """Wait for the answer to one command."""
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ok", "the observer process failed"

    def do(self, command: str) -> None:
        self.send(command)
        self.done()

    def close(self) -> int:
        """End the process (killed if it does not end by itself) and its pipes; its exit status. Never raises, so a
        failed test leaves no process or pipe behind to fail a later test with a ResourceWarning."""
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self.process.stdout.close()
        return status


def daily_entries(logs: Path) -> list[tuple[str, str, str]]:
    """(file's day, entry's time of day, writer + label) for every daily.md entry, archives included."""
    found = []
    for path in sorted([*logs.glob("archive/daily-*.md"), logs / "daily.md"]):
        lines = path.read_text(encoding="utf-8").splitlines()
        header = HEADER.match(lines[0])
        assert header is not None, f"{path.name} does not start with a day header"
        assert sum(1 for line in lines if HEADER.match(line)) == 1, f"{path.name} holds two days"
        for line in lines[1:]:
            entry = ENTRY.match(line)
            if entry is not None:
                found.append((header.group(1), entry.group(1), f"{entry.group(2)} {entry.group(3)}"))
    return found


def test_two_processes_across_midnight_file_every_entry_under_its_own_day(home: Path) -> None:
    first, second = Observer(home, "first"), Observer(home, "second")
    try:
        first.do(f"at {MIDNIGHT - 2} before-1")
        second.do(f"at {MIDNIGHT - 1.5} before-2")
        first.do("flush")
        second.do("flush")
        first.do(f"at {MIDNIGHT + 0.5} after-1")
        first.do("flush")  # first rotates daily.md to yesterday's archive
        second.do(f"at {MIDNIGHT - 0.5} late-2")
        second.do("flush")  # yesterday's entry, written after first rotated
        second.do(f"at {MIDNIGHT + 1} after-2")
        second.do("flush")  # second crosses midnight after first did
        first.do(f"at {MIDNIGHT + 2} after-3")
        first.do("flush")
        # Both at once, each burst straddling midnight (a day later, so the files rotate again meanwhile).
        burst_start = MIDNIGHT + 86400 - 0.25
        first.send(f"burst 400 {burst_start} 0.001")
        second.send(f"burst 400 {burst_start + 0.0005} 0.001")
        first.done()
        second.done()
        first.do("flush")
        second.do("flush")
    finally:
        statuses = [first.close(), second.close()]
    assert statuses == [0, 0]

    logs = home / "research_logs"
    entries = daily_entries(logs)
    labels = [label for _, _, label in entries]
    assert len(labels) == len(set(labels)) == 6 + 800  # every entry exactly once
    for day, clock, label in entries:
        name, tag = label.split()
        index = int(tag.removeprefix("burst-")) if tag.startswith("burst-") else None
        if index is None:
            expected = DAY1 if tag.startswith(("before", "late")) else DAY2
        else:
            offset = 0.0005 if name == "second" else 0.0
            when = burst_start + offset + index * 0.001
            expected = day_of(when)
        assert day == expected, f"{label} at {clock} was filed under {day}"
    assert {day for day, _, _ in entries} == {DAY1, DAY2, DAY3}

    structured = [json.loads(line) for line in (logs / "structured.jsonl").read_text().splitlines()]
    assert len(structured) == 806 and len({line["message"] for line in structured}) == 806

    with sqlite3.connect(home / "metrics" / "performance.db") as conn:
        rows = dict(conn.execute("SELECT expert_id, COUNT(*) FROM executions GROUP BY expert_id").fetchall())
    assert rows == {"first": 403, "second": 403}


def test_configure_prints_no_warning(home: Path) -> None:
    (home / "config.yaml").write_text("governance:\n  require_approval_for_destructive: false\n")
    command = [sys.executable, "-c", "from vy_nexus.interfaces.cli import main; main()"]
    done = subprocess.run(
        [*command, "--home", str(home), "configure", "logging.level", "debug", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "logging.level" in done.stdout
    result = CliRunner().invoke(app, ["--home", str(home), "configure", "logging.level"])
    assert result.exit_code == 0 and result.stdout.strip() == '"debug"'
