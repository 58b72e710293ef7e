"""ByteOutbox: records reach the sink in order, from the thread or a flush; a full outbox drops and counts."""

from __future__ import annotations

import threading
import time

import pytest

from vy_nexus.observability.outbox import ByteOutbox


class Sink:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[bytes] = []
        self.fail_first = fail_first
        self.called = threading.Event()

    def __call__(self, data: bytes) -> None:
        if self.fail_first:
            self.fail_first = False
            raise OSError("disk on fire")
        self.calls.append(data)
        self.called.set()


def test_flush_hands_everything_over_in_order() -> None:
    sink = Sink()
    outbox = ByteOutbox(sink, name="t")
    for record in (b"a\n", b"b\n", b"c\n"):
        outbox.append(record)
    assert outbox.pending == 3
    outbox.flush()
    outbox.flush()  # nothing new: the sink is not called with an empty buffer
    assert sink.calls == [b"a\nb\nc\n"]
    assert outbox.pending == 0 and outbox.sent_bytes == 6


def test_the_thread_hands_over_every_interval_and_stop_drains() -> None:
    sink = Sink()
    outbox = ByteOutbox(sink, name="t", interval=0.01)
    outbox.start()
    outbox.start()  # idempotent
    assert outbox.running
    outbox.append(b"first\n")
    assert sink.called.wait(5)
    outbox.append(b"last\n")
    outbox.stop()
    outbox.stop()
    assert not outbox.running
    assert b"".join(sink.calls) == b"first\nlast\n"


def test_a_full_outbox_drops_and_counts() -> None:
    sink = Sink()
    outbox = ByteOutbox(sink, name="t", max_bytes=10)
    for _ in range(5):
        outbox.append(b"0123456\n")
    assert outbox.pending == 2 and outbox.dropped == 3
    outbox.flush()
    assert sink.calls == [b"0123456\n0123456\n"]


def test_a_failing_sink_loses_that_hand_over_only(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(fail_first=True)
    outbox = ByteOutbox(sink, name="t", interval=0.01)
    outbox.start()
    outbox.append(b"lost\n")
    deadline = time.monotonic() + 5
    while "handing over 5 bytes failed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    outbox.append(b"kept\n")
    outbox.stop()
    assert "disk on fire" in caplog.text
    assert sink.calls == [b"kept\n"]


def test_records_appended_during_hand_overs_are_neither_lost_nor_repeated() -> None:
    sink = Sink()
    outbox = ByteOutbox(sink, name="t", interval=0.001)
    outbox.start()

    def produce(worker: int) -> None:
        for i in range(5000):
            outbox.append(f"{worker}-{i}\n".encode())

    producers = [threading.Thread(target=produce, args=(worker,)) for worker in range(4)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    outbox.stop()
    lines = b"".join(sink.calls).decode().splitlines()
    assert len(sink.calls) > 1  # handed over in several parts while producers ran
    assert sorted(lines) == sorted(f"{w}-{i}" for w in range(4) for i in range(5000))
    assert outbox.sent_bytes == sum(len(data) for data in sink.calls)
