"""Task feeds: a feed that ended with nobody watching reads its record from the store only when someone follows."""

from __future__ import annotations

import asyncio
from typing import Any

from vy_nexus.interfaces.api.feeds import FeedItem, TaskFeeds


class Records:
    def __init__(self) -> None:
        self.reads: list[str] = []

    async def __call__(self, task_id: str) -> dict[str, Any]:
        self.reads.append(task_id)
        return {"id": task_id, "state": "succeeded"}


async def collect(feeds: TaskFeeds, task_id: str) -> list[FeedItem]:
    return [item async for item in feeds.follow(task_id)]


def test_an_unwatched_feed_loads_its_record_on_the_first_late_read_only() -> None:
    async def scenario() -> None:
        records = Records()
        feeds = TaskFeeds(asyncio.get_running_loop(), records)
        feeds.open("t1")
        assert not feeds.watched("t1")
        feeds.finish("t1", None)
        assert records.reads == []  # nobody asked: no read
        first = await collect(feeds, "t1")
        second = await collect(feeds, "t1")
        assert [item.event for item in first] == ["state", "state", "result"]
        assert first[-1].data == {"id": "t1", "state": "succeeded"}
        assert [item.event for item in second] == [item.event for item in first]
        assert records.reads == ["t1"]

    asyncio.run(scenario())


def test_a_reader_that_arrives_as_the_task_ends_unwatched_still_gets_the_result() -> None:
    async def scenario() -> None:
        records = Records()
        feeds = TaskFeeds(asyncio.get_running_loop(), records)
        feeds.open("t2")
        reader = asyncio.create_task(collect(feeds, "t2"))
        await asyncio.sleep(0)  # the reader is listening now
        assert feeds.watched("t2")
        feeds.finish("t2", None)  # as if the watched() check had run just before the reader came
        items = await reader
        assert [item.event for item in items][-2:] == ["state", "result"]
        assert items[-2].data == {"state": "succeeded"}

    asyncio.run(scenario())


def test_a_watched_feed_gets_the_record_it_is_given() -> None:
    async def scenario() -> None:
        records = Records()
        feeds = TaskFeeds(asyncio.get_running_loop(), records)
        feeds.open("t3")
        reader = asyncio.create_task(collect(feeds, "t3"))
        await asyncio.sleep(0)
        feeds.finish("t3", {"id": "t3", "state": "failed"})
        items = await reader
        assert items[-1].data == {"id": "t3", "state": "failed"}
        assert records.reads == []

    asyncio.run(scenario())


def test_only_the_newest_finished_feeds_are_kept() -> None:
    async def scenario() -> None:
        feeds = TaskFeeds(asyncio.get_running_loop(), Records(), keep_finished=2)
        for number in range(4):
            feeds.open(f"t{number}")
        feeds.open("running")
        for number in range(4):
            feeds.finish(f"t{number}", {"state": "succeeded"})
        assert [f"t{n}" in feeds for n in range(4)] == [False, False, True, True]
        assert "running" in feeds  # an open feed is never dropped

    asyncio.run(scenario())
