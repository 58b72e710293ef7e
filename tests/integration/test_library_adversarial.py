"""``VyNexus`` embedded in an async app and used the ways an app developer may get wrong: a second ``async with`` on
the same system, a submit after ``astop``, text that is not valid Unicode, task states given by name. Each either
works or fails with a ``VyNexusError`` that names the problem, never a bare internal exception."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.llm import ScriptedBackend
from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import SafetyError, TaskCancelledError, TaskError, TaskNotFoundError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.store import TaskState
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

CSV = "region,units\nnorth,3\nsouth,4\nnorth,2\n"


class BlockingExpert(BaseExpert):
    """A plain ``def execute``: runs in the executor's worker pool."""

    id = "blocking"
    name = "Blocking"
    capabilities = ("blocking",)

    def execute(self, task: Task) -> ExpertOutput:  # type: ignore[override]  # a plain def: runs in a thread
        return ExpertOutput(f"done in a thread: {task.description}", confidence=0.9)


class NapExpert(BaseExpert):
    id = "nap"
    name = "Nap"
    capabilities = ("nap",)

    async def execute(self, task: Task) -> ExpertOutput:
        await asyncio.sleep(5)
        return ExpertOutput("rested")


def make_settings(home: Path) -> Settings:
    return load_settings(home, environ={"VY_NEXUS_STORE__FLUSH_INTERVAL_SECONDS": "0.02"})


def build(home: Path) -> VyNexus:
    system = VyNexus(make_settings(home), observe=False, load_plugins=False, llm=ScriptedBackend("fine", delay=0.01))
    system.register(BlockingExpert(), source="test")
    system.register(NapExpert(), source="test")
    return system


def pick(expert_id: str, text: str = "do it") -> Task:
    return Task(description=text, context={"experts": [expert_id]})


def test_a_second_async_with_on_the_same_system_runs_tasks_again(home: Path) -> None:
    """The first ``astop`` shut the worker pool down for good: in the second ``async with`` every blocking expert
    (the built-in data-analysis and research ones too) failed with "RuntimeError: cannot schedule new futures after
    shutdown", and the shutdown's zero grace period went on cancelling every task that awaited anything."""
    system = build(home)

    async def session() -> list[tuple[bool, str | None]]:
        async with system:
            results = [
                await system.submit(pick("blocking")),
                await system.submit(Task(description="total units by region in this csv", input=CSV)),
                await system.submit(pick("general", "say hello")),  # the LLM streams: it awaits
            ]
        return [(result.ok, result.results[0].error) for result in results]

    first = asyncio.run(session())
    second = asyncio.run(session())  # a new event loop, as an app restarting its loop would have
    assert first == second == [(True, None)] * 3
    assert not system._store_open


def test_submit_and_enqueue_after_astop_refuse_and_record_nothing(home: Path) -> None:
    """A task submitted after ``astop`` ran with the observers stopped, then failed or was cancelled as "shutting
    down" depending on its expert; now it is refused up front with the fix, and ``astart`` makes it work again."""
    system = build(home)

    async def scenario() -> None:
        async with system:
            await system.submit(pick("general", "say hello"))
        for submit in (system.submit, system.enqueue):
            task = pick("blocking")
            with pytest.raises(SafetyError, match=r"vy-nexus is stopped \(astop\): start it again with `await "
                                                  r"system.astart\(\)` or `async with system:`"):  # fmt: skip
                await submit(task)
            with pytest.raises(TaskNotFoundError):
                system.get_task(task.id)
        await system.astart()
        try:
            result = await system.submit(pick("blocking"))
            assert result.ok and system.get_task(result.task_id).state is TaskState.SUCCEEDED
        finally:
            await system.astop()

    asyncio.run(scenario())


def test_text_with_lone_surrogates_is_stored_and_looked_up(home: Path) -> None:
    """Bytes that are not UTF-8 (``vy-nexus run $'caf\\xe9'`` passes them as a lone surrogate; so does a JSON
    ``"\\udce9"``) made the task store's insert raise UnicodeEncodeError on every flush: the task and every task
    after it were never written, and ``stop`` raised it as a traceback. Lookups by such an id raised it too."""
    system = build(home)

    async def scenario() -> None:
        async with system:
            task = Task(
                description="caf\udce9 in the blocking expert", type="Caf\udce9", context={"experts": "blocking"}
            )
            assert task.description == "caf\ufffd in the blocking expert" and task.type == "caf\ufffd"
            result = await system.submit(task)
            after = await system.submit(pick("blocking", "the next task"))
            assert result.ok and after.ok
            record = system.get_task(task.id)
            assert record.state is TaskState.SUCCEEDED and record.description == "caf\ufffd in the blocking expert"
            assert system.get_task(after.task_id).state is TaskState.SUCCEEDED
            for lookup in (system.get_task, system.cancel):
                with pytest.raises(TaskNotFoundError, match="no task with id 'a\ufffd'"):
                    lookup("a\udce9")
            assert system.list_tasks(expert="blocking\udce9").total == 0
            nap = pick("nap")
            napping = await system.enqueue(nap)  # a cancel reason is the caller's text too
            await asyncio.sleep(0.05)
            system.cancel(nap.id, reason="caf\udce9 closed")
            with pytest.raises(TaskCancelledError):
                await napping
            cancelled = system.list_tasks(states=["cancelled"]).items[0]
            assert cancelled.error == "task cancelled: caf\ufffd closed"

    asyncio.run(scenario())
    with pytest.raises(TaskError, match="id: must not hold NUL or a lone surrogate"):
        Task(id="task-\udce9", description="hello")
    with pytest.raises(TaskError, match="id: must not hold NUL"):
        Task(id="task-\x00", description="hello")


def test_list_tasks_takes_states_by_name_and_names_an_unknown_one(home: Path) -> None:
    """``list_tasks(states=["failed"])`` raised AttributeError ("'str' object has no attribute 'value'")."""
    system = build(home)

    async def scenario() -> None:
        async with system:
            await system.submit(pick("blocking"))
            assert system.list_tasks(states=["succeeded"]).total == 1
            assert system.list_tasks(states="succeeded").total == 1  # one state alone, not its letters
            assert system.list_tasks(states=[TaskState.FAILED, "queued"]).total == 0
            with pytest.raises(TaskError) as raised:
                system.list_tasks(states=["done"])
            assert str(raised.value) == (
                "unknown task state 'done': the states are queued, running, succeeded, failed, cancelled, interrupted"
            )

    asyncio.run(scenario())
