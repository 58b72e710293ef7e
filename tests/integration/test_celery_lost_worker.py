"""A worker lost mid-call: the call runs again promptly on a worker that is there (a bounded number of times), and
with no worker left it fails at its budget naming the worker that took it and stopped.

The fast tests need no broker (a closed port stands for one; the store is SQLite): the ledger's claim, the pool
process's heartbeat, and the server's watch over who holds its calls. Those marked slow start `vy-nexus worker`
processes over the real Redis / RabbitMQ and PostgreSQL on loopback (test_celery_cluster.py's helpers), kill them
mid-call and print how long the call took to run again (or to fail); they skip, naming what to install, when a
service does not answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from brokers import celery_home_with_expert, closed_port
from vy_nexus.config import Settings, load_settings
from vy_nexus.execution import celery_app
from vy_nexus.execution.celery_app import TASK_NAME, CallOutcome, build_celery_app, visibility_timeout
from vy_nexus.execution.celery_executor import CeleryExecutor
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.interfaces import worker as worker_module
from vy_nexus.interfaces.worker import WorkerRuntime, worker_settings
from vy_nexus.store import calls
from vy_nexus.store.calls import CallLedger, Holder
from vy_nexus.store.schema import worker_beats
from vy_nexus.system import VyNexus
from vy_nexus.tasks import ExpertResult, Task

STEADY_EXPERT = '''
"""Notes each run as ``<pid> <time>`` in ``<marks>/<task id>.runs``, then works for ``task.input["seconds"]`` in short
awaits. With ``task.input["regicide"]`` it first kills its worker's main process: a call that takes every worker
down with it. With ``task.input["retryable"]`` it fails in a way worth retrying."""

import asyncio
import os
import signal
import time
from pathlib import Path

from vy_nexus.errors import ExpertExecutionError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task


class Steady(BaseExpert):
    id = "steady"
    name = "Steady"
    capabilities = ("steady",)

    async def execute(self, task: Task) -> ExpertOutput:
        with (Path(task.input["marks"]) / f"{task.id}.runs").open("a") as runs:
            runs.write(f"{os.getpid()} {time.time()}\\n")
        if task.input.get("regicide"):
            os.kill(os.getppid(), signal.SIGKILL)  # its own process follows (Celery's pool dies with its parent)
        if task.input.get("retryable"):
            raise ExpertExecutionError("not yet", expert_id=self.id, retryable=True)
        deadline = time.monotonic() + float(task.input["seconds"])
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return ExpertOutput({"pid": os.getpid()}, confidence=0.9)
'''


def gone_worker() -> str:
    """A worker of this host whose process has ended: whatever it claimed, it holds no more."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def lost_as_json(holder: Holder) -> str:
    return json.dumps({"lost": holder.deliveries, "last": holder.worker})


def claim(ledger: CallLedger, worker: str, *, task_id: str = "t-1", max_deliveries: int = 3) -> calls.Claim:
    return ledger.claim(task_id, "steady", attempt=0, worker=worker, max_deliveries=max_deliveries, lost=lost_as_json)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[CallLedger]:
    opened = CallLedger(f"sqlite:///{tmp_path / 'tasks.db'}").open()
    yield opened
    opened.close()


def beat_long_ago(ledger: CallLedger, worker: str, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """``worker``'s last beat, ``seconds`` ago."""
    now = time.time()
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: now - seconds)
        ledger.beat(worker)


# -- the ledger: who holds a running call, and what another delivery of it does ---------------------------------------


def test_a_delivery_of_a_call_whose_worker_still_beats_is_a_duplicate_and_does_not_run(ledger: CallLedger) -> None:
    assert claim(ledger, "node-b:42").run
    again = claim(ledger, "node-c:7")  # Redis handing a long call out twice, or a server that took it for lost
    assert not again.run and again.result is None and again.holder == "node-b:42"
    row = ledger.get("t-1", "steady")
    assert row.state == "running" and row.deliveries == 1 and row.worker == "node-b:42"


