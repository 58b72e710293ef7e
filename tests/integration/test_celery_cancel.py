"""Cancelling a task stops its expert calls where they run, Celery workers included: a call still queued is not run,
a running one is cancelled at the expert's next ``await`` in its pool process, which goes on taking calls.

The fast tests run a worker's runtime in this process (SQLite store, no broker: a closed port stands for one) and
send it the cancel signal themselves. Those marked slow start `vy-nexus worker` over the real Redis / RabbitMQ and
PostgreSQL on loopback (test_celery_cluster.py's helpers), and skip, naming what to install, when one does not answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers import celery_home_with_expert
from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import SafetyError, TaskCancelledError
from vy_nexus.execution.celery_app import CANCEL_SIGNAL, CallOutcome
from vy_nexus.execution.celery_executor import CeleryExecutor
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.interfaces.worker import WorkerRuntime, worker_settings
from vy_nexus.store.calls import CallLedger
from vy_nexus.system import VyNexus
from vy_nexus.tasks import ExpertResult, Task

PATIENT_EXPERT = '''
"""Works for ``task.input["seconds"]`` in short awaits; notes ``<marks>/<task id>.<event>`` (its pid and the time)
when it starts, when it is cancelled and when it finishes."""

import asyncio
import os
import time
from pathlib import Path

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task


def note(task: Task, event: str) -> None:
    (Path(task.input["marks"]) / f"{task.id}.{event}").write_text(f"{os.getpid()} {time.time()}")


class Patient(BaseExpert):
    id = "patient"
    name = "Patient"
    capabilities = ("patient",)

    async def execute(self, task: Task) -> ExpertOutput:
        note(task, "started")
        deadline = time.monotonic() + float(task.input["seconds"])
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            note(task, "cancelled")
            raise
        note(task, "finished")
        return ExpertOutput({"pid": os.getpid()}, confidence=0.9)
'''


def mark(marks: Path, task: Task, event: str) -> tuple[int, float] | None:
    """(pid, time) of the expert's note ``event`` for ``task``, or None before it is written."""
    path = marks / f"{task.id}.{event}"
    try:
        pid, when = path.read_text().split()
    except (FileNotFoundError, ValueError):  # not there yet, or caught while being written
        return None
    return int(pid), float(when)


def wait_for_mark(marks: Path, task: Task, event: str, timeout: float) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mark(marks, task, event)
        if found is not None:
            return found
        time.sleep(0.01)
    raise AssertionError(f"the expert did not note {event!r} for {task.id} within {timeout:.0f}s")


def stored(settings: Settings, task: Task, expert_id: str = "patient") -> ExpertResult | None:
    ledger = CallLedger(settings.store_url).open()
    try:
        row = ledger.get(task.id, expert_id)
    finally:
        ledger.close()
    return None if row is None or row.result is None else ExpertResult.from_dict(json.loads(row.result))


# -- a worker's runtime in this process ------------------------------------------------------------------------------


@pytest.fixture
def celery_home(home: Path) -> Path:
    """Celery configured with a broker that is down; the patient expert in the experts directory."""
    return celery_home_with_expert(home, "patient", PATIENT_EXPERT)


@pytest.fixture
def unhandled_cancel_signals() -> Iterator[list[int]]:
    """The cancel signals that reached this process's own handler: without the worker's, the signal would end the
    test process. The process's handler is put back afterwards."""
    received: list[int] = []
    before = signal.signal(CANCEL_SIGNAL, lambda signum, _frame: received.append(signum))
    yield received
    signal.signal(CANCEL_SIGNAL, before)


@pytest.fixture
def runtime(celery_home: Path, unhandled_cancel_signals: list[int]) -> Iterator[WorkerRuntime]:
    settings = load_settings(celery_home)
    made = WorkerRuntime(settings, VyNexus(worker_settings(settings), observe=False))
    made.prepare()  # what Celery's worker_process_init does in each pool process
    yield made
    made.close()


def patient_task(home: Path, seconds: float) -> Task:
    return Task(description="patient work", input={"marks": str(home / "marks"), "seconds": seconds})


def deliver(runtime: WorkerRuntime, task: Task) -> CallOutcome:
    """One Celery delivery of the patient expert's call (a 30 s budget), as the task body makes it."""
    return runtime(task.as_dict(), "patient", 30.0, time.time(), 0, 0)


def signal_once_started(marks: Path, task: Task) -> tuple[threading.Thread, list[float]]:
    """A thread that sends this process the cancel signal once the expert has started on ``task``, as a worker's
    main process does; the list gets the time it was sent."""
    sent: list[float] = []

    def ring() -> None:
        wait_for_mark(marks, task, "started", 10)
        sent.append(time.time())
        os.kill(os.getpid(), CANCEL_SIGNAL)

    thread = threading.Thread(target=ring)
    thread.start()
    return thread, sent


