"""The expert-call ledger: the dedupe key, the holder and the result of every expert call run on a worker.

A Celery message may be delivered more than once: a worker's pool process killed mid-call (Celery requeues it), a
whole worker killed (RabbitMQ requeues what it held), a Redis visibility timeout shorter than the call, a server
sending a call again whose worker it saw stop. Workers ``claim`` a call before running it and ``complete`` it
after; each step is one conditional statement, so deliveries racing on one call (several worker processes, SQLite or
PostgreSQL) still leave one result: the first ``complete`` wins and every later one gets the stored result back.

The worker holding a running call ``beat``s while it runs it. A delivery of a call whose holder is alive is a
duplicate and does not run; one whose holder is lost (``Holder.lost``) takes the call over, up to
``max_deliveries``, then finishes it as lost. The server reads ``results`` for the calls it waits on, and
``holders`` to notice a holder that stopped.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from vy_nexus.errors import StoreError
from vy_nexus.store.engine import log_warning, open_database, redact
from vy_nexus.store.schema import expert_calls, worker_beats
from vy_nexus.store.sql import _reason

RUNNING = "running"
DONE = "done"
BEAT_SECONDS = 1.0
"""How often a worker refreshes its beat while it runs a call."""
LOST_AFTER_SECONDS = 5.0
"""A worker whose last beat is older than this is lost (on the worker's own host its process being gone is enough):
five missed beats, so a busy database or a starved process is not taken for a dead one."""

CallKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who runs a running call, as the ledger knows it: the worker (``host:pid``; None between two attempts, while
    Celery's retry waits), how many deliveries ran it, the attempt, and the worker's last beat (None: it never beat,
    as an older vy-nexus does not)."""

    worker: str | None
    deliveries: int
    attempt: int = 0
    beat_at: float | None = None

    def lost(self, now: float) -> str | None:
        """Why the worker is lost (its process is gone, or it stopped beating), or None while it may still run the
        call."""
        if self.worker is None:
            return None
        host, _, pid = self.worker.rpartition(":")
        if host == this_host() and pid.isdigit() and _process_gone(int(pid)):
            return "its process is gone"
        if self.beat_at is not None and now - self.beat_at > LOST_AFTER_SECONDS:
            return f"no sign of life for {now - self.beat_at:.0f}s"
        return None


def this_host() -> str:
    """The host name workers give in their ``host:pid``."""
    return socket.gethostname()


def _process_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # another user's process: it exists
        return False


LostResult = Callable[[Holder], str]
"""Builds the stored result (JSON text) for a call whose workers were lost ``holder.deliveries`` times, the last
one being ``holder.worker``."""


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
_TAKE_OVER = (  # only from the holder this delivery saw lost: of two deliveries racing to take over, one does
    sa.update(expert_calls)
    .where(
        _RUNNING & (_c.deliveries == sa.bindparam("p_seen_deliveries")) & (_c.worker == sa.bindparam("p_seen_worker"))
    )
    .values(deliveries=_c.deliveries + 1, worker=sa.bindparam("p_worker"))
)
_RELEASE = sa.update(expert_calls).where(_RUNNING & (_c.worker == sa.bindparam("p_worker"))).values(worker=None)
_COMPLETE = (
    sa.update(expert_calls)
    .where(_RUNNING)
    .values(state=DONE, result=sa.bindparam("p_result"), finished_at=sa.bindparam("p_finished_at"))
)
_WITH_BEATS = expert_calls.outerjoin(worker_beats, worker_beats.c.worker == _c.worker)
_ROW = sa.select(expert_calls, worker_beats.c.beat_at).select_from(_WITH_BEATS).where(_KEY)
_RESULTS = sa.select(_c.task_id, _c.expert_id, _c.result).where(
    _c.state == DONE, _c.task_id.in_(sa.bindparam("p_task_ids", expanding=True))
)
_HOLDERS = (
    sa.select(_c.task_id, _c.expert_id, _c.worker, _c.deliveries, _c.attempt, worker_beats.c.beat_at)
    .select_from(_WITH_BEATS)
    .where(_c.state == RUNNING, _c.task_id.in_(sa.bindparam("p_task_ids", expanding=True)))
)
_BEAT = (
    sa.update(worker_beats)
    .where(worker_beats.c.worker == sa.bindparam("p_worker"))
    .values(beat_at=sa.bindparam("p_beat_at"))
)
_FIRST_BEAT = sa.insert(worker_beats)


@dataclass(frozen=True, slots=True)
class Claim:
    """``run`` is True when this delivery should run the expert. Else ``result`` is the stored answer, or (None)
    the call runs on the live worker ``holder`` and this delivery is a duplicate to drop."""

    run: bool
    deliveries: int = 1
    result: str | None = None
    holder: str | None = None


class CallLedger:
    def __init__(self, url: str, *, on_warning: Callable[[str], None] | None = None) -> None:
        self.url = url
        self._warn = on_warning or log_warning
        self._engine: sa.Engine | None = None
        self._beaten: dict[str, float] = {}
        """When this ledger last wrote each worker's beat."""

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
        """Take one delivery of a call for ``worker``. A new call or a new attempt (a Celery retry) runs. Another
        delivery of the same attempt runs only when the call's holder is lost, while deliveries stay within
        ``max_deliveries``; past them the call is finished with ``lost(holder)``. While the holder lives the
        delivery is a duplicate (``Claim.holder``). A finished call answers with its stored result."""
        now = time.time()
        if now - self._beaten.get(worker, 0.0) > BEAT_SECONDS / 2:  # the holder of a call is never seen stale
            self.beat(worker)
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
        # Each turn either answers or saw another delivery take the call over (deliveries grew): it ends.
        while True:
            row = self._row(task_id, expert_id)
            if row is None:  # pruned between the statements: start over
                return self.claim(
                    task_id, expert_id, attempt=attempt, worker=worker, max_deliveries=max_deliveries, lost=lost
                )
            if row.state == DONE:
                return Claim(run=False, deliveries=row.deliveries, result=row.result)
            holder = Holder(row.worker, row.deliveries, row.attempt, row.beat_at)
            if holder.lost(now) is None:
                return Claim(run=False, deliveries=row.deliveries, holder=row.worker)
            if row.deliveries >= max_deliveries:
                stored = self.complete(task_id, expert_id, lost(holder))
                return Claim(run=False, deliveries=row.deliveries, result=stored)
            seen = {"p_seen_deliveries": row.deliveries, "p_seen_worker": row.worker}
            if self._execute(_TAKE_OVER, {**call, **seen}).rowcount:
                return Claim(run=True, deliveries=row.deliveries + 1)

    def beat(self, worker: str) -> None:
        """Say that ``worker`` is alive now."""
        now = time.time()
        beat = {"p_worker": worker, "p_beat_at": now}
        if not self._execute(_BEAT, beat).rowcount:
            try:
                self._execute(_FIRST_BEAT, {"worker": worker, "beat_at": now})
            except IntegrityError:  # its other thread wrote the first one meanwhile
                self._execute(_BEAT, beat)
        self._beaten[worker] = now

    def release(self, task_id: str, expert_id: str, worker: str) -> None:
        """``worker`` hands the call back to Celery for a retry: nobody holds it until the retry is claimed, so its
        worker's silence meanwhile is no loss."""
        self._execute(_RELEASE, {"p_task_id": task_id, "p_expert_id": expert_id, "p_worker": worker})

    def holders(self, keys: Iterable[CallKey]) -> dict[CallKey, Holder]:
        """The holders of the calls among ``keys`` that are running (claimed and not finished)."""
        wanted = set(keys)
        if not wanted:
            return {}
        rows = self._query(_HOLDERS, {"p_task_ids": sorted({task_id for task_id, _ in wanted})})
        return {
            (r.task_id, r.expert_id): Holder(r.worker, r.deliveries, r.attempt, r.beat_at)
            for r in rows
            if (r.task_id, r.expert_id) in wanted
        }

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
        """The call's row (state, attempt, deliveries, worker, result, times, the worker's last ``beat_at``), or
        None."""
        return self._row(task_id, expert_id)

    def prune(self, older_than: float) -> int:
        """Delete finished calls that ended before ``older_than`` (epoch seconds), and the beats of workers silent
        since then; returns how many calls."""
        statement = sa.delete(expert_calls).where(expert_calls.c.state == DONE, expert_calls.c.finished_at < older_than)
        deleted = int(self._execute(statement).rowcount)
        self._execute(sa.delete(worker_beats).where(worker_beats.c.beat_at < older_than))
        return deleted

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
