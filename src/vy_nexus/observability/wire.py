"""What crosses the pipe between a process and its observability writer process: records and frames.

A *record* is one event or one system sample as a compact JSON array and a newline (``["e", kind, component,
...]`` or ``["s", timestamp, ...]``): JSON Lines. Encoding happens on the hot path, so it is a single ``orjson`` call
on a tuple (about 0.7 µs).

A *frame* is a one-byte kind, a four-byte big-endian length and that many payload bytes:

* ``C`` config (JSON of ``WriterConfig``), sent once, first;
* ``D`` data: records (JSON Lines);
* ``F`` flush request / reply, payload ``<seq>``: the reply means everything sent before the request is on disk;
* ``P`` Prometheus exposition request ``<seq>`` / reply ``<seq>\\n<exposition text>``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO, Any

import orjson

from vy_nexus.events import Event
from vy_nexus.observability.journal_format import to_json
from vy_nexus.observability.metrics import SystemSample

CONFIG = b"C"
DATA = b"D"
FLUSH = b"F"
EXPOSITION = b"P"

_HEADER = struct.Struct("!cI")

_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE

_EVENT = "e"
_SAMPLE = "s"


def encode_event(event: Event) -> bytes:
    """One JSON line; called on the hot path, so one ``orjson`` call on a tuple (a dict or the dataclass itself
    costs more), with the journal's fallback only when the metadata has non-string keys."""
    record = (
        _EVENT,
        event.kind,
        event.component,
        event.message,
        event.level,
        event.category,
        event.phase,
        event.task_id,
        event.expert_id,
        event.metadata,
        event.timestamp,
    )
    try:
        return _dumps(record, default=str, option=_NEWLINE)
    except TypeError:
        return to_json(record, _NEWLINE)


def encode_sample(sample: SystemSample) -> bytes:
    return to_json(
        (
            _SAMPLE,
            sample.timestamp,
            sample.cpu_percent,
            sample.memory_percent,
            sample.rss_bytes,
            sample.disk_percent,
            sample.disk_free_bytes,
            sample.queue_depth,
        ),
        _NEWLINE,
    )


def decode_record(record: list[Any]) -> Event | SystemSample:
    if record[0] == _EVENT:
        kind, component, message, level, category, phase, task_id, expert_id, metadata, timestamp = record[1:]
        return Event(kind, component, message, level, category, phase, task_id, expert_id, metadata, timestamp)
    if record[0] == _SAMPLE:
        return SystemSample(*record[1:])
    raise ValueError(f"unknown record tag {record[0]!r}")


def decode_records(payload: bytes) -> Iterator[Event | SystemSample]:
    """The records of a ``D`` payload, decoded. (JSON never holds a raw newline inside a value, so turning the line
    ends into commas makes one array: one parse per frame instead of one per record.)"""
    for record in orjson.loads(b"[" + payload.rstrip(b"\n").replace(b"\n", b",") + b"]"):
        yield decode_record(record)


def write_frame(stream: IO[bytes], kind: bytes, payload: bytes = b"") -> None:
    """Write and flush one frame. Callers that share ``stream`` between threads hold a lock around this."""
    stream.write(_HEADER.pack(kind, len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """The next ``(kind, payload)``; None at the end of the stream (also when it ends inside a frame)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return kind, payload
