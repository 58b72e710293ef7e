"""The OpenAI-compatible backend (the official ``openai`` AsyncOpenAI underneath) against a local server speaking the
chat-completions API, and the official sync client against the same server (streamed and whole answers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import aclosing

import openai
import pytest

from fakes.http_server import serving
from fakes.llm import using
from fakes.openai_server import OpenAIServer
from vy_nexus.errors import ReasoningError
from vy_nexus.events import Event, EventBus
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    GenerationOptions,
    LLMResponse,
    MalformedResponseError,
    ModelNotFoundError,
    ReasoningTimeoutError,
    Usage,
    assistant,
    system,
    user,
)
from vy_nexus.reasoning.openai_compat import OpenAICompatBackend

SECRET = "sk-test-do-not-leak-8f3a9c"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with serving(OpenAIServer(models=("local-model",), api_key=SECRET)) as running:
        yield running


def backend_for(server: OpenAIServer, key: str | None = SECRET, **kwargs: object) -> OpenAICompatBackend:
    environ = {"MY_LLM_KEY": key} if key is not None else {}
    options = {"model": "local-model", **kwargs}
    return OpenAICompatBackend(base_url=f"{server.url}/v1", api_key_env="MY_LLM_KEY", environ=environ, **options)  # type: ignore[arg-type]


def authorization(headers: dict[str, str]) -> str | None:
    return next((value for name, value in headers.items() if name.lower() == "authorization"), None)


def chat(backend: OpenAICompatBackend, events: EventBus | None = None, **options: object) -> LLMResponse:
    core = ReasoningCore(backend, defaults=GenerationOptions(**options), events=events)  # type: ignore[arg-type]
    return using(backend, lambda: core.chat([user("hello there")]))


def test_streams_sse_deltas_and_reads_usage(server: OpenAIServer) -> None:
    response = chat(backend_for(server), temperature=0.2, max_tokens=64, stop=("###",))
    assert response.text == "You said: hello there"
    assert response.usage == Usage(input_tokens=6, output_tokens=4)
    assert response.finish_reason == "stop" and response.model == "local-model" and response.provider == "openai"
    (body,) = server.json_bodies("/v1/chat/completions")
    assert body == {
        "model": "local-model",
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 64,
        "stop": ["###"],
    }
    assert authorization(server.requests[-1][2]) == f"Bearer {SECRET}"


def test_a_conversation_keeps_every_role(server: OpenAIServer) -> None:
    backend = backend_for(server)
    conversation = [system("be brief"), user("hi"), assistant("hello"), user("again")]
    assert using(backend, lambda: ReasoningCore(backend).chat(conversation)).text == "You said: again"
    assert server.json_bodies("/v1/chat/completions")[0]["messages"] == [m.as_dict() for m in conversation]


def test_max_tokens_gives_finish_reason_length(server: OpenAIServer) -> None:
    response = chat(backend_for(server), max_tokens=2)
    assert response.text == "You said:" and response.finish_reason == "length"


def test_missing_or_wrong_key_names_the_environment_variable(server: OpenAIServer) -> None:
    for key in (None, "wrong"):
        with pytest.raises(BackendUnavailableError, match="set the environment variable MY_LLM_KEY") as raised:
            chat(backend_for(server, key=key))
        assert "401" in str(raised.value)
    assert authorization(server.requests[-2][2]) is None  # no key: no header at all


def test_the_api_key_never_appears_in_logs_events_errors_or_reprs(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events = EventBus()
    seen: list[Event] = []
    events.subscribe(seen.append)
    backend = backend_for(server)
    chat(backend, events=events)
    with pytest.raises(ModelNotFoundError) as raised:
        chat(backend_for(server, model="gpt-9"), events=events)
    server.api_key = "another-key"
    with pytest.raises(BackendUnavailableError) as refused:
        chat(backend, events=events)
    texts = [caplog.text, repr(backend), str(raised.value), str(refused.value), *(repr(e) for e in seen)]
    assert len(seen) == 3 and caplog.text  # something was logged and published
    assert not [t for t in texts if SECRET in t]


def test_unknown_model(server: OpenAIServer) -> None:
    with pytest.raises(ModelNotFoundError, match=r"has no model 'gpt-9'.*set reasoning_core.model"):
        chat(backend_for(server, model="gpt-9"))


def test_list_models(server: OpenAIServer) -> None:
    backend = backend_for(server)
    assert using(backend, backend.list_models) == ["local-model"]


def test_without_a_key_no_authorization_header_is_sent(server: OpenAIServer) -> None:
    server.api_key = None
    backend = backend_for(server, key=None)
    assert chat(backend).text == "You said: hello there" and using(backend, backend.list_models) == ["local-model"]
    assert all(authorization(headers) is None for _, _, headers, _ in server.requests)


def test_one_pooled_connection_serves_every_call_until_aclose(server: OpenAIServer) -> None:
    backend = backend_for(server)
    core = ReasoningCore(backend)

    async def calls() -> list[str]:
        texts = [(await core.generate(f"call {n}")).text for n in range(3)]
        first = backend.clients.get()
        assert await backend.list_models() == ["local-model"] and backend.clients.get() is first
        assert server.open_connections == 1  # the kept-alive connection
        return texts

    assert using(backend, calls) == ["You said: call 0", "You said: call 1", "You said: call 2"]
    assert backend.clients.created == 1 and server.connections == 1
    assert backend.clients.open == 0 and server.wait_until_closed()  # aclose closed the client and its connection


def test_leaving_mid_answer_drops_the_connection(server: OpenAIServer) -> None:
    server.token_delay = 0.05
    server.reply = lambda messages: "one two three four five six seven eight nine ten"
    backend = backend_for(server)
    core = ReasoningCore(backend)

    async def first_two() -> list[str]:
        heard: list[str] = []
        async with aclosing(core.stream([user("count")])) as texts:
            async for text in texts:
                heard.append(text)
                if len(heard) == 2:
                    break
        assert await asyncio.to_thread(server.wait_until_closed)  # now, not at aclose: the server stops generating
        return heard

    assert using(backend, first_two) == ["one", " two"]
    assert server.connections == 1


def test_server_down_names_the_url() -> None:
    backend = OpenAICompatBackend("m", base_url="http://127.0.0.1:9/v1", environ={})
    with pytest.raises(
        BackendUnavailableError, match=r"cannot reach .* at http://127.0.0.1:9/v1: is the server running"
    ):
        chat(backend)


def test_timeout(server: OpenAIServer) -> None:
    server.token_delay = 0.3
    with pytest.raises(ReasoningTimeoutError):
        chat(backend_for(server, timeout_seconds=0.1))


def test_malformed_and_truncated_streams(server: OpenAIServer) -> None:
    server.malformed = True
    with pytest.raises(MalformedResponseError, match="not JSON"):
        chat(backend_for(server))
    server.malformed, server.truncated = False, True
    with pytest.raises(MalformedResponseError, match="ended before any choice had a `finish_reason`"):
        chat(backend_for(server))


def test_other_statuses_keep_the_servers_message(server: OpenAIServer) -> None:
    server.status = (429, {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})
    with pytest.raises(ReasoningError, match=r"answered 429: slow down") as raised:
        chat(backend_for(server))
    assert type(raised.value) is ReasoningError
    server.status = (500, "upstream exploded")
    with pytest.raises(ReasoningError, match=r"answered 500: upstream exploded"):
        chat(backend_for(server))
    backend = OpenAICompatBackend("m", environ={})
    assert backend.error(KeyError("x")) is None  # not the client's: raised as it is
    assert backend.base_url == "https://api.openai.com/v1" and "api_key_env='OPENAI_API_KEY'" in repr(backend)


def test_an_error_event_mid_stream(server: OpenAIServer) -> None:
    server.error_event = {"error": {"message": "the model crashed", "type": "server_error", "code": None}}
    with pytest.raises(ReasoningError, match="reported an error mid-stream: the model crashed"):
        chat(backend_for(server))


def test_official_openai_client_reads_the_same_server(server: OpenAIServer) -> None:
    """What openai-python's sync client parses from this server equals what the backend reports."""
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=SECRET, max_retries=0) as client:
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
        whole = client.chat.completions.create(model="local-model", messages=messages)
        assert whole.choices[0].message.content == "You said: hello there" and whole.choices[0].finish_reason == "stop"
        assert whole.usage is not None and (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (6, 4)
        parts = list(
            client.chat.completions.create(
                model="local-model", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        assert "".join(c.delta.content or "" for p in parts for c in p.choices) == "You said: hello there"
        assert parts[-1].usage is not None and parts[-1].usage.completion_tokens == 4
        assert [m.id for m in client.models.list()] == ["local-model"]
        with pytest.raises(openai.NotFoundError) as raised:
            client.chat.completions.create(model="gpt-9", messages=messages)
        assert raised.value.code == "model_not_found"
    ours = chat(backend_for(server))
    assert ours.text == whole.choices[0].message.content and ours.usage == Usage(6, 4)
