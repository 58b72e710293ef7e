"""Text every database can store: PostgreSQL's text cannot hold NUL and no database driver can encode a lone
surrogate (what Python makes of bytes that are not UTF-8, e.g. in ``sys.argv`` or a JSON ``"\\udcff"`` escape).
Both become U+FFFD in the plain-text columns and in lookups; the task's JSON keeps the exact text, escaped."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (the text itself when it has neither)."""
    if text.isascii():  # the common case, and no surrogate is ASCII
        return text.replace("\x00", "\ufffd")
    return _UNSTORABLE.sub("\ufffd", text)
