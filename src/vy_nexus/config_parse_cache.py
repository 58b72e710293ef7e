"""The last parse of ``config.yaml`` and, once it passed validation, the settings it gave, kept as JSON in
``<home>/cache/config.yaml.json`` beside the text they came from: a command whose config file has not changed reads
it without importing PyYAML (about a tenth of a CLI command's start-up) or pydantic (more than half of it), issue 16.
The cache holds the file's exact text, so it answers only for that text: any edit, by ``vy-nexus configure`` or by
hand, is a miss, parsed, validated and cached again. The validated settings also carry the fingerprint of the schema
that validated them (``config_schema.schema_fingerprint``): a vy-nexus whose settings are declared differently
validates the text again.

Writing the cache is best effort (a read-only home simply never has one), and a damaged cache is a miss."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, NamedTuple

CACHE_NAME = "config.yaml.json"
# Bumped when the reader's verdict on some text changes (2: a key given twice is an error) or the entry's layout does
# (3: the validated settings), so an entry cached by an earlier reader is never taken for the new reader's.
READER_VERSION = 3


class CacheEntry(NamedTuple):
    value: Any
    """The parse of the text."""
    settings: dict[str, Any] | None
    """The settings the text gave (``config_schema.to_json``), once validated; else None."""
    schema: str | None
    """The fingerprint of the schema that validated ``settings``."""


def cache_path(config_file: Path) -> Path:
    return config_file.parent / "cache" / CACHE_NAME


def cached_entry(config_file: Path, text: str) -> CacheEntry | None:
    """What the cache holds for ``text``; None when it holds nothing for it."""
    try:
        entry = json.loads(cache_path(config_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (
        isinstance(entry, dict)
        and entry.get("reader") == READER_VERSION
        and entry.get("text") == text
        and "value" in entry
    ):
        return None
    settings, schema = entry.get("settings"), entry.get("schema")
    if isinstance(settings, dict) and isinstance(schema, str):
        return CacheEntry(entry["value"], settings, schema)
    return CacheEntry(entry["value"], None, None)


def remember(
    config_file: Path, text: str, value: Any, settings: dict[str, Any] | None = None, schema: str | None = None
) -> None:
    """Cache ``value`` as the parse of ``text`` and, when given, ``settings`` as what it validated to under
    ``schema``. Nothing is cached unless JSON holds the parse exactly (YAML dates or integer keys do not survive the
    round trip: such a file is parsed and validated every time)."""
    entry: dict[str, Any] = {"reader": READER_VERSION, "text": text, "value": value}
    if settings is not None and schema is not None:
        entry |= {"settings": settings, "schema": schema}
    try:
        encoded = json.dumps(entry, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return
    if json.loads(encoded)["value"] != value:
        return
    from vy_nexus.foundation.atomic import atomic_write_text  # only on a miss: tempfile is not cheap to import

    with contextlib.suppress(OSError):
        atomic_write_text(cache_path(config_file), encoded)
