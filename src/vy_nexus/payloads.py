"""Input payloads: the data a task works on, read from a file path or from raw bytes (an upload, stdin).

* an SQLite database (a ``.db``/``.sqlite``/``.sqlite3`` name, or the SQLite header) is passed by path as
  ``{"sqlite": path}``; raw bytes are saved under ``spool_dir`` first (the experts open the file read-only);
* JSON (a ``.json`` name, or, for a name without a suffix such as ``stdin``, text that starts with ``{`` or ``[``)
  is parsed;
* anything else must be UTF-8 text (CSV, code, prose) and is passed as a string: routing and the experts look inside.

Payloads over ``MAX_PAYLOAD_BYTES``, and JSON nested deeper than ``MAX_NESTING`` levels (the task store and the
experts walk it), are refused. Every problem is an ``InputError`` naming the input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from vy_nexus import json_text
from vy_nexus.errors import InputError, PayloadTooLargeError
from vy_nexus.foundation.atomic import atomic_write_bytes
from vy_nexus.tasks import Task

MAX_PAYLOAD_BYTES = 50 * 1024 * 1024
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SQLITE_HEADER = b"SQLite format 3\x00"
MAX_NESTING = 100


def read_payload(path: str | Path, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> Any:
    """The payload in a file. An SQLite database stays where it is: ``{"sqlite": "<absolute path>"}``."""
    file = Path(path).expanduser()
    if not file.is_file():
        if file.is_dir():
            raise InputError(f"input {file} is a directory: name a file")
        if file.exists():
            raise InputError(
                f"input {file} is not a regular file (a device or a pipe): name a file, or use '-' for stdin"
            )
        raise InputError(f"input file not found: {file}")
    try:
        with file.open("rb") as handle:
            if _is_sqlite(file.name, handle.read(len(SQLITE_HEADER))):
                return {"sqlite": str(file.resolve())}
            handle.seek(0)
            data = read_limited(handle, max_bytes, name=str(file))
    except OSError as exc:
        raise InputError(f"cannot read input file {file}: {exc.strerror}") from exc
    return parse_payload(data, filename=str(file), max_bytes=max_bytes)


def read_limited(stream: BinaryIO, max_bytes: int = MAX_PAYLOAD_BYTES, *, name: str = "the input") -> bytes:
    """Read a stream (stdin, an upload) whole, but never more than ``max_bytes``."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(name, max_bytes)
    return data


def parse_payload(
    data: bytes | str,
    *,
    filename: str | None = None,
    spool_dir: Path | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Any:
    """The payload in ``data``; ``filename`` (as sent, may be a bare name) decides the format when it has a known
    suffix. SQLite bytes are written to ``spool_dir`` (named by their hash) and passed by that path."""
    name = filename or "the input"
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    if size > max_bytes:
        raise _too_large(name, max_bytes)
    if isinstance(data, bytes):
        if _is_sqlite(filename or "", data):
            if spool_dir is None:
                raise InputError(f"{name} is an SQLite database: pass it as a file path")
            return {"sqlite": str(_spool(data, spool_dir))}
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name} is not UTF-8 text (byte {exc.start})") from exc
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        raise InputError(f"{name} is empty")
    if not _is_json(filename, text):
        return text
    too_deep = InputError(f"{name} is JSON nested deeper than {MAX_NESTING} levels")
    try:
        value = json_text.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError:
        raise too_deep from None
    if _nested_too_deeply(value):
        raise too_deep
    return value


def build_task(
    description: str,
    *,
    task_type: str = "general",
    payload: Any = None,
    experts: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
    priority: str | None = None,
    deadline: datetime | str | None = None,
    now: datetime | None = None,
) -> Task:
    """A task from an interface's fields; ``experts`` names the experts to use instead of routing (it replaces any
    ``experts`` the context names). A deadline that has passed already (at ``now``) is refused."""
    data: dict[str, Any] = {"description": description, "type": task_type}
    if _nested_too_deeply(payload):
        raise InputError(f"the input payload is nested deeper than {MAX_NESTING} levels")
    if payload is not None:
        data["input"] = payload
    if context is not None:
        if not isinstance(context, Mapping):
            raise InputError(f"the task context must be a JSON object, not {_json_kind(context)}")
        if _nested_too_deeply(dict(context)):
            raise InputError(f"the task context is nested deeper than {MAX_NESTING} levels")
        data["context"] = dict(context)
    if experts:
        data["context"] = {**data.get("context", {}), "experts": list(experts)}
    if priority is not None:
        data["priority"] = priority
    if deadline is not None:
        data["deadline"] = deadline
    task = Task.from_data(data)
    if task.deadline is not None:
        at = task.deadline if task.deadline.tzinfo else task.deadline.replace(tzinfo=UTC)
        if at <= (now or datetime.now(UTC)):
            raise InputError(f"the deadline {at.isoformat()} has passed already")
    return task


def parse_context(text: str) -> dict[str, Any]:
    """A task context typed by a user (``--context '{"explain": true}'``): a JSON object."""
    try:
        value = json_text.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the task context is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError:
        raise InputError(f"the task context is nested deeper than {MAX_NESTING} levels") from None
    if not isinstance(value, dict):
        raise InputError(f"the task context must be a JSON object, not {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _nested_too_deeply(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether lists/objects in ``value`` nest deeper than ``limit`` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth >= limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _is_sqlite(filename: str, head: bytes) -> bool:
    return filename.lower().endswith(SQLITE_SUFFIXES) or head.startswith(SQLITE_HEADER)


def _is_json(filename: str | None, text: str) -> bool:
    suffix = Path(filename).suffix.lower() if filename else ""
    return suffix == ".json" if suffix else text.lstrip()[:1] in ("{", "[")


def _spool(data: bytes, spool_dir: Path) -> Path:
    path = spool_dir / f"{hashlib.sha256(data).hexdigest()[:32]}.sqlite"
    if not path.exists():
        atomic_write_bytes(path, data)
    return path.resolve()


def _too_large(name: str, max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"{name} is larger than {max_bytes / (1024 * 1024):g} MiB")
