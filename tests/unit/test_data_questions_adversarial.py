"""Questions the data-analysis expert used to answer as if they asked something else, at confidence 0.95."""

from __future__ import annotations

from typing import Any

from fakes.llm import context_with, run_expert
from vy_nexus.experts.base import ExpertOutput
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert
from vy_nexus.tasks import Task

SALES = """date,region,product,units,price
2026-01-05,north,widget,5,$1.50
2026-01-20,south,gadget,3,$2.00
2026-02-03,north,gadget,7,$2.00
2026-02-14,east,widget,2,$1.50
2026-03-01,south,widget,4,$1.50
2026-03-09,west,gizmo,6,$3.00
"""


def ask(question: str, payload: Any = SALES) -> ExpertOutput:
    return run_expert(DataAnalysisExpert(), Task(description=question, input=payload), context_with(None))


def test_a_negated_value_excludes_it_instead_of_selecting_it() -> None:
    # Before: "excluding north" filtered region = north (12 units) at 0.95, the opposite of the question.
    for question in ("total units excluding north", "total units not in the north", "total units except north"):
        output = ask(question)
        assert output.output["query"]["filters"] == [["region", "!=", "north"]], question
        assert output.output["result"] == [{"sum_units": 15}] and output.confidence == 0.95
    per_region = ask("average units for each region other than north").output["result"]
    assert [row["region"] for row in per_region] == ["east", "south", "west"]


def test_between_filters_both_ends_inclusive() -> None:
    # Before: "between 3 and 6" was ignored and the mean of every row (4.5 over 6 rows) answered.
    output = ask("average units where units between 3 and 6").output
    assert output["query"]["filters"] == [["units", ">=", "3"], ["units", "<=", "6"]]
    assert output["matched_rows"] == 4 and output["result"] == [{"mean_units": 4.5}]  # 5, 3, 4, 6
    dated = ask("total units where date is between 2026-01-10 and 2026-02-14").output
    assert dated["result"] == [{"sum_units": 12}]  # 3 + 7 + 2


def test_after_and_before_compare_dates() -> None:
    # Before: "date is after 2026-02-01" became the filter date = 'after' and the total was null.
    assert ask("total units where date is after 2026-02-01").output["result"] == [{"sum_units": 19}]
    assert ask("total units where date before 2026-02-01").output["result"] == [{"sum_units": 8}]
    assert ask("total units where date since 2026-03-01").output["result"] == [{"sum_units": 10}]


def test_an_aggregated_column_that_is_also_filtered_is_the_one_aggregated() -> None:
    # Before: "sum of units where units > 3" also summed price, the column nobody asked about.
    output = ask("sum of units where units > 3").output
    assert output["query"]["aggregates"] == [["sum", "units"]] and output["result"] == [{"sum_units": 22}]


def test_how_many_of_a_numeric_column_totals_it() -> None:
    # Before: "how many units were sold in the north" counted the 2 rows, not the 12 units.
    output = ask("how many units were sold in the north").output
    assert output["query"]["aggregates"] == [["sum", "units"]] and output["result"] == [{"sum_units": 12}]
    assert ask("how many widgets").output["result"] == [{"count": 3}]  # a value, not a column: rows


def test_words_the_query_would_leave_out_are_not_understood() -> None:
    # Before: each answered the total of every row, 27, at confidence 0.95.
    for question, named in (
        ("total units in 2026", "'2026'"),
        ("total units in february", "'february'"),
        ("sum of units where units is 5 or 7", "'7'"),
        ("total units for north and south", "'north', 'south' of column 'region'"),
    ):
        output = ask(question)
        assert output.confidence == 0.5 and "result" not in output.output, question
        assert named in output.output["not_understood"], question
    assert ask("top 3 regions by units").confidence == 0.95  # the 3 is the limit


def test_a_per_cent_sign_in_a_filter_value_asks_for_no_share() -> None:
    # Before: "discount >= 5%" turned the total into a share of the whole.
    data = "item,discount,units\na,5%,2\nb,10%,3\nc,1%,4\n"
    output = ask("total units where discount >= 5%", data).output
    assert output["query"]["aggregates"] == [["sum", "units"]] and output["result"] == [{"sum_units": 5}]


def test_how_many_of_a_text_column_counts_its_different_values() -> None:
    # Before: "how many regions are there" answered the row count.
    table = "region,units\nnorth,1\nnorth,2\nsouth,3\nwest,4\n"
    output = ask("how many regions are there", table).output
    assert output["query"]["aggregates"] == [["distinct", "region"]] and output["result"] == [{"distinct_region": 3}]


def test_a_numeric_column_by_a_group_without_an_aggregate_word_is_totalled() -> None:
    # Before: "units broken down by region" answered a row count per region, without saying so.
    table = "region,units\nnorth,1\nnorth,2\nsouth,3\n"
    output = ask("units broken down by region", table).output
    assert output["query"]["aggregates"] == [["sum", "units"]]
    assert output["result"] == [{"region": "north", "sum_units": 3}, {"region": "south", "sum_units": 3}]
    assert ask("rows by region", table).output["query"]["aggregates"] == [["count", None]]
