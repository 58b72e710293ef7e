"""``Observability``: the journal, the metrics collector, the Prometheus registry and the system sampler, wired to
one event bus. The composition root (``VyNexus``) builds one and starts/stops it with the system.

Who writes depends on ``logging.writer``: ``"process"`` (the default) hands every event to a writer process
(``process_link``), so rendering and disk work run outside this interpreter; ``"thread"`` writes from background
threads in this process (``writers.LocalWriters``). Either way the subscriber only queues, ``flush`` waits until
everything observed so far is on disk, and ``stop`` drains every queue and may be followed by another ``start``.
"""

from __future__ import annotations

from collections.abc import Callable

from vy_nexus.config import Settings
from vy_nexus.events import EventBus
from vy_nexus.observability.process_link import WriterProcessLink
from vy_nexus.observability.sampler import SystemSampler
from vy_nexus.observability.writers import LocalWriters, WriterConfig


class Observability:
    def __init__(self, settings: Settings, events: EventBus) -> None:
        config = WriterConfig.from_settings(settings)
        self.writers: LocalWriters | WriterProcessLink
        if settings.logging.writer == "process":
            # Handing over is cheap, and the child writes what it receives at once: send often (at least every
            # 0.1 s), so the child never has much left to write when someone flushes or stops.
            interval = min(0.1, settings.logging.flush_interval_seconds, settings.metrics.flush_interval_seconds)
            self.writers = WriterProcessLink(config, interval=interval)
        else:
            self.writers = LocalWriters(config)
        self.sampler: SystemSampler | None = None
        if settings.metrics.enabled:
            self.sampler = SystemSampler(
                self.writers.record_sample,
                interval=settings.metrics.system_sample_seconds,
                disk_path=settings.home,
                queue_depth=self.backlog,
            )
        self._unsubscribe: list[Callable[[], None]] = [events.subscribe(self.writers)]

    def backlog(self) -> int:
        """Events queued by the observers and not yet written."""
        return self.writers.pending

    def start(self) -> None:
        self.writers.start()
        if self.sampler is not None:
            self.sampler.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything observed so far is on disk (and in the Prometheus registry)."""
        return self.writers.flush(timeout)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything observed since ``start`` (what ``GET /metrics`` serves)."""
        return self.writers.exposition()

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.writers.stop()

    def close(self) -> None:
        """Stop, and stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.stop()
