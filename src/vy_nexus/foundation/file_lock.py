"""An inter-process lock beside a file (``<name>.lock``), with a clear error when another process holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vy_nexus.errors import StateError

if TYPE_CHECKING:
    import filelock


class FileGuard:
    """``with guard.locked(): ...`` serialises read-modify-write of ``path`` across vy-nexus processes."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._lock: filelock.FileLock | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        import filelock  # loads on the first locked write, not for a process that only reads

        if self._lock is None:
            self._lock = filelock.FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=self.timeout)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout as exc:
            raise StateError(f"{self.path} is locked by another vy-nexus process (waited {self.timeout:g} s)") from exc
        try:
            yield
        finally:
            self._lock.release()
