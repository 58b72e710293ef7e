"""The Celery application, built from settings (never at import): the same for the server and every worker.

One Celery task, ``vy_nexus.run_expert(task, expert_id, budget_seconds, sent_at)``, on a queue per expert
(``vy-nexus.expert.<id>``, or ``executor.queues[<id>]``). Only a worker registers its body (a thin wrapper around
``worker.WorkerRuntime``); the server just sends. Delivery is at-least-once — ``acks_late``, a message whose
pool process died is requeued (``reject_on_worker_lost``), one message per worker process at a time
(``worker_prefetch_multiplier = 1``) — and the call ledger in the task store (store/calls.py) makes it exactly one
result per (task id, expert id): a delivery of a call whose worker still runs it is dropped, one whose worker is lost
takes it over (a bounded number of times). A worker lost with its main process leaves its message unacknowledged: on
RabbitMQ the broker requeues it at once, on Redis only after the visibility timeout, so the server watching the
ledger sends the call again itself (``celery_executor``).

Results travel through that ledger, not through a Celery result backend; once a result is there the worker says so
on the ``vy-nexus.results`` fanout exchange (a few bytes: the call's key), so a server waiting on it reads the ledger
then instead of polling it (``celery_executor.ResultWatcher``).

A call its server gives up on (the task cancelled, the server stopping) is stopped where it is: the server finishes it
in the ledger as cancelled (a delivery that comes later answers with that instead of running) and broadcasts
``CANCEL_COMMAND``. Each worker's main process drops the call if it is still queued there (as ``revoke`` does) and,
when one of its pool processes runs it, sends that process ``CANCEL_SIGNAL``; the pool process cancels the call's
asyncio task (``worker.WorkerRuntime``), so the expert stops at its next ``await`` and the process takes the next
call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import AccessRefused, NotAllowed  # type: ignore[import-untyped]
from celery import Celery
from kombu.entity import Exchange, Queue
from kombu.utils.url import maybe_sanitize_url
from redis.exceptions import AuthenticationError, ResponseError

from vy_nexus.config import ExecutorSettings, Settings
from vy_nexus.errors import BrokerError, StoreError
from vy_nexus.store.calls import Holder
from vy_nexus.store.engine import redact
from vy_nexus.tasks import ExpertResult

TASK_NAME = "vy_nexus.run_expert"
QUEUE_PREFIX = "vy-nexus.expert."
RESULTS_EXCHANGE = Exchange("vy-nexus.results", type="fanout", durable=False)  # type: ignore[no-untyped-call]
"""Where workers announce finished calls. Fanout, so every server sees every notice (each keeps the keys it waits
on); on Redis a fanout exchange is PUBLISH/SUBSCRIBE, so a notice nobody listens to leaves nothing behind."""
NOTICE_WAIT_SECONDS = 0.25
"""How long one wait for notices lasts: the longest a closing watcher takes to notice."""
CANCEL_COMMAND = "vy_nexus_cancel"
"""The remote control command (arguments: ``task_ids``, Celery task ids) that stops calls wherever they are."""
CANCEL_SIGNAL = signal.SIGUSR2
"""What a worker's main process sends the pool process running a cancelled call. Not Celery's SIGUSR1: billiard turns
that into ``SoftTimeLimitExceeded`` raised wherever the process happens to be, the call's event loop included."""

SOFT_LIMIT_MARGIN = 2.0
"""Celery's soft time limit of a call: its budget plus this (the executor's own timeout comes first)."""
HARD_LIMIT_MARGIN = 10.0
"""Celery's hard time limit of a call: its budget plus this; it ends a pool process whose expert blocks its loop."""
HAND_OFF_SECONDS = 5.0
"""Redis's visibility timeout allows this much between a worker taking a message and its pool process starting it."""

CallKey = tuple[str, str]

REFUSALS: tuple[type[BaseException], ...] = (AccessRefused, NotAllowed, AuthenticationError, ResponseError)
"""What a broker answers when it is up but will not have us: a wrong user or password, an unknown virtual host, a
Redis database number it does not have. Waiting does not cure these; the config must change."""

_log = logging.getLogger(__name__)


def queue_for(executor: ExecutorSettings, expert_id: str) -> str:
    return executor.queues.get(expert_id) or QUEUE_PREFIX + expert_id


def broker_label(url: str) -> str:
    """The broker URL with its password masked, for messages."""
    return str(maybe_sanitize_url(url))


