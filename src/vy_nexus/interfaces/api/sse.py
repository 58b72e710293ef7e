"""Server-Sent Events on the wire: ``event:``/``data:`` frames (FastAPI's encoder), a keep-alive comment when
nothing was sent for a while, so proxies and clients keep the connection open."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event

KEEPALIVE_SECONDS = 15.0


def frame(event: str | None, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, default=str, ensure_ascii=False)
    return format_sse_event(data_str=text, event=event)


async def with_keepalive(frames: AsyncIterator[bytes], every: float = KEEPALIVE_SECONDS) -> AsyncIterator[bytes]:
    iterator = aiter(frames)
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield KEEPALIVE_COMMENT
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def stream(frames: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> EventSourceResponse:
    return EventSourceResponse(
        with_keepalive(frames), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    )