def test_a_delivery_takes_over_a_call_whose_worker_on_another_host_stopped_beating(
    ledger: CallLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert claim(ledger, "node-b:42").run
    beat_long_ago(ledger, "node-b:42", calls.LOST_AFTER_SECONDS + 1, monkeypatch)
    taken = claim(ledger, "node-c:7")
    assert taken.run and taken.deliveries == 2
    assert ledger.get("t-1", "steady").worker == "node-c:7"


def test_a_delivery_takes_over_at_once_a_call_whose_worker_process_on_this_host_is_gone(ledger: CallLedger) -> None:
    gone = gone_worker()
    assert claim(ledger, gone).run  # its beat is fresh: the process being gone is enough
    taken = claim(ledger, "node-c:7")
    assert taken.run and taken.deliveries == 2


def test_of_two_deliveries_taking_over_a_lost_call_only_one_runs_it(
    ledger: CallLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert claim(ledger, gone_worker()).run
    seen_lost = ledger.get("t-1", "steady")  # what both deliveries read before either took the call over
    assert claim(ledger, "node-c:7").run
    reads = iter([seen_lost])
    real_row = ledger._row
    monkeypatch.setattr(ledger, "_row", lambda *key: next(reads, None) or real_row(*key))
    late = claim(ledger, "node-d:9")
    assert not late.run and late.holder == "node-c:7"
    assert ledger.get("t-1", "steady").deliveries == 2


def test_a_call_whose_workers_were_lost_as_often_as_allowed_ends_as_lost_naming_the_last(ledger: CallLedger) -> None:
    first, second = gone_worker(), gone_worker()
    assert claim(ledger, first, max_deliveries=2).run
    assert claim(ledger, second, max_deliveries=2).run
    ended = claim(ledger, "node-c:7", max_deliveries=2)
    assert not ended.run and json.loads(ended.result or "") == {"lost": 2, "last": second}


def test_a_worker_that_hands_its_call_back_for_a_retry_is_not_taken_for_lost(ledger: CallLedger) -> None:
    gone = gone_worker()  # between the attempts the worker does not beat, or its process ended meanwhile
    assert claim(ledger, gone).run
    ledger.release("t-1", "steady", gone)
    holder = ledger.holders([("t-1", "steady")])[("t-1", "steady")]
    assert holder.worker is None and holder.lost(time.time()) is None
    assert ledger.claim("t-1", "steady", attempt=1, worker="node-c:7", max_deliveries=3, lost=lost_as_json).run


def test_why_a_worker_is_taken_for_lost() -> None:
    now = time.time()
    assert Holder("node-b:42", 1, beat_at=now - 1).lost(now) is None
    assert Holder("node-b:42", 1, beat_at=now - 12).lost(now) == "no sign of life for 12s"
    assert Holder("node-b:42", 1, beat_at=None).lost(now) is None  # an older vy-nexus never beats: not judged
    assert Holder(gone_worker(), 1, beat_at=now).lost(now) == "its process is gone"
    assert Holder(f"{socket.gethostname()}:{os.getpid()}", 1, beat_at=now).lost(now) is None


# -- a worker's side -------------------------------------------------------------------------------------------------


@pytest.fixture
def steady_home(home: Path) -> Path:
    """Celery with a broker that is down, the steady expert in the experts directory."""
    return celery_home_with_expert(home, "steady", STEADY_EXPERT)


@pytest.fixture
def runtime(steady_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerRuntime]:
    monkeypatch.setattr(worker_module, "BEAT_SECONDS", 0.05)
    settings = load_settings(steady_home)
    made = WorkerRuntime(settings, VyNexus(worker_settings(settings), observe=False))
    made.prepare()  # what Celery's worker_process_init does in each pool process
    yield made
    made.close()


def steady_task(home: Path, seconds: float = 0.0, **extra: Any) -> Task:
    return Task(description="steady work", input={"marks": str(home / "marks"), "seconds": seconds, **extra})


def runs_of(marks: Path, task: Task) -> list[tuple[int, float]]:
    path = marks / f"{task.id}.runs"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(pid), float(at)) for pid, at in (line.split() for line in lines)]


def test_a_pool_process_drops_a_duplicate_delivery_without_running_or_announcing_it(
    runtime: WorkerRuntime, steady_home: Path
) -> None:
    task = steady_task(steady_home)
    ledger = CallLedger(runtime.settings.store_url).open()
    try:
        assert claim(ledger, "node-b:42", task_id=task.id).run  # another worker runs it and is alive
        outcome = runtime(task.as_dict(), "steady", 30.0, time.time(), 0, 0)
        row = ledger.get(task.id, "steady")
    finally:
        ledger.close()
    assert outcome == CallOutcome(answered=False)
    assert runs_of(steady_home / "marks", task) == []
    assert row.state == "running" and row.worker == "node-b:42"


