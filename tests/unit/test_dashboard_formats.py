"""How the dashboard prints times and values."""

from __future__ import annotations

import time

from vy_nexus.interfaces.dashboard.formats import DASH, clock, headline, moment, rest, result_table


def test_an_iso_time_prints_like_every_other_time_on_the_page() -> None:
    assert moment("2026-12-03T10:00:00+00:00") == clock(1796292000.0)
    naive = "2026-12-03T10:00:00"  # no offset: local time, as Python reads it
    assert moment(naive) == time.strftime("%Y-%m-%d %H:%M:%S", time.strptime(naive, "%Y-%m-%dT%H:%M:%S"))
    assert moment(None) == DASH and moment("") == DASH
    assert moment("next tuesday") == "next tuesday"  # shown as it is, never an error page


def test_an_output_shows_its_answer_in_words_its_rows_as_a_table_and_the_rest_as_fields() -> None:
    # Before: the task page printed the whole output as one JSON block, the answer a string inside it.
    output = {"summary": "3 groups", "result": [{"region": "north", "n": 1}, {"region": "south", "x": None}], "rows": 5}
    assert headline(output) == "3 groups" and headline("plain") == "plain"
    assert headline({"answer": "hi", "summary": "not this"}) == "hi" and headline({"n": 1}) == '{\n  "n": 1\n}'
    assert rest(output) == {"result": output["result"], "rows": 5} and rest({"n": 1}) == {} and rest("x") == {}
    assert result_table(output) == (["region", "n", "x"], [["north", 1, None], ["south", None, None]])
    assert result_table({"result": []}) is None and result_table("x") is None
