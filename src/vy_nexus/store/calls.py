"""The expert-call ledger: the dedupe key and the result of every expert call run on a worker.

A Celery message may be delivered more than once (a worker killed mid-task, a lost connection with ``acks_late``).
Workers ``claim`` a call before running it and ``complete`` it after; both are single conditional statements, so
two deliveries racing on one call (several worker processes, SQLite or PostgreSQL) still leave one result: the
first ``complete`` wins and every later one gets the stored result back. The server polls ``results`` for the
calls it waits on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from vy_nexus.errors import StoreError
from vy_nexus.store.engine import open_database, redact
from vy_nexus.store.schema import expert_calls
from vy_nexus.store.sql import _reason

RUNNING = "running"
DONE = "done"

CallKey = tuple[str, str]
LostResult = Callable[[int], str]
"""Builds the stored result (JSON text) for a call whose workers were lost ``deliveries`` times."""


@dataclass(frozen=True, slots=True)
class Claim:
    """``run`` is True when this delivery should run the expert; else ``result`` is the stored answer."""

    run: bool
    deliveries: int = 1
    result: str | None = None


class CallLedger:
    def __init__(self, url: str, *, on_warning: Callable[[str], None] | None = None) -> None:
        self.url = url
        self._warn = on_warning or (lambda _message: None)
        self._engine: sa.Engine | None = None

    def open(self) -> CallLedger:
        if self._engine is None:
            try:
                self._engine = open_database(self.url, self._warn)
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot open the task store at {redact(self.url)}: {exc}") from exc
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def claim(
        self, task_id: str, expert_id: str, *, attempt: int, worker: str, max_deliveries: int, lost: LostResult
    ) -> Claim:
        """Take one delivery of a call. A new call or a new attempt (a Celery retry) runs; a redelivery of the
        same attempt runs while deliveries stay within ``max_deliveries``, then the call is finished with
        ``lost(deliveries)``; a finished call answers with its stored result."""
        key = (expert_calls.c.task_id == task_id) & (expert_calls.c.expert_id == expert_id)
        running = key & (expert_calls.c.state == RUNNING)
        now = time.time()
        try:
            self._execute(
                sa.insert(expert_calls).values(
                    task_id=task_id,
                    expert_id=expert_id,
                    state=RUNNING,
                    attempt=attempt,
                    deliveries=1,
                    worker=worker,
                    started_at=now,
                )
            )
            return Claim(run=True)
        except IntegrityError:
            pass  # the call was delivered before
        newer = sa.update(expert_calls).where(running & (expert_calls.c.attempt < attempt))
        if self._execute(newer.values(attempt=attempt, deliveries=1, worker=worker, started_at=now)).rowcount:
            return Claim(run=True)
        again = sa.update(expert_calls).where(running & (expert_calls.c.deliveries < max_deliveries))
        if self._execute(again.values(deliveries=expert_calls.c.deliveries + 1, worker=worker)).rowcount:
            row = self._row(task_id, expert_id)
            return Claim(run=True, deliveries=row.deliveries if row is not None else max_deliveries)
        row = self._row(task_id, expert_id)
        if row is None:  # pruned between the statements: start over
            return self.claim(
                task_id, expert_id, attempt=attempt, worker=worker, max_deliveries=max_deliveries, lost=lost
            )
        if row.state == DONE:
            return Claim(run=False, deliveries=row.deliveries, result=row.result)
        return Claim(
            run=False, deliveries=row.deliveries, result=self.complete(task_id, expert_id, lost(row.deliveries))
        )

    def complete(self, task_id: str, expert_id: str, result: str) -> str:
        """Store ``result`` unless the call already has one; return the stored result (the first one wins)."""
        key = (expert_calls.c.task_id == task_id) & (expert_calls.c.expert_id == expert_id)
        stored_now = self._execute(
            sa.update(expert_calls)
            .where(key & (expert_calls.c.state == RUNNING))
            .values(state=DONE, result=result, finished_at=time.time())
        ).rowcount
        if stored_now:  # this one won: no need to read it back
            return result
        row = self._row(task_id, expert_id)
        if row is None or row.result is None:
            raise StoreError(f"expert call {task_id}/{expert_id} vanished from the task store before its result")
        stored: str = row.result
        return stored

    def results(self, keys: Iterable[CallKey]) -> dict[CallKey, str]:
        """The stored results among ``keys`` (calls still running are absent)."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = sa.select(expert_calls.c.task_id, expert_calls.c.expert_id, expert_calls.c.result).where(
            expert_calls.c.state == DONE, expert_calls.c.task_id.in_({task_id for task_id, _ in wanted})
        )
        rows = self._query(query)
        return {(r.task_id, r.expert_id): r.result for r in rows if (r.task_id, r.expert_id) in wanted}

    def get(self, task_id: str, expert_id: str) -> Any:
        """The call's row (state, attempt, deliveries, worker, result, times), or None."""
        return self._row(task_id, expert_id)

    def prune(self, older_than: float) -> int:
        """Delete finished calls that ended before ``older_than`` (epoch seconds)."""
        statement = sa.delete(expert_calls).where(expert_calls.c.state == DONE, expert_calls.c.finished_at < older_than)
        return int(self._execute(statement).rowcount)

    def _row(self, task_id: str, expert_id: str) -> Any:
        query = sa.select(expert_calls).where(
            (expert_calls.c.task_id == task_id) & (expert_calls.c.expert_id == expert_id)
        )
        rows = self._query(query)
        return rows[0] if rows else None

    def _execute(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        try:
            with self._require().begin() as conn:
                return conn.execute(statement)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"task store {redact(self.url)}: {_reason(exc)}") from exc

    def _query(self, statement: sa.Select[Any]) -> list[Any]:
        try:
            with self._require().connect() as conn:
                return list(conn.execute(statement).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"task store {redact(self.url)}: {_reason(exc)}") from exc

    def _require(self) -> sa.Engine:
        if self._engine is None:
            raise StoreError("the expert-call ledger is not open")
        return self._engine
