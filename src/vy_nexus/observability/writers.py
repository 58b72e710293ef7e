"""The writers behind the event bus: the journal and the metrics collector (feeding the Prometheus registry).

``LocalWriters`` runs them in the process that owns it. With ``start`` they write from their own background threads
(``logging.writer = "thread"``, and the fallback when a writer process cannot run); without it every ``flush``
writes in the calling thread, which is how the writer process (``writer_process``) uses them.

``WriterConfig`` is the part of the settings they need, small enough to send to the writer process as JSON (so the
child neither reads the config file again nor imports the settings machinery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from vy_nexus.events import Event, Level
from vy_nexus.observability.journal import Journal
from vy_nexus.observability.metrics import MetricsCollector, SystemSample
from vy_nexus.observability.prometheus import PrometheusMetrics

if TYPE_CHECKING:
    from vy_nexus.config import Settings

T = TypeVar("T")

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriterConfig:
    logs_dir: Path
    metrics_db: Path
    level: Level = "info"
    daily_max_bytes: int = 5 * 1024 * 1024
    journal_batch_size: int = 256
    journal_flush_interval: float = 0.5
    metrics_enabled: bool = True
    metrics_batch_size: int = 500
    metrics_flush_interval: float = 1.0
    retention_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WriterConfig:
        logging, metrics = settings.logging, settings.metrics
        return cls(
            logs_dir=settings.logs_dir,
            metrics_db=settings.metrics_db,
            level=logging.level,
            daily_max_bytes=logging.daily_max_bytes,
            journal_batch_size=logging.batch_size,
            journal_flush_interval=logging.flush_interval_seconds,
            metrics_enabled=metrics.enabled,
            metrics_batch_size=metrics.batch_size,
            metrics_flush_interval=metrics.flush_interval_seconds,
            retention_days=metrics.retention_days,
        )

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, data: bytes) -> WriterConfig:
        fields: dict[str, Any] = orjson.loads(data)
        fields["logs_dir"] = Path(fields["logs_dir"])
        fields["metrics_db"] = Path(fields["metrics_db"])
        return cls(**fields)


class LocalWriters:
    """Journal + metrics collector + Prometheus registry in this process; call it with an event to record it."""

    def __init__(self, config: WriterConfig) -> None:
        self.config = config
        self.prometheus = PrometheusMetrics()
        self.journal = Journal(
            config.logs_dir,
            level=config.level,
            daily_max_bytes=config.daily_max_bytes,
            batch_size=config.journal_batch_size,
            flush_interval=config.journal_flush_interval,
        )
        self.metrics = (
            MetricsCollector(
                config.metrics_db,
                batch_size=config.metrics_batch_size,
                flush_interval=config.metrics_flush_interval,
                retention_days=config.retention_days,
                exporters=[self.prometheus],
            )
            if config.metrics_enabled
            else None
        )

    def __call__(self, event: Event) -> None:
        self.journal(event)
        if self.metrics is not None:
            self.metrics(event)

    def record_sample(self, sample: SystemSample) -> None:
        if self.metrics is not None:
            self.metrics.record_sample(sample)

    def accept(self, item: Event | SystemSample) -> None:
        """Queue an event or a sample for the writer threads."""
        if isinstance(item, SystemSample):
            self.record_sample(item)
        else:
            self(item)

    def write(self, items: Sequence[Event | SystemSample]) -> None:
        """Write ``items`` now, in the calling thread, past the queues (how the writer process writes a frame).
        As with the threads, a writer that fails loses this batch only: the error is logged, the other still writes.
        """
        journal = self.journal
        events = [item for item in items if isinstance(item, Event) and journal.wants(item)]
        if events:
            _write_logged(journal.write, events, "journal")
        metrics = self.metrics
        if metrics is not None:
            rows = [item for item in items if isinstance(item, SystemSample) or metrics.wants(item)]
            if rows:
                _write_logged(metrics.write, rows, "metrics")

    @property
    def pending(self) -> int:
        return self.journal.pending + (self.metrics.pending if self.metrics is not None else 0)

    @property
    def dropped(self) -> int:
        return self.journal.dropped + (self.metrics.dropped if self.metrics is not None else 0)

    def start(self) -> None:
        self.journal.start()
        if self.metrics is not None:
            self.metrics.start()

    def flush(self, timeout: float = 10.0) -> bool:
        flushed = self.journal.flush(timeout)
        if self.metrics is not None:
            flushed = self.metrics.flush(timeout) and flushed
        return flushed

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        self.journal.stop()

    def exposition(self) -> bytes:
        return self.prometheus.exposition()


def _write_logged(write: Callable[[Sequence[T]], None], batch: Sequence[T], name: str) -> None:
    try:
        write(batch)
    except Exception:  # disk full, a locked database: this batch is lost, the next one may succeed
        _log.exception("%s: writing a batch of %d failed", name, len(batch))
