"""``Observability``: the journal, the metrics collector, the Prometheus registry and the system sampler, wired to
one event bus. The composition root (``VyNexus``) builds one and starts/stops it with the system.

It subscribes to the events a writer wants (journal level, metric kinds), which the bus appends to one queue
(``BatchWriter``); one background thread per process wakes every ``logging.flush_interval_seconds`` and writes
what gathered: the journal (``Journal.write``; with a PostgreSQL ``store.url`` also ``JournalTable.write``, so the
journal of every process is queryable in one place) and the metrics rows (``MetricsCollector.write``, one
transaction, in the home's SQLite file or the cluster's PostgreSQL). All are safe with several processes on one home
or one database, so a server, workers and CLI runs each run one of these and nothing else. The Prometheus registry
is filled from the metrics database when someone asks for the exposition, so the flow and the writer thread never
pay for it, and a server's ``/metrics`` counts what its workers did too.
``flush`` waits until everything observed so far is written, ``stop`` drains the queue and may be followed by another
``start``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from vy_nexus.config import Settings
from vy_nexus.events import Event, EventBus
from vy_nexus.observability.batching import BatchWriter
from vy_nexus.observability.journal import Journal
from vy_nexus.observability.metrics import OBSERVED_KINDS, MetricsCollector, SystemSample
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import largest_ids
from vy_nexus.observability.sampler import SystemSampler

if TYPE_CHECKING:
    from vy_nexus.observability.journal_table import JournalTable
    from vy_nexus.observability.prometheus import PrometheusMetrics

T = TypeVar("T")

_log = logging.getLogger(__name__)


class Observability:
    def __init__(self, settings: Settings, events: EventBus) -> None:
        self._events = events
        self.journal = Journal(
            settings.logs_dir, level=settings.logging.level, daily_max_bytes=settings.logging.daily_max_bytes
        )
        self._prometheus: PrometheusMetrics | None = None
        self._counted_from: dict[str, int] = {}
        """The metrics rows at the first ``start``: the exposition counts what was recorded after them."""
        self.database = MetricsDatabase.for_settings(settings, on_damage=self._damaged)
        """The metrics database (and, on a cluster's PostgreSQL, the shipped journal's)."""
        self.metrics: MetricsCollector | None = None
        self.journal_table: JournalTable | None = None
        self.sampler: SystemSampler | None = None
        self._levels = self.journal.levels
        self._kinds: frozenset[str] = frozenset()
        self._counting = False
        if settings.shared_database_url is not None and settings.logging.ship_to_store:
            from vy_nexus.observability.journal_table import JournalTable

            self.journal_table = JournalTable(self.database, retention_days=settings.logging.store_retention_days)
        if settings.metrics.enabled:
            self.metrics = MetricsCollector(self.database, retention_days=settings.metrics.retention_days)
            self._kinds = OBSERVED_KINDS
            self.sampler = SystemSampler(
                self._queue_sample,
                interval=settings.metrics.system_sample_seconds,
                disk_path=settings.home,
                queue_depth=self.backlog,
            )
        self._writer: BatchWriter[Event | SystemSample] = BatchWriter(
            self._write, name="observability", interval=settings.logging.flush_interval_seconds
        )
        self._offer = self._writer.offer
        # The hot path: the bus delivers only what a writer wants (journal levels, metric kinds) straight into the
        # queue; no disk, no rendering.
        self._unsubscribe: list[Callable[[], None]] = [
            events.subscribe(self._offer, levels=self._levels, kinds=self._kinds)
        ]

    def _queue_sample(self, sample: SystemSample) -> None:
        self._offer(sample)

    # -- the writer thread ---------------------------------------------------------------------------------------------

    def _write(self, batch: Sequence[Event | SystemSample]) -> None:
        """Write one batch; a writer that fails loses this batch only (logged), the others still write."""
        levels = self._levels
        journaled = [item for item in batch if isinstance(item, Event) and item.level in levels]
        if journaled:
            _logged(self.journal.write, journaled, "journal")
            if self.journal_table is not None:
                _logged(self.journal_table.write, journaled, "journal table")
        metrics = self.metrics
        if metrics is None:
            return
        measured = [item for item in batch if isinstance(item, SystemSample) or item.kind in OBSERVED_KINDS]
        if measured:
            _logged(metrics.write, measured, "metrics")

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def backlog(self) -> int:
        """Events queued by the observers and not yet written."""
        return self._writer.pending

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full (the writer could not keep up)."""
        return self._writer.dropped

    def start(self) -> None:
        if self.metrics is not None and not self._counting:
            self.metrics.open()  # a damaged database is moved aside before anything reads it
            with self.database.reading() as conn:
                self._counted_from = largest_ids(conn)  # Prometheus counts from here on
            self._counting = True
        self._writer.start()
        if self.sampler is not None:
            self.sampler.start()

    def _damaged(self, message: str) -> None:
        _log.warning("%s", message)
        self._events.publish("metrics.damaged", "metrics", message, level="warn", category="error")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything observed so far is on disk (and in the Prometheus registry)."""
        return self._writer.flush(timeout)

    def exposition(self) -> bytes:
        """The Prometheus text format of what every process on this home recorded in the metrics database since the
        first ``start`` (``GET /metrics``). Reads the rows written since the previous call: call it off the event
        loop. Lags the flow by up to one ``logging.flush_interval_seconds``."""
        prometheus = self.prometheus
        if self.metrics is not None and self._counting:
            prometheus.catch_up(self.database)
        return prometheus.exposition()

    @property
    def prometheus(self) -> PrometheusMetrics:
        """The registry ``exposition`` serves, built on first use: a CLI run, which nobody scrapes, never imports
        prometheus_client."""
        if self._prometheus is None:
            from vy_nexus.observability.prometheus import PrometheusMetrics

            self._prometheus = PrometheusMetrics()
            self._prometheus.skip_to(self._counted_from)
        return self._prometheus

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self._writer.stop()
        self.database.close()

    def close(self) -> None:
        """Stop, and stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.stop()


def _logged(write: Callable[[Sequence[T]], None], batch: Sequence[T], name: str) -> None:
    try:
        write(batch)
    except OSError as exc:  # disk full, a directory where a file goes: the cause is the file's, not the code's
        _log.error("%s: writing a batch of %d failed: %s", name, len(batch), exc)
    except Exception:  # a locked database: this batch is lost for this writer, the next one may succeed
        _log.exception("%s: writing a batch of %d failed", name, len(batch))
