"""A task end to end through the composition root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spine_experts import SlowExpert, make_expert
from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import ExpertRegistrationError, FallbackExpertMissingError
from vy_nexus.events import Event
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task, TaskState


def test_code_task_end_to_end(system: VyNexus) -> None:
    task = Task(description="check my python code", input="def broken(:\n    pass\n")
    result = system.run(task)
    assert result.experts == ["code"]
    assert result.output["analysis"]["valid"] is False
    assert result.output["analysis"]["line"] == 1
    assert result.decision is not None and result.decision.strategy == "keyword"


def test_event_sequence_carries_task_id(system: VyNexus) -> None:
    seen: list[Event] = []
    system.events.subscribe(seen.append)
    task = Task(description="summarise this article", input="One sentence. Two sentences.")
    system.run(task)
    kinds = [e.kind for e in seen]
    flow = [
        k
        for k in kinds
        if k in ("task.received", "task.routed", "expert.started", "expert.finished", "task.aggregated")
    ]
    assert flow == ["task.received", "task.routed", "expert.started", "expert.finished", "task.aggregated"]
    assert {e.task_id for e in seen} == {task.id}


def test_multi_expert_ensemble(system: VyNexus) -> None:
    system.register(make_expert("second-opinion", ("python", "code"), output={"summary": "fine"}))
    task = Task(description="review this python code for a bug", input="x = 1\n")
    result = system.run(task, top_k=2, aggregation="ensemble")
    assert set(result.experts) == {"code", "second-opinion"}
    assert set(result.output) == {"code", "second-opinion"}


def test_hanging_expert_does_not_block_the_task(settings: Settings) -> None:
    settings.executor.expert_timeout_seconds = 0.2
    vy = VyNexus(settings)
    vy.register(SlowExpert())
    task = Task(description="slow python code", input="x = 1\n", context={"experts": ["slow", "code"]})
    result = asyncio.run(vy.submit(task))
    assert result.experts == ["code"]
    assert "timed out" in (next(r for r in result.results if r.expert_id == "slow").error or "")


def test_disabled_experts(settings: Settings) -> None:
    settings.experts.disabled = ["writing"]
    vy = VyNexus(settings)
    assert "writing" not in vy.registry
    with pytest.raises(ExpertRegistrationError, match="disabled"):
        vy.register(make_expert("writing", ("essay",)))


def test_status_reports_components(system: VyNexus) -> None:
    status = system.status()
    assert status["experts"]["experts"] >= 5
    assert status["routing"]["strategy"]
    assert status["reasoning_core"]["provider"] == "embedded"


def test_a_fallback_expert_that_is_not_registered_is_named_as_the_configuration_to_fix(home: Path) -> None:
    # Before: governance rerouted a low-confidence task to 'nope', `route` showed it and exited 0, and `run` failed
    # with "no expert with id 'nope'"; with nothing matching, a bare RoutingError.
    settings = load_settings(
        home,
        environ={"VY_NEXUS_ROUTING__STRATEGY": "keyword"},
        routing={"fallback_expert": "nope"},
        governance={"min_routing_confidence": 0.99},
    )
    with VyNexus(settings, observe=False, load_plugins=False) as vy:
        fix = r"set routing\.fallback_expert to a registered expert \(code, data-analysis, general, research, writing\)"
        low = Task(description="summarise this article")  # a keyword match, below 0.99
        with pytest.raises(FallbackExpertMissingError, match=r"below governance\.min_routing_confidence.*" + fix):
            vy.preview(low)
        with pytest.raises(FallbackExpertMissingError, match=fix) as raised:
            vy.run(low)
        assert raised.value.exit_code == 2 and vy.get_task(low.id).state is TaskState.FAILED
        with pytest.raises(FallbackExpertMissingError, match=r"no expert matched the task.*" + fix):
            vy.route(Task(description="zzqx blorp"))