def refusal(exc: BaseException | None) -> BaseException | None:
    """The broker's refusal (see ``REFUSALS``) behind ``exc``, or None when it is not one (the broker is away)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, REFUSALS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def celery_retries(settings: Settings) -> int:
    return min(settings.executor.max_retries, settings.governance.max_retries)


def longest_call_budget(settings: Settings) -> float:
    """The most time one expert call gets (the coordinator's budget: the expert timeout, within the task's)."""
    return min(settings.executor.expert_timeout_seconds, settings.governance.max_task_duration_seconds)


def visibility_timeout(settings: Settings) -> float:
    """Redis: how long a message a worker took stays invisible to the others. By default it outlasts every call (the
    longest budget, the hard time limit's margin, the hand-off), so Redis never hands a running call to a second
    worker; and since a call's message expires with its budget, what Redis restores later is dropped unread. A
    worker lost mid-call is noticed through the ledger, not through this timeout. A shorter ``executor.
    visibility_timeout_seconds`` only brings duplicates of long calls, which the ledger's claim drops."""
    explicit = settings.executor.visibility_timeout_seconds
    if explicit is not None:
        return explicit
    return longest_call_budget(settings) + HARD_LIMIT_MARGIN + HAND_OFF_SECONDS


@dataclass(frozen=True, slots=True)
class Notice:
    """A worker's word that the call ``key`` has its result in the ledger: which worker, and which store (the URL
    without its password) it wrote to, so a server that does not find the result there can say why."""

    key: CallKey
    worker: str = ""
    store: str = ""


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What a worker did with one delivery: the call is finished (its result is in the ledger), Celery should retry
    it after ``retry_in`` seconds, or (``answered`` False) the delivery was a duplicate of a call another worker
    runs, so there is no result to announce."""

    retry_in: float | None = None
    answered: bool = True


def worker_lost(task_id: str, expert_id: str, holder: Holder, attempts: int = 1) -> ExpertResult:
    """The result of a call whose workers were lost ``holder.deliveries`` times, the last one ``holder.worker``."""
    times = "once" if holder.deliveries == 1 else f"{holder.deliveries} times"
    last = f" (last: worker {holder.worker})" if holder.worker else ""
    error = f"the worker running it was lost {times}{last}; not delivered again"
    metadata = {"worker": holder.worker} if holder.worker else {}
    return ExpertResult(
        task_id=task_id,
        expert_id=expert_id,
        error=error,
        error_kind="worker_lost",
        attempts=attempts,
        metadata=metadata,
    )


CallRunner = Callable[[dict[str, Any], str, float, float, int, int], CallOutcome]
"""(task as JSON data, expert id, budget seconds, sent at (epoch), attempt (Celery retries so far), retries left)."""


def build_celery_app(settings: Settings, runner: CallRunner | None = None) -> Celery:
    """The app for ``settings``; with ``runner`` (a worker process) the expert task is registered to call it."""
    executor = settings.executor
    app = Celery("vy_nexus", broker=executor.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,  # a redelivery finds the call in the ledger
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for its broker to come back, however long
        broker_transport_options=transport_options(settings),
        task_default_queue=QUEUE_PREFIX + "default",
    )
    if runner is not None:
        _register_task(app, runner, celery_retries(settings), redact(settings.store_url))
    return app


def transport_options(settings: Settings) -> dict[str, Any]:
    """Redis: the visibility timeout. AMQP: publisher confirms, so a message the broker will not take (larger than
    its ``max_message_size``: 128 MiB by default, 16 MiB since RabbitMQ 4) fails the send instead of vanishing
    with a closed channel while the server waits out the call's budget."""
    options: dict[str, Any] = {"visibility_timeout": visibility_timeout(settings)}
    if settings.executor.broker_url.split("://", 1)[0].lower() in ("amqp", "amqps", "pyamqp"):
        options["confirm_publish"] = True
    return options


def store_retries(budget: float, max_retries: int) -> int:
    """How often a call is retried (a second apart) while the store is away: for as long as its budget lasts (its
    message expires with the budget), so a short outage does not drop a call its server still waits for."""
    return max(max_retries, 3, math.ceil(budget) + 1)


def _register_task(app: Celery, runner: CallRunner, max_retries: int, store: str) -> None:
    # shared=False: the task is this app's alone, never handed to other Celery apps of the process as they finalize.
    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=max_retries, shared=False
    )
    def run_expert(self: Any, task: dict[str, Any], expert_id: str, budget: float, sent_at: float) -> None:
        retries = int(self.request.retries or 0)
        try:
            outcome = runner(task, expert_id, float(budget), float(sent_at), retries, max(0, max_retries - retries))
        except StoreError as exc:  # the store is away: the call cannot be claimed or answered yet, try again soon
            raise self.retry(exc=exc, countdown=1.0, max_retries=store_retries(float(budget), max_retries)) from exc
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)
        task_id = task.get("id") if isinstance(task, dict) else None
        if isinstance(task_id, str) and outcome.answered:  # a notice without a result means "another store"
            announce_result(app, Notice((task_id, expert_id), f"{socket.gethostname()}:{os.getpid()}", store))


