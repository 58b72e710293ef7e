"""A cluster set up wrong, as an operator might: options out of range, a store a worker cannot use, a broker that
refuses us, a worker with other experts or another store than its server, a call the broker will not take.

The fast tests need no broker (a closed port stands for one; the store is SQLite). Those marked slow start
`vy-nexus worker` processes over the real Redis / RabbitMQ / PostgreSQL on loopback (test_celery_cluster.py's
helpers), and skip, naming what to install, when a service does not answer.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.errors import BrokerError, StoreError
from vy_nexus.execution.celery_app import TASK_NAME, CallOutcome, Notice, build_celery_app
from vy_nexus.execution.celery_executor import CeleryExecutor, ResultWatcher
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.interfaces import worker as worker_module
from vy_nexus.interfaces.cli import app
from vy_nexus.interfaces.worker import WorkerRuntime, max_concurrency, wait_for_broker, worker_settings
from vy_nexus.store.calls import CallLedger
from vy_nexus.system import VyNexus
from vy_nexus.tasks import ExpertResult, Task


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cluster_home(home: Path, **store: Any) -> Path:
    """A home configured for Celery with a broker that is down (nothing here should need it)."""
    lines = ["executor:", "  kind: celery", f"  broker_url: redis://127.0.0.1:{closed_port()}/0"]
    if store:
        lines += ["store:", *(f"  {key}: {value}" for key, value in store.items())]
    (home / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return home


def worker_cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home), "worker", *args], env={"COLUMNS": "300"})


@pytest.fixture
def no_broker_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that gets as far as waiting for its broker has accepted what the test says it must refuse."""

    def reached(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the worker went on to wait for its broker")

    monkeypatch.setattr(worker_module, "wait_for_broker", reached)


# -- `vy-nexus worker` refuses what cannot work, before it takes a single call ----------------------------------------


@pytest.mark.usefixtures("no_broker_wait")
def test_worker_concurrency_beyond_the_open_files_limit_is_refused_not_a_traceback(home: Path) -> None:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    result = worker_cli(cluster_home(home), "--concurrency", str(10**20))
    assert result.exit_code == 2, result.output
    assert f"--concurrency {10**20} is more worker processes than" in result.output
    assert f"ulimit -n {soft}) allows at most {max_concurrency()}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_broker_wait")
