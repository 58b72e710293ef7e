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
from vy_nexus.store.engine import log_warning, open_database, redact
from vy_nexus.store.schema import expert_calls
from vy_nexus.store.sql import _reason

RUNNING = "running"
DONE = "done"

CallKey = tuple[str, str]
LostResult = Callable[[int], str]
"""Builds the stored result (JSON text) for a call whose workers were lost ``deliveries`` times."""


# The statements a worker runs for every call, built once (building one cost more than running it on SQLite). An
# UPDATE reserves its columns' names for its SET clause, so parameters are named ``p_<column>``.
_c = expert_calls.c
_KEY = (_c.task_id == sa.bindparam("p_task_id")) & (_c.expert_id == sa.bindparam("p_expert_id"))
_RUNNING = _KEY & (_c.state == RUNNING)
_INSERT = sa.insert(expert_calls)
_NEWER_ATTEMPT = (
    sa.update(expert_calls)
    .where(_RUNNING & (_c.attempt < sa.bindparam("p_attempt")))
    .values(
        attempt=sa.bindparam("p_attempt"),
        deliveries=1,
        worker=sa.bindparam("p_worker"),
        started_at=sa.bindparam("p_started_at"),
    )
)
_REDELIVERY = (
    sa.update(expert_calls)
    .where(_RUNNING & (_c.deliveries < sa.bindparam("p_max_deliveries")))
    .values(deliveries=_c.deliveries + 1, worker=sa.bindparam("p_worker"))
)
_COMPLETE = (
    sa.update(expert_calls)
    .where(_RUNNING)
    .values(state=DONE, result=sa.bindparam("p_result"), finished_at=sa.bindparam("p_finished_at"))
)
_ROW = sa.select(expert_calls).where(_KEY)
_RESULTS = sa.select(_c.task_id, _c.expert_id, _c.result).where(
    _c.state == DONE, _c.task_id.in_(sa.bindparam("p_task_ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Claim:
    """``run`` is True when this delivery should run the expert; else ``result`` is the stored answer."""

    run: bool
    deliveries: int = 1
    result: str | None = None


class CallLedger:
    def __init__(self, url: str, *, on_warning: Callable[[str], None] | None = None) -> None:
        self.url = url
        self._warn = on_warning or log_warning
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

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless calls can be claimed here: a probe row is written and rolled back, so a
        read-only database or a user who may only read fails now, not at every call."""
        probe = {"task_id": "", "expert_id": "", "state": RUNNING, "attempt": 0, "deliveries": 0, "started_at": 0.0}
        try:
            with self._require().connect() as conn:
                transaction = conn.begin()
                try:
                    conn.execute(_INSERT, probe)
                finally:
                    transaction.rollback()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to the task store at {redact(self.url)}: {_reason(exc)}") from exc

    def claim(
        self, task_id: str, expert_id: str, *, attempt: int, worker: str, max_deliveries: int, lost: LostResult
    ) -> Claim:
        """Take one delivery of a call. A new call or a new attempt (a Celery retry) runs; a redelivery of the
        same attempt runs while deliveries stay within ``max_deliveries``, then the call is finished with
        ``lost(deliveries)``; a finished call answers with its stored result."""
        now = time.time()
        try:
            self._execute(
                _INSERT,
                {
                    "task_id": task_id,
                    "expert_id": expert_id,
                    "state": RUNNING,
                    "attempt": attempt,
                    "deliveries": 1,
                    "worker": worker,
                    "started_at": now,
                },
            )
            return Claim(run=True)
        except IntegrityError:
            pass  # the call was delivered before
        call = {"p_task_id": task_id, "p_expert_id": expert_id, "p_worker": worker}
        if self._execute(_NEWER_ATTEMPT, {**call, "p_attempt": attempt, "p_started_at": now}).rowcount:
            return Claim(run=True)
        if self._execute(_REDELIVERY, {**call, "p_max_deliveries": max_deliveries}).rowcount:
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
        stored_now = self._execute(
            _COMPLETE,
            {"p_task_id": task_id, "p_expert_id": expert_id, "p_result": result, "p_finished_at": time.time()},
        ).rowcount
        if stored_now:  # this one won: no need to read it back
            return result
        row = self._row(task_id, expert_id)
        if row is None or row.result is None:
            raise StoreError(f"expert call {task_id}/{expert_id} vanished from the task store before its result")
        stored: str = row.result
        return stored

    def cancel(self, task_id: str, expert_id: str, result: str) -> bool:
        """Finish a call its server no longer waits for with ``result`` (its cancellation), whether a worker claimed
        it or not: a delivery that comes later answers with it instead of running, and the result of one running now
        is not stored (the first result wins). False when the call already had a result."""
        now = time.time()
        try:
            self._execute(
                _INSERT,
                {
                    "task_id": task_id,
                    "expert_id": expert_id,
                    "state": DONE,
                    "attempt": 0,
                    "deliveries": 0,
                    "result": result,
                    "started_at": now,
                    "finished_at": now,
                },
            )
            return True
        except IntegrityError:
            pass  # claimed by a worker, or finished
        finished = {"p_task_id": task_id, "p_expert_id": expert_id, "p_result": result, "p_finished_at": now}
        return bool(self._execute(_COMPLETE, finished).rowcount)

    def results(self, keys: Iterable[CallKey]) -> dict[CallKey, str]:
        """The stored results among ``keys`` (calls still running are absent)."""
        wanted = set(keys)
        if not wanted:
            return {}
        rows = self._query(_RESULTS, {"p_task_ids": sorted({task_id for task_id, _ in wanted})})
        return {(r.task_id, r.expert_id): r.result for r in rows if (r.task_id, r.expert_id) in wanted}

    def get(self, task_id: str, expert_id: str) -> Any:
        """The call's row (state, attempt, deliveries, worker, result, times), or None."""
        return self._row(task_id, expert_id)

    def prune(self, older_than: float) -> int:
        """Delete finished calls that ended before ``older_than`` (epoch seconds)."""
        statement = sa.delete(expert_calls).where(expert_calls.c.state == DONE, expert_calls.c.finished_at < older_than)
        return int(self._execute(statement).rowcount)

    def _row(self, task_id: str, expert_id: str) -> Any:
        rows = self._query(_ROW, {"p_task_id": task_id, "p_expert_id": expert_id})
        return rows[0] if rows else None

    def _execute(self, statement: sa.Executable, parameters: dict[str, Any] | None = None) -> sa.CursorResult[Any]:
        try:
            with self._require().begin() as conn:
                return conn.execute(statement, parameters)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"task store {redact(self.url)}: {_reason(exc)}") from exc

    def _query(self, statement: sa.Select[Any], parameters: dict[str, Any] | None = None) -> list[Any]:
        try:
            with self._require().connect() as conn:
                return list(conn.execute(statement, parameters).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"task store {redact(self.url)}: {_reason(exc)}") from exc

    def _require(self) -> sa.Engine:
        if self._engine is None:
            raise StoreError("the expert-call ledger is not open")
        return self._engine
