"""The research expert: retrieval from the configured documents folder, LLM answers that cite passages."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.config import Settings
from vy_nexus.experts.builtin.research import ResearchExpert, cited_passages, load_documents, rank_passages
from vy_nexus.reasoning.llm import Message
from vy_nexus.tasks import Task

RETRIES = "Retries use exponential backoff.\n\nThe coordinator retries an expert at most three times."
CACHE = "The routing cache keeps decisions for 300 seconds.\n\nIt holds at most 1000 entries."


@pytest.fixture
def library(settings: Settings) -> Settings:
    folder = settings.resolve(settings.experts.documents_dir)
    (folder / "guide").mkdir(parents=True)
    (folder / "retries.md").write_text(RETRIES)
    (folder / "guide" / "cache.txt").write_text(CACHE)
    (folder / "image.png").write_bytes(b"\x89PNG")
    return settings


def test_documents_come_from_the_configured_folder(library: Settings) -> None:
    documents = load_documents(library.resolve(library.experts.documents_dir))
    assert sorted(documents) == ["guide/cache.txt", "retries.md"]
    assert load_documents(library.home / "missing") == {}


def test_ranking_prefers_the_passage_with_the_query_terms() -> None:
    ranked = rank_passages("how many times does the coordinator retry", {"retries.md": RETRIES, "cache.txt": CACHE})
    assert ranked[0].text == "The coordinator retries an expert at most three times."
    assert ranked[0].source == "retries.md"
    assert rank_passages("zebra", {"a": RETRIES}) == []


def test_answer_cites_the_retrieved_passages(library: Settings) -> None:
    def reply(messages: Sequence[Message]) -> str:
        assert "[1] (guide/cache.txt) The routing cache keeps decisions for 300 seconds." in messages[1].content
        return "Decisions are cached for 300 seconds [1], with at most 1000 entries [2] [9]."

    backend = ScriptedBackend(reply)
    task = Task(description="how long does the routing cache keep decisions and how many entries")
    result = run_expert(ResearchExpert(), task, context_with(backend, library))
    output = result.output
    assert output["answer"] == "Decisions are cached for 300 seconds [1], with at most 1000 entries [2] [9]."
    assert output["cited"] == [1, 2]  # [9] names no passage
    assert [c["source"] for c in output["citations"]][:2] == ["guide/cache.txt", "guide/cache.txt"]
    assert output["reasoning"]["provider"] == "scripted"
    assert "only the numbered passages" in backend.calls[0][0][0].content
    assert len(output["citations"]) == 2 and result.confidence == pytest.approx(0.7)  # 0.4 + 0.1 per passage + 0.1


def test_an_answer_without_citations_is_less_confident(library: Settings) -> None:
    task = Task(description="how long does the routing cache keep decisions")
    reply = ScriptedBackend("Decisions are kept for 300 seconds.")
    result = run_expert(ResearchExpert(), task, context_with(reply, library))
    assert result.output["cited"] == [] and len(result.output["citations"]) == 1
    assert result.output["attributed"] == [1]  # the expert cites the passage the answer's words come from
    assert result.confidence == pytest.approx(0.4)  # 0.4 + 0.1 for one passage - 0.1 for citing none


def test_no_matching_passage_means_no_llm_call(library: Settings) -> None:
    backend = ScriptedBackend("made up")
    output = run_expert(ResearchExpert(), Task(description="zebra migration"), context_with(backend, library)).output
    assert output["answer"].startswith("No passage in ") and output["citations"] == []
    assert backend.calls == []


def test_without_a_reasoning_core_the_passages_are_the_answer(library: Settings) -> None:
    task = Task(description="coordinator retries", input={"documents": {"extra.md": "Nothing relevant."}})
    output = run_expert(ResearchExpert(), task, context_with(None, library)).output
    assert output["answer"].startswith("[1] The coordinator retries an expert at most three times.")
    assert "reasoning" not in output


def test_a_failing_reasoning_core_falls_back_to_the_passages(library: Settings) -> None:
    context = context_with(ScriptedBackend("slow", delay=0.2), library, timeout_seconds=0.05)
    output = run_expert(ResearchExpert(), Task(description="coordinator retries"), context).output
    assert output["answer"].startswith("[1] The coordinator retries")
    assert "did not finish" in output["reasoning_error"]


def test_cited_passages() -> None:
    assert cited_passages("see [2], [1] and [2] again, not [0] or [4]", 3) == [2, 1]


def test_a_text_input_is_a_document_to_answer_from(library: Settings) -> None:
    # Before: `run "when did the program run" --input notes.txt --expert research` answered "No passage in
    # <home>/documents matches the question": the document handed over with the question was never read.
    notes = "Project Apollo ran from 1961 to 1972.\n\nIt landed the first humans on the Moon in 1969."
    backend = ScriptedBackend("It ran from 1961 to 1972 [1].")
    task = Task(description="when did project apollo run", input=notes)
    output = run_expert(ResearchExpert(), task, context_with(backend, library)).output
    first = output["citations"][0]
    assert first["source"] == "input" and first["passage"] == "Project Apollo ran from 1961 to 1972."
    assert output["cited"] == [1]
    missing = run_expert(ResearchExpert(), Task(description="zebra", input=notes), context_with(None, library))
    assert missing.output["answer"].startswith("No passage in the input or ")
