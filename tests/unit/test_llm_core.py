"""ReasoningCore over an in-process backend: responses, token callbacks, options, timeouts, cancellation, events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import pytest

from fakes.llm import ScriptedBackend, core_with
from vy_nexus.errors import ReasoningError
from vy_nexus.events import Event, EventBus
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import (
    Chunk,
    GenerationOptions,
    LLMResponse,
    Message,
    ModelNotFoundError,
    ReasoningTimeoutError,
    TokenEvent,
    Usage,
    assistant,
    system,
    translated_errors,
    user,
)
from vy_nexus.reasoning.streaming import stream_tokens_to


def make_core(backend: ScriptedBackend, **defaults: object) -> tuple[ReasoningCore, list[Event]]:
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    options = GenerationOptions(**defaults)  # type: ignore[arg-type]
    return ReasoningCore(backend, defaults=options, events=events), seen


def test_chat_collects_tokens_usage_and_timings() -> None:
    core, _ = make_core(ScriptedBackend("The capital is Paris."))
    tokens: list[TokenEvent] = []
    response = asyncio.run(core.chat([user("capital of France?")], on_token=tokens.append, expert_id="general"))
    assert response.text == "The capital is Paris."
    assert [t.text for t in tokens] == ["The", " capital", " is", " Paris."]
    assert {(t.provider, t.model, t.expert_id) for t in tokens} == {("scripted", "scripted-1", "general")}
    assert response.usage == Usage(input_tokens=3, output_tokens=4)
    assert response.finish_reason == "stop"
    assert response.time_to_first_token_ms is not None
    assert 0 <= response.time_to_first_token_ms <= response.duration_ms
    assert response.tokens_per_second > 0
    assert response.describe()["provider"] == "scripted"


def test_generate_puts_the_system_instruction_first() -> None:
    backend = ScriptedBackend("ok")
    core, _ = make_core(backend)
    asyncio.run(core.generate("hello", system="be brief"))
    messages, _ = backend.calls[0]
    assert messages == [system("be brief"), user("hello")]
    assert assistant("x") == Message("assistant", "x")


def test_defaults_fill_unset_options_and_explicit_ones_win() -> None:
    backend = ScriptedBackend("one two three four five")
    core, _ = make_core(backend, temperature=0.3, max_tokens=2, timeout_seconds=5.0, stop=("\n",))
    response = asyncio.run(core.chat([user("count")]))
    assert response.text == "one two" and response.finish_reason == "length"
    assert backend.calls[0][1] == GenerationOptions(temperature=0.3, max_tokens=2, stop=("\n",), timeout_seconds=5.0)
    asyncio.run(core.chat([user("count")], options=GenerationOptions(max_tokens=4, temperature=0.0)))
    assert backend.calls[1][1] == GenerationOptions(temperature=0.0, max_tokens=4, stop=("\n",), timeout_seconds=5.0)


def test_context_token_sink_receives_tokens_from_nested_tasks() -> None:
    core, _ = make_core(ScriptedBackend("a b c"))
    received: list[str] = []

    async def in_a_task() -> LLMResponse:
        return await asyncio.create_task(core.chat([user("x")]))

    with stream_tokens_to(lambda event: received.append(event.text)):
        asyncio.run(in_a_task())
    asyncio.run(core.chat([user("outside the block")]))
    assert received == ["a", " b", " c"]


def test_completed_event_carries_genai_metadata() -> None:
    core, seen = make_core(ScriptedBackend("fine thanks"))
    asyncio.run(core.chat([user("how are you")], expert_id="general"))
    (event,) = [e for e in seen if e.kind == "llm.completed"]
    assert event.expert_id == "general" and event.level == "info"
    meta = event.metadata
    assert meta["provider"] == "scripted" and meta["model"] == "scripted-1" and meta["operation"] == "chat"
    assert meta["input_tokens"] == 3 and meta["output_tokens"] == 2
    assert meta["duration_ms"] >= meta["time_to_first_token_ms"] >= 0
    assert meta["error"] is None


def test_timeout_stops_generation_and_is_reported() -> None:
    backend = ScriptedBackend("slow " * 50, delay=0.05)
    core, seen = make_core(backend, timeout_seconds=0.2)
    with pytest.raises(ReasoningTimeoutError, match=r"did not finish within 0.2 s"):
        asyncio.run(core.chat([user("go")]))
    assert backend.cancelled == 1
    (event,) = [e for e in seen if e.kind == "llm.completed"]
    assert event.level == "error" and event.metadata["error_type"] == "ReasoningTimeoutError"
    assert event.metadata["time_to_first_token_ms"] is not None


def test_cancelling_the_caller_closes_the_backend_stream() -> None:
    backend = ScriptedBackend("word " * 100, delay=0.02)
    core, seen = make_core(backend)

    async def main() -> None:
        job = asyncio.create_task(core.chat([user("go")]))
        await asyncio.sleep(0.1)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(main())
    assert backend.cancelled == 1
    assert [e.metadata["error"] for e in seen if e.kind == "llm.completed"] == ["cancelled"]


def test_stream_yields_text_deltas_and_propagates_errors() -> None:
    core, seen = make_core(ScriptedBackend("x y z"))

    async def collect() -> list[str]:
        return [text async for text in core.stream([user("go")])]

    assert asyncio.run(collect()) == ["x", " y", " z"]
    assert any(e.kind == "llm.completed" for e in seen)

    broken, _ = make_core(Broken())
    with pytest.raises(ReasoningError, match="exploded"):
        asyncio.run(collect_from(broken))


class Broken(ScriptedBackend):
    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        raise ReasoningError("backend exploded")
        yield Chunk()  # pragma: no cover - makes this an async generator


async def collect_from(core: ReasoningCore) -> list[str]:
    return [text async for text in core.stream([user("go")])]


def test_breaking_out_of_a_stream_cancels_generation() -> None:
    backend = ScriptedBackend("w " * 200, delay=0.01)
    core, _ = make_core(backend)

    async def first_two() -> list[str]:
        out = []
        async for text in core.stream([user("go")]):
            out.append(text)
            if len(out) == 2:
                break
        return out

    assert asyncio.run(first_two()) == ["w", " w"]
    assert backend.cancelled == 1


def test_aclose_reaches_the_backend() -> None:
    backend = ScriptedBackend()
    core, _ = make_core(backend)
    asyncio.run(core.aclose())
    assert backend.closed and core.provider == "scripted" and core.model == "scripted-1"


def test_async_with_closes_the_backend_when_the_block_ends() -> None:
    backend = ScriptedBackend()

    async def main() -> str:
        async with ReasoningCore(backend) as core:
            answer = await core.generate("hi")
            assert not backend.closed
        return answer.text

    assert asyncio.run(main()) == "You said: hi" and backend.closed


def test_translated_errors_name_the_fix_and_leave_foreign_exceptions_alone() -> None:
    with pytest.raises(KeyError), translated_errors(lambda exc: None):
        raise KeyError("not a client error")
    with (
        pytest.raises(ModelNotFoundError, match="pull it") as raised,
        translated_errors(lambda exc: ModelNotFoundError("pull it")),
    ):
        raise KeyError("404")
    assert isinstance(raised.value.__cause__, KeyError)


def test_a_callers_token_cap_only_lowers_the_limit_and_ends_with_the_block() -> None:
    from vy_nexus.reasoning.token_limits import cap_tokens, capped

    core = core_with(ScriptedBackend("one two three four five"))
    assert capped(256) == 256
    with cap_tokens(2):
        assert (capped(256), capped(1), capped(None)) == (2, 1, 2)
        response = asyncio.run(core.generate("count"))
        assert response.text == "one two" and response.finish_reason == "length"
        with cap_tokens(None):
            assert capped(256) == 256
    assert asyncio.run(core.generate("count")).finish_reason == "stop"
