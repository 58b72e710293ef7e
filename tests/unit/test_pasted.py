"""Code, tables and documents pasted into the task text: found, taken out of the request, counted as evidence."""

from __future__ import annotations

import asyncio

import pytest

from vy_nexus.errors import TaskError
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.pasted import CODE, DOCUMENT, TABLE, pasted_table, split_pasted
from vy_nexus.tasks import Task

HUMANEVAL_STYLE = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ You're given a list of deposit and withdrawal operations on a bank account that starts with
    zero balance. Detect if at any point the balance falls below zero.
    >>> below_zero([1, 2, -4, 5])
    True
    """
'''
DOCUMENT_TEXT = (
    "The library opened a second branch in the spring. Visitor numbers rose in the first months, mostly families "
    "who live near the new building and had never held a card before. Staff report that the children's section is "
    "the busiest part of the branch, while the study rooms stay empty during the day and fill up in the evening."
)


@pytest.mark.parametrize(
    ("text", "request_text", "kinds"),
    [
        ("why does this crash?\n```python\ndef f(x):\n    return x[0]\n```", "why does this crash?", (CODE,)),
        (HUMANEVAL_STYLE, "", (CODE,)),
        ("def add(a, b):\n    return a - b\nthis returns the wrong sum", "this returns the wrong sum", (CODE,)),
        (
            "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\nKeyError: 'port'\nhelp",
            "help",
            (CODE,),
        ),
        ("total by region\nregion,sales\nnorth,10\nsouth,12\neast,7", "total by region", (TABLE,)),
        ("| a | b |\n|---|---|\n| 1 | 2 |\n\nwhich column is larger?", "which column is larger?", (TABLE,)),
        ("date\tvisits\n05-01\t15\n05-02\t16\n05-03\t14\nany trend?", "any trend?", (TABLE,)),
        ('[{"x": 1}, {"x": 3}]\nmean of x?', "mean of x?", (TABLE,)),
        ('the data is [{"x": 1}, {"x": 3}] - mean?', "the data is", (TABLE,)),
        ("```csv\na,b\n1,2\n```\nsum the columns", "sum the columns", (TABLE,)),
        (f"tl;dr\n\n{DOCUMENT_TEXT}", "tl;dr", (DOCUMENT,)),
        (f"{DOCUMENT_TEXT}\nshorten this", "shorten this", (DOCUMENT,)),
    ],
)
def test_pasted_material_is_found_and_taken_out_of_the_request(
    text: str, request_text: str, kinds: tuple[str, ...]
) -> None:
    pasted = split_pasted(text)
    assert pasted.kinds == kinds
    assert pasted.request.strip(" -") == request_text


@pytest.mark.parametrize(
    "text",
    [
        "TypeError: 'NoneType' object is not subscriptable, what does that mean?",
        "if x = 3 and y = 4, what is x + y?",
        "hello; how are you? I'm fine, thanks, and you?",
        "write a python function that reverses a string",
        "Dear Sam, thanks for the flowers. See you on Friday, love, Ana",
        DOCUMENT_TEXT,  # one paragraph of prose is the request itself, not a pasted document
    ],
)
def test_plain_requests_are_not_mistaken_for_pasted_material(text: str) -> None:
    pasted = split_pasted(text)
    assert pasted.kinds == () and pasted.request == text.strip()
    assert pasted.routing_text() == pasted.request


def test_routing_text_names_what_was_pasted() -> None:
    assert split_pasted("fix\n```js\nlet a = 1;\n```").routing_text() == "fix\n(pasted source code)"
    assert split_pasted(HUMANEVAL_STYLE).routing_text() == "(pasted source code)"
    both = split_pasted("compare\n```python\nimport os\n```\nname,age\nana,3\nbo,4\ncy,5")
    assert both.kinds == (CODE, TABLE) and both.kind == CODE


def test_long_unbroken_text_keeps_its_first_and_last_sentence() -> None:
    text = " ".join([DOCUMENT_TEXT] * 2) + " Please summarise the above."
    pasted = split_pasted(text)
    assert pasted.kinds == (DOCUMENT,)
    assert pasted.request == "The library opened a second branch in the spring. Please summarise the above."


@pytest.fixture
def gating() -> GatingEngine:
    registry = ExpertRegistry()
    for expert_class in BUILTIN_EXPERTS:
        registry.register(expert_class())
    return GatingEngine(registry, KeywordStrategy(registry))


def test_code_pasted_as_text_is_evidence_like_a_code_input(gating: GatingEngine) -> None:
    decision = gating.route(Task(description=HUMANEVAL_STYLE))
    assert decision.expert_ids == ["code"] and "code pasted in the text" in decision.reason
    as_input = gating.route(Task(description="have a look", input="def f():\n    return 1\n"))
    assert as_input.expert_ids == ["code"] and "the input looks like code" in as_input.reason


def test_a_table_pasted_as_text_is_evidence_like_a_table_input(gating: GatingEngine) -> None:
    decision = gating.route(Task(description="what stands out?\nregion,units\nnorth,12\nsouth,40\neast,9"))
    assert decision.expert_ids == ["data-analysis"] and "table pasted in the text" in decision.reason


@pytest.mark.parametrize(
    "text",
    [
        "region,units\nnorth,12\nsouth,40\nnorth,9",
        "region;units\nnorth;12\nsouth;40\nnorth;9\n\ntotal per region?",
        "| region | units |\n|---|---:|\n| north | 12 |\n| south | 40 |\n| north | 9 |",
        'units per region: [{"region": "north", "units": 12}, {"region": "south", "units": 40},'
        ' {"region": "north", "units": 9}] thanks',
        '{"rows": [{"region": "north", "units": 12}, {"region": "south", "units": 40},\n'
        ' {"region": "north", "units": 9}]}',
        "```csv\nregion,units\nnorth,12\nsouth,40\nnorth,9\n```",
    ],
)
def test_pasted_table_reads_the_rows(text: str) -> None:
    rows = pasted_table(text)
    assert rows is not None and [str(r["units"]) for r in rows] == ["12", "40", "9"]
    assert [r["region"] for r in rows] == ["north", "south", "north"]


def test_no_table_no_rows() -> None:
    assert pasted_table("what is the average of these numbers?") is None
    assert pasted_table("```json\n[1, 2, 3]\n```") is None


def test_data_analysis_answers_from_a_table_pasted_in_the_task() -> None:
    expert = DataAnalysisExpert()
    task = Task(description="total units by region\nregion,units\nnorth,12\nsouth,40\nnorth,9")
    expert.validate(task)
    output = asyncio.run(expert.execute(task)).output
    assert output["result"] == [{"region": "north", "sum_units": 21}, {"region": "south", "sum_units": 40}]
    with pytest.raises(TaskError, match="paste the table into the task"):
        expert.validate(Task(description="total units by region"))


@pytest.mark.parametrize(
    ("fence", "kind"),
    [
        ("```text\nplain words\n```", DOCUMENT),
        ("```\na,b\n1,2\n3,4\n```", TABLE),
        (f"```\n{DOCUMENT_TEXT}\n```", DOCUMENT),
        ("```\nls -la | grep foo\n```", CODE),
        ('```json\n[{"a": 1}]\n```', TABLE),
        ('```json\n{"debug": true}\n```', CODE),
    ],
)
def test_a_fenced_block_is_classified_by_its_language_and_content(fence: str, kind: str) -> None:
    assert split_pasted(f"look at this\n{fence}").kinds == (kind,)


def test_the_one_line_fast_path_answers_what_the_full_scan_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from vy_nexus.routing import pasted

    lines = [
        "fix the bug in my python function",
        "def add(a, b): return a + b",
        "import os",
        "x = 1; y = 2",
        "name,age",
        'here are rows: [{"a": 1}]',
        "what is superposition in quantum mechanics?",
        "  write a haiku about routers  ",
        "class Foo: pass",
        "| a | b |",
    ]
    fast = [pasted.split_pasted(line) for line in lines]
    monkeypatch.setattr(pasted, "_plainly_a_request", lambda _sample: False)
    assert fast == [pasted.split_pasted(line) for line in lines]
