"""Tabular input for the data-analysis expert: CSV text, JSON rows, or a SQLite database file (read-only).

Accepted payloads: CSV text; JSON text or a list of objects; ``{"rows": [...]}``, ``{"csv": "..."}``;
``{"sqlite": "path.db", "table": "sales"}`` (``table`` may be left out when the file has one table) or
``{"sqlite": "path.db", "sql": "SELECT ..."}``. Numbers are read as ``Decimal`` from their text, so sums and means of
values such as ``0.1`` and ``0.2`` come out exact, and numbers as spreadsheets export them count (``$1,200.50``,
``5%``, ``(4)``); numbers beyond a float's range (``1e400``) cannot be reported in JSON and do not count as numbers.
In an otherwise numeric column, blanks and markers such as ``n/a`` are missing. Cells holding lists or objects
(``{"tags": ["a", "b"]}``) are read as their JSON text, SQLite blobs as ``<blob, 2 bytes: ff00>``: values to
group, count and compare like any text, and JSON-clean wherever they are shown.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from vy_nexus import json_text
from vy_nexus.errors import TaskError

Row = dict[str, Any]
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "--", "?", "#n/a", "missing"})
"""Cells that mean "no value" in a numeric column (compared stripped and lower-cased)."""
LARGEST_NUMBER = Decimal("1.7976931348623157e308")


@dataclass(frozen=True, slots=True)
class Table:
    columns: list[str]
    rows: list[Row]
    source: str = "input"
    sql: str | None = field(default=None)
    nested: tuple[str, ...] = ()
    """Columns with cells that held lists or objects, now their JSON text."""


SPREADSHEET_NUMBER = re.compile(r"(?P<sign>[-+]?)[$€£¥₹]?(?P<digits>[0-9.,]+(?:[eE][-+]?\d+)?)[$€£¥₹%]?")
"""A number as spreadsheets export them: a currency sign before or after it, a per cent sign after it."""


def to_decimal(value: Any) -> Decimal | None:
    """The exact number a cell holds, or ``None`` for text, blanks and booleans. Spreadsheet exports count:
    ``"1,234.5"`` → ``1234.5``, ``"$1,200.50"`` → ``1200.50``, ``"5%"`` → ``5`` (in per cent, as shown),
    ``"(4)"`` → ``-4`` (accounting's negative)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() and abs(value) <= LARGEST_NUMBER else None
    if isinstance(value, int):
        return Decimal(value) if abs(value) <= LARGEST_NUMBER else None
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        negative = text.startswith("(") and text.endswith(")")
        if negative:
            text = text[1:-1].strip()
        try:
            parsed: Decimal | None = Decimal(text.replace(",", ""))
        except InvalidOperation:
            parsed = _spreadsheet_number(text)
        if parsed is None:
            return None
        number = parsed
        if negative:
            number = -number
        return number if number.is_finite() and abs(number) <= LARGEST_NUMBER else None
    return None


def _spreadsheet_number(text: str) -> Decimal | None:
    match = SPREADSHEET_NUMBER.fullmatch(text)
    if match is None:
        return None
    try:
        return Decimal(match["sign"] + match["digits"].replace(",", ""))
    except InvalidOperation:
        return None


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_moment(value: Any) -> datetime | None:
    """The date or date-time an ISO 8601 cell holds (``2026-02-01``, ``2026-02-01 09:30``), naive UTC so any two
    compare; ``None`` for anything else."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and ISO_DATE.match(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def is_missing(value: Any) -> bool:
    """A blank or a missing-value marker (``n/a``, ``null``, ``-``...): no value, when the column holds numbers."""
    return value is None or (isinstance(value, str) and value.strip().lower() in MISSING_MARKERS)


def numbers_of(values: list[Any]) -> list[Decimal] | None:
    """The numbers of a numeric column, missing values left out; ``None`` when some value is not a number (or none
    is)."""
    numbers = [to_decimal(v) for v in values if not is_missing(v)]
    if not numbers or any(n is None for n in numbers):
        return None
    return [n for n in numbers if n is not None]


IDENTIFIER_NAME = re.compile(r"^id$|[\s_.#-](?:id|no|nr|num|number)$", re.IGNORECASE)
CAMEL_IDENTIFIER_NAME = re.compile(r"(?<=[a-z])(?:Id|ID|No|Nr|Num|Number)$")
"""Names of identifier columns: ``id``, ``order_id``, ``Order ID``, ``invoice_no``, ``ticket number``, ``orderId``
(``paid`` and ``casino`` are not: the suffix needs a separator or a capital)."""


def whole_numbers(values: list[Any]) -> list[Decimal] | None:
    """The numbers of a column holding whole numbers only (missing values aside); ``None`` for any other column."""
    numbers = numbers_of(values)
    if numbers is None or any(n != n.to_integral_value() for n in numbers):
        return None
    return numbers


def identifier_stem(column: str) -> str | None:
    """What an identifier column's name identifies (``order`` of ``order_id``, ``orderId``); ``None`` when the name
    is no identifier's or names nothing else (``id``)."""
    match = IDENTIFIER_NAME.search(column) or CAMEL_IDENTIFIER_NAME.search(column)
    if match is None:
        return None
    stem = column[: match.start()].strip(" _.#-")
    return stem.lower() or None


def is_identifier_name(column: str) -> bool:
    return IDENTIFIER_NAME.search(column) is not None or CAMEL_IDENTIFIER_NAME.search(column) is not None


def identifier_columns(table: Table) -> list[str]:
    """Columns of whole numbers named as identifiers (``order_id``, ``customer no``): labels for rows, never
    quantities to total or average."""
    return [
        column
        for column in table.columns
        if is_identifier_name(column) and whole_numbers([row.get(column) for row in table.rows]) is not None
    ]


def as_number(value: Decimal) -> int | float:
    """A JSON-friendly number: an int when integral (and exactly representable), else the nearest float (infinite
    beyond a float's range: a total of ``1e308`` and ``1e308``, which the data expert reports as such)."""
    if value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    return float(value)


def columns_of(rows: list[Row]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


CSV_DELIMITERS = (",", "\t", ";", "|")


def sniff_delimiter(text: str) -> str:
    """The delimiter of delimited text: of comma, tab, semicolon and bar, the one its header line holds most outside
    quotes (comma on a tie or when it holds none). Semicolons are what spreadsheets in many locales write."""
    header = re.sub(r'"[^"]*"', "", text.split("\n", 1)[0])
    counts = [header.count(delimiter) for delimiter in CSV_DELIMITERS]
    best = max(range(len(CSV_DELIMITERS)), key=counts.__getitem__)
    return CSV_DELIMITERS[best] if counts[best] else ","


def parse_rows(payload: Any) -> list[Row]:
    """Rows from a list of objects, ``{"rows": [...]}``, ``{"csv": "..."}``/CSV text, or JSON text."""
    if isinstance(payload, dict):
        if "rows" in payload:
            payload = payload["rows"]
        elif "csv" in payload:
            payload = payload["csv"]
    if isinstance(payload, str):
        text = payload.strip()
        if text.startswith(("[", "{")):
            try:
                return parse_rows(json_text.loads(text))
            except json.JSONDecodeError as exc:
                raise TaskError(f"the input looks like JSON but is not valid: {exc.msg} at line {exc.lineno}") from exc
            except RecursionError:
                raise TaskError("the input is JSON nested too deeply to read") from None
        reader = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text))
        if not reader.fieldnames:
            raise TaskError("the CSV input has no header row")
        if len(reader.fieldnames) == 1 and _reads_as_prose(reader.fieldnames[0]):
            first = reader.fieldnames[0]
            shown = first if len(first) <= 60 else first[:59] + "…"
            raise TaskError(
                f"the input is not a table: its first line reads as prose ({shown!r}); give CSV with a header row,"
                " JSON rows or an SQLite file"
            )
        return [dict(row) for row in reader]
    if isinstance(payload, list):
        if not all(isinstance(row, dict) for row in payload):
            raise TaskError("JSON data must be a list of objects (one object per row)")
        return [dict(row) for row in payload]
    raise TaskError("data-analysis needs a CSV or JSON payload: a list of objects, CSV text, or {'rows': [...]}")


