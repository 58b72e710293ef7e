"""The data-analysis expert: exact statistics, filters, group-by and SQL over CSV, JSON and SQLite input."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fakes.llm import ScriptedBackend, context_with, run_expert
from vy_nexus.config import Settings
from vy_nexus.errors import TaskError
from vy_nexus.experts.builtin.data_analysis import DataAnalysisExpert, describe_column
from vy_nexus.experts.builtin.table_query import Filter, aggregate
from vy_nexus.experts.builtin.table_question import parse_query
from vy_nexus.experts.builtin.tabular import as_number, load_table, to_decimal
from vy_nexus.tasks import Task

SALES = """item,category,region,price,qty
apple,fruit,north,0.1,3
pear,fruit,south,0.2,5
kale,veg,north,2.5,1
leek,veg,north,1.5,2
plum,fruit,north,0.7,10
"""


def analyse(description: str, payload: Any = SALES, **task: Any) -> dict[str, Any]:
    output = run_expert(DataAnalysisExpert(), Task(description=description, input=payload, **task), context_with(None))
    result: dict[str, Any] = output.output
    return result


def test_column_statistics_are_exact_decimals() -> None:
    columns = analyse("describe this data")["columns"]
    price = columns["price"]
    assert price["sum"] == 5.0 and price["mean"] == 1.0  # 0.1 + 0.2 + 2.5 + 1.5 + 0.7 = 5.0 exactly
    assert price["median"] == 0.7 and price["min"] == 0.1 and price["max"] == 2.5
    assert columns["qty"] == {
        "count": 5, "missing": 0, "type": "numeric", "sum": 21, "mean": 4.2, "median": 3, "min": 1, "max": 10,
        "stdev": 3.5637059362410923,  # sqrt(50.8 / 4)
    }  # fmt: skip
    assert columns["category"]["top"] == [{"value": "fruit", "count": 3}, {"value": "veg", "count": 2}]
    assert describe_column(["0.1", "0.2"])["sum"] == 0.3  # not 0.30000000000000004


def test_mean_per_group() -> None:
    output = analyse("average price per category")
    assert output["query"] == {"filters": [], "group_by": ["category"], "aggregates": [["mean", "price"]]}
    # fruit: (0.1 + 0.2 + 0.7) / 3 = 1/3; veg: (2.5 + 1.5) / 2 = 2
    assert output["result"] == [{"category": "fruit", "mean_price": 1 / 3}, {"category": "veg", "mean_price": 2}]
    assert output["summary"].endswith("2 groups by category; mean(price)")


def test_filter_then_group_and_sum() -> None:
    output = analyse("total qty by region where price >= 0.5")
    assert output["query"]["filters"] == [["price", ">=", "0.5"]]
    assert output["matched_rows"] == 3  # kale, leek, plum
    assert output["result"] == [{"region": "north", "sum_qty": 13}]


def test_count_per_group_with_a_word_filter() -> None:
    output = analyse("how many items per category where region is north")
    assert output["result"] == [{"category": "fruit", "count": 2}, {"category": "veg", "count": 2}]


def test_plural_group_names_and_several_aggregates() -> None:
    output = analyse("minimum and maximum price across categories")
    assert output["result"] == [
        {"category": "fruit", "min_price": 0.1, "max_price": 0.7},
        {"category": "veg", "min_price": 1.5, "max_price": 2.5},
    ]


def test_explicit_query_spec_and_its_errors() -> None:
    spec = {"filters": [["item", "contains", "E"]], "group_by": [], "aggregates": [["median", "qty"], "count"]}
    output = analyse("go", context={"query": spec})
    assert output["result"] == [{"median_qty": 2.5, "count": 4}]  # apple 3, pear 5, kale 1, leek 2
    with pytest.raises(TaskError, match="unknown column 'colour'"):
        analyse("go", context={"query": {"group_by": ["colour"]}})
    with pytest.raises(TaskError, match="unknown aggregate 'mode'"):
        analyse("go", context={"query": {"aggregates": [["mode", "qty"]]}})
    with pytest.raises(TaskError, match=r"\[column, operator, value\]"):
        analyse("go", context={"query": {"filters": [["qty", "~", 1]]}})


def test_sql_over_csv_rows() -> None:
    sql = "SELECT category, SUM(qty) AS units FROM data WHERE price < 2 GROUP BY category ORDER BY category"
    output = analyse("run my query", context={"sql": sql})
    assert output["result"] == [{"category": "fruit", "units": 18}, {"category": "veg", "units": 2}]
    assert output["result_rows"] == 2
    with pytest.raises(TaskError, match="SQL error"):
        analyse("x", context={"sql": "SELECT nope FROM data"})
    with pytest.raises(TaskError, match="SQL error"):
        analyse("x", context={"sql": "DELETE FROM data"})


@pytest.fixture
def sales_db(settings: Settings) -> Path:
    path = settings.home / "sales.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sales (region TEXT, amount REAL)")
        db.executemany("INSERT INTO sales VALUES (?, ?)", [("north", 10.5), ("south", 4.25), ("north", 0.25)])
    db.close()
    return path


def test_sqlite_tables_are_read_read_only(settings: Settings, sales_db: Path) -> None:
    context = context_with(None, settings)
    task = Task(description="total amount by region", input={"sqlite": "sales.db"})  # relative to home
    output = run_expert(DataAnalysisExpert(), task, context).output
    assert output["result"] == [{"region": "north", "sum_amount": 10.75}, {"region": "south", "sum_amount": 4.25}]
    query = Task(description="x", input={"sqlite": str(sales_db), "sql": "SELECT COUNT(*) AS n FROM sales"})
    assert run_expert(DataAnalysisExpert(), query, context).output["columns"]["n"]["sum"] == 3
    writer = Task(description="x", input={"sqlite": str(sales_db), "sql": "DROP TABLE sales"})
    with pytest.raises(TaskError, match="readonly"):
        run_expert(DataAnalysisExpert(), writer, context)
    with pytest.raises(TaskError, match="no table 'orders'"):
        load_table({"sqlite": str(sales_db), "table": "orders"})
    with pytest.raises(TaskError, match="SQLite database not found"):
        load_table({"sqlite": str(settings.home / "missing.db")})


def test_json_rows_and_bad_input() -> None:
    output = analyse("sum of v", [{"v": 2, "k": "a"}, {"v": 5.5, "k": "b"}, {"v": None, "k": "b"}])
    assert output["result"] == [{"sum_v": 7.5}] and output["columns"]["v"]["missing"] == 1
    with pytest.raises(TaskError, match="not valid"):
        analyse("x", "[{broken")
    with pytest.raises(TaskError, match="list of objects"):
        analyse("x", [1, 2])
    assert analyse("x", "a,b\n")["summary"] == "The data has no rows."


def test_explanations_come_from_the_llm_using_the_computed_numbers() -> None:
    backend = ScriptedBackend("Vegetables cost six times more on average than fruit.")
    task = Task(description="explain the average price per category", input=SALES)
    output = run_expert(DataAnalysisExpert(), task, context_with(backend)).output
    assert output["explanation"] == "Vegetables cost six times more on average than fruit."
    assert output["result"][1] == {"category": "veg", "mean_price": 2}  # numbers are still computed
    assert '"mean_price": 2' in backend.last_prompt and "never invent" in backend.calls[0][0][0].content
    quiet = ScriptedBackend("unused")
    run_expert(DataAnalysisExpert(), Task(description="average price", input=SALES), context_with(quiet))
    assert quiet.calls == []


def test_numbers_helpers() -> None:
    assert to_decimal("1,234.5") == to_decimal(1234.5) and to_decimal("nan") is None and to_decimal(True) is None
    assert to_decimal(float("inf")) is None and to_decimal("abc") is None and to_decimal([1]) is None
    assert as_number(to_decimal("3.0")) == 3 and isinstance(as_number(to_decimal("3.0")), int)  # type: ignore[arg-type]
    assert aggregate("stdev", [5]) == 0 and aggregate("mean", ["x"]) is None
    assert not Filter("price", ">", "1").matches({"price": "cheap"})
    assert Filter("region", "!=", "north").matches({"region": "south"})
    table = load_table(SALES)
    assert parse_query("hello", table).empty


def test_payload_shapes_and_their_errors(tmp_path: Path) -> None:
    assert load_table({"csv": "a,b\n1,2\n"}).rows == [{"a": "1", "b": "2"}]
    assert load_table({"rows": [{"x": 1}]}).columns == ["x"]
    with pytest.raises(TaskError, match="no header row"):
        load_table("")
    with pytest.raises(TaskError, match="needs a CSV or JSON payload"):
        load_table(42)
    two = tmp_path / "two.db"
    with sqlite3.connect(two) as db:
        db.execute("CREATE TABLE a (x)")
        db.execute("CREATE TABLE b (y)")
    db.close()
    with pytest.raises(TaskError, match="has tables a, b: name one with 'table'"):
        load_table({"sqlite": str(two)})
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database, just text " * 10)
    with pytest.raises(TaskError, match="cannot read SQLite database"):
        load_table({"sqlite": str(junk)})


def test_sql_sees_nested_values_as_json_and_blanks_as_null() -> None:
    rows = [{"k": "a", "tags": ["x", "y"], "v": ""}, {"k": "b", "tags": {"z": 1}, "v": "2"}]
    sql = "SELECT k, tags, v IS NULL AS blank FROM data ORDER BY k"
    output = analyse("q", rows, context={"sql": sql})
    assert output["result"] == [
        {"k": "a", "tags": '["x", "y"]', "blank": 1},
        {"k": "b", "tags": '{"z": 1}', "blank": 0},
    ]


def expert_output(description: str, payload: Any) -> tuple[dict[str, Any], float]:
    output = run_expert(DataAnalysisExpert(), Task(description=description, input=payload), context_with(None))
    return output.output, output.confidence


def test_missing_value_markers_in_a_numeric_column_are_missing_and_counted() -> None:
    output, confidence = expert_output("total units by region", "region,units\nnorth,3\nsouth,n/a\nnorth,4\nsouth,2\n")
    assert output["result"] == [{"region": "north", "sum_units": 7}, {"region": "south", "sum_units": 2}]
    assert output["columns"]["units"]["type"] == "numeric" and output["columns"]["units"]["missing"] == 1
    assert "1 missing units value(s) left out" in output["summary"] and confidence == 0.95
    assert describe_column(["NA", "x"])["type"] == "categorical"  # a marker is only missing among numbers


def test_a_group_by_column_the_table_lacks_is_named_not_dropped() -> None:
    output, confidence = expert_output("average price per colour", SALES)
    assert "result" not in output and confidence < 0.5
    assert output["problems"] == ["the table has no column 'colour' (columns: item, category, region, price, qty)"]


def test_an_aggregate_over_a_column_the_table_lacks_is_named_not_replaced() -> None:
    output, confidence = expert_output("average weight", SALES)
    assert "result" not in output and confidence < 0.5 and "no column 'weight'" in output["summary"]
    # generic words are not columns: these still answer over every numeric column
    assert analyse("compute the mean of this csv")["result"] == [{"mean_price": 1, "mean_qty": 4.2}]


def test_which_group_has_the_highest_total_ranks_the_groups() -> None:
    output, _ = expert_output("which item has the highest total qty", SALES + "plum,fruit,south,0.7,1\n")
    assert output["query"]["group_by"] == ["item"] and output["query"]["aggregates"] == [["sum", "qty"]]
    assert output["result"][:2] == [{"item": "plum", "sum_qty": 11}, {"item": "pear", "sum_qty": 5}]
    assert output["summary"].endswith("highest sum(qty): plum (11)")
    lowest, _ = expert_output("which region has the fewest rows", SALES)
    assert lowest["result"][0] == {"region": "south", "count": 1}
    unknown, confidence = expert_output("which customer has the highest qty", SALES)
    assert "no column 'customer'" in unknown["summary"] and confidence < 0.5


def test_a_number_beyond_the_float_range_is_reported_not_nulled() -> None:
    output, confidence = expert_output("total value", "item,value\na,1e400\nb,2\n")
    assert "result" not in output and confidence < 0.5
    assert output["problems"] == [
        "column 'value' does not hold numbers ('1e400' is beyond the range of numbers that can be reported)"
    ]
    text, _ = expert_output("total region", SALES)
    assert text["problems"] == ["column 'region' does not hold numbers ('north' is not a number)"]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("region;units\nnorth;3\nsouth;4\n", ";"),
        ("region\tunits\nnorth\t3\n", "\t"),
        ("region|units\nnorth|3\n", "|"),
        ('"a;b;c",note\n"x;y;z",1\n', ","),  # delimiters inside quotes do not count
        ("region,units;kg\nnorth,3;1\n", ","),  # a tie goes to the comma
        ("units\n3\n4\n", ","),
    ],
)
def test_the_delimiter_is_read_off_the_header(text: str, delimiter: str) -> None:
    from vy_nexus.experts.builtin.tabular import sniff_delimiter

    assert sniff_delimiter(text) == delimiter


def test_semicolon_and_tab_separated_tables_are_read_as_tables() -> None:
    for text in ("region;units\nnorth;3\nsouth;4\n", "region\tunits\nnorth\t3\nsouth\t4\n"):
        table = load_table(text)
        assert table.columns == ["region", "units"] and table.rows[1] == {"region": "south", "units": "4"}


def test_top_n_groups_are_ranked_by_the_total_of_the_column_after_by() -> None:
    # Before: "5 groups by qty; count(*)", a count of each qty value, at confidence 0.95.
    output = analyse("top 1 regions by qty")
    assert output["query"] == {
        "filters": [], "group_by": ["region"], "aggregates": [["sum", "qty"]], "order": "desc", "limit": 1,
    }  # fmt: skip
    assert output["result"] == [{"region": "north", "sum_qty": 16}]
    assert "2 groups by region (top 1 shown); sum(qty); highest sum(qty): north (16)" in output["summary"]
    cheapest = analyse("bottom 2 items by price")
    assert [row["item"] for row in cheapest["result"]] == ["apple", "pear"]


def test_which_group_has_the_most_of_a_column_totals_it_instead_of_counting_rows() -> None:
    # Before: "highest count(*): north" (4 rows), whatever the qty.
    output = analyse("which category has the most qty", payload=SALES + "fig,veg,south,1,40\n")
    assert output["query"]["aggregates"] == [["sum", "qty"]]
    assert output["result"][0] == {"category": "veg", "sum_qty": 43}
    assert analyse("which region has the most rows")["query"]["aggregates"] == [["count", None]]


def test_distinct_values_are_counted_as_such() -> None:
    # Before: count(*) = 5 rows for both questions, and nothing at all for "number of unique ...".
    assert analyse("how many different regions")["result"] == [{"distinct_region": 2}]
    assert analyse("count distinct categories")["result"] == [{"distinct_category": 2}]
    assert analyse("number of unique items per region")["result"] == [
        {"region": "north", "distinct_item": 4},
        {"region": "south", "distinct_item": 1},
    ]
    assert aggregate("distinct", ["7", 7, "7.0", " x", "x", "n/a", None]) == 2


def test_a_query_spec_may_rank_and_limit_and_says_what_is_wrong() -> None:
    spec = {"group_by": ["region"], "aggregates": [["sum", "qty"]], "order": "asc", "limit": 1}
    assert analyse("anything", context={"query": spec})["result"] == [{"region": "south", "sum_qty": 5}]
    for bad, message in (
        ({"aggregates": ["distinct"]}, "counts the values of a column"),
        ({"order": "up"}, "order must be 'asc' or 'desc'"),
        ({"limit": 0}, "limit must be a positive whole number"),
        ({"limit": True}, "limit must be a positive whole number"),
    ):
        with pytest.raises(TaskError, match=message):
            analyse("anything", context={"query": bad})


ORDERS = """date,region,units
2026-01-05,north,10
2026-01-31T23:30:00,south,3
2026-02-01,north,4
2026-02-03 08:00,west,12
"""


def test_dates_in_filters_compare_as_dates() -> None:
    # Before: "date >= 2026-02-01 matched 0 rows" and an empty sum at confidence 0.95 (text compared to text).
    output = analyse("total units where date >= 2026-02-01", payload=ORDERS)
    assert output["matched_rows"] == 2 and output["result"] == [{"sum_units": 16}]
    assert analyse("total units where date < 2026-02-01", payload=ORDERS)["result"] == [{"sum_units": 13}]
    assert Filter("date", "=", "2026-02-01").matches({"date": "2026-02-01T00:00:00+00:00"})
    assert not Filter("date", ">", "2026-02-01").matches({"date": "soon"})


def test_an_ordering_filter_against_text_is_named_instead_of_matching_nothing() -> None:
    output = analyse("total units where region > north", payload=ORDERS)
    assert output["problems"] == ["the filter region > 'north' compares text: give a number or a date (YYYY-MM-DD)"]
    assert "result" not in output


def test_numbers_as_spreadsheets_export_them_are_numbers() -> None:
    # Before: "cannot answer: column 'price' does not hold numbers ('$1,200.50' is not a number)".
    exported = 'region,price,discount,change\nnorth,"$1,200.50",5%,(4)\nsouth,€15.00,2.5%,"(1,000.25)"\n'
    columns = analyse("describe this data", payload=exported)["columns"]
    assert columns["price"]["sum"] == 1215.5 and columns["discount"]["mean"] == 3.75
    assert columns["change"]["sum"] == -1004.25
    for text in ("$", "%", "()", "12.5.6", "$ 5 $", "5%%"):
        assert to_decimal(text) is None, text


def test_a_value_named_without_its_column_filters_on_it() -> None:
    # Before: "how many apples" counted all 5 rows and "average price for veg" averaged every row, at 0.95.
    counted = analyse("how many apples")
    assert counted["query"]["filters"] == [["item", "=", "apple"]] and counted["result"] == [{"count": 1}]
    assert analyse("average price for veg")["result"] == [{"mean_price": 2}]
    both = analyse("total qty of fruit in the north")
    assert both["query"]["filters"] == [["category", "=", "fruit"], ["region", "=", "north"]]
    assert both["result"] == [{"sum_qty": 13}]
    # Two values of one column: which one (or both) is meant, the words do not say; no filter is guessed.
    assert analyse("total qty for north and south")["query"]["filters"] == []
    # Words that frame the question are never values, even where a cell holds them.
    framed = "name,qty\ntotal,1\nrows,2\n"
    assert analyse("total qty of all rows", payload=framed)["query"]["filters"] == []


def test_rows_that_pass_the_filters_are_listed_when_nothing_is_aggregated() -> None:
    # Before: "price > 1 matched 2 rows" and no rows shown.
    output = analyse("list items with price above 1")
    assert [row["item"] for row in output["result"]] == ["kale", "leek"]


def test_percentages_are_shares_of_the_whole() -> None:
    # Before: no query at all (the column statistics) at confidence 0.95.
    north = analyse("what percentage of qty is from the north")
    assert north["query"]["aggregates"] == [["share", "qty"]] and north["result"] == [{"share_qty": 76.1905}]
    assert "share(qty) %" in north["summary"]  # 16 of 21
    by_region = analyse("share of qty by region")["result"]
    assert by_region == [{"region": "north", "share_qty": 76.1905}, {"region": "south", "share_qty": 23.8095}]
    assert analyse("percent of rows that are fruit")["result"] == [{"share": 60}]
    with pytest.raises(ValueError, match="run_query computes it"):
        aggregate("share", [1])


def test_a_question_not_understood_says_so_with_less_confidence() -> None:
    # Before: the column statistics alone, at confidence 0.95, as if they answered "compare north and south".
    expert = DataAnalysisExpert()
    unclear = run_expert(expert, Task(description="compare north and south", input=SALES), context_with(None))
    assert unclear.confidence == 0.5 and "not understood" in unclear.output["summary"]
    assert "column statistics are shown instead" in unclear.output["not_understood"]
    for request in ("summarise this csv", "what is in this file", "describe the columns", "analyse the dataset"):
        described = run_expert(expert, Task(description=request, input=SALES), context_with(None))
        assert described.confidence == 0.95 and "not_understood" not in described.output, request


def test_prose_given_to_the_data_expert_is_not_a_table() -> None:
    # Before: "The data has no rows." at confidence 0.6: the sentence was read as a one-column header.
    with pytest.raises(TaskError, match=r"the input is not a table: its first line reads as prose \('Project Apollo"):
        analyse("what is the word count", payload="Project Apollo was the third United States human spaceflight.")
    assert load_table("name\nada\n").rows == [{"name": "ada"}]  # one short column is a table
