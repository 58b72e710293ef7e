"""How one event looks in the two journals: a JSON line for machines, a Markdown bullet for people.

JSON line (key order fixed, ``timestamp`` first, compact separators, one object per line)::

    {"timestamp":"2026-11-25T05:21:27.123456Z","level":"info","phase":"runtime","component":"gating",
     "kind":"task.routed","category":"decision","message":"routed to code (0.82, keyword)",
     "task_id":"1a2b3c","metadata":{"experts":["code"],...}}

``task_id`` and ``expert_id`` appear only when known. Markdown entry (under the day's header)::

    - 05:21:27 · **decision** · gating · task `1a2b3c` — routed to code (0.82, keyword) · `{"experts":["code"]}`
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from vy_nexus.events import Event

TIMESTAMP_PREFIX = '{"timestamp":"'
"""Every JSON line starts with this; the 27-character time stamp follows."""

TIMESTAMP_WIDTH = 27

_METADATA_BYTES = 600
_LOUD_LEVELS = frozenset({"warn", "error"})


def _default(value: Any) -> str:
    return str(value)


def to_json(value: Any, option: int = 0) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold are written as their ``str``, non-string keys as strings, and
    integers orjson cannot write (beyond 64 bits: a config value, say) as their digits in a string."""
    try:
        return orjson.dumps(value, default=_default, option=option)
    except TypeError:  # non-string dict keys: the slower option handles them
        pass
    try:
        return orjson.dumps(value, default=_default, option=option | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(_wide_ints_as_text(value), default=_default, option=option | orjson.OPT_NON_STR_KEYS)


_SMALLEST_INT, _LARGEST_INT = -(2**63), 2**64 - 1
"""The integers orjson writes."""


def _wide_ints_as_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not _SMALLEST_INT <= value <= _LARGEST_INT:
        try:
            return str(value)
        except ValueError:  # more digits than int-to-str converts (sys.get_int_max_str_digits())
            return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, dict):
        return {key: _wide_ints_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_ints_as_text(item) for item in value]
    return value


class TimestampFormatter:
    """``iso_utc`` with the per-second part cached: a batch holds many events from the same second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = min(999_999, int((timestamp - second) * 1_000_000))
        return f"{self._prefix}.{micros:06d}Z"


def render(event: Event, timestamp: str) -> tuple[bytes, bytes]:
    """The structured.jsonl line and the daily.md bullet for one event (each with its newline).

    The metadata is serialised once and spliced into both.
    """
    metadata = to_json(event.metadata)
    return _line(event, timestamp, metadata), markdown_entry(event, timestamp, metadata)


def structured_line(event: Event, timestamp: str) -> bytes:
    """Only the structured.jsonl line (with its newline)."""
    return _line(event, timestamp, to_json(event.metadata))


def _line(event: Event, timestamp: str, metadata: bytes) -> bytes:
    record: dict[str, Any] = {
        "timestamp": timestamp,
        "level": event.level,
        "phase": event.phase,
        "component": event.component,
        "kind": event.kind,
        "category": event.category,
        "message": event.message,
    }
    if event.task_id is not None:
        record["task_id"] = event.task_id
    if event.expert_id is not None:
        record["expert_id"] = event.expert_id
    return b"".join((to_json(record)[:-1], b',"metadata":', metadata, b"}\n"))


def markdown_header(day: str) -> bytes:
    return f"# vy-nexus research log — {day} (UTC)\n\n".encode()


def parse_markdown_header(line: str) -> str | None:
    """The day named by a daily.md header line, or None when the line is not one."""
    prefix = "# vy-nexus research log — "
    if line.startswith(prefix) and len(line) >= len(prefix) + 10:
        return line[len(prefix) : len(prefix) + 10]
    return None


def markdown_entry(event: Event, timestamp: str, metadata_json: bytes) -> bytes:
    """One bullet of daily.md: time, category, component, task/expert, message, metadata (newline included)."""
    level = f" · **{event.level.upper()}**" if event.level in _LOUD_LEVELS else ""
    task = f" · task `{event.task_id}`" if event.task_id is not None else ""
    expert = f" · expert `{event.expert_id}`" if event.expert_id is not None else ""
    message = event.message
    if "\n" in message or "\r" in message:
        message = " ".join(message.split())
    text = f"- {timestamp[11:19]} · **{event.category}** · {event.component}{level}{task}{expert} — {message}"
    if not event.metadata:
        return text.encode() + b"\n"
    metadata = metadata_json.replace(b"`", b"'")
    if len(metadata) > _METADATA_BYTES:
        metadata = metadata[: _METADATA_BYTES - 3].decode("utf-8", "ignore").encode() + "…".encode()
    return b"".join((text.encode(), b" \xc2\xb7 `", metadata, b"`\n"))
