"""The manual kill switch across processes: a stop-request file in the home directory, a watcher thread that
notices it, and a SIGTERM handler for long-running commands.

``vy-nexus stop`` cannot reach another process's memory, so it writes ``<home>/STOP`` (JSON: reason, time, pid).
Every running system of that home watches the file and requests a graceful shutdown when a request newer than its
own start appears. Requests older than a system's start are stale (nobody was running to honour them): the watcher
removes them when it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from vy_nexus import json_text
from vy_nexus.events import EventBus
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.foundation.safety import SafetyHandler

STOP_FILENAME = "STOP"


@dataclass(frozen=True, slots=True)
class StopNotice:
    reason: str
    requested_at: float
    requested_by: str


class StopRequest:
    """The stop-request file of one home."""

    def __init__(self, home: Path) -> None:
        self.path = home / STOP_FILENAME

    def write(self, reason: str, *, requested_by: str = "cli") -> StopNotice:
        notice = StopNotice(reason=reason, requested_at=time.time(), requested_by=f"{requested_by} (pid {os.getpid()})")
        payload = {"reason": notice.reason, "requested_at": notice.requested_at, "requested_by": notice.requested_by}
        atomic_write_text(self.path, json.dumps(payload) + "\n")
        return notice

    def read(self) -> StopNotice | None:
        """The pending request, if any. A hand-written file (``echo reason > STOP``) counts, dated by its mtime.
        So does a ``STOP`` that cannot be read (not UTF-8, a directory, no permission): it still asks to stop."""
        try:
            mtime = self.path.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            mtime = time.time()
        try:
            text = self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            problem = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or type(exc).__name__
            return StopNotice(
                reason=f"stop requested (unreadable STOP file: {problem})", requested_at=mtime, requested_by="file"
            )
        try:
            data: Any = json_text.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("requested_at"), int | float):
            return StopNotice(
                reason=str(data.get("reason") or "stop requested"),
                requested_at=float(data["requested_at"]),
                requested_by=str(data.get("requested_by") or "unknown"),
            )
        return StopNotice(reason=text.strip() or "stop requested", requested_at=mtime, requested_by="file")

    def clear(self) -> bool:
        """Remove the request; ``False`` when there was none. A directory named STOP is removed when empty."""
        try:
            if self.path.is_dir() and not self.path.is_symlink():
                self.path.rmdir()
            else:
                self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class StopWatcher:
    """Polls the stop file from a daemon thread and engages the kill switch when a fresh request appears."""

    def __init__(
        self,
        request: StopRequest,
        safety: SafetyHandler,
        *,
        interval: float = 1.0,
        events: EventBus | None = None,
    ) -> None:
        self.request = request
        self.safety = safety
        self.interval = interval
        self._events = events or EventBus()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._since = time.time()
        stale = self.request.read()
        if stale is not None and stale.requested_at < self._since:
            with contextlib.suppress(OSError):  # e.g. a non-empty directory: still stale, so still ignored
                self.request.clear()
            self._events.publish(
                "safety.stale_stop",
                "safety",
                f"ignored a stop request from before this start: {stale.reason}",
                level="warn",
                metadata={"reason": stale.reason, "requested_at": stale.requested_at},
            )
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="vy-nexus-stop-watcher", daemon=True)
        self._thread.start()

    def check(self) -> bool:
        """Look once; engage the kill switch for a request made since ``start``. ``True`` when it did."""
        notice = self.request.read()
        if notice is None or notice.requested_at < self._since:
            return False
        return self.safety.request_shutdown(f"stop requested by {notice.requested_by}: {notice.reason}")

    def stop(self) -> None:
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if self.safety.shutting_down or self.check():
                    return
            except Exception as exc:  # the kill switch must outlive any one bad look
                self._events.publish(
                    "safety.stop_watch_error", "safety", f"could not check the stop file: {exc}", level="warn"
                )


@contextlib.contextmanager
def sigterm_requests_shutdown(safety: SafetyHandler) -> Iterator[None]:
    """While active, SIGTERM engages the kill switch instead of killing the process. For long-running commands
    only (installed in the main thread; elsewhere this is a no-op). The previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        # Hand over to a thread: the interrupted code may hold the safety handler's lock.
        name = signal.Signals(signum).name
        threading.Thread(target=safety.request_shutdown, args=(f"{name} received",), daemon=True).start()

    previous: Callable[[int, FrameType | None], Any] | int | None = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
