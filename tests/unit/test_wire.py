"""The writer-process wire format: records survive the round trip, frames are read back or reported truncated."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vy_nexus.events import Event
from vy_nexus.observability.metrics import SystemSample
from vy_nexus.observability.wire import (
    DATA,
    FLUSH,
    decode_record,
    decode_records,
    encode_event,
    encode_sample,
    read_frame,
    write_frame,
)


def test_an_event_survives_the_round_trip() -> None:
    event = Event(
        "expert.finished",
        "coordinator",
        "code finished\nin 1.5 ms",
        level="warn",
        category="thought",
        phase="runtime",
        task_id="t1",
        expert_id="code",
        metadata={"duration_ms": 1.5, "experts": ["code"], "nested": {"a": [1, 2]}, "ok": True, "none": None},
        timestamp=1_764_000_000.123456,
    )
    encoded = encode_event(event)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1  # one JSON line, even with a newline inside
    assert list(decode_records(encoded)) == [event]


def test_values_json_cannot_hold_arrive_as_text() -> None:
    event = Event("x.y", "test", "m", metadata={"path": Path("/tmp/a"), 3: "int key"}, timestamp=1.0)
    (decoded,) = decode_records(encode_event(event))
    assert isinstance(decoded, Event)
    assert decoded.metadata == {"path": "/tmp/a", "3": "int key"}


def test_a_sample_survives_the_round_trip_and_mixes_with_events() -> None:
    sample = SystemSample(2.0, 12.5, 40.0, 1234, None, 99, 7)
    event = Event("task.routed", "gating", "routed", timestamp=3.0)
    payload = encode_event(event) + encode_sample(sample) + encode_event(event)
    assert list(decode_records(payload)) == [event, sample, event]
    assert list(decode_records(b"")) == []


def test_an_unknown_record_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown record tag 'z'"):
        decode_record(["z", 1])


def test_frames_are_read_back_in_order() -> None:
    stream = io.BytesIO()
    write_frame(stream, DATA, b"payload")
    write_frame(stream, FLUSH)
    stream.seek(0)
    assert read_frame(stream) == (DATA, b"payload")
    assert read_frame(stream) == (FLUSH, b"")
    assert read_frame(stream) is None


def test_a_truncated_frame_reads_as_the_end() -> None:
    stream = io.BytesIO()
    write_frame(stream, DATA, b"0123456789")
    assert read_frame(io.BytesIO(stream.getvalue()[:-3])) is None
    assert read_frame(io.BytesIO(stream.getvalue()[:2])) is None
