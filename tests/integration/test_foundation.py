"""The foundation wired into VyNexus: kill switch, grace period, state on shutdown, governance in the task flow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from spine_experts import SlowExpert, make_expert
from vy_nexus.config import load_settings
from vy_nexus.errors import GovernanceError, SafetyError, UnknownExpertError
from vy_nexus.events import Event
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.foundation.kill_switch import StopRequest
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


class NapExpert(BaseExpert):
    id = "nap"
    name = "Nap"
    capabilities = ("nap",)

    async def execute(self, task: Task) -> ExpertOutput:
        await asyncio.sleep(0.15)
        return ExpertOutput("rested", confidence=0.9)


KEYWORD = {"VY_NEXUS_ROUTING__STRATEGY": "keyword"}
"""These tests are about governance: keyword routing scores them without loading (and fitting) the sentence encoder."""


def build(home: Path, config: dict[str, Any] | None = None, *experts: BaseExpert) -> VyNexus:
    if config:
        (home / "config.yaml").write_text(yaml.safe_dump(config))
    system = VyNexus(load_settings(home, environ=KEYWORD), register_builtins=False, load_plugins=False, observe=False)
    system.register(make_expert("general", ("general",), output="general answer"))
    for expert in experts:
        system.register(expert)
    return system


@pytest.fixture
def seen() -> list[Event]:
    return []


@pytest.fixture
def vy(home: Path, seen: list[Event]) -> Iterator[VyNexus]:
    system = build(home, {"safety": {"grace_period_seconds": 5, "stop_poll_seconds": 0.02}}, NapExpert(), SlowExpert())
    system.events.subscribe(seen.append)
    with system:
        yield system


def nap_task() -> Task:
    return Task(description="take a nap", context={"experts": ["nap"]})


def test_experts_get_the_safe_file_system(vy: VyNexus, home: Path) -> None:
    context = vy.expert_context()
    assert context.file_system is vy.file_system
    assert vy.file_system.roots == [home.resolve()]


def test_a_shutdown_refuses_new_tasks_and_records_why(vy: VyNexus, home: Path, seen: list[Event]) -> None:
    assert vy.run(nap_task()).ok
    assert vy.request_shutdown("maintenance", approved_by="tester") is True
    assert vy.request_shutdown("again", approved_by="tester") is False
    with pytest.raises(SafetyError, match="shutting down \\(maintenance\\)"):
        vy.run(nap_task())
    state = json.loads((home / "sovereign_state.json").read_text())
    assert state["meta"]["last_shutdown_reason"] == "maintenance"
    assert any(e.kind == "safety.shutdown" for e in seen)
    assert vy.status()["safety"]["shutting_down"] is True
    audit = [json.loads(line) for line in (home / "governance" / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["verdict"]) for a in audit] == [("system.shutdown", "allowed")] * 2


def test_a_shutdown_through_the_api_needs_approval(vy: VyNexus) -> None:
    with pytest.raises(GovernanceError) as info:
        vy.request_shutdown("because")
    assert info.value.verdict == "needs_approval" and info.value.approval_id
    assert not vy.safety.shutting_down
    vy.governance.decide_approval(info.value.approval_id, approve=True, by="ops")
    assert vy.request_shutdown("because", approval_id=info.value.approval_id)


def test_in_flight_tasks_finish_within_the_grace_period(vy: VyNexus) -> None:
    async def scenario() -> Any:
        running = asyncio.ensure_future(vy.submit(nap_task()))
        await asyncio.sleep(0.05)
        assert len(vy.inflight) == 1
        vy.safety.request_shutdown("test")
        return await running

    result = asyncio.run(scenario())
    assert result.ok and result.output == "rested"


def test_in_flight_tasks_are_cancelled_after_the_grace_period(home: Path, seen: list[Event]) -> None:
    system = build(home, {"safety": {"grace_period_seconds": 0.05}}, SlowExpert())
    system.events.subscribe(seen.append)
    task = Task(description="slow please", context={"experts": ["slow"]})

    async def scenario() -> None:
        running = asyncio.ensure_future(system.submit(task))
        await asyncio.sleep(0.05)
        system.safety.report("one", "critical")
        system.safety.report("two", "critical")
        system.safety.report("three", "critical")  # the threshold (3) engages the kill switch
        started = time.perf_counter()
        with pytest.raises(SafetyError, match="task cancelled: vy-nexus is shutting down"):
            await running
        assert time.perf_counter() - started < 2.0
        await asyncio.sleep(0.01)
        assert task.id in SlowExpert.cancelled  # the expert itself was cancelled, not left running in the loop

    asyncio.run(scenario())
    state = json.loads((home / "sovereign_state.json").read_text())
    assert "3 critical errors within 300 s" in state["meta"]["last_shutdown_reason"]
    assert state["meta"]["error_counts"]["critical"] == 3
    assert [e.kind for e in seen].count("safety.error") == 3


def test_a_defect_in_the_flow_is_a_critical_error(vy: VyNexus, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(vy.coordinator, "run", broken)
    with pytest.raises(RuntimeError, match="bug"):
        vy.run(nap_task())
    assert vy.safety.error_counts()["critical"] == 1


def test_the_stop_file_reaches_a_running_system(vy: VyNexus, home: Path) -> None:
    time.sleep(0.01)
    StopRequest(home).write("end of day", requested_by="ops")
    assert vy.safety.wait(3.0)
    assert vy.safety.shutdown_reason is not None and vy.safety.shutdown_reason.endswith("end of day")
    with pytest.raises(SafetyError):
        vy.run(nap_task())


def test_every_task_is_governed(vy: VyNexus, seen: list[Event]) -> None:
    vy.run(nap_task())
    kinds = [e.kind for e in seen]
    assert kinds.index("task.routed") < kinds.index("task.governed") < kinds.index("expert.started")
    governed = next(e for e in seen if e.kind == "task.governed")
    assert governed.metadata["verdict"] == "allowed" and governed.metadata["policy"] == "all"


def test_low_confidence_goes_to_the_general_expert(home: Path) -> None:
    system = build(home, None, make_expert("alpha", ("widget",)), make_expert("beta", ("widget",)))
    result = system.run(Task(description="widget"))  # two tied experts: 0.7 x 0.75 = 0.525 < 0.7
    assert result.experts == ["general"] and result.output == "general answer"
    assert result.decision is not None and result.decision.fallback


def test_low_confidence_can_be_denied(home: Path, seen: list[Event]) -> None:
    system = build(
        home,
        {"governance": {"low_confidence_action": "deny"}},
        make_expert("alpha", ("widget",)),
        make_expert("beta", ("widget",)),
    )
    system.events.subscribe(seen.append)
    with pytest.raises(GovernanceError, match=r"below 0\.70") as info:
        system.run(Task(description="widget"))
    assert info.value.policy == "routing_confidence"
    assert not any(e.kind == "expert.started" for e in seen)


def test_concurrency_limit_and_queue_bound(home: Path, seen: list[Event]) -> None:
    system = build(home, {"governance": {"max_concurrent_tasks": 1, "max_queue_size": 1}}, NapExpert())
    system.events.subscribe(seen.append)

    async def three_at_once() -> list[Any]:
        return await asyncio.gather(*(system.submit(nap_task()) for _ in range(3)), return_exceptions=True)

    first, second, third = asyncio.run(three_at_once())
    assert not isinstance(first, BaseException) and first.ok
    assert not isinstance(second, BaseException) and second.ok  # waited in the queue
    assert isinstance(third, GovernanceError) and "queue is full" in str(third)
    verdicts = [e.metadata["verdict"] for e in seen if e.kind == "task.governed"]
    assert verdicts == ["allowed", "throttled", "denied"]


def test_unregistering_an_expert_needs_approval(vy: VyNexus) -> None:
    with pytest.raises(GovernanceError, match=r"expert\.unregister of 'nap' is destructive"):
        vy.unregister_expert("nap")
    assert "nap" in vy.registry
    vy.unregister_expert("nap", approved_by="tester")
    assert "nap" not in vy.registry
    with pytest.raises(UnknownExpertError):
        vy.unregister_expert("nope", approved_by="tester")
    assert [a.target for a in vy.governance.approvals.all()] == ["nap"]


@pytest.mark.slow
def test_the_default_state_checks_this_system_for_real(home: Path) -> None:
    """A fresh home, one task run with the journal on, then the default jobs' real verification commands."""
    settings = load_settings(home, environ={})
    with VyNexus(settings) as system:
        system.run(Task(description="compute the mean of this data", input=[{"n": 1}, {"n": 3}]))
    heartbeat = system.heartbeat()
    results = [heartbeat.beat() for _ in range(4)]
    assert [(r.job_id, r.passed) for r in results] == [("1.1", True), ("1.2", True), ("1.3", True), ("2.1", True)]
    assert results[2].advanced_to == 2
    state = system.state.load()
    for job_id in ("3.1", "3.2", "3.3", "4.1", "4.2", "5.1"):
        outcome = heartbeat.runner.run(state.job(job_id).verification)
        assert outcome.passed, (job_id, outcome.stderr)
    assert json.loads(heartbeat.runner.run(state.job("3.2").verification).stdout)["expert_ids"]
