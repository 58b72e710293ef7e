"""How a server learns that a worker finished a call: the worker's notice through the broker (no polling), and
polling the ledger while the broker cannot be reached. Real Redis and RabbitMQ on loopback (skipped, naming what to
install, when one does not answer); the ledger is SQLite."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from vy_nexus.config import load_settings
from vy_nexus.execution.celery_app import Notice, ResultNotices, announce_result, build_celery_app
from vy_nexus.execution.celery_executor import ResultWatcher
from vy_nexus.store.calls import CallLedger

# Real Redis and RabbitMQ brokers, as the Celery suite (slow, run by .ci/run).
pytestmark = pytest.mark.slow


def finish(ledger: CallLedger, task_id: str, expert_id: str, result: str) -> None:
    ledger.claim(task_id, expert_id, attempt=0, worker="test", max_deliveries=1, lost=str)
    ledger.complete(task_id, expert_id, result)


def test_a_finished_call_reaches_the_waiting_server_by_its_notice(home: Path, broker_url: str) -> None:
    settings = load_settings(home, executor={"kind": "celery", "broker_url": broker_url})
    app = build_celery_app(settings)
    ledger = CallLedger(f"sqlite:///{home / 'calls.db'}").open()
    # Polling and sweeps an hour apart: only the notice can bring the result back within the test.
    watcher = ResultWatcher(
        ledger, notices=ResultNotices(app), fastest=3600, slowest=3600, sweep_seconds=3600, relisten_seconds=3600
    )

    async def scenario() -> tuple[str, float]:
        future = watcher.watch(("t-1", "alpha"))
        assert await asyncio.to_thread(watcher.listening.wait, 10.0), "the watcher did not subscribe"
        finish(ledger, "t-1", "alpha", '{"answer": 42}')
        announce_result(app, Notice(("t-0", "not-waited-for")))  # another server's call: ignored
        started = time.perf_counter()
        announce_result(app, Notice(("t-1", "alpha")))
        result = await asyncio.wait_for(future, 10.0)
        return result, time.perf_counter() - started

    try:
        result, took = asyncio.run(scenario())
    finally:
        watcher.close()
        ledger.close()
    assert result == '{"answer": 42}'
    assert watcher.notices >= 1 and watcher.errors == 0
    assert took < 5.0


def test_without_the_broker_the_server_polls_the_ledger(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings(home, executor={"kind": "celery", "broker_url": f"redis://127.0.0.1:{port}/0"})
    ledger = CallLedger(f"sqlite:///{home / 'calls.db'}").open()
    watcher = ResultWatcher(
        ledger, notices=ResultNotices(build_celery_app(settings)), fastest=0.01, slowest=0.05, relisten_seconds=3600
    )

    async def scenario() -> str:
        future = watcher.watch(("t-2", "beta"))
        await asyncio.sleep(0.1)
        finish(ledger, "t-2", "beta", '"polled"')
        return await asyncio.wait_for(future, 10.0)

    try:
        assert asyncio.run(scenario()) == '"polled"'
    finally:
        watcher.close()
        ledger.close()
    assert watcher.errors >= 1 and watcher.notices == 0 and not watcher.listening.is_set()
