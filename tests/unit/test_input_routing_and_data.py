"""Tasks that carry a prose document reach the experts that work on it; yes/no columns and values holding a column's
name in the data expert's questions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.config import load_settings
from vy_nexus.experts.base import ExpertOutput
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert
from vy_nexus.experts.builtin.research import WHOLE_DOCUMENT_CHARS, ResearchExpert
from vy_nexus.experts.builtin.writing import WritingExpert
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.cache import routing_key
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.payload import payload_kind
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

NOTES = """The city council met on Tuesday to discuss the proposed bike lanes on Main Street. Residents were divided:
shop owners worried about losing parking, while parents argued that safer streets would bring more families downtown.

After two hours of debate the council voted to run a six-month pilot and to collect data on traffic and sales
before making a final decision. The pilot starts in March and will be reviewed in the autumn.

Critics say the pilot is too short to show the effect on sales, and that winter months will skew the numbers.
"""
MARKDOWN = """# Retry policy

The coordinator retries a failed expert call at most twice, waiting a little longer each time. Calls that time out
are not retried, because a hang usually repeats.

```python
from vy_nexus.system import VyNexus
vy = VyNexus(settings)
```

The limits live in the executor section of the configuration.
"""
SALES_CSV = "region,product,units\nnorth,widget,5\nsouth,gadget,3\n"
PYTHON = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"


# -- the kind of an input payload -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (NOTES, "document"),
        (MARKDOWN, "document"),  # its fenced example does not make a README code
        ({"documents": {"notes.md": NOTES}}, "document"),
        ({"documents": {}}, None),
        ("Dear Bob, thanks for the lovely evening. See you soon.", None),  # a note, not a document
        ("fix this\n```python\nx = 1\n```\n", "code"),
        (SALES_CSV, "table"),
        (PYTHON, "code"),
    ],
)
def test_payload_kind_names_prose_documents(payload: object, kind: str | None) -> None:
    # Before: a prose file was no evidence at all (None), and a Markdown file with a code example was "code".
    assert payload_kind(payload) == kind


def test_a_document_input_counts_for_the_experts_that_work_on_documents() -> None:
    registry = ExpertRegistry()
    for expert_class in BUILTIN_EXPERTS:
        registry.register(expert_class())
    scores = KeywordStrategy(registry).score(Task(description="list the main claims in this", input=NOTES))
    assert set(scores.confidences) == {"research", "writing"}
    assert "the input looks like a document" in scores.reason


def test_the_routing_cache_tells_a_document_input_from_none() -> None:
    # Before: both had no payload kind, so a decision made without the notes was served to the task with them.
    with_notes = Task(description="what are the key points", input=NOTES)
    assert routing_key(with_notes, 1, 1) != routing_key(Task(description="what are the key points"), 1, 1)


# -- default routing with a document as input -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VyNexus]:
    """The default settings (hybrid routing, the packaged route model), as `vy-nexus route` uses them."""
    home = tmp_path_factory.mktemp("input-routing")
    vy = VyNexus(load_settings(home, environ={}), observe=False, load_plugins=False, llm=ScriptedBackend("ok"))
    yield vy
    vy.stop()


def executed(system: VyNexus, text: str, payload: Any) -> str:
    """The expert ``run`` would execute (after governance's low-confidence fallback)."""
    return system.preview(Task(description=text, input=payload)).decision.expert_ids[0]


@pytest.mark.parametrize(
    ("text", "expert"),
    [
        ("summarize this", "writing"),
        ("what are the key points", "research"),
        ("list the main claims in this", "research"),
        ("what is this about", "research"),
        ("what's the conclusion", "research"),
        ("fix the grammar", "writing"),
        ("check this for errors", "writing"),
        ("translate this into French", "writing"),
    ],
)
@pytest.mark.parametrize("document", [NOTES, MARKDOWN], ids=["text", "markdown"])
def test_a_request_about_a_document_input_goes_to_research_or_writing(
    default_system: VyNexus, text: str, expert: str, document: str
) -> None:
    # Before: the notes were no evidence; "what are the key points" went to general (0.90), "list the main claims in
    # this" to research at 0.62 and then to general (below governance's 0.7), "check this for errors" to code.
    assert executed(default_system, text, document) == expert


@pytest.mark.parametrize(
    ("text", "payload", "expert"),
    [
        ("summarize this", SALES_CSV, "data-analysis"),
        ("what are the key points", PYTHON, "code"),
        ("write a python function that counts the words in this", NOTES, "code"),
        ("write a poem about spring", None, "writing"),
    ],
)
def test_tables_code_and_requests_without_input_route_as_before(
    default_system: VyNexus, text: str, payload: Any, expert: str
) -> None:
    assert executed(default_system, text, payload) == expert


# -- the experts on a handed-over document ----------------------------------------------------------------------------


def test_a_question_about_a_whole_document_gets_its_opening_passages() -> None:
    # Before: "what are the key points" matched no passage by its words: "No passage in the input matches the question."
    for question in ("what are the key points", "list the main claims in this", "what is this about"):
        output = run_expert(ResearchExpert(), Task(description=question, input=NOTES), context_with(None)).output
        assert [c["source"] for c in output["citations"]] == ["input"] * 3, question
        assert output["answer"].startswith("[1] The city council met on Tuesday")
    unrelated = run_expert(ResearchExpert(), Task(description="zebra migration", input=NOTES), context_with(None))
    assert unrelated.output["answer"].startswith("No passage in the input")


def test_a_whole_document_question_gets_no_more_than_the_budget() -> None:
    long_document = "\n\n".join(f"Paragraph {n}. " + "Words about the pilot. " * 40 for n in range(20))
    task = Task(description="what are the key points", input=long_document)
    citations = run_expert(ResearchExpert(), task, context_with(None)).output["citations"]
    assert 1 < len(citations) < 20
    assert sum(len(c["passage"]) for c in citations) <= WHOLE_DOCUMENT_CHARS


def test_a_draft_request_with_an_input_text_works_on_that_text() -> None:
    # Before: "translate this into French" with --input sent the language model the request alone, not the text.
    backend = ScriptedBackend("Le conseil municipal s'est réuni mardi.")
    task = Task(description="translate this into French", input=NOTES)
    output = run_expert(WritingExpert(), task, context_with(backend)).output
    assert output["mode"] == "draft" and "city council met on Tuesday" in backend.last_prompt
    assert output["source_statistics"]["paragraphs"] == 3


def test_the_writing_expert_reads_documents_handed_over_as_json() -> None:
    # Before: `{"documents": {...}}` (routed to writing as a document) was ignored: "summarize this" was summarised.
    backend = ScriptedBackend("A pilot of bike lanes.")
    task = Task(description="summarize this", input={"documents": {"notes.md": NOTES, "more.md": "The end."}})
    output = run_expert(WritingExpert(), task, context_with(backend)).output
    assert "city council met on Tuesday" in backend.last_prompt and "The end." in backend.last_prompt
    assert output["source_statistics"]["paragraphs"] == 4


# -- the data expert: yes/no columns --------------------------------------------------------------------------------

ORDERS = """category,region,items,amount,paid
books,north,2,20,{yes}
books,south,1,15,{no}
toys,north,3,30,{yes}
toys,north,5,50,{yes}
games,south,4,40,{no}
"""
SPELLINGS = [("yes", "no"), ("Y", "N"), ("true", "false"), ("1", "0")]


def ask(question: str, payload: Any) -> ExpertOutput:
    return run_expert(DataAnalysisExpert(), Task(description=question, input=payload), context_with(None))


def orders(yes: str = "yes", no: str = "no") -> str:
    return ORDERS.format(yes=yes, no=no)


@pytest.mark.parametrize(("yes", "no"), SPELLINGS)
def test_a_yes_no_column_named_as_a_qualifier_filters_on_its_true_value(yes: str, no: str) -> None:
    # Before: "how many paid orders" counted the 2 different values of `paid` (or, for 1/0, summed it) at 0.95.
    for question in ("how many paid orders", "how many orders are paid", "how many orders were paid"):
        output = ask(question, orders(yes, no))
        assert output.output["query"]["filters"] == [["paid", "=", yes.lower()]], question
        assert output.output["result"] == [{"count": 3}] and output.confidence == 0.95


def test_a_json_boolean_column_is_a_yes_no_column() -> None:
    rows = [{"amount": 20, "paid": True}, {"amount": 15, "paid": False}, {"amount": 30, "paid": True}]
    assert ask("how many paid orders", rows).output["result"] == [{"count": 2}]
    assert ask("total amount of unpaid orders", rows).output["result"] == [{"sum_amount": 15}]


@pytest.mark.parametrize("question", ["how many unpaid orders", "how many orders were not paid",
                                      "how many orders weren't paid", "how many non-paid orders"])  # fmt: skip
def test_a_negated_yes_no_column_filters_on_its_false_value(question: str) -> None:
    output = ask(question, orders()).output
    assert output["query"]["filters"] == [["paid", "=", "no"]] and output["result"] == [{"count": 2}]


@pytest.mark.parametrize(("yes", "no"), SPELLINGS)
def test_yes_no_qualifiers_in_aggregates_rankings_and_shares(yes: str, no: str) -> None:
    # Before: these averaged, ranked and totalled every order (for 1/0 the flag itself too), paid or not, at 0.95.
    table = orders(yes, no)
    assert ask("average amount for paid orders", table).output["result"] == [{"mean_amount": 100 / 3}]
    assert ask("total paid amount", table).output["result"] == [{"sum_amount": 100}]
    ranked = ask("which category has the most paid orders", table).output["result"]
    assert ranked[0] == {"category": "toys", "count": 2}
    top = ask("top 2 categories by paid amount", table).output
    assert top["query"]["group_by"] == ["category"] and top["result"][0] == {"category": "toys", "sum_amount": 80}
    share = ask("what share of orders are paid", table)  # before: not understood (0.5)
    assert share.output["result"] == [{"share": 60}] and share.confidence == 0.95
    per_category = ask("how many paid items per category", table).output["result"]
    assert per_category == [{"category": "books", "sum_items": 2}, {"category": "toys", "sum_items": 8}]


def test_a_yes_no_column_as_a_group_or_an_aggregate_is_no_filter() -> None:
    grouped = ask("how many orders by paid", orders()).output
    assert grouped["query"]["filters"] == [] and grouped["result"] == [
        {"paid": "no", "count": 2},
        {"paid": "yes", "count": 3},
    ]
    assert ask("average paid", orders("1", "0")).output["result"] == [{"mean_paid": 0.6}]
    assert ask("total amount where paid is no", orders()).output["result"] == [{"sum_amount": 55}]


def test_how_many_items_totals_a_numeric_items_column_and_counts_rows_without_one() -> None:
    with_items = ask("how many items per category", orders()).output["result"]
    assert with_items == [
        {"category": "books", "sum_items": 3},
        {"category": "games", "sum_items": 4},
        {"category": "toys", "sum_items": 8},
    ]
    no_items = "category,amount\nbooks,20\nbooks,15\ntoys,30\n"
    assert ask("how many orders per category", no_items).output["result"] == [
        {"category": "books", "count": 2},
        {"category": "toys", "count": 1},
    ]


# -- the data expert: a value that holds its column's name ------------------------------------------------------------

CARS = "model,colour,units\nModel 3,red,4\nModel S,blue,2\nModel 3,blue,1\nModel X,red,5\n"


@pytest.mark.parametrize(
    ("question", "result"),
    [
        ("total units for model 3", [{"sum_units": 5}]),
        ("how many model 3", [{"count": 2}]),
        ("how many red model 3", [{"count": 1}]),
        ("total units excluding model 3", [{"sum_units": 7}]),
        ("how many units for model s", [{"sum_units": 2}]),  # before: 12, every car, at 0.95
        ("units where model is model 3", [{"model": "Model 3", "colour": "red", "units": "4"},
                                          {"model": "Model 3", "colour": "blue", "units": "1"}]),
    ],
)  # fmt: skip
def test_a_value_holding_its_columns_name_is_a_filter(question: str, result: list[dict[str, Any]]) -> None:
    # Before: "model 3" was no value (it names the column `model`), so "3" was reported as not understood.
    output = ask(question, CARS)
    assert output.output["result"] == result and output.confidence == 0.95
