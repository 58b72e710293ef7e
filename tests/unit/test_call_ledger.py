"""The expert-call ledger on a real SQLite file and a real PostgreSQL database (when one answers on 127.0.0.1:5432):
one result per (task id, expert id), bounded redelivery."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vy_nexus.store.calls import CallLedger, Claim, Holder


def dead_worker() -> str:
    """A worker of this host whose process has ended: whatever it claimed, it is lost."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


GONE = dead_worker()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallLedger]:
    url = f"sqlite:///{tmp_path / 'tasks.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    ledger = CallLedger(url).open()
    yield ledger
    ledger.close()


def lost(holder: Holder) -> str:
    return f'{{"lost": {holder.deliveries}}}'


def claim(ledger: CallLedger, attempt: int = 0, max_deliveries: int = 3, expert: str = "code") -> Claim:
    """A delivery to a worker that dies with it: the next delivery finds it lost."""
    return ledger.claim("t1", expert, attempt=attempt, worker=GONE, max_deliveries=max_deliveries, lost=lost)


def test_a_finished_call_answers_a_redelivery_with_its_stored_result(ledger: CallLedger) -> None:
    first = ledger.claim("t1", "code", attempt=0, worker="host:1", max_deliveries=3, lost=lost)
    assert first.run and first.deliveries == 1
    assert ledger.results([("t1", "code")]) == {}  # running: nothing to read yet
    assert ledger.complete("t1", "code", '{"answer": 1}') == '{"answer": 1}'
    again = ledger.claim("t1", "code", attempt=0, worker="host:2", max_deliveries=3, lost=lost)
    assert not again.run and again.result == '{"answer": 1}'
    assert ledger.results([("t1", "code"), ("t1", "other")]) == {("t1", "code"): '{"answer": 1}'}


def test_the_first_result_wins_when_two_deliveries_finish(ledger: CallLedger) -> None:
    assert claim(ledger).run
    assert claim(ledger).run  # redelivered once the first worker was lost
    assert ledger.complete("t1", "code", '"first"') == '"first"'
    assert ledger.complete("t1", "code", '"second"') == '"first"'
    assert ledger.get("t1", "code").deliveries == 2


def test_redeliveries_are_bounded_then_the_call_ends_as_lost(ledger: CallLedger) -> None:
    outcomes = [claim(ledger, max_deliveries=3) for _ in range(4)]
    assert [o.run for o in outcomes] == [True, True, True, False]
    assert [o.deliveries for o in outcomes] == [1, 2, 3, 3]
    assert outcomes[-1].result == '{"lost": 3}'
    assert ledger.get("t1", "code").state == "done"


def test_a_retry_is_a_new_attempt_not_a_redelivery(ledger: CallLedger) -> None:
    assert claim(ledger, max_deliveries=1).run
    retried = claim(ledger, attempt=1, max_deliveries=1)
    assert retried.run and retried.deliveries == 1
    assert ledger.get("t1", "code").attempt == 1
    assert not claim(ledger, attempt=1, max_deliveries=1).run


def test_calls_of_one_task_are_kept_apart_and_pruned_once_old(ledger: CallLedger) -> None:
    import time

    assert claim(ledger, expert="code").run
    assert claim(ledger, expert="research").run
    ledger.complete("t1", "code", "1")
    assert ledger.prune(time.time() - 60) == 0
    assert ledger.prune(time.time() + 60) == 1  # only the finished call goes
    assert ledger.get("t1", "code") is None and ledger.get("t1", "research").state == "running"


def test_a_closed_ledger_says_so(tmp_path: Path) -> None:
    from vy_nexus.errors import StoreError

    with pytest.raises(StoreError, match="not open"):
        CallLedger(f"sqlite:///{tmp_path / 'x.db'}").results([("t", "e")])
