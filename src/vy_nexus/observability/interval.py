"""``IntervalThread``: the background thread both observer queues use to hand their work over.

It calls ``work()`` every ``interval`` seconds, or at once when ``wake()`` is called (never per item: every wake-up
makes the thread compete with the hot path for the GIL). ``stop`` ends the thread and then calls ``work()`` once more
in the calling thread, so nothing queued before ``stop`` is kept back; ``start`` may follow.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class IntervalThread(ABC):
    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @abstractmethod
    def work(self) -> None:
        """Hand over what is queued. Must not raise."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Start the thread (again, after ``stop``). Idempotent while running."""
        if self.running:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"vy-nexus-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread, then work once more in this thread. Safe to call more than once."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            self._thread = None
        self.work()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.work()
