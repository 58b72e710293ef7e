"""A caller's cap on the tokens each reasoning call of a task may generate (the OpenAI door's ``max_tokens``), and
which answers a backend cut at its limit.

``cap_tokens(n)`` applies to every reasoning call made inside the ``with`` block, in this context and in the asyncio
tasks and worker threads (``asyncio.to_thread``) it starts: a ``ContextVar``, like the token sink in streaming.py,
so concurrent requests never see each other's caps. A cap only lowers the limit an expert or
``reasoning_core.max_tokens`` chose, never raises it: that limit is the operator's. It reaches experts that run in
this process; a Celery worker uses its own ``reasoning_core.max_tokens``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vy_nexus.tasks import AggregatedResult

_cap: contextvars.ContextVar[int | None] = contextvars.ContextVar("vy_nexus_token_cap", default=None)


@contextmanager
def cap_tokens(limit: int | None) -> Iterator[None]:
    """Reasoning calls inside this block generate at most ``limit`` tokens each (``None``: no cap)."""
    token = _cap.set(limit)
    try:
        yield
    finally:
        _cap.reset(token)


def capped(max_tokens: int | None) -> int | None:
    """``max_tokens`` lowered to the cap of the current context, if there is one."""
    cap = _cap.get()
    if cap is None:
        return max_tokens
    return cap if max_tokens is None else min(max_tokens, cap)


def cut_at_token_limit(result: AggregatedResult) -> list[tuple[str, Any]]:
    """(expert id, tokens generated) for each successful answer whose backend stopped at the token limit
    (``finish_reason`` ``length`` in the output's ``reasoning`` report)."""
    cut = []
    for item in result.results:
        output: Any = item.output
        reasoning = output.get("reasoning") if isinstance(output, dict) else None
        if item.ok and isinstance(reasoning, dict) and reasoning.get("finish_reason") == "length":
            cut.append((item.expert_id, reasoning.get("output_tokens")))
    return cut
