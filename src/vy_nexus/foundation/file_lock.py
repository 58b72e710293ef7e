"""An inter-process lock beside a file (``<name>.lock``), with a clear error when another process holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import filelock

from vy_nexus.errors import StateError


class FileGuard:
    """``with guard.locked(): ...`` serialises read-modify-write of ``path`` across vy-nexus processes."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self._lock = filelock.FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout as exc:
            raise StateError(
                f"{self.path} is locked by another vy-nexus process (waited {self._lock.timeout:g} s)"
            ) from exc
        try:
            yield
        finally:
            self._lock.release()