def test_the_cancel_signal_stops_the_running_call_and_the_process_takes_the_next_on_the_same_loop(
    runtime: WorkerRuntime, celery_home: Path, unhandled_cancel_signals: list[int]
) -> None:
    marks = celery_home / "marks"
    journal: list[Any] = []
    runtime.system.events.subscribe(journal.append, levels=frozenset(), kinds=frozenset({"worker.call"}))
    first = patient_task(celery_home, seconds=3.0)
    deliver(runtime, patient_task(celery_home, seconds=0.0))
    loop = runtime._loop
    ringer, sent = signal_once_started(marks, first)
    started = time.monotonic()
    assert deliver(runtime, first) == CallOutcome()
    took = time.monotonic() - started
    ringer.join()
    assert unhandled_cancel_signals == []  # the worker's handler took it
    _pid, cancelled_at = wait_for_mark(marks, first, "cancelled", 1)
    assert cancelled_at - sent[0] < 0.5 and took < 2.0  # not the 3 s the expert would have worked
    assert mark(marks, first, "finished") is None
    result = stored(runtime.settings, first)
    assert result is not None and result.error_kind == "cancelled"
    assert "cancelled by its server while" in (result.error or "")
    line = next(event for event in journal if event.task_id == first.id)
    assert line.level == "info" and line.metadata["cancelled"] is True
    assert "patient stopped (cancelled by its server)" in line.message

    second = patient_task(celery_home, seconds=0.1)
    deliver(runtime, second)
    answer = stored(runtime.settings, second)
    assert answer is not None and answer.ok and answer.output == {"pid": os.getpid()}
    assert runtime._loop is loop and loop is not None and not loop.is_closed()  # the same loop, still usable


def test_a_cancel_signal_between_calls_leaves_the_next_call_alone(
    runtime: WorkerRuntime, celery_home: Path, unhandled_cancel_signals: list[int]
) -> None:
    os.kill(os.getpid(), CANCEL_SIGNAL)  # late: for a call this process has finished already
    task = patient_task(celery_home, seconds=0.3)
    deliver(runtime, task)
    result = stored(runtime.settings, task)
    assert result is not None and result.ok, result
    assert unhandled_cancel_signals == []


def test_a_call_cancelled_before_a_worker_took_it_is_not_run_when_it_is_delivered(
    runtime: WorkerRuntime, celery_home: Path
) -> None:
    settings = load_settings(celery_home)
    task = patient_task(celery_home, seconds=0.0)

    async def cancel_while_it_waits() -> None:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        executor._publish = lambda call, queue: None  # type: ignore[method-assign]  # sent; no worker yet
        call = asyncio.ensure_future(executor.run(ExpertCall(task, "patient", 30.0)))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.to_thread(wait_until_stored, settings, task)
        await executor.aclose()

    asyncio.run(cancel_while_it_waits())
    deliver(runtime, task)  # the message comes after all (a worker that missed the cancel broadcast)
    assert mark(celery_home / "marks", task, "started") is None
    result = stored(settings, task)
    assert result is not None and result.error_kind == "cancelled"


def wait_until_stored(settings: Settings, task: Task) -> None:
    deadline = time.monotonic() + 10
    while stored(settings, task) is None:
        assert time.monotonic() < deadline, "the cancelled call never reached the ledger"
        time.sleep(0.02)


def test_closing_the_executor_cancels_the_calls_still_in_flight(celery_home: Path) -> None:
    settings = load_settings(celery_home)
    task = patient_task(celery_home, seconds=0.0)

    async def close_while_it_waits() -> None:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        executor._publish = lambda call, queue: None  # type: ignore[method-assign]
        call = asyncio.ensure_future(executor.run(ExpertCall(task, "patient", 30.0)))
        await asyncio.sleep(0.2)
        await executor.aclose()  # as a server does when it stops: the call's result is read by nobody now
        call.cancel()  # unless the watcher, not yet closed, read its cancellation from the ledger already
        await asyncio.gather(call, return_exceptions=True)

    asyncio.run(close_while_it_waits())
    result = stored(settings, task)
    assert result is not None and result.error_kind == "cancelled"


# -- with real brokers and workers (slow) ------------------------------------------------------------------------------


@pytest.fixture
def patient_cluster(tmp_path: Path, pg_url: str) -> Iterator[Callable[[str], Any]]:
    """A cluster (test_celery_cluster.Cluster) whose home also has the patient expert, on a queue of its own."""
    from test_celery_cluster import Cluster

    made: list[Any] = []

    def make(broker_url: str) -> Any:
        cluster = Cluster(tmp_path / f"c{len(made)}", broker_url, pg_url)
        cluster.add_expert("patient", PATIENT_EXPERT)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def patient(cluster: Any, seconds: float) -> Task:
    return Task(
        description="patient work",
        input={"marks": str(cluster.marks), "seconds": seconds},
        context={"experts": ["patient"]},
    )


