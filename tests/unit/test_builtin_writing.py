"""The writing expert: mode choice, the text it works on, LLM output with exact statistics."""

from __future__ import annotations

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.errors import ExpertExecutionError
from vy_nexus.experts.builtin.writing import WritingExpert, choose_mode, source_text, text_statistics
from vy_nexus.tasks import Task

ARTICLE = "The printing press spread quickly. It changed how people learned.\n\nBooks became cheap."


def test_text_statistics_are_exact() -> None:
    stats = text_statistics(ARTICLE)
    assert stats["words"] == 13 and stats["sentences"] == 3 and stats["paragraphs"] == 2
    assert stats["characters"] == len(ARTICLE) and stats["reading_time_seconds"] == 3
    assert stats["average_sentence_words"] == 4.3
    assert text_statistics("") == {
        "characters": 0, "words": 0, "sentences": 0, "paragraphs": 0, "reading_time_seconds": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("request_text", "mode"),
    [
        ("summarise this article", "summarise"),
        ("TL;DR please", "summarise"),
        ("proofread my letter", "rewrite"),
        ("make the tone friendlier, rewrite it", "rewrite"),
        ("write a short email to my landlord", "draft"),
    ],
)
def test_mode_follows_the_request(request_text: str, mode: str) -> None:
    assert choose_mode(request_text) == mode


def test_summarise_sends_the_input_and_reports_both_statistics() -> None:
    backend = ScriptedBackend("Cheap books spread learning.")
    task = Task(description="summarise this article in one sentence", input=ARTICLE)
    result = run_expert(WritingExpert(), task, context_with(backend))
    output = result.output
    assert output["mode"] == "summarise" and output["text"] == "Cheap books spread learning."
    assert output["statistics"]["words"] == 4 and output["source_statistics"]["words"] == 13
    assert (
        output["summary"] == "summarise: 4 words in 1 sentence; Flesch reading ease 97.0"
    )  # 206.835 - 1.015*4 - 84.6*5/4
    messages, _ = backend.calls[0]
    assert "summarise" in messages[0].content.lower()
    assert messages[1].content == f"summarise this article in one sentence\n\nText:\n{ARTICLE}"
    assert result.confidence == pytest.approx(0.75)


def test_rewrite_takes_the_text_after_the_colon() -> None:
    backend = ScriptedBackend("Their house is over there.")
    task = Task(description="proofread: there house is over their.")
    output = run_expert(WritingExpert(), task, context_with(backend)).output
    assert backend.calls[0][0][1].content == "proofread\n\nText:\nthere house is over their."
    assert output["text"] == "Their house is over there." and output["mode"] == "rewrite"
    assert source_text(Task(description="rewrite:   "), "rewrite") == "rewrite:   "


def test_draft_writes_from_the_request() -> None:
    backend = ScriptedBackend("Dear landlord, the heating is broken. Best, Sam")
    output = run_expert(WritingExpert(), Task(description="write a short email"), context_with(backend)).output
    assert output["mode"] == "draft" and "source_statistics" not in output
    assert backend.calls[0][0][1].content == "write a short email"
    assert output["reasoning"]["output_tokens"] == 8


def test_without_a_reasoning_core_it_reports_statistics_and_the_extractive_summary_only() -> None:
    output = run_expert(WritingExpert(), Task(description="summarise", input=ARTICLE), context_with(None)).output
    # 13 words, 3 sentences, 19 syllables: 206.835 - 1.015 * 13/3 - 84.6 * 19/13 = 78.8
    assert output == {
        "summary": "13 words in 3 sentences; Flesch reading ease 78.8",
        "statistics": text_statistics(ARTICLE),
        "mode": "summarise",
        "extractive": "The printing press spread quickly.",
    }


def test_a_failing_reasoning_core_fails_the_expert_with_the_reason() -> None:
    context = context_with(ScriptedBackend("x", delay=0.2), timeout_seconds=0.05)
    with pytest.raises(ExpertExecutionError, match=r"writing needs the reasoning core to draft text: .*did not finish"):
        run_expert(WritingExpert(), Task(description="write a poem"), context)


@pytest.mark.parametrize(
    "request_text",
    ["how many words are in this text", "word count please", "what is the reading time", "readability of this"],
)
def test_counting_requests_are_answered_exactly_without_the_llm(request_text: str) -> None:
    # Before: a draft by the LLM (or the general expert's guess): a language model cannot count words.
    backend = ScriptedBackend("unused")
    task = Task(description=request_text, input="One two three. Four five!\n\nSix.")
    output = run_expert(WritingExpert(), task, context_with(backend))
    assert output.confidence == 0.95 and backend.calls == []
    assert output.output["mode"] == "count" and output.output["statistics"]["words"] == 6
    assert output.output["summary"].startswith("6 words in 3 sentences (2 paragraphs, 31 characters; about 2 s")
