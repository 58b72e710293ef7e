"""Periodic system samples (CPU, memory, disk, observer queue depth) for the ``system`` metrics table.

A ``SystemSampler`` thread wakes every ``metrics.system_sample_seconds`` and hands one ``SystemSample`` to its sink
(the collector's queue). CPU % is system-wide since the previous sample; ``stop`` records one last sample so even a
short run leaves a row behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from vy_nexus.observability.metrics import SystemSample


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


class SystemSampler:
    def __init__(
        self,
        sink: Callable[[SystemSample], None],
        *,
        interval: float,
        disk_path: Path,
        queue_depth: Callable[[], int] = lambda: 0,
    ) -> None:
        self._sink = sink
        self.interval = interval
        self.disk_path = disk_path
        self._queue_depth = queue_depth
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> SystemSample:
        memory = psutil.virtual_memory()
        try:
            disk = psutil.disk_usage(str(_existing(self.disk_path)))
            disk_percent: float | None = disk.percent
            disk_free: int | None = disk.free
        except OSError:
            disk_percent, disk_free = None, None
        return SystemSample(
            timestamp=time.time(),
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=memory.percent,
            rss_bytes=self._process.memory_info().rss,
            disk_percent=disk_percent,
            disk_free_bytes=disk_free,
            queue_depth=self._queue_depth(),
        )

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        psutil.cpu_percent(interval=None)  # the first reading only sets the reference point
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vy-nexus-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        self._sink(self.sample())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sink(self.sample())
