"""The journal: every event at or above ``logging.level``, for people (daily.md) and machines (structured.jsonl).

A ``Journal`` is an ``EventBus`` subscriber. Calling it only queues the event; a background ``BatchWriter`` turns each
batch into text and appends it to both files with one ``write`` each, then ``flush`` + ``fsync``. A crash therefore
loses at most the batch being written; should the process die inside a ``write``, the next journal to open the file
first ends the torn line with a newline, so the damage stays one unreadable line (which the log reader skips and
reports) instead of corrupting the next entry.

daily.md rotates when an entry belongs to another UTC day than the file's header, or when the file has passed
``logging.daily_max_bytes``: the old file moves to ``research_logs/archive/daily-<day>.md`` (``daily-<day>.1.md``, ...
when that name is taken) and a new file with a fresh day header starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vy_nexus.events import Event, Level
from vy_nexus.observability.batching import BatchedObserver, BatchWriter
from vy_nexus.observability.journal_format import (
    TimestampFormatter,
    markdown_header,
    parse_markdown_header,
    render,
)
from vy_nexus.observability.timeutil import utc_day

if TYPE_CHECKING:
    from vy_nexus.config import Settings

LEVELS: tuple[Level, ...] = ("debug", "info", "warn", "error")

DAILY_FILENAME = "daily.md"
STRUCTURED_FILENAME = "structured.jsonl"
ARCHIVE_DIRNAME = "archive"


def levels_at_or_above(level: Level) -> frozenset[str]:
    return frozenset(LEVELS[LEVELS.index(level) :])


def _append(path: Path, text: bytes) -> None:
    """Append ``text`` with one write, then flush and fsync."""
    with path.open("ab") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _ends_torn(path: Path) -> bool:
    """True when the file exists, is not empty and its last byte is not a newline."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


class Journal(BatchedObserver[Event]):
    """Writes events to ``<logs_dir>/daily.md`` and ``<logs_dir>/structured.jsonl`` from a background thread."""

    def __init__(
        self,
        logs_dir: Path,
        *,
        level: Level = "info",
        daily_max_bytes: int = 5 * 1024 * 1024,
        batch_size: int = 256,
        flush_interval: float = 0.5,
    ) -> None:
        self.logs_dir = logs_dir
        self.daily_path = logs_dir / DAILY_FILENAME
        self.structured_path = logs_dir / STRUCTURED_FILENAME
        self.archive_dir = logs_dir / ARCHIVE_DIRNAME
        self.daily_max_bytes = daily_max_bytes
        self._levels = levels_at_or_above(level)
        self._writer: BatchWriter[Event] = BatchWriter(
            self.write, name="journal", batch_size=batch_size, interval=flush_interval
        )
        self._format_time = TimestampFormatter()
        self._daily_day: str | None = None
        self._daily_size = 0
        self._opened = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Journal:
        logging = settings.logging
        return cls(
            settings.logs_dir,
            level=logging.level,
            daily_max_bytes=logging.daily_max_bytes,
            batch_size=logging.batch_size,
            flush_interval=logging.flush_interval_seconds,
        )

    def __call__(self, event: Event) -> None:
        """The subscriber: filter by level and queue. No disk here."""
        if event.level in self._levels:
            self._writer.offer(event)

    def wants(self, event: Event) -> bool:
        return event.level in self._levels

    # -- writer thread ---------------------------------------------------------------------------------------------

    def _open(self) -> bytes:
        """Prepare the directory and learn the state of existing files; the prefix that repairs a torn JSON line."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._opened = True
        if self.daily_path.exists():
            with self.daily_path.open(encoding="utf-8", errors="replace") as handle:
                self._daily_day = parse_markdown_header(handle.readline())
            stat = self.daily_path.stat()
            self._daily_size = stat.st_size
            if self._daily_day is None:
                self._daily_day = utc_day(stat.st_mtime)
        return b"\n" if _ends_torn(self.structured_path) else b""

    def write(self, events: Sequence[Event]) -> None:
        """Append ``events`` to both files now, in the calling thread (the writer thread's sink; the writer process
        calls it directly). Events are not filtered here: see ``wants``."""
        repair = b"" if self._opened else self._open()
        stamps = [self._format_time(event.timestamp) for event in events]
        rendered = [render(event, stamp) for event, stamp in zip(events, stamps, strict=True)]
        _append(self.structured_path, repair + b"".join(line for line, _ in rendered))
        self._write_markdown(stamps, [entry for _, entry in rendered])

    def _write_markdown(self, stamps: list[str], entries: list[bytes]) -> None:
        chunk: list[bytes] = []
        chunk_size = 0
        for stamp, entry in zip(stamps, entries, strict=True):
            day = stamp[:10]
            if day != self._daily_day or self._daily_size + chunk_size >= self.daily_max_bytes:
                if chunk:
                    _append(self.daily_path, b"".join(chunk))
                    chunk, chunk_size = [], 0
                self._rotate(day)
            chunk.append(entry)
            chunk_size += len(entry)
        if chunk:
            _append(self.daily_path, b"".join(chunk))
            self._daily_size += chunk_size

    def _rotate(self, day: str) -> None:
        """Archive the current daily.md (if any) under its own day, and start a new one for ``day``."""
        if self.daily_path.exists() and self._daily_day is not None:
            self.archive_dir.mkdir(parents=True, exist_ok=True)
            self.daily_path.replace(self._archive_name(self._daily_day))
        header = markdown_header(day)
        _append(self.daily_path, header)
        self._daily_day = day
        self._daily_size = len(header)

    def _archive_name(self, day: str) -> Path:
        candidate = self.archive_dir / f"daily-{day}.md"
        index = 0
        while candidate.exists():
            index += 1
            candidate = self.archive_dir / f"daily-{day}.{index}.md"
        return candidate
