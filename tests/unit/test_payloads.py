"""Input payloads from paths, bytes and text: the library functions the CLI (and the API) call."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from vy_nexus.errors import InputError, PayloadTooLargeError, TaskError
from vy_nexus.experts.builtin.tabular import read_sqlite
from vy_nexus.payloads import build_task, parse_context, parse_payload, read_limited, read_payload


def make_db(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sales (region TEXT, units INTEGER)")
        connection.executemany("INSERT INTO sales VALUES (?, ?)", [("north", 3), ("south", 4)])
    connection.close()
    return path


def test_files_by_format(tmp_path: Path) -> None:
    (tmp_path / "rows.json").write_text(json.dumps([{"n": 1}]))
    (tmp_path / "prices.csv").write_text("item,price\napple,1.5\n")
    (tmp_path / "notes.txt").write_text('{"stays": "text"}')
    assert read_payload(tmp_path / "rows.json") == [{"n": 1}]
    assert read_payload(str(tmp_path / "prices.csv")) == "item,price\napple,1.5\n"
    assert read_payload(tmp_path / "notes.txt") == '{"stays": "text"}'  # a known non-JSON suffix decides


def test_sqlite_files_stay_where_they_are_by_suffix_or_header(tmp_path: Path) -> None:
    db = make_db(tmp_path / "sales.db")
    assert read_payload(db) == {"sqlite": str(db.resolve())}
    renamed = db.rename(tmp_path / "sales.bin")
    assert read_payload(renamed) == {"sqlite": str(renamed.resolve())}


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input file not found"):
        read_payload(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(InputError, match=r"broken\.json is not valid JSON: .* \(line 1, column 2\)"):
        read_payload(tmp_path / "broken.json")
    (tmp_path / "latin1.csv").write_bytes("café,1\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.csv is not UTF-8 text \(byte 3\)"):
        read_payload(tmp_path / "latin1.csv")
    (tmp_path / "big.txt").write_text("x" * 2048)
    with pytest.raises(PayloadTooLargeError, match="larger than"):
        read_payload(tmp_path / "big.txt", max_bytes=1024)
    assert issubclass(InputError, TaskError) and PayloadTooLargeError.http_status == 413


def test_bytes_without_a_name_are_sniffed() -> None:
    assert parse_payload(b'[{"v": 2}]') == [{"v": 2}]
    assert parse_payload(b'  {"a": 1}', filename="stdin") == {"a": 1}
    assert parse_payload(b"region,units\nnorth,3\n") == "region,units\nnorth,3\n"
    assert parse_payload('{"a": 1}', filename="upload") == {"a": 1}
    assert parse_payload("\ufeff[1]") == [1]
    assert parse_payload("\ufeff[1]".encode()) == [1]  # a byte-order mark is not part of the text
    with pytest.raises(InputError, match=r"^stdin is not valid JSON"):
        parse_payload(b"[1,", filename="stdin")
    with pytest.raises(PayloadTooLargeError, match=r"^the input is larger than"):
        parse_payload("é" * 600, max_bytes=1024)


def test_sqlite_bytes_are_spooled_and_readable(tmp_path: Path) -> None:
    data = make_db(tmp_path / "source.sqlite").read_bytes()
    with pytest.raises(InputError, match="is an SQLite database: pass it as a file path"):
        parse_payload(data, filename="upload.bin")
    spool = tmp_path / "uploads"
    payload = parse_payload(data, filename="upload.bin", spool_dir=spool)
    assert parse_payload(data, spool_dir=spool) == payload  # the same bytes, the same file
    assert [p.name for p in spool.iterdir()] == [Path(payload["sqlite"]).name]
    table = read_sqlite(payload)
    assert [row["units"] for row in table.rows] == [3, 4]


def test_read_limited_stops_at_the_limit() -> None:
    assert read_limited(io.BytesIO(b"abc"), 3) == b"abc"
    with pytest.raises(PayloadTooLargeError, match=r"^stdin is larger"):
        read_limited(io.BytesIO(b"abcd"), 3, name="stdin")


def test_build_task() -> None:
    task = build_task("sum it", task_type="Data", payload=[{"v": 1}], experts=["data-analysis"])
    assert (task.type, task.input, task.context) == ("data", [{"v": 1}], {"experts": ["data-analysis"]})
    plain = build_task("hello")
    assert (plain.type, plain.input, plain.context) == ("general", None, {})
    with pytest.raises(TaskError, match="description"):
        build_task("   ")


def test_build_task_with_context_priority_and_deadline() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    task = build_task(
        "explain it",
        context={"explain": True, "experts": ["general"]},
        experts=["code"],
        priority="critical",
        deadline="2026-12-03T12:05:00",
        now=now,
    )
    assert task.context == {"explain": True, "experts": ["code"]}  # the interface's own choice wins
    assert task.priority.value == "critical" and task.deadline == datetime(2026, 12, 3, 12, 5)
    with pytest.raises(InputError, match=r"the deadline 2026-12-03T11:59:00\+00:00 has passed already"):
        build_task("late", deadline=datetime(2026, 12, 3, 11, 59, tzinfo=UTC), now=now)
    with pytest.raises(InputError, match="must be a JSON object, not a list"):
        build_task("x", context=[1])  # type: ignore[arg-type]
    deep: dict[str, object] = {}
    for _ in range(150):
        deep = {"k": deep}
    with pytest.raises(InputError, match="context is nested deeper than 100 levels"):
        build_task("x", context=deep)
    with pytest.raises(TaskError, match="priority: must be one of low, medium, high, critical"):
        build_task("x", priority="urgent")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{bad", r"not valid JSON: Expecting property name enclosed in double quotes \(line 1 column 2\)"),
        ("[1]", "must be a JSON object, not a list"),
        ('"x"', "must be a JSON object, not a string"),
        ("3", "must be a JSON object, not a number"),
        ("null", "must be a JSON object, not null"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 100 levels"),
    ],
)
def test_parse_context_names_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_context(text)


def test_parse_context_reads_an_object() -> None:
    assert parse_context('{"explain": true, "capabilities": ["sql"]}') == {"explain": True, "capabilities": ["sql"]}