PROSE_WORDS = 8
"""A header line of one column with this many words or more is a sentence, not a column name."""


def _reads_as_prose(header: str) -> bool:
    return len(header.split()) >= PROSE_WORDS or len(header) > 100


def load_table(payload: Any, *, base: Path | None = None) -> Table:
    """The table a payload describes; SQLite paths are relative to ``base`` (the home directory)."""
    if isinstance(payload, dict) and "sqlite" in payload:
        return read_sqlite(payload, base=base)
    rows = parse_rows(payload)
    columns = columns_of(rows)
    nested = tuple(c for c in columns if any(isinstance(row.get(c), NESTED) for row in rows))
    cells = [{key: cell_value(value) for key, value in row.items()} for row in rows]
    return Table(columns, cells, nested=nested)


NESTED = (list, tuple, dict)
"""Cells that hold several values: unhashable (or, as tuples, shown as Python writes them), so read as JSON text."""
BLOB_BYTES_SHOWN = 16
"""A blob up to this long is shown in hex; a longer one by its size and a digest, so that different blobs differ."""


def cell_value(value: Any) -> Any:
    """A cell as the analysis reads it: a list or object as its JSON text, a blob as ``blob_text``, else as is."""
    if isinstance(value, NESTED):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return blob_text(bytes(value))
    return value


