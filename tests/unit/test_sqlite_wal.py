"""Switching a new SQLite file to WAL from several connections at once (a server, workers and CLI runs on one home)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from vy_nexus.foundation.sqlite_wal import enable_wal


def open_together(path: Path, switch: object, connections: int = 3) -> list[BaseException]:
    """Every connection opens ``path`` and switches it to WAL at the same moment; the errors they met."""
    barrier = threading.Barrier(connections)
    errors: list[BaseException] = []

    def open_one() -> None:
        connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        barrier.wait()
        try:
            switch(connection)  # type: ignore[operator]
        except sqlite3.OperationalError as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_connections_switching_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    errors = [e for n in range(60) for e in open_together(tmp_path / f"{n}.db", enable_wal)]
    assert errors == []
    with sqlite3.connect(tmp_path / "0.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


def test_a_lock_is_waited_out_and_any_other_error_raised_at_once() -> None:
    class Connection:
        def __init__(self, failures: list[str]) -> None:
            self.failures = failures

        def execute(self, _sql: str) -> None:
            if self.failures:
                raise sqlite3.OperationalError(self.failures.pop(0))

    pauses: list[float] = []
    enable_wal(Connection(["database is locked"] * 3), sleep=pauses.append)  # type: ignore[arg-type]
    assert pauses == [0.025] * 3
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        enable_wal(Connection(["disk I/O error"]), sleep=pauses.append)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(Connection(["database is locked"] * 5), attempts=3, sleep=pauses.append)  # type: ignore[arg-type]
