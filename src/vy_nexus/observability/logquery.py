"""Streaming queries over structured.jsonl: filters by level, component, time range, task and text.

Nothing is loaded whole. The file is read line by line in binary; cheap byte tests reject most lines before any JSON
is parsed (a line can only match ``--task X`` if it contains ``X``, and so on), and the fixed-width time stamp at the
start of every line is compared as a string. With ``since`` the reader first bisects the file on those time stamps
(the journal appends in time order, give or take one batch) and starts a little before the first match, so
"the last hour" of a large file costs about the last hour's worth of reading.

Lines that are not valid JSON objects are skipped and counted in ``QueryStats.malformed``; a last line without a
newline (a write that was cut short) is skipped and reported as ``QueryStats.partial_tail``. ``follow`` keeps
reading as the file grows (and starts over when it is rotated or truncated).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vy_nexus import json_text
from vy_nexus.errors import ConfigError, StateError
from vy_nexus.events import Level
from vy_nexus.observability.journal import LEVELS, levels_at_or_above
from vy_nexus.observability.journal_format import TIMESTAMP_PREFIX, TIMESTAMP_WIDTH
from vy_nexus.observability.timeutil import iso_utc

BISECT_SLACK_SECONDS = 300.0
"""How far before the bisected start the scan begins, to catch lines written slightly out of order."""

_PREFIX = TIMESTAMP_PREFIX.encode()
_STAMP_START = len(_PREFIX)
_STAMP_END = _STAMP_START + TIMESTAMP_WIDTH


@dataclass(frozen=True)
class LogFilter:
    """What to keep. Times are Unix time stamps; ``level`` is the minimum level."""

    level: Level | None = None
    component: str | None = None
    since: float | None = None
    until: float | None = None
    task_id: str | None = None
    grep: str | None = None

    def __post_init__(self) -> None:
        if self.level is not None and self.level not in LEVELS:
            raise ConfigError(f"unknown log level {self.level!r}; choose one of {', '.join(LEVELS)}")


@dataclass
class QueryStats:
    lines: int = 0
    matched: int = 0
    malformed: int = 0
    partial_tail: int = 0
    """Bytes of a last line that had no newline (0 when the file ended cleanly)."""


@dataclass(frozen=True)
class LogEntry:
    timestamp: str
    level: str
    component: str
    message: str
    record: dict[str, Any] = field(repr=False)
    raw: str = field(repr=False)


class _Matcher:
    """The filter compiled into byte pre-checks and a full check on the parsed record."""

    def __init__(self, flt: LogFilter) -> None:
        self.levels = levels_at_or_above(flt.level) if flt.level else None
        self.level_needles = [f'"level":"{name}"'.encode() for name in self.levels] if self.levels else []
        self.component = flt.component
        self.component_needle = json.dumps(flt.component, ensure_ascii=False).encode() if flt.component else None
        self.task_id = flt.task_id
        self.task_needle = json.dumps(flt.task_id, ensure_ascii=False).encode() if flt.task_id else None
        self.grep = flt.grep.lower() if flt.grep else None
        self.grep_needle = self.grep.encode() if self.grep is not None and self.grep.isascii() else None
        self.since = iso_utc(flt.since) if flt.since is not None else None
        self.until = iso_utc(flt.until) if flt.until is not None else None

    def precheck(self, line: bytes) -> bool:
        """False only for lines that certainly do not match."""
        if (self.since is not None or self.until is not None) and line.startswith(_PREFIX):
            stamp = line[_STAMP_START:_STAMP_END].decode("ascii", "replace")
            if self.since is not None and stamp < self.since:
                return False
            if self.until is not None and stamp > self.until:
                return False
        if self.level_needles and not any(needle in line for needle in self.level_needles):
            return False
        if self.component_needle is not None and self.component_needle not in line:
            return False
        if self.task_needle is not None and self.task_needle not in line:
            return False
        return self.grep_needle is None or self.grep_needle in line.lower()

    def matches(self, record: dict[str, Any], text: str) -> bool:
        stamp = str(record.get("timestamp", ""))
        if self.since is not None and stamp < self.since:
            return False
        if self.until is not None and stamp > self.until:
            return False
        if self.levels is not None and record.get("level") not in self.levels:
            return False
        if self.component is not None and record.get("component") != self.component:
            return False
        if self.task_id is not None and record.get("task_id") != self.task_id:
            return False
        return self.grep is None or self.grep in text.lower()


def _decode(line: bytes, stats: QueryStats) -> tuple[dict[str, Any], str] | None:
    try:
        text = line.decode("utf-8")
        record = json_text.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        stats.malformed += 1
        return None
    if not isinstance(record, dict):
        stats.malformed += 1
        return None
    return record, text


def _entry(record: dict[str, Any], text: str) -> LogEntry:
    return LogEntry(
        timestamp=str(record.get("timestamp", "")),
        level=str(record.get("level", "")),
        component=str(record.get("component", "")),
        message=str(record.get("message", "")),
        record=record,
        raw=text.rstrip("\n"),
    )


def _line_stamp(handle: BinaryIO, offset: int) -> tuple[str | None, int]:
    """The time stamp of the first whole line starting at or after ``offset``, and that line's offset."""
    handle.seek(offset)
    if offset > 0:
        handle.readline()  # finish the line we landed in
    start = handle.tell()
    line = handle.readline()
    if not line.endswith(b"\n"):
        return None, start
    if line.startswith(_PREFIX):
        return line[_STAMP_START:_STAMP_END].decode("ascii", "replace"), start
    return "", start  # a line of another shape: treat as "early" so the scan stays conservative


