"""Streaming helpers: where streamed tokens go, and parsers for the two wire formats (NDJSON and SSE).

``stream_tokens_to(callback)`` routes every token generated inside the ``with`` block (in this context and in the
asyncio tasks it starts) to ``callback``; the CLI uses it to print tokens as they arrive. It works through a
``ContextVar``, so concurrent requests (API, tests) never see each other's tokens.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from vy_nexus.reasoning.llm import MalformedResponseError, TokenCallback, TokenEvent

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


def parse_json_line(line: str, *, source: str) -> dict[str, Any]:
    """One NDJSON line as an object, or ``MalformedResponseError`` naming the source."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(f"{source} sent a line that is not JSON: {line[:120]!r}") from exc
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{source} sent JSON that is not an object: {line[:120]!r}")
    return data


async def ndjson_objects(lines: AsyncIterator[str], *, source: str) -> AsyncGenerator[dict[str, Any], None]:
    """Objects of a newline-delimited JSON stream (Ollama's streaming format); blank lines are skipped."""
    async for line in lines:
        if line.strip():
            yield parse_json_line(line, source=source)


async def sse_data(lines: AsyncIterator[str], *, source: str) -> AsyncGenerator[str, None]:
    """The ``data:`` payloads of a server-sent-events stream (OpenAI's streaming format), joined per event.

    Comments (``:``), ``event:``/``id:``/``retry:`` fields and blank keep-alives are skipped. A line that is none of
    these is a protocol error.
    """
    buffer: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            buffer.append(value)
        elif name not in ("event", "id", "retry"):
            raise MalformedResponseError(f"{source} sent a line that is not server-sent events: {line[:120]!r}")
    if buffer:
        yield "\n".join(buffer)
