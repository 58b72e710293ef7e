"""Wire-format parsers (NDJSON, server-sent events) and the stop-sequence scanner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from vy_nexus.reasoning.embedded import StopScanner
from vy_nexus.reasoning.llm import MalformedResponseError
from vy_nexus.reasoning.streaming import ndjson_objects, parse_json_line, sse_data


async def lines_of(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def collect_sse(*lines: str) -> list[str]:
    async def run() -> list[str]:
        return [d async for d in sse_data(lines_of(*lines), source="test")]

    return asyncio.run(run())


def test_sse_joins_data_lines_per_event_and_skips_comments_and_fields() -> None:
    events = collect_sse(": keep-alive", "event: message", "id: 7", "data: {\"a\":", "data: 1}", "", "retry: 5",
                         "data: [DONE]", "")  # fmt: skip
    assert events == ['{"a":\n1}', "[DONE]"]
    assert collect_sse("data:no-space") == ["no-space"]


def test_sse_rejects_lines_that_are_not_events() -> None:
    with pytest.raises(MalformedResponseError, match="not server-sent events"):
        collect_sse("data: 1", "", "<html>oops</html>")


def test_ndjson_objects_skip_blank_lines_and_reject_garbage() -> None:
    async def run(*lines: str) -> list[dict[str, object]]:
        return [o async for o in ndjson_objects(lines_of(*lines), source="Ollama")]

    assert asyncio.run(run('{"a": 1}', "", '{"b": 2}')) == [{"a": 1}, {"b": 2}]
    with pytest.raises(MalformedResponseError, match="Ollama sent a line that is not JSON"):
        asyncio.run(run('{"a": 1}', "{nope"))
    with pytest.raises(MalformedResponseError, match="not an object"):
        parse_json_line("[1, 2]", source="Ollama")


def test_stop_scanner_holds_back_possible_prefixes_and_cuts_at_the_stop() -> None:
    scanner = StopScanner(["<|im_end|>", "\n\n"])
    assert scanner.feed("Hello <|im") == ("Hello ", False)
    assert scanner.feed("_e") == ("", False)
    assert scanner.feed("nd|> trailing") == ("", True)
    assert scanner.flush() == ""


def test_stop_scanner_releases_text_that_turned_out_not_to_stop() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.feed("go ST") == ("go ", False)
    assert scanner.feed("ART now") == ("START now", False)
    assert scanner.feed(" and ST") == (" and ", False)
    assert scanner.flush() == "ST"
    assert StopScanner([]).feed("anything") == ("anything", False)