def test_a_worker_whose_store_is_unusable_stops_with_exit_7_before_it_is_ready(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store of a newer vy-nexus: this worker could claim and answer nothing in it
        conn.exec_driver_sql("CREATE TABLE schema_info (name VARCHAR(64) PRIMARY KEY, version INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO schema_info VALUES ('tasks', 9)")
    engine.dispose()
    result = worker_cli(cluster_home(home, url=url), "-c", "1")
    assert result.exit_code == 7, result.output
    assert "the task store has schema version 9, newer than this vy-nexus understands" in result.output
    assert "ready" not in result.output and "Traceback" not in result.output


def test_the_worker_prints_the_broker_it_waits_for_literally(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = "cannot reach the broker amqp://u:**@127.0.0.1:1/[red]vhost[/red]: [Errno 111] refused"

    def waits_once(_app: Any, on_waiting: Callable[[str], None], **_: Any) -> None:
        on_waiting(said)
        raise BrokerError("given up")

    monkeypatch.setattr(worker_module, "wait_for_broker", waits_once)
    result = worker_cli(cluster_home(home), "-c", "1")
    assert result.exit_code == 9, result.output
    assert said in result.output  # rich markup in config text is shown, not applied


def test_a_broker_that_refuses_the_login_ends_the_wait_with_a_broker_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.exceptions import AuthenticationError

    settings = load_settings(home, executor={"kind": "celery", "broker_url": "redis://:wrong@127.0.0.1:6390/0"})
    waited: list[str] = []

    class Refusing:
        class conf:  # noqa: N801 - stands for a Celery app's conf
            broker_url = settings.executor.broker_url

    checks: list[float] = []

    def refused(_app: Any, timeout: float = 3.0) -> None:
        checks.append(timeout)
        assert len(checks) < 3, "a refused login was tried again and again"
        try:
            raise AuthenticationError("invalid username-password pair or user is disabled.")
        except AuthenticationError as exc:
            raise BrokerError("cannot reach the broker redis://:**@127.0.0.1:6390/0: invalid password") from exc

    monkeypatch.setattr(worker_module, "check_broker", refused)
    with pytest.raises(BrokerError) as caught:
        wait_for_broker(Refusing(), waited.append, interval=0.01)
    assert waited == []  # not "retrying every 2s": a wrong password does not get better by waiting
    message = str(caught.value)
    assert "the broker redis://:**@127.0.0.1:6390/0 refused the connection: invalid username-password" in message
    assert "wrong" not in message and caught.value.exit_code == 9


# -- a worker's call against its own setup ----------------------------------------------------------------------------


@pytest.fixture
def runtime(home: Path) -> Iterator[WorkerRuntime]:
    settings = load_settings(cluster_home(home))
    made = WorkerRuntime(settings, VyNexus(worker_settings(settings), observe=False))
    yield made
    made.close()


def test_a_worker_without_the_expert_says_so_and_names_itself(runtime: WorkerRuntime) -> None:
    task = Task(description="anything")
    assert runtime(task.as_dict(), "ghost", 5.0, time.time(), 0, 0) == CallOutcome()
    ledger = CallLedger(runtime.settings.store_url).open()
    try:
        stored = ExpertResult.from_dict(json.loads(ledger.get(task.id, "ghost").result))
    finally:
        ledger.close()
    assert stored.error_kind == "unknown"
    assert f"worker {socket.gethostname()}:" in (stored.error or "")
    assert "has no expert 'ghost': give every worker the experts the server has" in (stored.error or "")


def test_the_worker_retries_a_call_while_the_store_is_away_for_as_long_as_its_budget(home: Path) -> None:
    attempts: list[int] = []

    def store_away_for_ten_tries(
        task: dict[str, object], expert: str, budget: float, sent: float, attempt: int, left: int
    ) -> CallOutcome:
        attempts.append(attempt)
        if len(attempts) <= 10:
            raise StoreError("task store postgresql://vy@db/vy: connection refused")
        return CallOutcome()

    celery = build_celery_app(load_settings(home, executor={"max_retries": 2}), store_away_for_ten_tries)
    outcome = celery.tasks[TASK_NAME].apply(args=[{"description": "x"}, "code", 30.0, time.time()])  # eager
    assert outcome.successful(), outcome.traceback  # 10 s of outage within a 30 s budget: the call is not dropped
    assert len(attempts) == 11


# -- the server, when a worker answers into another store -------------------------------------------------------------


class OneNotice:
    """Stands for the broker's notices: subscribes, then delivers ``notice`` once."""

    def __init__(self, notice: Notice) -> None:
        self.notice = notice

    def listen(self, on_notice: Callable[[Notice], None], between: Callable[[], bool]) -> None:
        sent = False
        while between():
            if not sent:
                on_notice(self.notice)
                sent = True
            time.sleep(0.01)


def test_a_result_announced_from_another_store_ends_the_call_at_once_naming_both(tmp_path: Path) -> None:
    ledger = CallLedger(f"sqlite:///{tmp_path / 'server.db'}").open()
    notice = Notice(("t-1", "alpha"), "node-b:42", "sqlite:////elsewhere/tasks/tasks.db")
    watcher = ResultWatcher(ledger, notices=OneNotice(notice), sweep_seconds=3600)  # type: ignore[arg-type]

    async def scenario() -> str:
        return await asyncio.wait_for(watcher.watch(("t-1", "alpha")), 5.0)

    try:
        result = ExpertResult.from_dict(json.loads(asyncio.run(scenario())))
    finally:
        watcher.close()
        ledger.close()
    assert result.error_kind == "store" and result.task_id == "t-1" and result.expert_id == "alpha"
    error = result.error or ""
    assert "worker node-b:42 ran it but stored its result in another task store (sqlite:////elsewhere/" in error
    assert f"not this server's (sqlite:///{tmp_path / 'server.db'})" in error and "same store.url" in error


def test_an_announced_result_that_is_in_the_store_is_delivered_as_it_is(tmp_path: Path) -> None:
    ledger = CallLedger(f"sqlite:///{tmp_path / 'server.db'}").open()
    ledger.claim("t-2", "beta", attempt=0, worker="node-a:1", max_deliveries=1, lost=str)
    ledger.complete("t-2", "beta", '{"answer": 42}')
    watcher = ResultWatcher(ledger, notices=OneNotice(Notice(("t-2", "beta"), "node-a:1")), sweep_seconds=3600)  # type: ignore[arg-type]

    async def scenario() -> str:
        return await asyncio.wait_for(watcher.watch(("t-2", "beta")), 5.0)

    try:
        assert asyncio.run(scenario()) == '{"answer": 42}'
    finally:
        watcher.close()
        ledger.close()


# -- with real brokers and workers (slow) ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_with_another_store_is_named_at_once_not_a_timeout(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    from test_celery_cluster import Cluster

    cluster = Cluster(tmp_path / "c", redis_url, pg_url, expert_timeout_seconds=30.0)
    elsewhere = cluster.machine("node-b")
    config = (elsewhere / "config.yaml").read_text(encoding="utf-8")
    (elsewhere / "config.yaml").write_text(config.replace(pg_url, f"sqlite:///{elsewhere / 'own.db'}"), "utf-8")
    try:
        cluster.worker("alpha", home=elsewhere)
        started = time.monotonic()
        result = cluster.submit(cluster.task("alpha"))
        took = time.monotonic() - started
    finally:
        cluster.stop()
    assert not result.ok and result.results[0].error_kind == "store"
    assert f"stored its result in another task store (sqlite:///{elsewhere / 'own.db'})" in (
        result.results[0].error or ""
    )
    assert took < 15.0  # not the 30 s budget


@pytest.mark.slow
def test_a_broker_that_refuses_the_login_is_named_by_server_and_worker(home: Path, amqp_url: str) -> None:
    wrong = amqp_url.replace("guest:guest@", "guest:wrong@")
    (home / "config.yaml").write_text(f"executor:\n  kind: celery\n  broker_url: '{wrong}'\n", encoding="utf-8")
    started = time.monotonic()
    result = worker_cli(home, "-c", "1")
    assert result.exit_code == 9, result.output
    assert "the broker amqp://guest:**@127.0.0.1:5672// refused the connection" in result.output
    assert "ACCESS_REFUSED" in result.output and "wrong" not in result.output
    assert time.monotonic() - started < 30.0

    settings = load_settings(home)

    async def scenario() -> ExpertResult:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        try:
            return await executor.run(ExpertCall(Task(description="anything"), "code", 5.0))
        finally:
            await executor.aclose()

    refused = asyncio.run(scenario())
    assert refused.error_kind == "unreachable"
    assert "the broker amqp://guest:**@127.0.0.1:5672// refused the call: " in (refused.error or "")


@pytest.mark.slow
def test_a_call_larger_than_rabbitmq_takes_fails_at_once_instead_of_vanishing(home: Path, amqp_url: str) -> None:
    settings = load_settings(home, executor={"kind": "celery", "broker_url": amqp_url})
    huge = Task(description="summarise", input="x" * (130 * 1024 * 1024))  # past RabbitMQ's 128 MiB default

    expert_id = f"vy-test-huge-{huge.id}"

    async def scenario() -> ExpertResult:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        try:
            return await executor.run(ExpertCall(huge, expert_id, 30.0))
        finally:
            with executor.app.connection_for_write() as connection:  # the queue the send declared
                connection.default_channel.queue_delete(f"vy-nexus.expert.{expert_id}")
            await executor.aclose()

    started = time.monotonic()
    result = asyncio.run(scenario())
    assert time.monotonic() - started < 20.0  # not the 30 s budget waiting for a message the broker dropped
    assert result.error_kind == "error"
    assert "could not send the call to vy-nexus.expert.vy-test-huge-" in (result.error or "")
    assert "is larger than configured max size" in (result.error or "")


def test_a_call_that_times_out_while_the_store_cannot_be_read_says_so(home: Path) -> None:
    settings = load_settings(cluster_home(home))

    async def scenario() -> ExpertResult:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        executor._opened = True  # the ledger stays closed: every read of it fails, as with a store that is down
        executor._publish = lambda _call, _queue: None  # type: ignore[method-assign]  # sent; no worker answers
        try:
            return await executor.run(ExpertCall(Task(description="anything"), "code", 0.3))
        finally:
            await executor.aclose()

    result = asyncio.run(scenario())
    assert result.error_kind == "timeout"
    assert "no result within 0.3s from queue vy-nexus.expert.code" in (result.error or "")
    assert "the task store, where results come back, could not be read: the expert-call ledger is not open" in (
        result.error or ""
    )
