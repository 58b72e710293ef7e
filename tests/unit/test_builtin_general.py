"""The general expert: chats through the reasoning core; says clearly when there is none or it failed."""

from __future__ import annotations

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.errors import ExpertExecutionError
from vy_nexus.experts.base import ExpertContext
from vy_nexus.experts.builtin.general import GeneralExpert
from vy_nexus.tasks import Task


def test_answers_with_the_reasoning_core() -> None:
    backend = ScriptedBackend("Hello! I route tasks to experts.")
    result = run_expert(
        GeneralExpert(), Task(description="hello, what can you do", input="extra"), context_with(backend)
    )
    assert result.output["answer"] == "Hello! I route tasks to experts."
    assert result.output["reasoning"]["model"] == "scripted-1"
    assert backend.calls[0][0][1].content == "hello, what can you do\n\nextra"
    assert result.confidence == pytest.approx(0.6)


def test_a_truncated_answer_is_less_confident() -> None:
    result = run_expert(
        GeneralExpert(), Task(description="tell me everything"), context_with(ScriptedBackend("a " * 300))
    )
    assert result.output["reasoning"]["finish_reason"] == "length" and result.confidence == pytest.approx(0.45)


def test_without_a_reasoning_core() -> None:
    output = run_expert(GeneralExpert(), Task(description="hi there"), context_with(None)).output
    assert output == {
        "answer": "No specialist claimed this task and no reasoning core answered it.",
        "request_words": 2,
    }


def test_reasoning_failures_fail_the_expert() -> None:
    context = context_with(ScriptedBackend("x", delay=0.2), timeout_seconds=0.05)
    with pytest.raises(ExpertExecutionError, match="general needs the reasoning core to answer"):
        run_expert(GeneralExpert(), Task(description="hi"), context)


def test_a_bare_backend_in_the_context_is_used_too() -> None:
    context = ExpertContext(llm=ScriptedBackend("bare backend answer"))
    assert run_expert(GeneralExpert(), Task(description="hi"), context).output["answer"] == "bare backend answer"
    assert run_expert(GeneralExpert(), Task(description="hi"), ExpertContext(llm=object())).confidence == 0.3