def test_a_pool_process_handing_a_call_back_for_a_retry_leaves_it_held_by_nobody(
    runtime: WorkerRuntime, steady_home: Path
) -> None:
    task = steady_task(steady_home, retryable=True)
    outcome = runtime(task.as_dict(), "steady", 30.0, time.time(), 0, 2)
    ledger = CallLedger(runtime.settings.store_url).open()
    try:
        holder = ledger.holders([(task.id, "steady")])[(task.id, "steady")]
    finally:
        ledger.close()
    assert outcome.retry_in is not None
    # Its process may end or go quiet before Celery's retry comes: that is no loss to act on.
    assert holder.worker is None and holder.lost(time.time() + 3600) is None


def test_the_task_body_announces_no_result_for_a_dropped_duplicate(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    announced: list[Any] = []
    monkeypatch.setattr(celery_app, "announce_result", lambda _app, notice: announced.append(notice))
    outcomes = iter([CallOutcome(answered=False), CallOutcome()])
    app = build_celery_app(load_settings(home), lambda *_: next(outcomes))
    for _ in range(2):
        app.tasks[TASK_NAME].apply(args=[{"id": "t-1", "description": "x"}, "steady", 30.0, time.time()])
    # A notice whose result is not in the server's store reads as "a worker with another store.url".
    assert [notice.key for notice in announced] == [("t-1", "steady")]


def test_a_pool_process_beats_while_it_runs_a_call_and_not_between_calls(
    runtime: WorkerRuntime, steady_home: Path
) -> None:
    task = steady_task(steady_home, seconds=0.4)
    me = worker_module.worker_id()
    ledger = CallLedger(runtime.settings.store_url).open()
    beats: list[float] = []

    def watch_the_beats() -> None:
        deadline = time.monotonic() + 0.35
        while time.monotonic() < deadline:
            row = ledger.get(task.id, "steady")
            if row is not None and row.beat_at is not None and row.beat_at not in beats:
                beats.append(row.beat_at)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_the_beats)
    watcher.start()
    try:
        runtime(task.as_dict(), "steady", 30.0, time.time(), 0, 0)
        watcher.join()
        time.sleep(0.2)  # four beat intervals with no call
    finally:
        ledger.close()
    engine = sa.create_engine(runtime.settings.store_url)
    try:
        with engine.connect() as conn:
            last = conn.execute(sa.select(worker_beats.c.beat_at).where(worker_beats.c.worker == me)).scalar_one()
    finally:
        engine.dispose()
    assert len(beats) >= 4, beats  # every 0.05 s while the expert works (0.4 s); none at all without a heartbeat
    assert time.time() - last >= 0.15  # and none since it finished


# -- the server's side -----------------------------------------------------------------------------------------------


class Sent:
    """Stands for the broker: records each send of a call (sent at, Celery retries so far)."""

    def __init__(self) -> None:
        self.sends: list[tuple[float, int]] = []
        """(the call's first send time as this send gives it: now for a first send, retries so far)"""

    def __call__(self, call: ExpertCall, queue: str, *, sent_at: float | None = None, retries: int = 0) -> None:
        self.sends.append((time.time() if sent_at is None else sent_at, retries))


def celery_settings(home: Path, **executor: Any) -> Settings:
    return load_settings(
        home, executor={"kind": "celery", "broker_url": f"redis://127.0.0.1:{closed_port()}/0", **executor}
    )


def run_call(
    settings: Settings, task: Task, budget: float, while_waiting: Callable[[CeleryExecutor, Sent], None]
) -> tuple[ExpertResult, Sent, float]:
    """One call through a Celery executor whose sends are recorded (no worker takes them); ``while_waiting`` runs in
    a thread once the call is sent. Returns the result, the sends and how long the call took."""
    sent = Sent()

    async def scenario() -> tuple[ExpertResult, float]:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        executor._publish = sent  # type: ignore[method-assign]
        executor.watcher._check_seconds = 0.05
        started = time.monotonic()
        try:
            call = asyncio.ensure_future(executor.run(ExpertCall(task, "steady", budget)))
            while not sent.sends:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(while_waiting, executor, sent)
            return await call, time.monotonic() - started
        finally:
            await executor.aclose()

    result, took = asyncio.run(scenario())
    return result, sent, took


