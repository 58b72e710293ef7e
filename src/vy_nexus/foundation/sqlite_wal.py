"""Switching an SQLite file to write-ahead logging while other processes open the same file."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable


def enable_wal(
    connection: sqlite3.Connection,
    *,
    attempts: int = 200,
    pause: float = 0.025,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``PRAGMA journal_mode=WAL`` on ``connection``. Processes that switch a new file at the same moment can
    deadlock on the lock upgrade; SQLite then answers one of them "database is locked" at once, without waiting out
    its busy timeout (seen: 4 of 90 openings of a new file by three processes at once). That one tries again."""
    for attempt in range(attempts):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            sleep(pause)
