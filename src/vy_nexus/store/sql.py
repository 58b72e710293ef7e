"""The task store on SQLAlchemy Core: an SQLite file by default, PostgreSQL by URL, one code path.

Writes are buffered (store/buffer.py) and written by a background thread every ``flush_interval`` seconds in one
transaction; ``flush`` writes at once and returns when the data is committed — ``accept(..., durable=True)``
callers (the CLI, the API's 202) use it, so a task they report is on disk. Reads flush first, so a process
always sees its own writes.

Each process registers as an *owner* and refreshes its heartbeat; ``recover`` (run on start) marks the queued and
running tasks of owners that are gone as ``interrupted`` with the reason. Cancellation across processes: a
``request_cancel`` for a task another process runs sets ``cancel_requested``; the owner's thread polls for these
while it has live tasks and hands them to ``on_cancel``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import orjson
import psutil
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from vy_nexus.errors import StoreError, TaskError, TaskNotFoundError
from vy_nexus.store.buffer import PendingWrites, Row
from vy_nexus.store.engine import log_warning, open_database, redact
from vy_nexus.store.protocol import StoredRuling
from vy_nexus.store.schema import owners, tasks
from vy_nexus.tasks import LIVE_STATES, AggregatedResult, ExpertResult, RoutingDecision, Task, TaskState
from vy_nexus.unicode_text import storable

if TYPE_CHECKING:
    # pydantic loads where records are read (get, list, recover): a `run` only writes them.
    from vy_nexus.store.records import TaskPage, TaskRecord

Clock = Callable[[], float]
MAX_PAGE = 500
MAX_OFFSET = 2**62  # past any real page, inside every database's integer range


def new_owner_id() -> str:
    """host:pid:start:nonce — unique across hosts, pid reuse and several stores in one process."""
    started = int(psutil.Process().create_time())
    return f"{socket.gethostname()}:{os.getpid()}:{started}:{uuid.uuid4().hex[:8]}"


def _owner_alive(owner_id: str, heartbeat_at: float | None, now: float, lease: float) -> bool:
    host, pid_text, started_text = ([*owner_id.split(":"), "", ""])[:3]
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            process = psutil.Process(int(pid_text))
            return started_text == str(int(process.create_time()))
        except psutil.Error:
            return False
    return heartbeat_at is not None and now - heartbeat_at < lease


def to_json(value: Any) -> str:
    """One JSON text for anything a task or an expert may carry (unknown types as their ``repr``). Never raises:
    what orjson refuses (integers past 64 bits, lone surrogates) goes through the standard library, escaped."""
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(repr(value))


def from_json(text: str) -> Any:
    # The standard library on the read side: orjson would turn integers past 64 bits into floats and refuses
    # escaped lone surrogates; reads are not on the hot path.
    return json.loads(text)


def _results_json(results: list[ExpertResult]) -> str:
    return to_json([result.as_dict() for result in results])


def task_json(task: Task) -> str:
    """The task without its input, as JSON (the input is stored on its own, maybe summarised)."""
    return to_json(task.as_dict(include_input=False))


def summarise_input(value: Any, max_bytes: int) -> str:
    """The input as stored (JSON text): itself when small, else a note of its size. The task text is always kept."""
    text = to_json(value)
    if len(text) <= max_bytes:
        return text
    return to_json({"omitted": True, "json_bytes": len(text), "kind": type(value).__name__})


_QUEUED, _RUNNING = TaskState.QUEUED.value, TaskState.RUNNING.value
TASK_COLUMNS = [column.name for column in tasks.columns]


class RulingTexts:
    """Rulings as JSON, remembered by identity: governance shares its common rulings (frozen) across tasks, so most
    rows render one already rendered. Bounded; each entry keeps its ruling alive, so an id is never reused under it."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._texts: dict[int, tuple[StoredRuling, str]] = {}

    def render(self, ruling: StoredRuling | None) -> str | None:
        if ruling is None:
            return None
        if isinstance(ruling, dict):  # a caller's own mapping may change: rendered every time
            return to_json(ruling)
        known = self._texts.get(id(ruling))
        if known is not None and known[0] is ruling:
            return known[1]
        if len(self._texts) >= self._size:
            self._texts.clear()
        text = to_json(ruling.as_dict())
        self._texts[id(ruling)] = (ruling, text)
        return text