def claimed_by(worker: str, after: float = 0.05) -> Callable[[CeleryExecutor, Sent], None]:
    """``worker`` claims the call in flight, ``after`` seconds after it was sent."""

    def take(executor: CeleryExecutor, _sent: Sent) -> None:
        time.sleep(after)
        ledger = CallLedger(executor.settings.store_url).open()
        try:
            task_id, expert_id = next(iter(executor._in_flight))
            ledger.claim(task_id, expert_id, attempt=0, worker=worker, max_deliveries=9, lost=lost_as_json)
        finally:
            ledger.close()

    return take


def test_the_server_sends_a_call_again_at_once_when_the_worker_holding_it_is_lost(home: Path) -> None:
    settings = celery_settings(home)
    gone = gone_worker()
    resent_after: list[float] = []

    def lose_the_worker_then_answer(executor: CeleryExecutor, sent: Sent) -> None:
        claimed_by(gone, after=0.5)(executor, sent)  # so a send with the time of the first stands out
        lost_at = time.monotonic()
        while len(sent.sends) < 2 and time.monotonic() - lost_at < 5:
            time.sleep(0.01)
        resent_after.append(time.monotonic() - lost_at)
        task_id, expert_id = next(iter(executor._in_flight))
        executor.ledger.complete(
            task_id, expert_id, json.dumps(ExpertResult(task_id=task_id, expert_id=expert_id, output=1).as_dict())
        )

    result, sent, _took = run_call(settings, Task(description="x"), 30.0, lose_the_worker_then_answer)
    assert result.ok and result.output == 1
    assert len(sent.sends) == 2, sent.sends  # once, and once again: not again and again while nobody takes it
    (first_sent, _), (again_sent, retries) = sent.sends
    assert abs(again_sent - first_sent) < 0.2 and retries == 0  # the budget still counts from the first send
    assert resent_after[0] < 1.0  # not Redis's visibility timeout, nor the budget


def test_a_call_whose_worker_stopped_fails_at_its_budget_naming_that_worker(home: Path) -> None:
    gone = gone_worker()
    result, sent, took = run_call(celery_settings(home), Task(description="x"), 0.4, claimed_by(gone))
    assert result.error_kind == "worker_lost" and result.metadata["worker"] == gone
    assert result.error == (
        f"worker {gone} took the call from queue vy-nexus.expert.steady and stopped (its process is gone);"
        " no other worker took it up within 0.4s"
    )
    assert "is a worker consuming it?" not in (result.error or "")
    assert took < 1.5 and len(sent.sends) == 2


def test_a_call_still_run_by_its_worker_at_its_budget_says_so(home: Path) -> None:
    result, _sent, _took = run_call(celery_settings(home), Task(description="x"), 0.3, claimed_by("node-b:42"))
    assert result.error_kind == "timeout"
    assert (
        result.error
        == "no result within 0.3s from queue vy-nexus.expert.steady: worker node-b:42 took it and still runs it"
    )


def test_a_call_whose_workers_were_lost_as_often_as_allowed_ends_at_once_as_lost(home: Path) -> None:
    gone = gone_worker()
    settings = celery_settings(home, max_redeliveries=0)
    result, sent, took = run_call(settings, Task(description="x"), 30.0, claimed_by(gone))
    assert result.error_kind == "worker_lost" and result.metadata["worker"] == gone
    assert result.error == f"the worker running it was lost once (last: worker {gone}); not delivered again"
    assert took < 3.0 and len(sent.sends) == 1  # not the 30 s budget; not sent again


def test_the_redis_visibility_timeout_outlasts_the_longest_call_instead_of_an_hour(home: Path) -> None:
    assert visibility_timeout(load_settings(home)) == 60 + 10 + 5  # the expert timeout, the hard limit, the hand-off
    longer = load_settings(
        home, executor={"expert_timeout_seconds": 600}, governance={"max_task_duration_seconds": 120}
    )
    assert visibility_timeout(longer) == 120 + 10 + 5  # a call never outlives its task
    chosen = load_settings(home, executor={"visibility_timeout_seconds": 30})
    assert visibility_timeout(chosen) == 30  # shorter than a call: its duplicates are dropped by the claim
    assert build_celery_app(longer).conf.broker_transport_options["visibility_timeout"] == 135


