"""JSON text from outside the program (an input file, stdin, an argument, a file in the home, a journal line), read
with ``json.loads``, except that a number with more digits than Python turns into an int
(``sys.get_int_max_str_digits()``, 4300 by default: the guard against quadratic-time conversions) is a
``json.JSONDecodeError`` that says so and where. ``int()`` raises a bare ``ValueError`` there, which the callers'
handlers of bad JSON would let through as a traceback."""

from __future__ import annotations

import json
import re
import sys
from typing import Any


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; every text it cannot read raises ``json.JSONDecodeError`` (or ``RecursionError`` when
    nested deeper than the interpreter's stack, as ``json.loads`` does)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        too_long = long_number_error(text)
        if too_long is None:
            raise
        raise too_long from exc


def long_number_error(text: str | bytes) -> json.JSONDecodeError | None:
    """The error naming the first number in ``text`` too long to read, or ``None`` when there is none."""
    limit = sys.get_int_max_str_digits()
    if limit == 0:  # the interpreter reads numbers of any length
        return None
    document = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    found = re.search(rf"\d{{{limit + 1},}}", document)
    if found is None:
        return None
    digits = found.end() - found.start()
    return json.JSONDecodeError(
        f"a number has {digits} digits, more than the {limit} that can be read", document, found.start()
    )
