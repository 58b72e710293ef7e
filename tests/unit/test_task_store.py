"""The task store on a real SQLite file: states, reads, filters, pages, cancellation, recovery, retention, damage."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from store_helpers import die
from vy_nexus.errors import StoreError, TaskNotFoundError
from vy_nexus.store import SqlTaskStore, TaskState
from vy_nexus.store.schema import owners, tasks
from vy_nexus.tasks import AggregatedResult, ExpertResult, RoutingDecision, Task


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tasks" / "tasks.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[SqlTaskStore]:
    store = SqlTaskStore(url_of(db), clock=clock, flush_interval=60)
    store.open()
    yield store
    store.close()


def decision_for(task: Task, *experts: str) -> RoutingDecision:
    return RoutingDecision(
        task_id=task.id,
        expert_ids=list(experts),
        confidences=dict.fromkeys(experts, 0.9),
        strategy="keyword",
        reason="r",
    )


def result_for(task: Task, expert: str, output: object = "done") -> AggregatedResult:
    ok = ExpertResult(task_id=task.id, expert_id=expert, output=output, confidence=0.8, duration_ms=3.0)
    return AggregatedResult(
        task_id=task.id, output=output, experts=[expert], method="single", confidence=0.8, results=[ok]
    )


def test_a_task_moves_through_its_states_and_keeps_its_history(store: SqlTaskStore, clock: Clock) -> None:
    task = Task(description="sum the units", type="data", input={"rows": [1, 2]})
    store.accept(task)
    record = store.get(task.id)  # a read sees the buffered write
    assert record.state is TaskState.QUEUED and record.owner == store.owner_id
    store.routed(task.id, decision_for(task, "data-analysis"), {"verdict": "allowed", "policy": "all", "reason": "ok"})
    clock.now += 1
    store.started(task.id)
    running = store.get(task.id)
    assert running.state is TaskState.RUNNING and running.started_at == clock.now
    assert running.experts == ["data-analysis"] and running.ruling == {
        "verdict": "allowed",
        "policy": "all",
        "reason": "ok",
    }
    clock.now += 2
    store.finished(task.id, TaskState.SUCCEEDED, result=result_for(task, "data-analysis", {"total": 3}))
    done = store.get(task.id)
    assert done.state is TaskState.SUCCEEDED and done.finished_at == clock.now
    assert done.output == {"total": 3} and done.confidence == 0.8
    assert done.results[0]["expert_id"] == "data-analysis" and done.results[0]["duration_ms"] == 3.0
    assert done.task["input"] == {"rows": [1, 2]} and done.task["type"] == "data"


def test_changes_coalesce_into_one_insert_until_flushed(store: SqlTaskStore, db: Path) -> None:
    task = Task(description="quick")
    store.accept(task)
    store.started(task.id)
    store.finished(task.id, TaskState.FAILED, error="every chosen expert failed")
    with sa.create_engine(url_of(db)).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one() == 0  # nothing written yet
    store.flush()
    with sa.create_engine(url_of(db)).connect() as conn:
        row = conn.execute(sa.select(tasks.c.state, tasks.c.error)).one()
    assert tuple(row) == ("failed", "every chosen expert failed")


def test_unknown_id_is_a_clear_error(store: SqlTaskStore) -> None:
    with pytest.raises(TaskNotFoundError, match="no task with id 'nope'"):
        store.get("nope")


def test_list_filters_and_pages_newest_first(store: SqlTaskStore, clock: Clock) -> None:
    made = []
    for i in range(7):
        clock.now += 10
        task = Task(description=f"task {i}")
        store.accept(task)
        store.routed(task.id, decision_for(task, "code" if i % 2 else "writing"))
        if i < 3:
            store.finished(task.id, TaskState.SUCCEEDED, result=result_for(task, "code"))
        made.append(task)
    page = store.list_tasks(limit=3)
    assert [r.description for r in page.items] == ["task 6", "task 5", "task 4"]
    assert page.total == 7 and page.next_offset == 3
    last = store.list_tasks(limit=3, offset=6)
    assert [r.description for r in last.items] == ["task 0"] and last.next_offset is None
    assert {r.description for r in store.list_tasks(states=[TaskState.SUCCEEDED]).items} == {
        "task 0",
        "task 1",
        "task 2",
    }
    assert {r.description for r in store.list_tasks(expert="code").items} == {"task 1", "task 3", "task 5"}
    assert store.list_tasks(expert="cod").total == 0  # whole ids only
    assert store.list_tasks(expert="%").total == 0  # LIKE wildcards are literal
    since = store.list_tasks(since=clock.now - 15)
    assert [r.description for r in since.items] == ["task 6", "task 5"]


def test_large_inputs_are_summarised_but_the_text_is_kept_whole(db: Path) -> None:
    store = SqlTaskStore(url_of(db), max_input_bytes=100)
    store.open()
    try:
        task = Task(description="x" * 5000, input="y" * 1000)
        store.accept(task)
        record = store.get(task.id)
    finally:
        store.close()
    assert record.description == "x" * 5000
    assert record.task["input"] == {"omitted": True, "json_bytes": 1002, "kind": "str"}


def test_cancel_request_is_seen_by_the_owner(db: Path) -> None:
    owner = SqlTaskStore(url_of(db), flush_interval=0.01)
    delivered: list[str] = []
    owner.on_cancel = delivered.append
    owner.open()
    other = SqlTaskStore(url_of(db), owner_id="elsewhere:1:1")
    other.open()
    try:
        task = Task(description="long job")
        owner.accept(task)
        owner.started(task.id)
        owner.flush()
        record = other.request_cancel(task.id)
        assert record.cancel_requested and record.state is TaskState.RUNNING
        deadline = time.monotonic() + 5
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert delivered == [task.id]
        owner.finished(task.id, TaskState.CANCELLED, error="cancelled on request")
        owner.flush()
        assert other.request_cancel(task.id).state is TaskState.CANCELLED  # finished: nothing to do
    finally:
        other.close()
        owner.close()


def test_tasks_of_a_dead_process_become_interrupted_on_start(db: Path, clock: Clock) -> None:
    dead_owner = f"{socket.gethostname()}:999999:1"  # this host, a pid that does not exist
    gone = SqlTaskStore(url_of(db), owner_id=dead_owner, clock=clock)
    gone.open()
    running, queued, done = Task(description="was running"), Task(description="was queued"), Task(description="done")
    for task in (running, queued, done):
        gone.accept(task)
    gone.started(running.id)
    gone.finished(done.id, TaskState.SUCCEEDED, result=result_for(done, "general"))
    gone.flush()
    die(gone)
    survivor = SqlTaskStore(url_of(db), clock=clock)
    recovered = survivor.open()
    try:
        by_id = {r.id: r for r in recovered}
        assert set(by_id) == {running.id, queued.id}
        assert by_id[running.id].state is TaskState.INTERRUPTED
        assert "stopped while it ran" in (by_id[running.id].error or "")
        assert "before it started" in (by_id[queued.id].error or "")
        assert survivor.get(done.id).state is TaskState.SUCCEEDED
    finally:
        survivor.close()


def test_a_foreign_owner_is_gone_when_its_heartbeat_is_older_than_the_lease(db: Path, clock: Clock) -> None:
    remote = SqlTaskStore(url_of(db), owner_id="other-host:42:7", clock=clock)
    remote.open()
    task = Task(description="remote work")
    remote.accept(task)
    remote.started(task.id)
    remote.flush()
    die(remote)
    fresh = SqlTaskStore(url_of(db), clock=clock, lease_seconds=30)
    assert fresh.open() == []  # heartbeat is recent: it may still be working
    fresh.close()
    clock.now += 31
    later = SqlTaskStore(url_of(db), clock=clock, lease_seconds=30)
    try:
        assert [r.id for r in later.open()] == [task.id]
        with later._connect() as conn:
            assert conn.execute(sa.select(owners.c.id).where(owners.c.id == "other-host:42:7")).first() is None
    finally:
        later.close()


def test_finished_tasks_are_pruned_after_the_retention(db: Path, clock: Clock) -> None:
    store = SqlTaskStore(url_of(db), clock=clock, retention_seconds=100)
    store.open()
    try:
        old, live = Task(description="old"), Task(description="still queued")
        store.accept(old)
        store.finished(old.id, TaskState.SUCCEEDED, result=result_for(old, "general"))
        store.accept(live)
        store.flush()
        clock.now += 101
        assert store.prune() == 1
        assert [r.id for r in store.list_tasks().items] == [live.id]
    finally:
        store.close()


def test_a_damaged_file_is_moved_aside_with_a_warning(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database at all" * 100)
    warnings: list[str] = []
    store = SqlTaskStore(url_of(db), on_warning=warnings.append)
    store.open()
    try:
        task = Task(description="after the damage")
        store.accept(task)
        assert store.get(task.id).state is TaskState.QUEUED
    finally:
        store.close()
    assert len(warnings) == 1 and "damaged" in warnings[0]
    assert len(list(db.parent.glob("tasks.db.damaged-*"))) == 1


def test_bad_urls_and_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        SqlTaskStore("::nonsense::").open()
    with pytest.raises(StoreError, match="no database driver"):
        SqlTaskStore("nosuchdb://x/y").open()
    folder = tmp_path / "a-directory"
    folder.mkdir()
    with pytest.raises(StoreError, match="is a directory"):
        SqlTaskStore(url_of(folder)).open()
    with pytest.raises(StoreError, match="not open"):
        SqlTaskStore(url_of(tmp_path / "x.db")).get("x")


def test_writes_survive_a_failed_flush(store: SqlTaskStore, db: Path) -> None:
    task = Task(description="kept")
    store.accept(task)
    engine = store._engine
    store._engine = sa.create_engine(f"sqlite:///{db.parent / 'missing-dir' / 'x.db'}")  # writes fail
    with pytest.raises(StoreError):
        store.flush()
    store._engine = engine
    assert store.get(task.id).description == "kept"


def test_an_offset_beyond_any_page_is_an_empty_page(store: SqlTaskStore) -> None:
    store.accept(Task(description="only one"))
    page = store.list_tasks(offset=10**30)
    assert page.items == [] and page.total == 1 and page.next_offset is None


def test_values_json_cannot_hold_natively_are_stored_without_losing_the_batch(store: SqlTaskStore) -> None:
    odd = Task(description="odd values", context={"big": 10**30, "k\udc56": "v\udc56"}, input={"n": -(10**40)})
    plain = Task(description="an ordinary task in the same batch")
    store.accept(odd)
    store.accept(plain)
    store.finished(odd.id, TaskState.SUCCEEDED, result=result_for(odd, "general", {"huge": 10**50, "text": "x\udc00"}))
    store.flush()
    record = store.get(odd.id)
    assert record.task["input"] == {"n": -(10**40)} and record.task["context"]["big"] == 10**30
    assert record.output["huge"] == 10**50
    assert store.get(plain.id).state is TaskState.QUEUED


def count_rows(db: Path) -> int:
    with sa.create_engine(url_of(db)).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one())


def test_callers_waiting_together_share_one_commit(store: SqlTaskStore, db: Path) -> None:
    commits: list[int] = []
    flush_locked = store._flush_locked

    def counting() -> None:
        commits.append(len(store._pending))
        flush_locked()

    store._flush_locked = counting  # type: ignore[method-assign]
    with store._write_lock:  # the thread is busy: the callers gather behind it
        waiters = []
        for number in range(5):
            store.accept(Task(description=f"gathered {number}"))
            waiters.append(store.flush_soon())
        assert not any(waiter.done() for waiter in waiters)
    for waiter in waiters:
        waiter.result(timeout=10)
    assert count_rows(db) == 5
    assert commits[0] == 5  # one transaction held all five


def test_flush_soon_without_the_thread_commits_at_once(db: Path) -> None:
    store = SqlTaskStore(url_of(db), flush_interval=60)
    store.open()
    store._closing.set()  # as when close has begun
    store.accept(Task(description="late"))
    store.flush_soon().result(timeout=10)
    assert count_rows(db) == 1
    store._closing.clear()
    store.close()


def test_a_failed_group_commit_fails_its_callers_and_keeps_the_writes(store: SqlTaskStore, db: Path) -> None:
    task = Task(description="kept for later")
    engine = store._engine
    with store._write_lock:
        store.accept(task)
        store._engine = sa.create_engine(f"sqlite:///{db.parent / 'missing-dir' / 'x.db'}")  # writes fail
        waiter = store.flush_soon()
    with pytest.raises(StoreError):
        waiter.result(timeout=10)
    store._engine = engine
    assert store.get(task.id).description == "kept for later"


def test_a_shared_ruling_is_rendered_once_and_a_mapping_every_time() -> None:
    from vy_nexus.execution.governance import Ruling, Verdict
    from vy_nexus.store.sql import RulingTexts

    texts = RulingTexts(size=2)
    shared = Ruling(Verdict.ALLOWED, "all", "2 policies allowed the task")
    first = texts.render(shared)
    assert first is not None and '"reason":"2 policies allowed the task"' in first
    assert texts.render(shared) is first  # remembered, not rendered again
    mapping = {"verdict": "allowed", "policy": "p", "reason": "before"}
    assert '"before"' in (texts.render(mapping) or "")
    mapping["reason"] = "after"
    assert '"after"' in (texts.render(mapping) or "")  # a caller's mapping may change: never remembered
    others = [Ruling(Verdict.DENIED, f"p{n}", f"reason {n}") for n in range(3)]
    assert [texts.render(r) for r in others] == [
        f'{{"verdict":"denied","policy":"p{n}","reason":"reason {n}"}}' for n in range(3)
    ]
    assert len(texts._texts) <= 2 and texts.render(None) is None


def test_an_index_earlier_versions_created_is_dropped_on_open(db: Path) -> None:
    from vy_nexus.store.schema import RETIRED_INDEXES, metadata

    db.parent.mkdir(parents=True)
    with sa.create_engine(url_of(db)).begin() as conn:
        metadata.create_all(conn)
        conn.exec_driver_sql(f"CREATE INDEX {RETIRED_INDEXES[0]} ON tasks (owner, state)")
    store = SqlTaskStore(url_of(db))
    store.open()
    store.close()
    with sa.create_engine(url_of(db)).connect() as conn:
        indexes = {name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert RETIRED_INDEXES[0] not in indexes and "ix_tasks_created" in indexes
