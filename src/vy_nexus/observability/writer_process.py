"""The observability writer process (started as ``python -m vy_nexus.interfaces.writer``).

It reads frames (``wire``) on stdin — first the ``WriterConfig``, then data, flush and exposition requests — and
writes the journal, the metrics database and its Prometheus registry with ``LocalWriters`` in its own interpreter,
so rendering, JSON, SQLite and fsync cost the parent process nothing but one pipe write per batch. Replies go to
stdout. Each data frame is on disk before the next frame is read, so a flush reply means "everything before the
request is written".

It ends when stdin ends: normally when the parent stops it, but also when the parent dies, in which case it still
writes everything the parent had sent. It ignores SIGINT (a Ctrl-C in the terminal is for the parent, which then
stops it in order) and runs in its own session.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import BinaryIO

from vy_nexus.observability.wire import (
    CONFIG,
    DATA,
    EXPOSITION,
    FLUSH,
    decode_records,
    read_frame,
    write_frame,
)
from vy_nexus.observability.writers import LocalWriters, WriterConfig

WRITE_CHUNK = 512
"""Records per write: one append + fsync per journal file and one transaction each, and a bound on the memory one
write renders into however large a frame is (a frame holds up to 0.1 s of events, or more after a stall)."""

_log = logging.getLogger("vy_nexus.observability.writer_process")


def serve(requests: BinaryIO, replies: BinaryIO) -> int:
    """Handle frames until ``requests`` ends; the exit status (0, or 2 when the first frame is not a config)."""
    first = read_frame(requests)
    if first is None:
        return 0
    kind, payload = first
    if kind != CONFIG:
        _log.error("writer process: expected a config frame first, got %r", kind)
        return 2
    writers = LocalWriters(WriterConfig.from_json(payload))
    try:
        while (frame := read_frame(requests)) is not None:
            kind, payload = frame
            if kind == DATA:
                try:
                    items = list(decode_records(payload))
                except (ValueError, TypeError) as exc:  # a malformed frame costs that frame, not the process
                    _log.error("writer process: dropped a malformed data frame: %s", exc)
                    continue
                for start in range(0, len(items), WRITE_CHUNK):
                    writers.write(items[start : start + WRITE_CHUNK])
            elif kind == FLUSH:
                write_frame(replies, FLUSH, payload)
            elif kind == EXPOSITION:
                write_frame(replies, EXPOSITION, payload + b"\n" + writers.exposition())
            else:
                _log.error("writer process: unknown frame kind %r ignored", kind)
    finally:
        writers.stop()
    return 0


def main() -> int:
    """Serve stdin/stdout; the exit status. Ignores SIGINT (the parent stops the writer in order)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="vy-nexus writer process: %(levelname)s %(message)s")
    try:
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent is gone; what could be written has been
        return 0
