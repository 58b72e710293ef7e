"""Text with lone surrogates made readable.

Python turns bytes that are not UTF-8 into lone surrogates where it must decode without failing (``sys.argv``, a
JSON ``"\\udcff"`` escape, ``errors="surrogateescape"``). No UTF-8 encoder takes them: a hash, an HTTP body, a model's
tokenizer and every database driver raise ``UnicodeEncodeError``. They become U+FFFD, as a UTF-8 decoder with
``errors="replace"`` would have read those bytes.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD; ``text`` itself (the same object) when it has none."""
    if text.isascii() or not _LONE_SURROGATE.search(text):
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)