def journal_of(home: Path) -> list[dict[str, Any]]:
    lines = (home / "research_logs" / "structured.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_cancelling_a_task_stops_its_call_on_the_worker_which_then_takes_the_next(
    patient_cluster: Callable[[str], Any], broker_url: str
) -> None:
    cluster = patient_cluster(broker_url)
    worker = cluster.worker("patient")  # one pool process
    long, short = patient(cluster, seconds=30.0), patient(cluster, seconds=0.2)

    async def scenario() -> tuple[float, str, Any]:
        async with VyNexus(load_settings(cluster.home), observe=False) as system:
            job = asyncio.ensure_future(system.submit(long))
            await asyncio.to_thread(wait_for_mark, cluster.marks, long, "started", 60)
            asked = time.time()
            system.cancel(long.id)
            with pytest.raises(TaskCancelledError):
                await job
            await asyncio.to_thread(wait_for_mark, cluster.marks, long, "cancelled", 5)
            state = system.get_task(long.id).state.value
            after = await asyncio.wait_for(system.submit(short), 60)
            return asked, state, after

    asked, state, after = asyncio.run(scenario())
    running_pid, _ = wait_for_mark(cluster.marks, long, "started", 1)
    stopped_pid, stopped_at = wait_for_mark(cluster.marks, long, "cancelled", 1)
    print(f"\n{broker_url.split(':')[0]}: the worker's expert stopped {(stopped_at - asked) * 1e3:.0f} ms after cancel")
    assert stopped_at - asked < 2.0  # not the 30 s it would have worked
    assert mark(cluster.marks, long, "finished") is None
    assert state == "cancelled"
    assert after.ok and after.results[0].output == {"pid": running_pid} == {"pid": stopped_pid}  # the same process
    ledger = stored(load_settings(cluster.home), long)
    assert ledger is not None and ledger.error_kind == "cancelled"

    cluster.stop()  # the pool process writes its journal on the way out
    calls = {entry["task_id"]: entry for entry in journal_of(cluster.home) if entry["kind"] == "worker.call"}
    assert calls[long.id]["level"] == "info" and calls[long.id]["metadata"]["cancelled"] is True
    assert "patient stopped (cancelled by its server)" in calls[long.id]["message"]
    assert calls[short.id]["level"] == "info" and "succeeded" in calls[short.id]["message"]
    assert f"call {long.id}.patient cancelled by its server: pool process {running_pid} stops it" in worker.output
    for trouble in ("Traceback", "SoftTimeLimitExceeded", "exited with", "WorkerLostError", "ERROR"):
        assert trouble not in worker.output, worker.output


@pytest.mark.slow
def test_a_server_that_stops_cancels_the_calls_its_workers_run(
    patient_cluster: Callable[[str], Any], broker_url: str
) -> None:
    cluster = patient_cluster(broker_url)
    cluster.worker("patient")
    long = patient(cluster, seconds=30.0)

    async def scenario() -> float:
        system = VyNexus(load_settings(cluster.home), observe=False)
        await system.astart()
        job = asyncio.ensure_future(system.submit(long))
        await asyncio.to_thread(wait_for_mark, cluster.marks, long, "started", 60)
        stopping = time.time()
        await system.astop("maintenance")
        with pytest.raises(SafetyError):
            await job
        return stopping

    stopping = asyncio.run(scenario())
    _pid, stopped_at = wait_for_mark(cluster.marks, long, "cancelled", 5)
    print(
        f"\n{broker_url.split(':')[0]}: the worker's expert stopped {(stopped_at - stopping) * 1e3:.0f} ms after astop"
    )
    assert stopped_at - stopping < 2.0
    assert mark(cluster.marks, long, "finished") is None


@pytest.mark.slow
def test_a_cancel_for_a_call_that_has_finished_leaves_the_next_call_of_that_process_alone(
    patient_cluster: Callable[[str], Any], redis_url: str
) -> None:
    cluster = patient_cluster(redis_url)
    cluster.worker("patient")
    done, later = patient(cluster, seconds=0.0), patient(cluster, seconds=2.0)
    settings = load_settings(cluster.home)
    assert cluster.submit(done).ok

    def cancel_the_finished_call() -> None:
        wait_for_mark(cluster.marks, later, "started", 60)
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        executor.ledger.open()
        try:
            executor.cancel_calls([ExpertCall(done, "patient", 30.0)])
        finally:
            executor.ledger.close()

    result = cluster.submit(later, during=cancel_the_finished_call)
    assert result.ok, result.results
    assert mark(cluster.marks, later, "cancelled") is None
    first = stored(settings, done)
    assert first is not None and first.ok  # its result stays what it was
