"""LoopClients: one client per event loop, made on first use, reused, closed in the loop that owns it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from vy_nexus.reasoning.pool import LoopClients


class Client:
    """Records the loop it was made in and the loop that closed it."""

    def __init__(self) -> None:
        self.made_in = asyncio.get_running_loop()
        self.closed_in: asyncio.AbstractEventLoop | None = None


async def close(client: Client) -> None:
    client.closed_in = asyncio.get_running_loop()


def test_one_client_per_loop_reused_until_aclose() -> None:
    clients: LoopClients[Client] = LoopClients(Client, close)

    async def use() -> Client:
        first = clients.get()
        assert clients.get() is first and clients.open == 1
        await clients.aclose()
        await clients.aclose()  # idempotent
        assert first.closed_in is first.made_in and clients.open == 0
        assert clients.get() is not first  # a closed pool makes a new client on its next use
        await clients.aclose()
        return first

    asyncio.run(use())
    assert clients.created == 2


def test_a_client_whose_loop_ended_without_aclose_is_dropped() -> None:
    clients: LoopClients[Client] = LoopClients(Client, close)

    async def get() -> Client:
        return clients.get()

    first = asyncio.run(get())
    second = asyncio.run(get())  # its own loop, its own client
    assert second is not first and first.closed_in is None and clients.open == 1
    asyncio.run(clients.aclose())
    assert second.closed_in is None and clients.open == 0  # its loop is gone: nothing left to close it in


def test_get_outside_a_running_loop_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        LoopClients(Client, close).get()


@pytest.fixture
def other_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_aclose_closes_another_running_loops_client_in_that_loop(other_loop: asyncio.AbstractEventLoop) -> None:
    clients: LoopClients[Client] = LoopClients(Client, close)

    async def get() -> Client:
        return clients.get()

    theirs = asyncio.run_coroutine_threadsafe(get(), other_loop).result(5)

    async def here() -> Client:
        mine = clients.get()
        assert clients.open == 2
        await clients.aclose()
        return mine

    mine = asyncio.run(here())
    assert mine.closed_in is mine.made_in and theirs.closed_in is other_loop and clients.open == 0
