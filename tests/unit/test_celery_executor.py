"""The Celery executor's settings and failure paths that need no broker: a closed port stands for a broker that
is down. Runs with workers live in tests/integration/test_celery_cluster.py."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.errors import ConfigError
from vy_nexus.execution.celery_app import queue_for, visibility_timeout
from vy_nexus.execution.celery_executor import CeleryExecutor
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.interfaces.cli import app
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_broker_url_must_name_a_celery_transport(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"executor\.broker_url.*redis://"):
        load_settings(home, executor={"broker_url": "http://127.0.0.1:6379"})


def test_queues_are_per_expert_unless_overridden(home: Path) -> None:
    settings = load_settings(
        home, executor={"queues": {"code": "heavy"}}, governance={"max_task_duration_seconds": 7200}
    )
    assert queue_for(settings.executor, "code") == "heavy"
    assert queue_for(settings.executor, "research") == "vy-nexus.expert.research"
    assert visibility_timeout(settings) == 75  # the longest call (60 s) + the hard limit's margin + the hand-off


def test_a_broker_that_is_down_is_an_error_value_naming_it_without_password(home: Path) -> None:
    port = closed_port()
    settings = load_settings(home, executor={"kind": "celery", "broker_url": f"redis://:s3cret@127.0.0.1:{port}/0"})

    async def scenario() -> tuple[str | None, str | None, int]:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        clock = asyncio.ensure_future(ticker())
        try:
            # A budget of 2 s allows a retry half a second later: the loop's ticks then do not depend on how fast the
            # first refused connection fails (a few ms once the transport's modules are loaded).
            result = await executor.run(ExpertCall(Task(description="anything"), "code", 2.0))
        finally:
            clock.cancel()
            await executor.aclose()
        return result.error, result.error_kind, ticks

    error, kind, ticks = asyncio.run(scenario())
    assert kind == "unreachable"
    assert error is not None and f"redis://:**@127.0.0.1:{port}/0" in error and "s3cret" not in error
    assert ticks >= 3  # the event loop kept running while the broker was retried (few ticks on a loaded machine)


def test_a_celery_system_reports_its_broker_in_status(home: Path) -> None:
    port = closed_port()
    settings = load_settings(home, executor={"kind": "celery", "broker_url": f"amqp://guest:pw@127.0.0.1:{port}//"})
    system = VyNexus(settings, observe=False)
    executor = system.status()["executor"]
    assert executor["kind"] == "celery" and executor["workers"] == {}
    assert f"amqp://guest:**@127.0.0.1:{port}//" in executor["broker_error"]
    assert executor["queues"]["vy-nexus.expert.code"] is None  # unknown while the broker is away


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loglevel", "loud"], "--loglevel must be"),
        (["--queues", " , "], "--queues needs queue names"),
    ],
)
def test_worker_options_are_checked_before_anything_starts(home: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--home", str(home), "worker", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_store_that_cannot_be_reached_is_an_error_value(home: Path) -> None:
    settings = load_settings(
        home,
        executor={"kind": "celery", "broker_url": f"redis://127.0.0.1:{closed_port()}/0"},
        store={"url": f"postgresql://postgres@127.0.0.1:{closed_port()}/vy"},
    )

    async def scenario() -> tuple[str | None, str | None]:
        executor = CeleryExecutor(settings, VyNexus(settings, observe=False).registry)
        try:
            result = await executor.run(ExpertCall(Task(description="anything"), "code", 1.0))
        finally:
            await executor.aclose()
        return result.error, result.error_kind

    error, kind = asyncio.run(scenario())
    assert kind == "store" and error is not None and "cannot reach the task store" in error


def test_the_task_body_retries_while_the_store_is_away_and_when_the_runner_asks(home: Path) -> None:
    from vy_nexus.errors import StoreError
    from vy_nexus.execution.celery_app import TASK_NAME, CallOutcome, build_celery_app

    calls: list[tuple[int, int]] = []

    def runner(
        task: dict[str, object], expert: str, budget: float, sent: float, attempt: int, left: int
    ) -> CallOutcome:
        calls.append((attempt, left))
        if len(calls) == 1:
            raise StoreError("task store sqlite:///x: database is locked")
        return CallOutcome(retry_in=0.0) if len(calls) == 2 else CallOutcome()

    settings = load_settings(home, executor={"max_retries": 2})
    app = build_celery_app(settings, runner)
    outcome = app.tasks[TASK_NAME].apply(args=[{"description": "x"}, "code", 5.0, 0.0])  # eager: no broker
    assert outcome.successful(), outcome.traceback
    assert calls == [(0, 2), (1, 1), (2, 0)]  # each retry is the next attempt, with one retry fewer left