def blob_text(blob: bytes) -> str:
    """A blob as text that says what it is: ``<blob, 2 bytes: ff00>``; ``<blob, 4096 bytes, sha256 3f2a...>``."""
    size = f"{len(blob)} byte{'' if len(blob) == 1 else 's'}"
    if not blob:
        return f"<blob, {size}>"
    if len(blob) <= BLOB_BYTES_SHOWN:
        return f"<blob, {size}: {blob.hex()}>"
    return f"<blob, {size}, sha256 {hashlib.sha256(blob).hexdigest()[:16]}>"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_sqlite(spec: dict[str, Any], *, base: Path | None = None) -> Table:
    path = Path(str(spec["sqlite"])).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise TaskError(f"SQLite database not found: {path}")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise TaskError(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        if isinstance(spec.get("sql"), str):
            return run_select(connection, spec["sql"], source=str(path))
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        table = spec.get("table")
        if table is None:
            if len(tables) != 1:
                raise TaskError(f"{path} has tables {', '.join(tables) or '(none)'}: name one with 'table'")
            table = tables[0]
        if table not in tables:
            raise TaskError(f"{path} has no table '{table}' (tables: {', '.join(tables) or 'none'})")
        whole = run_select(connection, f"SELECT * FROM {_quote(str(table))}", source=f"{path}:{table}")
        return Table(whole.columns, whole.rows, source=whole.source)
    except sqlite3.DatabaseError as exc:
        raise TaskError(f"cannot read SQLite database {path}: {exc}") from exc
    finally:
        connection.close()


def run_select(connection: sqlite3.Connection, sql: str, *, source: str) -> Table:
    """Run one query and return its result as a table (the SQL error becomes a ``TaskError``)."""
    try:
        cursor = connection.execute(sql)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise TaskError(f"SQL error: {exc}") from exc
    if cursor.description is None:
        raise TaskError("the SQL statement returned no rows; use a SELECT query")
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, map(cell_value, record), strict=True)) for record in cursor.fetchall()]
    return Table(columns, rows, source=source, sql=sql)


def sql_over_rows(table: Table, sql: str) -> Table:
    """Run ``sql`` against the rows loaded into an in-memory SQLite table named ``data``."""
    connection = sqlite3.connect(":memory:")
    try:
        columns = ", ".join(_quote(c) for c in table.columns)
        connection.execute(f"CREATE TABLE data ({columns})")
        parameter_marks = ", ".join("?" for _ in table.columns)
        connection.executemany(
            f"INSERT INTO data VALUES ({parameter_marks})",
            [tuple(_sql_value(row.get(c)) for c in table.columns) for row in table.rows],
        )
        connection.execute("PRAGMA query_only = ON")
        return run_select(connection, sql, source=table.source)
    finally:
        connection.close()


def _sql_value(value: Any) -> Any:
    number = to_decimal(value)
    if number is not None:
        return as_number(number)
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        return value
    return json.dumps(value)
