"""Defects in the built-in experts found and fixed together: nested JSON cells and SQLite blobs in the data expert,
sums beyond a float's range, the research expert's folder path and pasted documents, and the code expert's
repaired answer."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.config import Settings
from vy_nexus.experts.base import ExpertOutput
from vy_nexus.experts.builtin.code import CodeExpert
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert
from vy_nexus.experts.builtin.research import ResearchExpert
from vy_nexus.reasoning.llm import Message
from vy_nexus.tasks import Task

TAGGED = [
    {"tags": ["a", "b"], "meta": {"k": 1}, "n": 1},
    {"tags": ["a"], "meta": {"k": 2}, "n": 2},
    {"tags": ["a", "b"], "meta": {"k": 1}, "n": 3},
]


def analysed(description: str, payload: Any, settings: Settings | None = None) -> ExpertOutput:
    return run_expert(DataAnalysisExpert(), Task(description=description, input=payload), context_with(None, settings))


def strict_json(output: dict[str, Any]) -> str:
    """The output as JSON with no Python fallbacks: no ``default=str``, no infinities."""
    return json.dumps(output, allow_nan=False)


def test_list_and_object_cells_group_count_and_filter_as_their_json_text() -> None:
    grouped = analysed("count by tags", TAGGED).output
    assert grouped["result"] == [{"tags": '["a", "b"]', "count": 2}, {"tags": '["a"]', "count": 1}]
    assert "lists and objects in 'tags', 'meta' are read as their JSON text" in grouped["notes"]
    assert analysed("total n by meta", TAGGED).output["result"] == [
        {"meta": '{"k": 1}', "sum_n": 4},
        {"meta": '{"k": 2}', "sum_n": 2},
    ]
    assert analysed("how many different tags", TAGGED).output["result"] == [{"distinct_tags": 2}]
    filtered = analysed("total n where tags contains b", TAGGED).output
    assert filtered["matched_rows"] == 2 and filtered["result"] == [{"sum_n": 4}]
    assert grouped["columns"]["tags"]["top"][0] == {"value": '["a", "b"]', "count": 2}  # not Python's "['a', 'b']"


@pytest.fixture
def blobs_db(settings: Settings) -> Path:
    path = settings.home / "blobs.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE files (name TEXT, data BLOB)")
        rows = [("x", b"\xff\x00"), ("y", b"\xff\x00"), ("z", bytes(40)), ("w", b"\x01")]
        db.executemany("INSERT INTO files VALUES (?, ?)", rows)
    db.close()
    return path


def test_sqlite_blobs_are_shown_by_size_and_bytes_never_as_python_reprs(settings: Settings, blobs_db: Path) -> None:
    output = analysed("count by data", {"sqlite": str(blobs_db)}, settings).output
    assert output["result"] == [
        {"data": "<blob, 1 byte: 01>", "count": 1},
        {"data": "<blob, 2 bytes: ff00>", "count": 2},
        {"data": f"<blob, 40 bytes, sha256 {hashlib.sha256(bytes(40)).hexdigest()[:16]}>", "count": 1},
    ]
    assert output["columns"]["data"]["top"][0] == {"value": "<blob, 2 bytes: ff00>", "count": 2}
    assert "b'" not in strict_json(output)
    rows = [{"name": "x"}]
    sql = "SELECT x'ff00' AS short, zeroblob(0) AS empty FROM data"
    result = run_expert(
        DataAnalysisExpert(), Task(description="q", input=rows, context={"sql": sql}), context_with(None)
    ).output["result"]
    assert result == [{"short": "<blob, 2 bytes: ff00>", "empty": "<blob, 0 bytes>"}]


BIG = [{"k": "a", "n": 1e308}, {"k": "a", "n": 1e308}, {"k": "b", "n": 1}]


def test_a_sum_beyond_the_float_range_is_named_and_lowers_the_confidence() -> None:
    result = analysed("total n by k", BIG)
    output = result.output
    assert output["result"] == [{"k": "a", "sum_n": None}, {"k": "b", "sum_n": 1}]
    assert output["columns"]["n"]["sum"] is None and output["columns"]["n"]["max"] == 1e308
    assert output["beyond_range"] == ["sum of column 'n'", "sum_n for k = a"]
    assert "beyond the largest number JSON can carry" in output["summary"]
    assert any("sum_n for k = a" in note for note in output["notes"])
    assert result.confidence == pytest.approx(0.6)
    strict_json(output)
    over_sql = run_expert(
        DataAnalysisExpert(),
        Task(description="q", input=BIG, context={"sql": "SELECT sum(n) AS total FROM data"}),
        context_with(None),
    )
    assert over_sql.output["result"] == [{"total": None}] and over_sql.confidence == pytest.approx(0.6)
    assert over_sql.output["beyond_range"][-1] == "total of result row 1"


@pytest.fixture
def library(settings: Settings) -> Settings:
    folder = settings.resolve(settings.experts.documents_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "retries.md").write_text("Retries use exponential backoff.")
    return settings


def test_no_matching_passage_names_the_folder_without_its_path(library: Settings) -> None:
    output = run_expert(ResearchExpert(), Task(description="zebra migration"), context_with(None, library)).output
    assert output["answer"] == "No passage in the documents folder (experts.documents_dir) matches the question."
    assert str(library.home) not in strict_json(output)


MINUTES = (
    "The project board met on Tuesday to review the budget for the coming year and the state of the works."
    " After a long discussion the members agreed that the new bridge must be finished before the end of March,"
    " and that the contractor will be paid in three instalments once each stage has been inspected by the city"
    " engineer. The board also asked the treasurer to report monthly on spending so that overruns are caught"
    " early, and to present the first report at the next meeting, which will be held in the town hall."
)


def test_a_document_pasted_into_the_task_is_the_document_answered_from(library: Settings) -> None:
    backend = ScriptedBackend("The bridge must be finished before the end of March [1].")
    task = Task(description=f"When must the bridge be finished?\n\n{MINUTES}")
    output = run_expert(ResearchExpert(), task, context_with(backend, library)).output
    assert [c["source"] for c in output["citations"]] == ["pasted"]
    assert output["citations"][0]["passage"] == MINUTES and output["cited"] == [1]
    assert backend.last_prompt.endswith("Question: When must the bridge be finished?")
    missing = Task(description=f"Who is the zebra keeper?\n\n{MINUTES}")
    nothing = run_expert(ResearchExpert(), missing, context_with(None, library)).output
    assert nothing["answer"].startswith("No passage in the pasted document or the documents folder")


def test_a_repaired_generation_answers_with_the_repaired_text() -> None:
    replies = iter([
        "```python\ndef f(:\n  pass\n```\nA broken first try.",
        "```python\ndef f():\n    pass\n```\nThe fixed function.",
    ])  # fmt: skip

    def reply(_messages: Sequence[Message]) -> str:
        return next(replies)

    output = run_expert(CodeExpert(), Task(description="write f"), context_with(ScriptedBackend(reply))).output
    assert output["attempts"] == 2 and output["code"] == "def f():\n    pass"
    assert output["answer"] == "```python\ndef f():\n    pass\n```\nThe fixed function."
