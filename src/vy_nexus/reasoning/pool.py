"""One pooled HTTP client per backend and event loop: made on first use, reused by every call, closed by ``aclose``.

An async HTTP client belongs to the event loop it was first used in (its connections are that loop's sockets), so a
backend keeps one client per loop. A server runs one loop and so holds one client for its whole life; the CLI runs
each task in its own ``asyncio.run`` and closes the backend before that loop ends (``VyNexus`` does it). A client
whose loop ended without ``aclose()`` cannot be closed any more; it is dropped and its sockets go with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

ClientT = TypeVar("ClientT")


class LoopClients(Generic[ClientT]):
    """The pooled client of one backend, one per running event loop."""

    def __init__(self, make: Callable[[], ClientT], close: Callable[[ClientT], Awaitable[None]]) -> None:
        self._make = make
        self._close = close
        self._clients: dict[asyncio.AbstractEventLoop, ClientT] = {}
        self.created = 0

    def get(self) -> ClientT:
        """The running loop's client, made now if this loop has none. Call from inside the loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for ended in [other for other in self._clients if other.is_closed()]:
                del self._clients[ended]
            client = self._clients[loop] = self._make()
            self.created += 1
        return client

    @property
    def open(self) -> int:
        """How many clients are held (one per loop that used the backend and has not closed it)."""
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client: the running loop's here, another running loop's in that loop. Idempotent."""
        clients, self._clients = self._clients, {}
        here = asyncio.get_running_loop()
        for loop, client in clients.items():
            if loop is here:
                await self._close(client)
            elif loop.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_coroutine(client), loop))

    async def _close_coroutine(self, client: ClientT) -> None:
        await self._close(client)
