"""``Observability``: the journal, the metrics collector, the Prometheus registry and the system sampler, wired to
one event bus. The composition root (``VyNexus``) builds one and starts/stops it with the system.

Both observers subscribe at construction (queueing only); ``start`` launches their writer threads; ``stop`` drains
every queue to disk and ends the threads (and may be followed by another ``start``).
"""

from __future__ import annotations

from collections.abc import Callable

from vy_nexus.config import Settings
from vy_nexus.events import EventBus
from vy_nexus.observability.journal import Journal
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.prometheus import PrometheusMetrics
from vy_nexus.observability.sampler import SystemSampler


class Observability:
    def __init__(self, settings: Settings, events: EventBus) -> None:
        self.journal = Journal.from_settings(settings)
        self.prometheus = PrometheusMetrics()
        self.metrics: MetricsCollector | None = None
        self.sampler: SystemSampler | None = None
        self._unsubscribe: list[Callable[[], None]] = [events.subscribe(self.journal)]
        if settings.metrics.enabled:
            self.metrics = MetricsCollector.from_settings(settings, exporters=[self.prometheus])
            self.sampler = SystemSampler(
                self.metrics.record_sample,
                interval=settings.metrics.system_sample_seconds,
                disk_path=settings.home,
                queue_depth=self.backlog,
            )
            self._unsubscribe.append(events.subscribe(self.metrics))

    def backlog(self) -> int:
        """Events queued by the observers and not yet written."""
        return self.journal.pending + (self.metrics.pending if self.metrics is not None else 0)

    def start(self) -> None:
        self.journal.start()
        if self.metrics is not None:
            self.metrics.start()
        if self.sampler is not None:
            self.sampler.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything observed so far is on disk (and in the Prometheus registry)."""
        flushed = self.journal.flush(timeout)
        if self.metrics is not None:
            flushed = self.metrics.flush(timeout) and flushed
        return flushed

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.journal.stop()

    def close(self) -> None:
        """Stop, and stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.stop()
