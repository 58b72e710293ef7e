"""The last parse of ``config.yaml``, kept as JSON in ``<home>/cache/config.yaml.json`` beside the text it came
from: a command whose config file has not changed reads it without importing PyYAML, which is about a tenth of a
CLI command's start-up (issue 16). The cache holds the file's exact text, so it answers only for that text: any
edit, by ``vy-nexus configure`` or by hand, is a miss, parsed and cached again.

Writing the cache is best effort (a read-only home simply never has one), and a damaged cache is a miss."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

CACHE_NAME = "config.yaml.json"
# Bumped when the reader's verdict on some text changes (2: a key given twice is an error), so an entry cached by an
# earlier reader is never taken for the new reader's parse.
READER_VERSION = 2


def cache_path(config_file: Path) -> Path:
    return config_file.parent / "cache" / CACHE_NAME


def cached_parse(config_file: Path, text: str) -> tuple[bool, Any]:
    """(True, the parsed value) when the cache holds ``text``'s parse; (False, None) otherwise."""
    try:
        entry = json.loads(cache_path(config_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, None
    if (
        isinstance(entry, dict)
        and entry.get("reader") == READER_VERSION
        and entry.get("text") == text
        and "value" in entry
    ):
        return True, entry["value"]
    return False, None


def remember_parse(config_file: Path, text: str, value: Any) -> None:
    """Cache ``value`` as the parse of ``text``, when JSON holds it exactly (YAML dates or integer keys do not
    survive the round trip: such a file is parsed every time)."""
    try:
        encoded = json.dumps(
            {"reader": READER_VERSION, "text": text, "value": value}, ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        return
    if json.loads(encoded)["value"] != value:
        return
    from vy_nexus.foundation.atomic import atomic_write_text  # only on a miss: tempfile is not cheap to import

    with contextlib.suppress(OSError):
        atomic_write_text(cache_path(config_file), encoded)
