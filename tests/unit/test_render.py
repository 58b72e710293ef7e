from __future__ import annotations

import json
import math
from datetime import datetime

import pytest
from rich.console import Console

from vy_nexus.interfaces.cli.common import print_json
from vy_nexus.interfaces.cli.render import render_output


def rendered(output: object, streamed: tuple[str, ...] = ()) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(render_output(output, streamed))
    return console.export_text()


def test_headline_tables_and_details() -> None:
    text = rendered(
        {
            "summary": "3 groups",
            "columns": {"units": {"sum": 46, "mean": 9.2}, "region": {"top": [{"value": "north", "count": 2}]}},
            "result": [{"region": "north", "sum_units": 15}],
            "rows": 5,
            "reasoning": {"provider": "embedded"},
        }
    )
    assert text.index("3 groups") < text.index("north") < text.index("columns")
    assert "sum_units" in text and "north:2" in text and "rows" in text
    assert "embedded" not in text


def test_streamed_text_is_not_repeated() -> None:
    review = "This function divides by zero when the list is empty.\nFix it by checking the length first."
    text = rendered({"summary": "Valid Python", "review": review}, streamed=(review + "\n",))
    assert "divides by zero" not in text
    assert "review: (streamed above)" in text
    assert "divides by zero" in rendered({"summary": "Valid Python", "review": review})


def test_plain_values() -> None:
    assert "hello" in rendered("hello")
    assert "(streamed above)" in rendered("hello", streamed=("hello",))
    assert "a" in rendered([{"a": 1}]) and "42" in rendered(42)


def test_status_rows_are_flattened() -> None:
    from vy_nexus.interfaces.cli.core_commands import flatten

    rows = flatten({"home": "/h", "routing": {"cache": {"hits": 3}, "strategy": "keyword"}, "x": None, "l": [1, 2]})
    assert rows == [
        ("home", "/h"),
        ("routing.cache.hits", "3"),
        ("routing.strategy", "keyword"),
        ("x", "-"),
        ("l", "1, 2"),
    ]


def test_user_data_with_markup_is_rendered_literally_on_any_console() -> None:
    text = rendered({"result": [{"region": "[red]north[/red]"}, {"region": "[/]"}], "note": "[bold]x"})
    assert "[red]north[/red]" in text and "[/]" in text and "[bold]x" in text


def test_streamed_answer_headers_print_expert_names_literally() -> None:
    from vy_nexus.interfaces.cli.token_stream import TokenPrinter
    from vy_nexus.reasoning.llm import TokenEvent

    console = Console(width=120, record=True, color_system=None)  # markup on: the printer must not depend on it
    printer = TokenPrinter(console)
    printer(TokenEvent(text="[/]hi", provider="embedded", model="[m]", expert_id="[/]"))
    printer.finish()
    assert console.export_text() == "[/] · embedded/[m]\n[/]hi\n"


def test_values_json_has_no_type_for_are_shown_not_dropped() -> None:
    # Before, only "count" was shown: a set, bytes and a datetime in an expert's output vanished.
    shown = rendered({"tags": {"a"}, "raw": b"\xff", "when": datetime(2026, 12, 3, 9, 30), "count": 2})
    assert "tags   {'a'}" in shown and "raw    b'\\xff'" in shown and "when   2026-12-03 09:30:00" in shown


def test_json_output_is_strict_json_even_with_nan_and_cycles(capsys: pytest.CaptureFixture[str]) -> None:
    looped: list[object] = [1]
    looped.append(looped)
    print_json({"mean": math.nan, "max": math.inf, "rows": [1.5, -math.inf], "looped": looped, "ok": "é"})
    printed = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(printed, parse_constant=refuse) == {
        "mean": None,
        "max": None,
        "rows": [1.5, None],
        "looped": [1, "<circular reference>"],
        "ok": "é",
    }


def test_a_field_taken_out_of_the_streamed_answer_is_not_printed_again() -> None:
    # Before: the code expert's code block was streamed with its answer, then printed again in a panel.
    code = "def f(x):\n    return x[::-1]"
    answer = f"Here it is:\n```python\n{code}\n```\nIt slices."
    shown = rendered({"summary": "Generated Valid Python", "code": code, "answer": answer}, streamed=(answer,))
    assert "code: (streamed above)" in shown and "return x[::-1]" not in shown
