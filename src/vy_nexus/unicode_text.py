"""Text with lone surrogates made readable, and text every database can store.

Python turns bytes that are not UTF-8 into lone surrogates where it must decode without failing (``sys.argv``, a
JSON ``"\\udcff"`` escape, ``errors="surrogateescape"``). No UTF-8 encoder takes them: a hash, an HTTP body, a model's
tokenizer and every database driver raise ``UnicodeEncodeError``. They become U+FFFD, as a UTF-8 decoder with
``errors="replace"`` would have read those bytes. PostgreSQL's text cannot hold NUL either: in the task store's
plain-text columns and lookups it becomes U+FFFD too (the task's JSON keeps the exact text, escaped).
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD; ``text`` itself (the same object) when it has none."""
    if text.isascii() or not _LONE_SURROGATE.search(text):
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (the text itself when it has neither)."""
    if text.isascii():  # the common case, and no surrogate is ASCII
        return text.replace("\x00", "\ufffd")
    return _UNSTORABLE.sub("\ufffd", text)