# -- with real brokers and workers (slow) ----------------------------------------------------------------------------


@pytest.fixture
def steady_cluster(tmp_path: Path, pg_url: str) -> Iterator[Callable[..., Any]]:
    """A cluster (test_celery_cluster.Cluster) whose home also has the steady expert, on a queue of its own."""
    from test_celery_cluster import Cluster

    made: list[Any] = []

    def make(broker_url: str, **executor: Any) -> Any:
        cluster = Cluster(
            tmp_path / f"c{len(made)}", broker_url, pg_url, **{"expert_timeout_seconds": 30.0, **executor}
        )
        cluster.add_expert("steady", STEADY_EXPERT)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def steady(cluster: Any, seconds: float, **extra: Any) -> Task:
    return Task(
        description="steady work",
        input={"marks": str(cluster.marks), "seconds": seconds, **extra},
        context={"experts": ["steady"]},
    )


def wait_for_runs(cluster: Any, task: Task, count: int, timeout: float) -> list[tuple[int, float]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(cluster.marks, task)
        if len(runs) >= count:
            return runs
        time.sleep(0.02)
    raise AssertionError(
        f"{count} runs of {task.id} expected within {timeout:.0f}s, saw {runs_of(cluster.marks, task)}"
    )


def kill_mid_call(
    cluster: Any, task: Task, victim: str, after: Callable[[], None] = lambda: None
) -> Callable[[], None]:
    """What to do while the call is in flight: once it runs, SIGKILL the pool process running it (``pool``) or its
    worker's main process (``main``), note the time, then ``after()``."""

    def kill() -> None:
        pid, _ = wait_for_runs(cluster, task, 1, 60)[0]
        target = pid if victim == "pool" else psutil.Process(pid).ppid()
        cluster.killed_at = time.time()
        os.kill(target, signal.SIGKILL)
        after()

    return kill


def broker_name(url: str) -> str:
    return url.split(":", 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["pool", "main"])
def test_a_worker_killed_mid_call_has_the_call_run_again_at_once_by_another_worker(
    steady_cluster: Callable[..., Any], broker_url: str, victim: str
) -> None:
    cluster = steady_cluster(broker_url)
    first, second = cluster.worker("steady"), cluster.worker("steady")
    task = steady(cluster, seconds=3.0)
    result = cluster.submit(task, during=kill_mid_call(cluster, task, victim))
    (killed_pid, _), (pid, rerun_at) = wait_for_runs(cluster, task, 2, 1)
    print(f"\n{broker_name(broker_url)}, {victim} killed: ran again {rerun_at - cluster.killed_at:.2f}s later")
    assert result.ok, result.results
    assert result.results[0].output == {"pid": pid} and pid != killed_pid
    assert result.results[0].metadata["deliveries"] == 2
    # Not Redis's visibility timeout (the budget is 30 s). A lost pool process's call may go back to its own worker,
    # which takes it once Celery has replaced the process (its pool upkeep runs every 5 s).
    assert rerun_at - cluster.killed_at < (8.0 if victim == "pool" else 4.0)
    assert len(runs_of(cluster.marks, task)) == 2
    assert (first.process.poll() is None) + (second.process.poll() is None) == (2 if victim == "pool" else 1)


@pytest.mark.slow
def test_a_pool_process_killed_mid_call_has_the_call_run_again_in_its_own_worker(
    steady_cluster: Callable[..., Any], broker_url: str
) -> None:
    cluster = steady_cluster(broker_url)
    cluster.worker("steady")
    task = steady(cluster, seconds=2.0)
    result = cluster.submit(task, during=kill_mid_call(cluster, task, "pool"))
    (killed_pid, _), (pid, rerun_at) = wait_for_runs(cluster, task, 2, 1)
    print(f"\n{broker_name(broker_url)}, pool killed, one worker: ran again {rerun_at - cluster.killed_at:.2f}s later")
    assert result.ok and pid != killed_pid and result.results[0].metadata["deliveries"] == 2
    assert rerun_at - cluster.killed_at < 8.0  # Celery replaces a pool process within its 5 s pool upkeep


@pytest.mark.slow
def test_a_worker_killed_mid_call_has_the_call_run_again_by_its_restarted_self(
    steady_cluster: Callable[..., Any], broker_url: str
) -> None:
    cluster = steady_cluster(broker_url)
    cluster.worker("steady")
    task = steady(cluster, seconds=1.0)
    restarted: list[float] = []

    def restart() -> None:
        cluster.worker("steady")  # waits until it is ready
        restarted.append(time.time())

    result = cluster.submit(task, during=kill_mid_call(cluster, task, "main", after=restart))
    _, (pid, rerun_at) = wait_for_runs(cluster, task, 2, 1)
    print(
        f"\n{broker_name(broker_url)}, main killed, worker restarted {restarted[0] - cluster.killed_at:.2f}s later:"
        f" ran again {rerun_at - restarted[0]:.2f}s after it was ready"
    )
    assert result.ok and result.results[0].output == {"pid": pid}
    assert rerun_at - restarted[0] < 3.0


@pytest.mark.slow
def test_a_call_whose_worker_is_killed_with_no_worker_left_fails_at_its_budget_naming_it(
    steady_cluster: Callable[..., Any], broker_url: str
) -> None:
    cluster = steady_cluster(broker_url, expert_timeout_seconds=8.0)
    cluster.worker("steady")
    task = steady(cluster, seconds=30.0)
    started = time.monotonic()
    result = cluster.submit(task, during=kill_mid_call(cluster, task, "main"))
    took = time.monotonic() - started
    (pid, _), *_ = runs_of(cluster.marks, task)
    print(
        f"\n{broker_name(broker_url)}, main killed, no worker left: failed {time.time() - cluster.killed_at:.2f}s later"
    )
    failed = result.results[0]
    assert failed.error_kind == "worker_lost", failed
    worker = f"{socket.gethostname()}:{pid}"
    assert failed.metadata["worker"] == worker
    assert f"worker {worker} took the call from queue {cluster.queues['steady']} and stopped" in (failed.error or "")
    assert "is a worker consuming it?" not in (failed.error or "")
    assert took < 8.0 + 3.0  # the budget, and no more


@pytest.mark.slow
def test_a_call_that_kills_every_worker_it_reaches_ends_as_lost_instead_of_looping(
    steady_cluster: Callable[..., Any], broker_url: str
) -> None:
    cluster = steady_cluster(broker_url, max_redeliveries=1)
    workers = [cluster.worker("steady") for _ in range(3)]
    task = steady(cluster, seconds=30.0, regicide=True)
    started = time.monotonic()
    result = cluster.submit(task)
    took = time.monotonic() - started
    runs = runs_of(cluster.marks, task)
    failed = result.results[0]
    print(f"\n{broker_name(broker_url)}, a call killing its workers: ended as lost after {took:.2f}s")
    assert failed.error_kind == "worker_lost" and "lost 2 times (last: worker " in (failed.error or ""), failed
    assert len(runs) == 2  # the first delivery and one redelivery, then no more
    assert sum(worker.process.poll() is None for worker in workers) == 1  # the third worker was not sacrificed
    assert took < 15.0  # not the 30 s budget


@pytest.mark.slow
def test_a_worker_on_another_host_that_goes_silent_is_noticed_by_its_missing_beats(
    steady_cluster: Callable[..., Any], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = steady_cluster(redis_url)
    first, second = cluster.worker("steady"), cluster.worker("steady")
    task = steady(cluster, seconds=2.0)
    monkeypatch.setattr(calls, "this_host", lambda: "the-server-elsewhere")  # here the workers' pids say nothing
    result = cluster.submit(task, during=kill_mid_call(cluster, task, "main"))
    _, (pid, rerun_at) = wait_for_runs(cluster, task, 2, 1)
    print(f"\nredis, main killed on another host: ran again {rerun_at - cluster.killed_at:.2f}s later")
    assert result.ok and result.results[0].output == {"pid": pid}
    silence = calls.LOST_AFTER_SECONDS - calls.BEAT_SECONDS  # its last beat came up to a beat before the kill
    assert silence < rerun_at - cluster.killed_at < calls.LOST_AFTER_SECONDS + 3.0
    assert {first.process.poll() is None, second.process.poll() is None} == {True, False}
