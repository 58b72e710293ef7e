"""The Celery executor: each expert call is one Celery task on the expert's queue, run by a worker process.

The event loop never waits on the network: messages are published from a small thread pool (with Celery's
publish retries while the broker is away, bounded by the call's budget), and one watcher thread waits for the
workers' result notices and reads those results from the call ledger in the task store (polling the ledger while
the broker is away). A broker that cannot be reached, or no result within the budget,
comes back as an error result naming the broker or the queue, so aggregation always runs.

The watcher also looks, every second, at who holds each call in flight: a call whose worker is lost (its process
gone, or silent for ``LOST_AFTER_SECONDS``) is sent again at once — on Redis nothing else would bring it back within
its budget — or, once its workers were lost ``executor.max_redeliveries`` + 1 times, finished as lost. A call still
unanswered at the end of its budget names the worker that took it and stopped, rather than asking whether a worker
consumes the queue.

A call whose task is cancelled, or whose server closes the executor while it runs, is cancelled wherever it is
(``CeleryExecutor.cancel_calls``): dropped from its queue, or stopped at the expert's next ``await`` on the worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kombu.exceptions import OperationalError

from vy_nexus.config import Settings
from vy_nexus.errors import BrokerError, StoreError
from vy_nexus.execution.celery_app import (
    CANCEL_COMMAND,
    HARD_LIMIT_MARGIN,
    SOFT_LIMIT_MARGIN,
    TASK_NAME,
    Notice,
    ResultNotices,
    broker_label,
    build_celery_app,
    check_broker,
    queue_for,
    refusal,
    worker_lost,
)
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.store.calls import DONE, CallKey, CallLedger, Holder
from vy_nexus.store.engine import redact
from vy_nexus.store.sql import to_json
from vy_nexus.tasks import ExpertResult

RESULT_GRACE = 0.5
"""Seconds the server waits past a call's budget for the worker's own timeout result to arrive."""
CANCEL_CONNECT_SECONDS = 2.0
"""How long cancelling calls waits for the broker to accept a connection."""
CANCEL_WAIT_SECONDS = 5.0
"""How long closing the executor waits for the calls still in flight to be cancelled."""

_log = logging.getLogger(__name__)

OnLost = Callable[[CallKey, Holder, str], None]
"""Told of a call in flight whose worker is lost: (its key, its holder, why the holder is taken for lost)."""


class ResultWatcher:
    """One thread that hands each call's result, once it is in the ledger, to the future waiting for it.

    With ``notices`` (the workers' announcements through the broker) the thread waits on them and reads the ledger
    for the keys announced, plus a sweep of every call in flight right after subscribing and every
    ``sweep_seconds`` (a notice lost with the broker costs that much delay, never the result). Without notices, or
    while the broker is away, it polls the ledger: every ``fastest`` seconds while results keep coming, backing off
    to ``slowest``. Polling cost the server ~0.3 s of CPU per 40 calls of 100 ms (a share of the cores the workers
    need); waiting on notices costs one ledger read per result.

    A worker announces a call only once its result is committed to the ledger it writes, so a notice whose result
    this ledger does not hold comes from a worker with another ``store.url``: that call ends at once with an error
    naming both stores, instead of waiting out its budget for a result that can never arrive here.

    With ``on_lost``, every ``check_seconds`` it also reads who holds the calls in flight and hands each call whose
    holder is lost to ``on_lost`` — once per holder and delivery, so a call sent again is not sent again and again
    while nobody takes it.
    """

    def __init__(
        self,
        ledger: CallLedger,
        *,
        notices: ResultNotices | None = None,
        fastest: float = 0.002,
        slowest: float = 0.025,
        sweep_seconds: float = 1.0,
        relisten_seconds: float = 2.0,
        on_lost: OnLost | None = None,
        check_seconds: float = 1.0,
    ) -> None:
        self._ledger = ledger
        self._notices = notices
        self._on_lost = on_lost
        self._check_seconds = check_seconds
        self._next_check = 0.0
        self._reported: dict[CallKey, tuple[str | None, int]] = {}
        self._fastest = fastest
        self._slowest = slowest
        self._sweep_seconds = sweep_seconds
        self._relisten_seconds = relisten_seconds
        self._lock = threading.Lock()
        self._waiting: dict[CallKey, tuple[asyncio.AbstractEventLoop, asyncio.Future[str]]] = {}
        self._noticed: dict[CallKey, Notice] = {}
        self._next_sweep = 0.0
        self._listen_at = 0.0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        """Set while subscribed to the notices (else the watcher polls)."""
        self.errors = 0
        self.notices = 0
        self.last_error: str | None = None
        """Why the last read of the ledger failed (None: it succeeded)."""

    def watch(self, key: CallKey) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        with self._lock:
            self._waiting[key] = (loop, future)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vy-nexus-celery-results", daemon=True)
                self._thread.start()
        self._wake.set()
        return future

    def forget(self, key: CallKey) -> None:
        with self._lock:
            self._waiting.pop(key, None)

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        interval = self._fastest
        while not self._closing.is_set():
            if self._notices is not None and time.monotonic() >= self._listen_at:
                self._next_sweep = 0.0  # sweep at once: results may have come while nobody listened
                try:
                    self._notices.listen(self._on_notice, self._between_notices)
                except Exception:  # the broker is away: poll the ledger until it is back
                    self.errors += 1
                    self._listen_at = time.monotonic() + self._relisten_seconds
                finally:
                    self.listening.clear()
                continue
            interval = self._poll(interval)

    def _on_notice(self, notice: Notice) -> None:
        self.notices += 1
        self._noticed[notice.key] = notice

    def _between_notices(self) -> bool:
        """Read the results announced since the last call (every call in flight when a sweep is due)."""
        with self._lock:
            noticed = {key: notice for key, notice in self._noticed.items() if key in self._waiting}
            sweep = time.monotonic() >= self._next_sweep
            keys = list(self._waiting) if sweep else list(noticed)
        self._noticed.clear()
        if sweep:
            self._next_sweep = time.monotonic() + self._sweep_seconds
        if keys:
            found = self._deliver(keys)
            if found is not None:
                for key, notice in noticed.items():
                    if key not in found:
                        self._resolve(key, self._elsewhere(notice))
        self._check_holders()
        self.listening.set()  # after the first sweep: from here on only a notice (or the next sweep) finds a result
        return not self._closing.is_set()

    def _elsewhere(self, notice: Notice) -> str:
        """The result of a call a worker answered in another task store (see the class docstring), as JSON."""
        worker = f"worker {notice.worker}" if notice.worker else "a worker"
        where = f" ({notice.store})" if notice.store else ""
        error = (
            f"{worker} ran it but stored its result in another task store{where}, not this server's"
            f" ({redact(self._ledger.url)}): give the server and every worker the same store.url"
        )
        task_id, expert_id = notice.key
        return to_json(ExpertResult(task_id=task_id, expert_id=expert_id, error=error, error_kind="store").as_dict())

    def _poll(self, interval: float) -> float:
        """One round of polling; returns the next interval."""
        with self._lock:
            keys = list(self._waiting)
        if not keys:
            self._wake.wait(None if self._notices is None else self._relisten_seconds)
            self._wake.clear()
            return self._fastest
        found = self._deliver(keys)
        self._check_holders()
        interval = self._fastest if found else min(self._slowest, interval * 1.25)
        if self._wake.wait(interval):
            self._wake.clear()
            interval = self._fastest
        return interval

    def _check_holders(self) -> None:
        """Hand the calls in flight whose holder is lost to ``on_lost`` (when a check is due)."""
        if self._on_lost is None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self._check_seconds
        with self._lock:
            keys = set(self._waiting)
        self._reported = {key: seen for key, seen in self._reported.items() if key in keys}
        if not keys:
            return
        try:
            holders = self._ledger.holders(keys)
        except Exception as exc:  # the store is away for a moment: the next check looks again
            self.errors += 1
            self.last_error = str(exc)
            return
        now = time.time()
        for key, holder in holders.items():
            why = holder.lost(now)
            seen = (holder.worker, holder.deliveries)
            if why is not None and self._reported.get(key) != seen:
                self._reported[key] = seen
                self._on_lost(key, holder, why)

    def answer(self, key: CallKey, result: str) -> None:
        """Hand ``result`` (JSON) to whoever waits for the call ``key``."""
        self._resolve(key, result)

    def _deliver(self, keys: list[CallKey]) -> set[CallKey] | None:
        """Resolve the futures of the ``keys`` whose results are in the ledger; returns those keys (None: the
        ledger could not be read)."""
        try:
            found = self._ledger.results(keys)
        except Exception as exc:  # the store is away for a moment: the calls time out if it stays away
            self.errors += 1
            self.last_error = str(exc)
            return None
        self.last_error = None
        for key, result in found.items():
            self._resolve(key, result)
        return set(found)

    def _resolve(self, key: CallKey, result: str) -> None:
        with self._lock:
            waiter = self._waiting.pop(key, None)
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(_resolve, future, result)


def _resolve(future: asyncio.Future[str], result: str) -> None:
    if not future.done():
        future.set_result(result)


class CeleryExecutor:
    name = "celery"

    def __init__(self, settings: Settings, registry: ExpertRegistry, *, publish_threads: int = 4) -> None:
        self.settings = settings
        self.registry = registry
        self.app = build_celery_app(settings)
        self.ledger = CallLedger(settings.store_url)
        self.watcher = ResultWatcher(self.ledger, notices=ResultNotices(self.app), on_lost=self._worker_lost)
        self._publisher = concurrent.futures.ThreadPoolExecutor(publish_threads, thread_name_prefix="vy-nexus-send")
        self._opened = False
        self._open_lock = threading.Lock()
        self._lock = threading.Lock()
        self._in_flight: dict[CallKey, ExpertCall] = {}
        """Calls sent (or being sent) whose results are still wanted, or whose cancellation is still to be sent."""
        self._sent_at: dict[CallKey, float] = {}
        """When each call in flight was first sent (epoch): its budget counts from then, however often it is sent."""
        self._cancelling: set[concurrent.futures.Future[None]] = set()

    @property
    def broker(self) -> str:
        return broker_label(str(self.app.conf.broker_url))

    async def run(self, call: ExpertCall) -> ExpertResult:
        task, expert_id = call.task, call.expert_id
        started = time.perf_counter()
        try:
            await self._open()
        except StoreError as exc:
            return _failure(call, f"cannot reach the task store, where the results come back: {exc}", "store", started)
        key = (task.id, expert_id)
        result = self.watcher.watch(key)
        with self._lock:
            self._in_flight[key] = call
        cancelled = False
        try:
            return await self._send_and_wait(call, result, started)
        except asyncio.CancelledError:  # the task was cancelled or the server stops: so does the call, wherever it is
            cancelled = True
            self._cancel_soon(key)
            raise
        finally:
            self.watcher.forget(key)
            with self._lock:
                self._sent_at.pop(key, None)
                if not cancelled:
                    self._in_flight.pop(key, None)

    async def _send_and_wait(self, call: ExpertCall, result: asyncio.Future[str], started: float) -> ExpertResult:
        budget = call.budget_seconds
        queue = queue_for(self.settings.executor, call.expert_id)
        loop = asyncio.get_running_loop()
        with self._lock:
            self._sent_at[_key(call)] = time.time()
        try:
            await loop.run_in_executor(self._publisher, self._publish, call, queue)
        except Exception as exc:
            refused = refusal(exc)
            if refused is not None:
                return _failure(call, f"the broker {self.broker} refused the call: {refused}", "unreachable", started)
            if isinstance(exc, OperationalError):
                return _failure(call, f"cannot reach the broker {self.broker}: {exc}", "unreachable", started)
            reason = str(exc) or repr(exc)
            return _failure(call, f"could not send the call to {queue}: {reason}", "error", started)
        try:
            async with asyncio.timeout(max(0.0, budget - (time.perf_counter() - started)) + RESULT_GRACE):
                data = await result
        except TimeoutError:
            return await asyncio.to_thread(self._unanswered, call, queue, started)
        return ExpertResult.from_dict(json.loads(data))

    def _unanswered(self, call: ExpertCall, queue: str, started: float) -> ExpertResult:
        """The result of a call its budget ran out on: what the ledger says of it — nobody took it, the worker that
        took it stopped, or that worker still runs it."""
        budget = call.budget_seconds
        try:
            row = self.ledger.get(call.task.id, call.expert_id)
        except StoreError:
            row = None  # the watcher's last error says why
        if row is not None and row.state == DONE and row.result is not None:  # it came as the budget ended
            return ExpertResult.from_dict(json.loads(row.result))
        holder = None if row is None else Holder(row.worker, row.deliveries, row.attempt, row.beat_at)
        why = None if holder is None else holder.lost(time.time())
        kind = "timeout"
        if holder is None or holder.worker is None:  # nobody took it (or its retry)
            message = f"no result within {budget:.1f}s from queue {queue} (is a worker consuming it?)"
        elif why is not None:
            kind = "worker_lost"
            message = (
                f"worker {holder.worker} took the call from queue {queue} and stopped ({why}); no other worker took it"
                f" up within {budget:.1f}s"
            )
        else:
            message = (
                f"no result within {budget:.1f}s from queue {queue}: worker {holder.worker} took it and still runs it"
            )
        if self.watcher.last_error is not None:
            message += f"; the task store, where results come back, could not be read: {self.watcher.last_error}"
        failed = _failure(call, message, kind, started)
        if holder is not None and holder.worker is not None:
            failed.metadata["worker"] = holder.worker
        return failed

    def _worker_lost(self, key: CallKey, holder: Holder, why: str) -> None:
        """(The watcher's thread) The worker holding the call ``key`` is lost: act from the publishing threads."""
        with self._lock:
            call, sent_at = self._in_flight.get(key), self._sent_at.get(key)
        if call is None or sent_at is None:
            return
        with contextlib.suppress(RuntimeError):  # closed: the call is being cancelled
            self._publisher.submit(self._after_loss, call, holder, why, sent_at)

    def _after_loss(self, call: ExpertCall, holder: Holder, why: str, sent_at: float) -> None:
        """Send the call again for another worker to take over, or finish it as lost once its workers were lost as
        often as ``executor.max_redeliveries`` allows."""
        name = celery_id(call)
        try:
            if holder.deliveries > self.settings.executor.max_redeliveries:
                lost = worker_lost(call.task.id, call.expert_id, holder, holder.attempt + 1)
                _log.warning("call %s: worker %s stopped (%s); %s", name, holder.worker, why, lost.error)
                self.watcher.answer((call.task.id, call.expert_id), self.ledger.complete(*_key(call), _json(lost)))
                return
            if time.time() - sent_at >= call.budget_seconds:
                return
            queue = queue_for(self.settings.executor, call.expert_id)
            _log.info("call %s: worker %s stopped (%s); sent again to %s", name, holder.worker, why, queue)
            self._publish(call, queue, sent_at=sent_at, retries=holder.attempt)
        except Exception as exc:  # the broker or the store is away: the call ends at its budget, naming the worker
            _log.warning(
                "call %s: worker %s stopped (%s) and the call could not be sent again: %s",
                name,
                holder.worker,
                why,
                exc,
            )

    def _cancel_soon(self, key: CallKey) -> None:
        """Cancel the call ``key`` from the publishing threads (the loop never waits on the network)."""
        try:
            sending = self._publisher.submit(self._cancel_keys, [key])
        except RuntimeError:  # closed: ``aclose`` cancels every call still in flight
            return
        with self._lock:
            self._cancelling.add(sending)
        sending.add_done_callback(self._cancelled)

    def _cancelled(self, sending: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._cancelling.discard(sending)

    def _cancel_keys(self, keys: list[CallKey]) -> None:
        with self._lock:
            calls = [call for call in (self._in_flight.pop(key, None) for key in keys) if call is not None]
        if calls:
            self.cancel_calls(calls)

    def _cancel_in_background(self, keys: list[CallKey]) -> concurrent.futures.Future[None]:
        """Cancel the calls ``keys`` from a daemon thread: a broker that hangs cannot hold the process at its exit."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def cancel() -> None:
            try:
                self._cancel_keys(keys)
            finally:
                done.set_result(None)

        threading.Thread(target=cancel, name="vy-nexus-cancel", daemon=True).start()
        return done

    def cancel_calls(self, calls: list[ExpertCall]) -> None:
        """Stop ``calls`` wherever they are. Each is finished in the ledger as cancelled, so a delivery that comes
        later does not run it; then the workers are told (``CANCEL_COMMAND``): a call still queued is dropped, and the
        pool process running one cancels it at the expert's next ``await``. Best effort: what fails is logged."""
        for call in calls:
            cancelled = ExpertResult(
                task_id=call.task.id,
                expert_id=call.expert_id,
                error="cancelled: its server no longer waits for it",
                error_kind="cancelled",
            )
            try:
                self.ledger.cancel(call.task.id, call.expert_id, to_json(cancelled.as_dict()))
            except StoreError as exc:
                _log.warning("could not mark the call %s cancelled in the task store: %s", celery_id(call), exc)
        ids = [celery_id(call) for call in calls]
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=CANCEL_CONNECT_SECONDS)
                self.app.control.broadcast(CANCEL_COMMAND, arguments={"task_ids": ids}, connection=connection)
        except Exception as exc:
            _log.warning("could not tell the workers to cancel %s (broker %s): %s", ", ".join(ids), self.broker, exc)

    def _publish(self, call: ExpertCall, queue: str, *, sent_at: float | None = None, retries: int = 0) -> None:
        """Send the call: first (when ``run`` noted it in flight), or again with the time it was first ``sent_at`` and
        Celery's ``retries`` so far. The worker runs it under what is left of its budget."""
        budget = call.budget_seconds
        if sent_at is None:
            with self._lock:
                sent_at = self._sent_at.get(_key(call), time.time())
        left = max(0.0, budget - (time.time() - sent_at))
        self.app.send_task(
            TASK_NAME,
            args=[call.task.as_dict(), call.expert_id, budget, sent_at],
            task_id=celery_id(call),
            queue=queue,
            expires=left,
            soft_time_limit=left + SOFT_LIMIT_MARGIN,
            time_limit=left + HARD_LIMIT_MARGIN,
            retries=retries,
            retry=True,
            retry_policy={
                "max_retries": max(1, int(budget)),
                "interval_start": 0.0,
                "interval_step": 0.5,
                "interval_max": 1.0,
            },
        )

    async def _open(self) -> None:
        if not self._opened:
            await asyncio.to_thread(self._open_ledger)

    def _open_ledger(self) -> None:
        with self._open_lock:
            if not self._opened:
                self.ledger.open()
                self.ledger.prune(time.time() - self.settings.store.retention_days * 86400)
                self._opened = True

    def status(self) -> dict[str, Any]:
        """The broker, the workers that answer with the queues they consume, and each expert queue with the
        messages waiting in it (``None``: unknown). Waits up to a second for the workers' replies."""
        info: dict[str, Any] = {"broker": self.broker}
        queues = sorted({queue_for(self.settings.executor, expert.id) for expert in self.registry})
        try:
            check_broker(self.app, timeout=2.0)
        except BrokerError as exc:
            return {**info, "broker_error": str(exc), "workers": {}, "queues": dict.fromkeys(queues)}
        replies = self.app.control.inspect(timeout=1.0).active_queues() or {}
        info["workers"] = {name: sorted(q["name"] for q in consumed) for name, consumed in sorted(replies.items())}
        info["queues"] = self.queue_depths(queues)
        return info

    def queue_depths(self, queues: list[str]) -> dict[str, int | None]:
        """Messages waiting in each queue (``None`` where the broker does not know the queue yet: AMQP before
        the first worker or message declared it)."""
        depths: dict[str, int | None] = {}
        with self.app.connection_for_read() as connection:
            for name in queues:
                channel = connection.channel()
                try:
                    depths[name] = _depth(channel, name)
                except Exception:
                    depths[name] = None
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        return depths

    async def aclose(self) -> None:
        """Stop publishing, cancel every call still in flight (nobody reads its result now; waits up to
        ``CANCEL_WAIT_SECONDS`` for the broker), then close the watcher and the ledger."""
        self._publisher.shutdown(wait=False, cancel_futures=True)  # a cancel not yet begun leaves its call in flight
        with self._lock:
            abandoned = list(self._in_flight)
            sending = [future for future in self._cancelling if not future.cancelled()]
        if abandoned:
            sending.append(self._cancel_in_background(abandoned))
        if sending:
            await asyncio.to_thread(concurrent.futures.wait, sending, CANCEL_WAIT_SECONDS)
        self.watcher.close()
        await asyncio.to_thread(self.ledger.close)


def celery_id(call: ExpertCall) -> str:
    """The Celery task id of a call: its dedupe key."""
    return f"{call.task.id}.{call.expert_id}"


def _key(call: ExpertCall) -> CallKey:
    return (call.task.id, call.expert_id)


def _json(result: ExpertResult) -> str:
    return to_json(result.as_dict())


def _depth(channel: Any, queue: str) -> int:
    # Redis (a kombu virtual transport) keeps a queue as a list that exists only while it holds messages, so a
    # passive declare says "not found" for an empty queue; its ``_size`` is the list's length. AMQP counts itself.
    size = getattr(channel, "_size", None)
    if callable(size):
        return int(size(queue))
    return int(channel.queue_declare(queue=queue, passive=True).message_count)


def _failure(call: ExpertCall, error: str, kind: str, started: float) -> ExpertResult:
    return ExpertResult(
        task_id=call.task.id,
        expert_id=call.expert_id,
        error=error,
        error_kind=kind,
        duration_ms=(time.perf_counter() - started) * 1e3,
    )
