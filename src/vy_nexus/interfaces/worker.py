"""A Celery worker process: the same ``VyNexus`` as the server (built-ins, experts directory, plugins), running
the expert calls it takes from its queues with the local executor.

Each delivery: claim the call in the ledger (a finished call is not run again; one another worker still runs is a
duplicate, dropped; one whose worker was lost is taken over, a bounded number of times), run the expert under what is
left of its budget, then store the result — or, for a retryable failure with retries and budget left, hand the call
back and ask Celery to retry with exponential backoff. While a pool process runs a call, a thread of it beats in the
ledger every second (``Heartbeat``), so the server and other workers can tell a slow call from a lost worker. Celery's
soft and hard time limits (budget + 2 s, budget + 10 s) back up the executor's own timeout: the hard one ends a pool
process whose expert blocks its event loop.

A call its server cancels is stopped in the pool process running it: the worker's main process sends that process
``CANCEL_SIGNAL`` (celery_app.py), whose handler cancels the call's asyncio task on the process's own loop. The expert
gets ``CancelledError`` at its next ``await`` (an LLM stops generating), the loop stays as it was for the next call,
and the call ends as ``cancelled`` in the journal, not as a failure. A thread-bound expert is abandoned, as in the
local executor: its thread runs on, the pool process takes the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from vy_nexus.config import Settings
from vy_nexus.errors import BrokerError, ConfigError, StoreError, TaskError
from vy_nexus.execution.celery_app import (
    CANCEL_SIGNAL,
    CallOutcome,
    broker_label,
    build_celery_app,
    check_broker,
    queue_for,
    refusal,
    register_cancel_command,
    worker_lost,
)
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.foundation.kill_switch import StopRequest, StopWatcher
from vy_nexus.observability.stack import Observability
from vy_nexus.store.calls import BEAT_SECONDS, CallLedger
from vy_nexus.store.sql import to_json
from vy_nexus.system import VyNexus
from vy_nexus.tasks import ExpertResult, Task

_log = logging.getLogger(__name__)

FILES_PER_POOL_PROCESS = 8
"""Open files the worker's main process holds for each pool process (Celery's pipes to it: 6 measured, plus room)."""
FILES_OF_THE_MAIN_PROCESS = 64
"""Open files the main process needs besides (broker and store connections, logs, the interpreter's own)."""


def worker_settings(settings: Settings) -> Settings:
    """The worker runs experts in its own process, one attempt per Celery delivery (Celery retries)."""
    return replace(settings, executor=replace(settings.executor, kind="local", max_retries=0))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def failure(task_id: str, expert_id: str, error: str, kind: str, attempts: int = 1) -> ExpertResult:
    return ExpertResult(task_id=task_id, expert_id=expert_id, error=error, error_kind=kind, attempts=attempts)


def cancelled_call(task_id: str, expert_id: str, started: float) -> ExpertResult:
    """A call its server cancelled while this process ran it (``started``: ``time.perf_counter()`` then)."""
    result = failure(task_id, expert_id, f"cancelled by its server while {worker_id()} ran it", "cancelled")
    result.duration_ms = (time.perf_counter() - started) * 1e3
    return result


class Heartbeat:
    """A thread of one pool process that says in the ledger, every ``BEAT_SECONDS`` while the process runs a call
    (``calls`` is set), that ``worker`` is alive. A thread rather than the call's event loop: an expert that blocks
    the loop is slow, not lost."""

    def __init__(self, ledger: CallLedger, worker: str) -> None:
        self.calls = threading.Event()
        self._ledger = ledger
        self._worker = worker
        self._stopping = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="vy-nexus-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stopping.wait(BEAT_SECONDS):
            if self.calls.is_set():
                self._beat()

    def _beat(self) -> None:
        try:
            self._ledger.beat(self._worker)
        except StoreError as exc:  # the store is away: so is every call's result; say it once
            if not self._failing:
                _log.warning("worker %s cannot beat in the task store: %s", self._worker, exc)
            self._failing = True
        else:
            self._failing = False


@dataclass(slots=True)
class Delivery:
    """The call a pool process is handling, as its cancel signal handler sees it: whether it was cancelled, and the
    asyncio task running it once there is one."""

    cancelled: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    work: asyncio.Task[ExpertResult] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.loop is not None and self.work is not None:
            # Scheduled, not done here: the handler may interrupt the loop in the middle of its own bookkeeping.
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is shutting down
                self.loop.call_soon_threadsafe(self.work.cancel)


class WorkerRuntime:
    """Runs expert calls in one worker process. The system is built once, before the pool forks; the ledger's
    connections and the event loop belong to the process that uses them, so each pool process opens its own."""

    def __init__(self, settings: Settings, system: VyNexus) -> None:
        self.settings = settings
        self.system = system
        self.max_deliveries = settings.executor.max_redeliveries + 1
        self._pid = 0
        self._ledger: CallLedger | None = None
        self._heartbeat: Heartbeat | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivery: Delivery | None = None
        self._cancel_handler = self._on_cancel_signal  # one bound method, so the installed handler can be recognised
        self._handler_before: Any = signal.SIG_DFL

    def __call__(
        self, data: dict[str, Any], expert_id: str, budget: float, sent_at: float, attempt: int, retries_left: int
    ) -> CallOutcome:
        ledger = self._process_ledger()
        self._listen_for_cancel()
        self._delivery = Delivery()
        if self._heartbeat is not None:
            self._heartbeat.calls.set()
        try:
            return self._deliver(ledger, data, expert_id, budget, sent_at, attempt, retries_left)
        finally:
            self._delivery = None
            if self._heartbeat is not None:
                self._heartbeat.calls.clear()

    def _on_cancel_signal(self, _signum: int, _frame: Any) -> None:
        delivery = self._delivery
        if delivery is not None:  # else between calls: the signal was for one that has finished already
            delivery.cancel()

    def _listen_for_cancel(self) -> None:
        """Handle ``CANCEL_SIGNAL`` in this process; checked at every call, since billiard resets the handlers of
        some signals after ``worker_process_init`` in some pools."""
        if signal.getsignal(CANCEL_SIGNAL) != self._cancel_handler:
            self._handler_before = signal.signal(CANCEL_SIGNAL, self._cancel_handler)

    def _deliver(
        self,
        ledger: CallLedger,
        data: dict[str, Any],
        expert_id: str,
        budget: float,
        sent_at: float,
        attempt: int,
        retries_left: int,
    ) -> CallOutcome:
        try:
            task = Task.from_data(data)
        except TaskError as exc:
            task_id = str(data.get("id", "")) if isinstance(data, dict) else ""
            if task_id:
                unreadable = to_json(
                    failure(task_id, expert_id, f"the worker could not read the task: {exc}", "invalid").as_dict()
                )
                ledger.claim(
                    task_id, expert_id, attempt=attempt, worker=worker_id(), max_deliveries=1, lost=lambda _: unreadable
                )
                ledger.complete(task_id, expert_id, unreadable)
            return CallOutcome()
        claim = ledger.claim(
            task.id,
            expert_id,
            attempt=attempt,
            worker=worker_id(),
            max_deliveries=self.max_deliveries,
            lost=lambda holder: to_json(worker_lost(task.id, expert_id, holder, attempt + 1).as_dict()),
        )
        if not claim.run:
            if claim.result is None:
                _log.info(
                    "call %s/%s runs on worker %s: this delivery of it is a duplicate, dropped",
                    task.id,
                    expert_id,
                    claim.holder,
                )
                return CallOutcome(answered=False)
            return CallOutcome()
        if expert_id in self.system.registry:
            result = self._run(task, expert_id, budget - min(max(0.0, time.time() - sent_at), budget))
        else:  # the server routed to an expert this worker was not given: say whose setup differs
            message = (
                f"worker {worker_id()} has no expert '{expert_id}': give every worker the experts the server has"
                " (the same experts directory and plugins)"
            )
            result = failure(task.id, expert_id, message, "unknown")
        result.attempts = attempt + 1
        result.metadata["worker"] = worker_id()
        if claim.deliveries > 1:
            result.metadata["deliveries"] = claim.deliveries
        if not result.ok and result.metadata.get("retryable") and retries_left > 0:
            executor = self.settings.executor
            delay = min(executor.backoff_max_seconds, executor.backoff_base_seconds * 2**attempt)
            if time.time() - sent_at + delay < budget:
                self._journal(result, f"failed ({result.error}); Celery retries in {delay:.2f}s")
                ledger.release(task.id, expert_id, worker_id())
                return CallOutcome(retry_in=delay)
        ledger.complete(task.id, expert_id, to_json(result.as_dict()))
        if result.error_kind == "cancelled":
            _log.info(
                "call %s/%s stopped after %.0f ms: cancelled by its server", task.id, expert_id, result.duration_ms
            )
            self._journal(result, "stopped (cancelled by its server)", cancelled=True)
        else:
            self._journal(result, "succeeded" if result.ok else f"failed: {result.error}")
        return CallOutcome()

    def _journal(self, result: ExpertResult, outcome: str, *, cancelled: bool = False) -> None:
        """One line in this home's journal per call, so `vy-nexus logs` shows what every worker process did. The
        metrics of the call are recorded by the server, which receives the result (no double counting)."""
        self.system.events.publish(
            "worker.call",
            "worker",
            f"{result.expert_id} {outcome} in {result.duration_ms:.1f} ms on {worker_id()}",
            level="info" if result.ok or cancelled else "warn",  # a cancelled call did not fail
            task_id=result.task_id,
            expert_id=result.expert_id,
            metadata={k: v for k, v in result.metadata.items() if k in ("worker", "deliveries", "retryable")}
            | {"attempt": result.attempts, "duration_ms": result.duration_ms}
            | ({"cancelled": True} if cancelled else {}),
        )

    def _run(self, task: Task, expert_id: str, budget: float) -> ExpertResult:
        from celery.exceptions import SoftTimeLimitExceeded

        if budget <= 0:
            return failure(task.id, expert_id, "its budget ran out while it waited in the queue", "timeout")
        started = time.perf_counter()
        delivery = self._delivery or Delivery()
        if delivery.cancelled:  # while it was being claimed
            return cancelled_call(task.id, expert_id, started)
        loop = self._process_loop()
        work = loop.create_task(self.system.executor.run(ExpertCall(task, expert_id, budget)))
        delivery.loop, delivery.work = loop, work
        if delivery.cancelled:  # between the check above and now
            work.cancel()
        try:
            return loop.run_until_complete(work)
        except asyncio.CancelledError:
            return cancelled_call(task.id, expert_id, started)
        except SoftTimeLimitExceeded:
            self._loop = None  # the interrupted loop is left behind; the next call gets a new one
            return failure(task.id, expert_id, f"timed out after {budget:.1f}s (worker time limit)", "timeout")

    def prepare(self) -> None:
        """Open this pool process's ledger and observers now (Celery's ``worker_process_init``), so the first call
        does not wait for connections and the schema check. Trouble here is left to the first call to report."""
        self._listen_for_cancel()
        try:
            self._process_ledger()
        except Exception as exc:
            self._pid = 0
            _log.warning("preparing the worker process failed (its first call tries again): %s", exc)

    def _process_ledger(self) -> CallLedger:
        if self._pid != os.getpid():  # first use in this (pool) process: its own connections, loop and writer
            self._pid = os.getpid()
            self._ledger = CallLedger(self.settings.store_url).open()
            self._loop = None
            # Observers hold file locks and threads, which do not cross a fork: each pool process builds its own.
            self.system.observability = Observability(self.system.settings, self.system.events)
            self.system.observability.start()
            # Last: when a step above fails, the next call starts over with no heartbeat thread left behind.
            self._heartbeat = Heartbeat(self._ledger, worker_id()).start()
        assert self._ledger is not None
        return self._ledger

    def close(self) -> None:
        """End of a pool process: write what its observers hold, release its connections and clients."""
        if signal.getsignal(CANCEL_SIGNAL) == self._cancel_handler:
            signal.signal(CANCEL_SIGNAL, self._handler_before)
        if self._pid != os.getpid():
            return
        if self._loop is not None:
            self._loop.run_until_complete(self.system.release_loop_resources())
            self._loop.close()
            self._loop = None
        if self.system.observability is not None:
            self.system.observability.close()
            self.system.observability = None
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self._pid = 0

    def _process_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop


def worker_queues(settings: Settings, system: VyNexus, chosen: Sequence[str] | None) -> list[str]:
    """``chosen`` (checked), else one queue per registered expert."""
    if chosen:
        queues = [q.strip() for q in chosen if q.strip()]
        if not queues or any(len(q) > 200 or any(c.isspace() for c in q) for q in queues):
            raise ConfigError(f"--queues needs queue names without spaces, got {list(chosen)!r}")
        return list(dict.fromkeys(queues))
    return list(dict.fromkeys(queue_for(settings.executor, expert.id) for expert in system.registry))


def open_files_limit() -> int | None:
    """This process's limit of open files (``ulimit -n``); None where there is none to read."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def max_concurrency() -> int:
    """The most pool processes this process may hold open files for."""
    files = open_files_limit()
    if files is None:
        return 2**31 - 1
    return max(1, (files - FILES_OF_THE_MAIN_PROCESS) // FILES_PER_POOL_PROCESS)


def check_store(settings: Settings) -> None:
    """Raise ``StoreError`` unless the task store, where every call is claimed and answered, can be written now: a
    database that is missing, down, read-only or of a newer vy-nexus stops the worker before it takes calls it could
    not answer."""
    ledger = CallLedger(settings.store_url).open()
    try:
        ledger.check_writable()
    finally:
        ledger.close()


def wait_for_broker(app: Any, on_waiting: Callable[[str], None], *, interval: float = 2.0) -> None:
    """Return once the broker accepts a connection; say so (``on_waiting``) when it does not, then retry. A broker
    that answers but refuses us (wrong password, unknown virtual host or database) is a ``BrokerError``: waiting
    does not cure that."""
    announced = 0.0
    while True:
        try:
            check_broker(app)
            return
        except BrokerError as exc:
            refused = refusal(exc)
            if refused is not None:
                label = broker_label(str(app.conf.broker_url))
                raise BrokerError(
                    f"the broker {label} refused the connection: {refused}; check the user, password and virtual"
                    " host or database number in executor.broker_url"
                ) from exc
            if time.monotonic() - announced > 30.0:
                announced = time.monotonic()
                on_waiting(f"{exc}; retrying every {interval:.0f}s until it answers (Ctrl-C to stop)")
            time.sleep(interval)


def run_worker(
    settings: Settings,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "info",
    on_waiting: Callable[[str], None] = lambda _message: None,
    on_ready: Callable[[list[str]], None] = lambda _queues: None,
) -> int:
    """Build the system, wait for the broker, then consume ``queues`` with ``concurrency`` pool processes
    (default: one per CPU) until stopped. Returns the worker's exit code."""
    if loglevel.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError(f"--loglevel must be debug, info, warning, error or critical, got {loglevel!r}")
    if concurrency is not None and concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    if concurrency is not None and concurrency > max_concurrency():
        files = open_files_limit()
        raise ConfigError(
            f"--concurrency {concurrency} is more worker processes than this process has open files for: its limit"
            f" (ulimit -n {files}) allows at most {max_concurrency()}"
        )
    from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

    system = VyNexus(worker_settings(settings), observe=False)  # pool processes observe (WorkerRuntime)
    chosen = worker_queues(settings, system, queues)
    if not chosen:
        raise ConfigError("no queues to consume: no expert is registered and --queues was not given")
    check_store(settings)
    runtime = WorkerRuntime(settings, system)
    app = build_celery_app(settings, runtime)
    register_cancel_command()
    worker_process_init.connect(lambda **_: runtime.prepare(), weak=False)
    worker_process_shutdown.connect(lambda **_: runtime.close(), weak=False)
    wait_for_broker(app, on_waiting)
    on_ready(chosen)
    worker = app.Worker(
        hostname=f"vy-nexus.{os.getpid()}@{socket.gethostname()}",
        queues=chosen,
        concurrency=concurrency,
        loglevel=loglevel.upper(),
        without_gossip=True,
        without_mingle=True,
        quiet=True,
    )
    # `vy-nexus stop` reaches a worker of this home as it reaches every other process: the stop file. The watcher
    # starts once the pool has forked (worker_ready, in this main process) and ends the worker as SIGTERM does: a
    # warm shutdown, the calls in progress finish.
    watcher = StopWatcher(
        StopRequest(settings.home), system.safety, interval=settings.safety.stop_poll_seconds, events=system.events
    )
    system.safety.on_shutdown(lambda _reason: os.kill(os.getpid(), signal.SIGTERM))
    worker_ready.connect(lambda **_: watcher.start(), weak=False)
    try:
        worker.start()
    finally:
        watcher.stop()
    return int(worker.exitcode or 0)


__all__ = ["WorkerRuntime", "broker_label", "run_worker", "worker_queues", "worker_settings"]
