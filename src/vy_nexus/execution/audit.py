"""The governance audit log: one JSON line per administrative action and decision, appended and fsync'd.

``<home>/governance/audit.jsonl`` is opened in append mode only; lines are never rewritten. Administrative actions are
rare, so each line is written and synced before the action proceeds: the record exists even if the process dies.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vy_nexus import json_text
from vy_nexus.errors import StateError


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, action: str, **fields: Any) -> dict[str, Any]:
        """Append one record (``timestamp``, ``action`` and ``fields``) durably; returns it."""
        entry = {"timestamp": time.time(), "action": action, **fields}
        line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, _after_torn_line(fd) + line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StateError(f"cannot append to the audit log {self.path}: {exc.strerror or exc}") from exc
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first (lines that are not JSON objects, or not UTF-8, are skipped)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read the audit log {self.path}: {exc.strerror or exc}") from exc
        with handle:
            for line in handle:
                try:
                    item = json_text.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, RecursionError, json.JSONDecodeError):
                    continue
                if isinstance(item, dict):
                    yield item


def _after_torn_line(fd: int) -> bytes:
    """A newline when the file does not end with one (a write cut short by a crash or a full disk), so the record
    appended next starts a line of its own instead of being glued to the torn one and lost with it."""
    size = os.fstat(fd).st_size
    return b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