def announce_result(app: Celery, notice: Notice) -> None:
    """Tell the servers that the call ``notice.key`` has its result in the ledger. Best effort: a notice lost with
    the broker only delays the result until the server's next sweep of the ledger."""
    key = notice.key
    try:
        with app.producer_or_acquire() as producer:
            producer.publish(
                {"task_id": key[0], "expert_id": key[1], "worker": notice.worker, "store": notice.store},
                exchange=RESULTS_EXCHANGE,
                routing_key="",
                declare=[RESULTS_EXCHANGE],
                serializer="json",
                retry=False,
            )
    except Exception as exc:
        _log.warning("could not announce the result of %s/%s: %s", key[0], key[1], exc)


def register_cancel_command() -> None:
    """Teach this process's Celery workers ``CANCEL_COMMAND`` (Celery keeps remote control commands in one registry
    per process; registering twice is harmless).

    Not ``revoke(terminate=True, signal=...)``: billiard then marks the pool process as terminated for good, so if
    that process later died running another call, the other call would be reported revoked and acknowledged instead
    of being delivered again."""
    from celery.worker.control import control_command

    control_command(name=CANCEL_COMMAND, args=[("task_ids", str)], signature="<id1 [id2 [... [idN]]]>")(_cancel_command)


def _cancel_command(_state: Any, task_ids: Any = (), **_kwargs: Any) -> dict[str, str]:
    ids = [task_ids] if isinstance(task_ids, str) else [i for i in task_ids if isinstance(i, str)]
    stopping = cancel_calls_here(ids)
    return {"ok": f"cancelled {len(ids)} calls, {len(stopping)} running here"}


def cancel_calls_here(task_ids: Iterable[str]) -> dict[str, int]:
    """(A worker's main process) Drop the calls ``task_ids`` still queued here and ring the pool process running any
    of them; returns the pool process of each call that runs here.

    Only a call this process has seen its pool process accept and not yet finish is rung: Celery gives a pool process
    its next call only after reading the result of its last one, so the signal never reaches a later call."""
    from celery.worker import state as worker_state

    ids = list(task_ids)
    worker_state.revoked.update(ids)
    stopping: dict[str, int] = {}
    for task_id in ids:
        request = worker_state.requests.get(task_id)
        pid = request.worker_pid if request is not None and request in worker_state.active_requests else None
        if not pid:
            continue
        try:
            os.kill(pid, CANCEL_SIGNAL)
        except ProcessLookupError:  # the pool process is gone: its call with it
            continue
        stopping[task_id] = pid
        _log.info("call %s cancelled by its server: pool process %d stops it", task_id, pid)
    return stopping


class ResultNotices:
    """A server's subscription to the workers' result notices: a queue of its own, bound to the fanout exchange
    and gone with the connection."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def listen(self, on_notice: Callable[[Notice], None], between: Callable[[], bool]) -> None:
        """Hand every notice to ``on_notice``; call ``between`` once subscribed, after every notice and at
        least every ``NOTICE_WAIT_SECONDS``; return when it says False. Raises when the broker cannot be reached
        or the connection breaks."""

        def received(body: Any, _message: Any) -> None:
            if isinstance(body, dict):
                task_id, expert_id = body.get("task_id"), body.get("expert_id")
                if isinstance(task_id, str) and isinstance(expert_id, str):
                    worker, store = body.get("worker"), body.get("store")
                    on_notice(Notice((task_id, expert_id), str(worker or ""), str(store or "")))

        with self._app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2.0)
            queue = Queue(  # type: ignore[no-untyped-call]
                f"vy-nexus.results.{uuid.uuid4().hex}",
                exchange=RESULTS_EXCHANGE,
                routing_key="",
                durable=False,
                exclusive=True,
                auto_delete=True,
            )
            with connection.Consumer([queue], callbacks=[received], accept=["json"], no_ack=True):
                while between():
                    with contextlib.suppress(TimeoutError):  # socket.timeout: no notice in this wait
                        connection.drain_events(timeout=NOTICE_WAIT_SECONDS)


def check_broker(app: Celery, timeout: float = 3.0) -> None:
    """Raise ``BrokerError`` naming the broker (password masked) unless it accepts a connection now."""
    url = str(app.conf.broker_url)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:
        raise BrokerError(f"cannot reach the broker {broker_label(url)}: {exc}") from exc
