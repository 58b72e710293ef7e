"""Where streamed tokens go.

``stream_tokens_to(callback)`` routes every token generated inside the ``with`` block (in this context and in the
asyncio tasks it starts) to ``callback``; the CLI uses it to print tokens as they arrive. It works through a
``ContextVar``, so concurrent requests (API, tests) never see each other's tokens.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from vy_nexus.reasoning.llm import TokenCallback, TokenEvent

_token_sink: contextvars.ContextVar[TokenCallback | None] = contextvars.ContextVar("vy_nexus_token_sink", default=None)


@contextmanager
def stream_tokens_to(callback: TokenCallback) -> Iterator[None]:
    """Send tokens generated inside this block to ``callback`` (in addition to any per-call ``on_token``)."""
    token = _token_sink.set(callback)
    try:
        yield
    finally:
        _token_sink.reset(token)


def deliver_token(event: TokenEvent, on_token: TokenCallback | None = None) -> None:
    """Hand one token to the per-call callback and the context's sink."""
    if on_token is not None:
        on_token(event)
    sink = _token_sink.get()
    if sink is not None and sink is not on_token:
        sink(event)
