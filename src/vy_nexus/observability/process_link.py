"""``WriterProcessLink``: the event-bus subscriber that hands events to the observability writer process.

On the hot path it keeps the events the writers want (journal level, metric kinds), encodes each into a few hundred
bytes with one ``orjson`` call and appends them to a ``ByteOutbox``. Its thread sends what gathered as one ``D``
frame down the child's stdin every ``interval`` seconds; everything else (Markdown, JSON lines, SQLite rows,
Prometheus, fsync) happens in the child, on another core, outside this interpreter's GIL.

When the child cannot be started, or dies, the link falls back to ``LocalWriters`` threads in this process and logs
a warning: events from then on are written as with ``logging.writer = "thread"``; what the dead child had received
but not yet written (at most the batches in the pipe) is lost.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import sys
import threading
import time
from typing import IO

from vy_nexus.events import Event
from vy_nexus.observability.journal import levels_at_or_above
from vy_nexus.observability.metrics import OBSERVED_KINDS, SystemSample
from vy_nexus.observability.outbox import ByteOutbox
from vy_nexus.observability.prometheus import PrometheusMetrics
from vy_nexus.observability.wire import (
    CONFIG,
    DATA,
    EXPOSITION,
    FLUSH,
    decode_records,
    encode_event,
    encode_sample,
    read_frame,
    write_frame,
)
from vy_nexus.observability.writers import LocalWriters, WriterConfig

WRITER_COMMAND = (sys.executable, "-m", "vy_nexus.interfaces.writer")

_log = logging.getLogger(__name__)

_Reply = tuple[bytes, bytes] | None


class WriterProcessLink:
    """Subscriber + sender for the writer process. ``start`` spawns the child, ``stop`` drains and ends it."""

    def __init__(
        self,
        config: WriterConfig,
        *,
        interval: float = 0.1,
        max_pending_bytes: int = 64 * 1024 * 1024,
        command: tuple[str, ...] = WRITER_COMMAND,
        stop_timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.command = command
        self.stop_timeout = stop_timeout
        self._levels = levels_at_or_above(config.level)
        self._kinds = OBSERVED_KINDS if config.metrics_enabled else frozenset()
        self._outbox = ByteOutbox(self._send, name="writer-link", interval=interval, max_bytes=max_pending_bytes)
        self._append = self._outbox.append
        self._process: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[_Reply] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._sequence = 0
        self._fallback_lock = threading.Lock()
        self.fallback: LocalWriters | None = None

    # -- hot path ----------------------------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if event.level in self._levels or event.kind in self._kinds:
            self._append(encode_event(event))

    def record_sample(self, sample: SystemSample) -> None:
        if self._kinds:
            self._outbox.append(encode_sample(sample))

    # -- state -------------------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return self._outbox.pending + (self.fallback.pending if self.fallback is not None else 0)

    @property
    def dropped(self) -> int:
        return self._outbox.dropped + (self.fallback.dropped if self.fallback is not None else 0)

    @property
    def process_id(self) -> int | None:
        """The writer process's pid while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.fallback is not None:
            self.fallback.start()
        elif self._process is None:
            self._spawn()
        self._outbox.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """True once everything recorded before the call is on disk (and in the writer's Prometheus registry)."""
        deadline = time.monotonic() + timeout
        self._outbox.flush()
        if self.fallback is not None:
            return self.fallback.flush(max(0.0, deadline - time.monotonic()))
        if self._process is None:
            return True
        return self._request(FLUSH, deadline) is not None

    def stop(self) -> None:
        """Send everything queued, let the child write it and exit; idempotent; ``start`` may follow."""
        self._outbox.stop()
        process = self._process
        if process is not None:
            self._process = None
            self._close(process)
        if self.fallback is not None:
            self.fallback.stop()

    def exposition(self) -> bytes:
        """The Prometheus text of the registry the writer process keeps (an empty one before ``start``)."""
        if self.fallback is not None:
            return self.fallback.exposition()
        if self._process is None:
            return PrometheusMetrics().exposition()
        self._outbox.flush()
        reply = self._request(EXPOSITION, time.monotonic() + 10.0)
        if reply is None:
            if self.fallback is not None:  # the child died while we asked
                return self.fallback.exposition()
            raise TimeoutError("the observability writer process did not answer within 10 s")
        return reply

    # -- the child ---------------------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C for the terminal's process group is not for the writer
            )
        except OSError as exc:
            self._fall_back(f"could not start the observability writer process: {exc}")
            return
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._replies = queue.Queue()
        self._reader = threading.Thread(
            target=self._read_replies, args=(process.stdout, self._replies), name="vy-nexus-writer-replies", daemon=True
        )
        self._reader.start()
        self._write(process, CONFIG, self.config.to_json())

    def _close(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        with contextlib.suppress(OSError):  # it died; its exit status tells
            process.stdin.close()
        try:
            status = process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
            _log.error(
                "the observability writer process did not finish within %.0f s and was killed", self.stop_timeout
            )
        if self._reader is not None:
            self._reader.join(5.0)
            self._reader = None
        if process.stdout is not None:
            process.stdout.close()
        if status != 0:
            _log.warning("the observability writer process exited with status %s", status)

    @staticmethod
    def _read_replies(stdout: IO[bytes], replies: queue.Queue[_Reply]) -> None:
        while (frame := read_frame(stdout)) is not None:
            replies.put(frame)
        replies.put(None)  # the child is gone

    def _write(self, process: subprocess.Popen[bytes], kind: bytes, payload: bytes) -> bool:
        """One frame to the child; False (after falling back) when the child is gone."""
        assert process.stdin is not None
        try:
            with self._send_lock:
                write_frame(process.stdin, kind, payload)
            return True
        except (OSError, ValueError):  # a broken pipe, or stdin closed under us
            self._fall_back(f"the observability writer process ended (exit status {process.poll()})")
            return False

    def _send(self, records: bytes) -> None:
        """The outbox's sink: one data frame, or the fallback writers once the child is gone."""
        process = self._process
        if self.fallback is None and process is not None and self._write(process, DATA, records):
            return
        if self.fallback is None:
            self._fall_back("the observability writer process is not running")
        assert self.fallback is not None
        for item in decode_records(records):
            self.fallback.accept(item)

    def _request(self, kind: bytes, deadline: float) -> bytes | None:
        """Send a request and wait for its reply until ``deadline``; the reply's body, or None."""
        process = self._process
        if process is None:
            return None
        with self._request_lock:
            self._sequence += 1
            sequence = str(self._sequence).encode()
            if not self._write(process, kind, sequence):
                return None
            while True:
                try:
                    reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return None
                if reply is None:
                    self._fall_back(f"the observability writer process ended (exit status {process.poll()})")
                    return None
                number, _, body = reply[1].partition(b"\n")
                if number == sequence:
                    return body
                # a late reply to an earlier request that timed out: skip it

    def _fall_back(self, reason: str) -> None:
        with self._fallback_lock:
            if self.fallback is not None:
                return
            _log.warning("%s; writing the journal and metrics from this process instead", reason)
            fallback = LocalWriters(self.config)
            fallback.start()
            self.fallback = fallback