def find_start_offset(handle: BinaryIO, size: int, since: float) -> int:
    """An offset at or before the first line stamped at ``since - BISECT_SLACK_SECONDS`` or later."""
    target = iso_utc(since - BISECT_SLACK_SECONDS)
    low, high = 0, size
    while high - low > 64 * 1024:
        middle = (low + high) // 2
        stamp, _ = _line_stamp(handle, middle)
        if stamp is None or stamp >= target:
            high = middle
        else:
            low = middle
    return low


def _scan(handle: BinaryIO, matcher: _Matcher, stats: QueryStats) -> Iterator[LogEntry]:
    for line in handle:
        stats.lines += 1
        if not line.endswith(b"\n"):
            stats.partial_tail = len(line)
            return
        if not matcher.precheck(line):
            continue
        decoded = _decode(line, stats)
        if decoded is None:
            continue
        record, text = decoded
        if matcher.matches(record, text):
            stats.matched += 1
            yield _entry(record, text)


def query(path: Path, flt: LogFilter, stats: QueryStats | None = None) -> Iterator[LogEntry]:
    """Matching entries of ``path`` in file order. A missing file yields nothing."""
    counts = stats if stats is not None else QueryStats()
    matcher = _Matcher(flt)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    except OSError as exc:  # a directory in its place, no permission
        raise _unreadable(path, exc) from exc
    with handle:
        if flt.since is not None:
            size = os.fstat(handle.fileno()).st_size
            offset = find_start_offset(handle, size, flt.since)
            handle.seek(offset)
            if offset > 0:
                handle.readline()
        yield from _scan(handle, matcher, counts)


def _unreadable(path: Path, exc: OSError) -> StateError:
    return StateError(f"cannot read the journal {path}: {exc.strerror or exc}")


def follow(
    path: Path,
    flt: LogFilter,
    *,
    stats: QueryStats | None = None,
    poll_seconds: float = 0.25,
    should_stop: Callable[[], bool] = lambda: False,
    from_start: bool = True,
) -> Iterator[LogEntry]:
    """Like ``query`` but keeps waiting for new lines until ``should_stop()`` is true.

    A line still being written (no newline yet) is held back until it is complete. With ``since`` the first read
    starts at the bisected offset, as in ``query``; ``from_start=False`` starts at the current end instead. When the
    file is replaced (rotation) or shrinks (truncation), reading starts again at its beginning.
    """
    counts = stats if stats is not None else QueryStats()
    matcher = _Matcher(flt)
    handle: BinaryIO | None = None
    identity: tuple[int, int] | None = None
    buffer = b""
    try:
        while not should_stop():
            if handle is None:
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    from_start = True  # a file that appears later is new from its first line
                    time.sleep(poll_seconds)
                    continue
                except OSError as exc:
                    raise _unreadable(path, exc) from exc
                stat = os.fstat(handle.fileno())
                identity = (stat.st_dev, stat.st_ino)
                if not from_start:
                    handle.seek(0, os.SEEK_END)
                elif flt.since is not None:
                    handle.seek(find_start_offset(handle, stat.st_size, flt.since))
                    if handle.tell() > 0:
                        handle.readline()
                from_start = True
                buffer = b""
            chunk = handle.readline()
            if chunk:
                buffer += chunk
                if not buffer.endswith(b"\n"):
                    continue
                line, buffer = buffer, b""
                counts.lines += 1
                if not matcher.precheck(line):
                    continue
                decoded = _decode(line, counts)
                if decoded is not None and matcher.matches(*decoded):
                    counts.matched += 1
                    yield _entry(*decoded)
                continue
            if _replaced(path, identity, handle):
                handle.close()
                handle = None
                continue
            time.sleep(poll_seconds)
    finally:
        if handle is not None:
            handle.close()


def _replaced(path: Path, identity: tuple[int, int] | None, handle: BinaryIO) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return True
    return (stat.st_dev, stat.st_ino) != identity or stat.st_size < handle.tell()
