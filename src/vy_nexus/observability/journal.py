"""The journal: every event at or above ``logging.level``, for people (daily.md) and machines (structured.jsonl).

A ``Journal`` is a sink: ``write(events)`` renders a batch and appends it to both files, one ``write`` each, then
``flush`` + ``fsync`` (``Observability`` calls it from its writer thread, never from the flow). A crash therefore
loses at most the batch being written; should a process die inside a ``write``, the next batch first ends the torn
line with a newline, so the damage stays one unreadable line (which the log reader skips and reports) instead of
corrupting the next entry.

Several processes may journal into one home at once (a server, workers, ``pulse --every``, CLI runs). Nothing about
the files is cached between batches: each batch takes an inter-process lock (``research_logs/.journal.lock``),
reads daily.md's header and size afresh, and files every entry under the UTC day of *its own* time stamp:

* an entry of the current file's day is appended to daily.md;
* an entry of a later day rotates first: daily.md moves to ``research_logs/archive/daily-<its day>.md``
  (``daily-<day>.1.md``, ... when that name is taken) and a new daily.md with the new day's header starts;
* an entry of an earlier day (a process that was still writing yesterday's entries when another had rotated)
  goes to that day's newest archive file;
* past ``logging.daily_max_bytes`` daily.md rotates under its own day.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path

import filelock

from vy_nexus.events import Event, Level
from vy_nexus.observability.journal_format import (
    TimestampFormatter,
    markdown_header,
    parse_markdown_header,
    render,
)
from vy_nexus.observability.timeutil import utc_day

LEVELS: tuple[Level, ...] = ("debug", "info", "warn", "error")

DAILY_FILENAME = "daily.md"
STRUCTURED_FILENAME = "structured.jsonl"
ARCHIVE_DIRNAME = "archive"
LOCK_FILENAME = ".journal.lock"

LOCK_TIMEOUT_SECONDS = 30.0
"""How long a batch waits for another process's batch; past it the batch fails (and is reported) rather than hang
the writer thread behind a stuck process."""


def levels_at_or_above(level: Level) -> frozenset[str]:
    return frozenset(LEVELS[LEVELS.index(level) :])


def _append(fd: int, data: bytes) -> None:
    """Append all of ``data`` to an ``O_APPEND`` descriptor, then fsync."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _open_append(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)


def _ends_torn(fd: int) -> bool:
    """True when the file is not empty and its last byte is not a newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


class Journal:
    """Appends events to ``<logs_dir>/daily.md`` and ``<logs_dir>/structured.jsonl``; safe across processes."""

    def __init__(self, logs_dir: Path, *, level: Level = "info", daily_max_bytes: int = 5 * 1024 * 1024) -> None:
        self.logs_dir = logs_dir
        self.daily_path = logs_dir / DAILY_FILENAME
        self.structured_path = logs_dir / STRUCTURED_FILENAME
        self.archive_dir = logs_dir / ARCHIVE_DIRNAME
        self.daily_max_bytes = daily_max_bytes
        self.levels = levels_at_or_above(level)
        self._lock = filelock.FileLock(str(logs_dir / LOCK_FILENAME), timeout=LOCK_TIMEOUT_SECONDS)
        self._format_time = TimestampFormatter()

    def wants(self, event: Event) -> bool:
        return event.level in self.levels

    def write(self, events: Sequence[Event]) -> None:
        """Append ``events`` to both files now, in the calling thread. Events are not filtered here: see ``wants``."""
        if not events:
            return
        stamps = [self._format_time(event.timestamp) for event in events]
        rendered = [render(event, stamp) for event, stamp in zip(events, stamps, strict=True)]
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._write_structured(b"".join(line for line, _ in rendered))
            for day, group in groupby(zip(stamps, rendered, strict=True), key=lambda pair: pair[0][:10]):
                self._write_markdown(day, [entry for _, (_, entry) in group])

    def _write_structured(self, lines: bytes) -> None:
        fd = _open_append(self.structured_path)
        try:
            _append(fd, b"\n" + lines if _ends_torn(fd) else lines)
        finally:
            os.close(fd)

    def _write_markdown(self, day: str, entries: list[bytes]) -> None:
        """Append one day's entries to the file that day belongs in (the caller holds the lock)."""
        current_day, size = self._daily_state()
        if current_day is not None and day < current_day:
            self._append_late(day, b"".join(entries))
            return
        if current_day is not None and day > current_day:
            self._rotate(current_day, day)
            size = len(markdown_header(day))
        elif current_day is None:
            self._start_daily(day)
            size = len(markdown_header(day))
        for chunk in self._chunks(entries, size, len(markdown_header(day))):
            if chunk is None:  # past daily_max_bytes: start a new file for the same day
                self._rotate(day, day)
                continue
            self._append_daily(chunk)

    def _chunks(self, entries: list[bytes], size: int, header_size: int) -> Iterator[bytes | None]:
        """The entries as appendable chunks; None between two chunks where daily.md has to rotate for its size."""
        chunk: list[bytes] = []
        for entry in entries:
            if size >= self.daily_max_bytes:
                if chunk:
                    yield b"".join(chunk)
                    chunk = []
                yield None
                size = header_size
            chunk.append(entry)
            size += len(entry)
        if chunk:
            yield b"".join(chunk)

    def _daily_state(self) -> tuple[str | None, int]:
        """daily.md's day (from its header; its mtime's day for a file without one) and size; (None, 0) if absent."""
        try:
            fd = os.open(self.daily_path, os.O_RDONLY)
        except FileNotFoundError:
            return None, 0
        try:
            stat = os.fstat(fd)
            first = os.pread(fd, 256, 0).split(b"\n", 1)[0].decode("utf-8", "replace")
        except OSError as exc:  # a directory opens, but its read fails with no name in the error: add it
            raise OSError(exc.errno, exc.strerror, str(self.daily_path)) from exc
        finally:
            os.close(fd)
        return parse_markdown_header(first) or utc_day(stat.st_mtime), stat.st_size

    def _append_daily(self, data: bytes) -> None:
        fd = _open_append(self.daily_path)
        try:
            _append(fd, data)
        finally:
            os.close(fd)

    def _start_daily(self, day: str) -> None:
        self._append_daily(markdown_header(day))

    def _rotate(self, old_day: str, new_day: str) -> None:
        """Archive daily.md under ``old_day`` and start a new one for ``new_day``."""
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self.daily_path.replace(self._free_archive_name(old_day))
        self._start_daily(new_day)

    def _archive_names(self, day: str) -> Iterator[Path]:
        yield self.archive_dir / f"daily-{day}.md"
        index = 1
        while True:
            yield self.archive_dir / f"daily-{day}.{index}.md"
            index += 1

    def _free_archive_name(self, day: str) -> Path:
        return next(path for path in self._archive_names(day) if not path.exists())

    def _append_late(self, day: str, data: bytes) -> None:
        """Append an earlier day's entries to that day's newest archive file (a new one when there is none)."""
        newest: Path | None = None
        for path in self._archive_names(day):
            if not path.exists():
                break
            newest = path
        if newest is None:
            self.archive_dir.mkdir(parents=True, exist_ok=True)
            newest = self.archive_dir / f"daily-{day}.md"
            data = markdown_header(day) + data
        fd = _open_append(newest)
        try:
            _append(fd, data)
        finally:
            os.close(fd)