def _state_values(states: Iterable[TaskState | str]) -> list[str]:
    """The states' names; a state given as its name ("failed") counts, one given alone too. An unknown one is a
    ``TaskError`` that lists the known ones."""
    values: list[str] = []
    for state in [states] if isinstance(states, str) else states:
        try:
            values.append(TaskState(state).value)
        except ValueError:
            known = ", ".join(known.value for known in TaskState)
            raise TaskError(f"unknown task state {state!r}: the states are {known}") from None
    return values


def _experts_text(decision: RoutingDecision) -> str:
    """The experts as ",code,research,": one LIKE finds the tasks of an expert on every database."""
    return "," + ",".join(decision.expert_ids) + ","


class SqlTaskStore:
    def __init__(
        self,
        url: str,
        *,
        flush_interval: float = 0.05,
        retention_seconds: float = 7 * 86400,
        lease_seconds: float = 30.0,
        max_input_bytes: int = 1 << 20,
        clock: Clock = time.time,
        owner_id: str | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.flush_interval = flush_interval
        self.retention_seconds = retention_seconds
        self.lease_seconds = lease_seconds
        self.max_input_bytes = max_input_bytes
        self.owner_id = owner_id or new_owner_id()
        self.on_cancel: Callable[[str], None] | None = None
        self._clock = clock
        self._warn = on_warning or log_warning
        self._pending = PendingWrites()
        self._live: set[str] = set()
        self._cancel_delivered: set[str] = set()
        self._write_lock = threading.Lock()
        self._waiters: list[Future[None]] = []
        self._waiters_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: sa.Engine | None = None
        self._insert_sql: tuple[str, list[str] | None] | None = None
        self._rulings = RulingTexts()  # used under ``_write_lock``, as every rendering is

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def open(self) -> list[TaskRecord]:
        """Connect, create the schema, register this process, recover orphans, prune; return the recovered tasks."""
        if self._engine is not None:
            return []
        self._engine = open_database(self.url, self._warn)
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(sa.delete(owners).where(owners.c.id == self.owner_id))
            host, pid = socket.gethostname(), os.getpid()
            conn.execute(
                sa.insert(owners).values(id=self.owner_id, host=host, pid=pid, started_at=now, heartbeat_at=now)
            )
        recovered = self.recover()
        self.prune()
        self._thread = threading.Thread(target=self._run, name="vy-nexus-task-store", daemon=True)
        self._thread.start()
        return recovered

    def close(self) -> None:
        """Write what is pending, unregister this process, release connections. Idempotent."""
        if self._engine is None:
            return
        with self._waiters_lock:
            self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._flush_for_waiters()  # also answers anyone who asked just as the thread stopped
        try:
            with self._transaction() as conn:
                conn.execute(sa.delete(owners).where(owners.c.id == self.owner_id))
        except StoreError as exc:
            self._warn(str(exc))
        self._engine.dispose()
        self._engine = None

    # -- writes (hot path: memory only) ----------------------------------------------------------------------------

    def accept(self, task: Task) -> None:
        self._live.add(task.id)
        self._pending.insert(task.id, {"id": task.id, "state": _QUEUED, "created_at": self._clock(), "_task": task})

    def routed(self, task_id: str, decision: RoutingDecision, ruling: StoredRuling | None = None) -> None:
        self._pending.update(task_id, {"_decision": decision, "ruling": ruling})

    def started(self, task_id: str) -> None:
        self._pending.update(task_id, {"state": _RUNNING, "started_at": self._clock()})

    def finished(
        self,
        task_id: str,
        state: TaskState,
        *,
        result: AggregatedResult | None = None,
        error: str | None = None,
    ) -> None:
        now = self._clock()
        fields: Row = {"state": state.value, "finished_at": now, "error": error and storable(error)}
        if result is not None:
            fields["_result"] = result
        self._pending.update(task_id, fields)
        self._live.discard(task_id)
        self._cancel_delivered.discard(task_id)

    # -- durability ------------------------------------------------------------------------------------------------

    def flush_soon(self) -> Future[None]:
        """A future that completes once everything accepted so far is committed (or fails with the ``StoreError``).
        The store's thread writes for every caller waiting at that moment in one transaction (a group commit), so
        a server answering many submissions at once pays one commit, not one each, and no pool thread waits on a
        lock. Without the thread (a store not opened), the flush happens here."""
        waiter: Future[None] = Future()
        with self._waiters_lock:
            threaded = self._thread is not None and self._thread.is_alive() and not self._closing.is_set()
            if threaded:  # else ``close`` has begun: its last flush may have run already
                self._waiters.append(waiter)
        if threaded:
            self._wake.set()
            return waiter
        try:
            self.flush()
            waiter.set_result(None)
        except Exception as exc:
            waiter.set_exception(exc)
        return waiter

    def flush(self) -> None:
        """Write everything pending now, in one transaction; returns once it is committed."""
        with self._write_lock:
            self._flush_locked()

    def _flush_for_waiters(self) -> None:
        """The thread's flush: it also answers the ``flush_soon`` callers whose writes it covers."""
        with self._write_lock:
            with self._waiters_lock:  # taken before the batch, so every waiter's task is in it
                waiters, self._waiters = self._waiters, []
            try:
                self._flush_locked()
            except Exception as exc:
                failure = exc if isinstance(exc, StoreError) else StoreError(f"task store: {type(exc).__name__}: {exc}")
                for waiter in waiters:
                    waiter.set_exception(failure)
                raise
            for waiter in waiters:
                waiter.set_result(None)

    def _flush_locked(self) -> None:
        inserts, updates = self._pending.take()
        if not inserts and not updates:
            return
        try:
            with self._transaction() as conn:
                if inserts:
                    self._insert_many(conn, inserts.values())
                for columns, rows in _group_updates(self._update_row(i, f) for i, f in updates.items()):
                    statement = (
                        sa.update(tasks)
                        .where(tasks.c.id == sa.bindparam("_id"))
                        .values({c: sa.bindparam(c) for c in columns})
                    )
                    conn.execute(statement, rows)
        except Exception:  # nothing is lost: the batch waits for the next flush
            self._pending.give_back(inserts, updates)
            raise

    def _insert_many(self, conn: sa.Connection, rows: Iterable[Row]) -> None:
        """The batch insert, compiled once per dialect and sent as plain driver parameters built straight in column
        order: SQLAlchemy's per-row parameter processing cost more than SQLite's own insert (benchmarks/overhead.py)."""
        if self._insert_sql is None:
            compiled = sa.insert(tasks).compile(dialect=conn.dialect, column_keys=TASK_COLUMNS)
            keys = list(compiled.positiontup or []) if compiled.positional else None
            if keys is not None and keys != TASK_COLUMNS:
                raise StoreError(f"unexpected parameter order for the task insert on {conn.dialect.name}: {keys}")
            self._insert_sql = (str(compiled), keys)
        sql, keys = self._insert_sql
        values = [self._insert_values(row) for row in rows]
        params: list[Any] = values if keys is not None else [dict(zip(TASK_COLUMNS, v, strict=True)) for v in values]
        conn.exec_driver_sql(sql, params)

    def _insert_values(self, row: Row) -> tuple[Any, ...]:
        """A new task's row, with the changes that coalesced into it, in the order of ``TASK_COLUMNS``."""
        task: Task = row["_task"]
        decision: RoutingDecision | None = row.get("_decision")
        result: AggregatedResult | None = row.get("_result")
        ruling = row.get("ruling")
        return (
            task.id,
            row["state"],
            # The exact text stays in the task's JSON (unicode_text.py).
            storable(task.description),
            storable(task.type),
            task.priority.value,
            task_json(task),
            summarise_input(task.input, self.max_input_bytes),
            self.owner_id,
            "" if decision is None else _experts_text(decision),
            None if decision is None else to_json(decision.as_dict()),
            self._rulings.render(ruling),
            "[]" if result is None else _results_json(result.results),
            None if result is None else to_json(result.output),
            None if result is None else result.confidence,
            row.get("error"),
            row["created_at"],
            row.get("started_at"),
            row.get("finished_at"),
            None if result is None else result.duration_ms,
            False,
        )

    def _update_row(self, task_id: str, fields: Row) -> Row:
        return {"_id": task_id, **self._convert(fields)}

    def _convert(self, fields: Row) -> Row:
        out = {k: v for k, v in fields.items() if not k.startswith("_")}
        if "ruling" in out:
            out["ruling"] = self._rulings.render(out["ruling"])
        decision: RoutingDecision | None = fields.get("_decision")
        if decision is not None:
            out["decision"] = to_json(decision.as_dict())
            out["experts"] = _experts_text(decision)
        result: AggregatedResult | None = fields.get("_result")
        if result is not None:
            out["results"] = _results_json(result.results)
            out["output"] = to_json(result.output)
            out["confidence"] = result.confidence
            out["duration_ms"] = result.duration_ms
        return out

    # -- reads -----------------------------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord:
        self.flush()
        task_id = storable(task_id)  # an id no database can hold names no task; the lookup says so
        with self._connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None:
            raise TaskNotFoundError(f"no task with id '{task_id}' in the task store", task_id=task_id)
        return _record(row)

    def list_tasks(
        self,
        *,
        states: Iterable[TaskState | str] = (),
        expert: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> TaskPage:
        """Newest first, filtered by state, expert and creation time."""
        self.flush()
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, min(offset, MAX_OFFSET))
        conditions: list[sa.ColumnElement[bool]] = []
        chosen = _state_values(states)
        if chosen:
            conditions.append(tasks.c.state.in_(chosen))
        if expert:
            conditions.append(tasks.c.experts.like(f"%,{_escape_like(storable(expert))},%", escape="\\"))
        if since is not None:
            conditions.append(tasks.c.created_at >= since)
        if until is not None:
            conditions.append(tasks.c.created_at < until)
        where = sa.and_(sa.true(), *conditions)
        with self._connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(where)).scalar_one()
            rows = conn.execute(
                sa.select(tasks)
                .where(where)
                .order_by(tasks.c.created_at.desc(), tasks.c.id)
                .limit(limit)
                .offset(offset)
            ).mappings()
            items = [_record(row) for row in rows]
        following = offset + len(items)
        from vy_nexus.store.records import TaskPage

        return TaskPage(items=items, total=total, next_offset=following if following < total else None)

    # -- cancellation, recovery, retention -------------------------------------------------------------------------

    def request_cancel(self, task_id: str) -> TaskRecord:
        """Mark a live task for cancellation by its owner (see the module docstring); returns the record as it is."""
        record = self.get(task_id)
        if record.state in LIVE_STATES and not record.cancel_requested:
            with self._transaction() as conn:
                conn.execute(sa.update(tasks).where(tasks.c.id == record.id).values(cancel_requested=True))
            record = record.model_copy(update={"cancel_requested": True})
        return record

    def recover(self) -> list[TaskRecord]:
        """Mark the live tasks of owners that are gone as interrupted; return them."""
        now = self._clock()
        with self._connect() as conn:
            live = conn.execute(
                sa.select(tasks.c.id, tasks.c.owner, tasks.c.state).where(
                    tasks.c.state.in_([s.value for s in LIVE_STATES]), tasks.c.owner != self.owner_id
                )
            ).all()
            beats = {row[0]: row[1] for row in conn.execute(sa.select(owners.c.id, owners.c.heartbeat_at))}
        gone = {
            owner
            for _, owner, _ in live
            if not _owner_alive(owner or "", beats.get(owner or ""), now, self.lease_seconds)
        }
        orphans = [(task_id, owner, state) for task_id, owner, state in live if owner in gone]
        if not orphans:
            return []
        with self._transaction() as conn:
            for task_id, owner, state in orphans:
                when = "before it started" if state == TaskState.QUEUED.value else "while it ran"
                conn.execute(
                    sa.update(tasks)
                    .where(tasks.c.id == task_id, tasks.c.state == state)
                    .values(
                        state=TaskState.INTERRUPTED.value,
                        finished_at=now,
                        error=f"interrupted: the process that accepted it ({owner}) stopped {when}",
                    )
                )
            conn.execute(sa.delete(owners).where(owners.c.id.in_(gone)))
        return [self.get(task_id) for task_id, _, _ in orphans]

    def prune(self) -> int:
        """Delete finished tasks older than the retention period; return how many."""
        cutoff = self._clock() - self.retention_seconds
        finished = [s.value for s in TaskState if s.finished]
        with self._transaction() as conn:
            deleted = conn.execute(
                sa.delete(tasks).where(tasks.c.state.in_(finished), tasks.c.finished_at < cutoff)
            ).rowcount
        return int(deleted or 0)

    # -- background thread -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        last_beat = last_prune = self._clock()
        last_poll = 0.0
        while not self._closing.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._flush_for_waiters()
                now = self._clock()
                if now - last_beat >= self.lease_seconds / 3:
                    last_beat = now
                    self._heartbeat(now)
                # Once per interval, however often ``flush_soon`` wakes the thread (a busy server wakes it per request).
                if self._live and self.on_cancel is not None and time.monotonic() - last_poll >= self.flush_interval:
                    last_poll = time.monotonic()
                    self._deliver_cancel_requests()
                if now - last_prune >= 3600:
                    last_prune = now
                    self.prune()
            except Exception as exc:  # the database is away (or worse): keep the writes, try again next round
                self._warn(str(exc) if isinstance(exc, StoreError) else f"task store: {type(exc).__name__}: {exc}")
                self._closing.wait(1.0)

    def _heartbeat(self, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(sa.update(owners).where(owners.c.id == self.owner_id).values(heartbeat_at=now))

    def _deliver_cancel_requests(self) -> None:
        live = list(self._live)
        with self._connect() as conn:
            wanted = conn.execute(
                sa.select(tasks.c.id).where(
                    tasks.c.cancel_requested.is_(True),
                    tasks.c.id.in_(live),
                    tasks.c.state.in_([s.value for s in LIVE_STATES]),
                )
            ).scalars()
            requested = list(wanted)
        for task_id in requested:
            if self.on_cancel is not None and task_id in self._live and task_id not in self._cancel_delivered:
                self._cancel_delivered.add(task_id)
                self.on_cancel(task_id)

    # -- plumbing --------------------------------------------------------------------------------------------------

    def _require_engine(self) -> sa.Engine:
        if self._engine is None:
            raise StoreError("the task store is not open (start the system first)")
        return self._engine

    def _transaction(self) -> _Guarded:
        return _Guarded(self._require_engine(), self.url, begin=True)

    def _connect(self) -> _Guarded:
        return _Guarded(self._require_engine(), self.url, begin=False)


class _Guarded:
    """A connection (or transaction) whose database errors become ``StoreError`` naming the store."""

    def __init__(self, engine: sa.Engine, url: str, *, begin: bool) -> None:
        self._engine = engine
        self._url = url
        self._begin = begin
        self._context: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._context = self._engine.begin() if self._begin else self._engine.connect()
            connection: sa.Connection = self._context.__enter__()
            return connection
        except SQLAlchemyError as exc:
            raise StoreError(f"task store {redact(self._url)}: {_reason(exc)}") from exc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StoreError(f"task store {redact(self._url)}: {_reason(error)}") from error
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"task store {redact(self._url)}: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _group_updates(rows: Iterable[Row]) -> list[tuple[tuple[str, ...], list[Row]]]:
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        columns = tuple(sorted(k for k in row if k != "_id"))
        groups.setdefault(columns, []).append(row)
    return list(groups.items())


def _record(row: Any) -> TaskRecord:
    from vy_nexus.store.records import TaskRecord

    data = dict(row)
    data["experts"] = [e for e in (data.get("experts") or "").split(",") if e]
    task = from_json(data.pop("task") or "{}")
    stored_input = data.pop("input", None)
    task["input"] = None if stored_input is None else from_json(stored_input)
    data["task"] = task
    for key in ("decision", "ruling", "output"):
        text = data.get(key)
        data[key] = None if text is None else from_json(text)
    data["results"] = from_json(data.get("results") or "[]")
    return TaskRecord.model_validate(data)
