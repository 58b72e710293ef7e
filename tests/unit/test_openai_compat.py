"""The OpenAI-compatible backend against a local server speaking the chat-completions API (SSE streaming)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from fakes.http_server import serving
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


def chat(backend: OpenAICompatBackend, events: EventBus | None = None, **options: object) -> LLMResponse:
    core = ReasoningCore(backend, defaults=GenerationOptions(**options), events=events)  # type: ignore[arg-type]
    return asyncio.run(core.chat([user("hello there")]))


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
    headers = server.requests[-1][2]
    assert headers["Authorization"] == f"Bearer {SECRET}"


def test_max_tokens_gives_finish_reason_length(server: OpenAIServer) -> None:
    response = chat(backend_for(server), max_tokens=2)
    assert response.text == "You said:" and response.finish_reason == "length"


def test_missing_or_wrong_key_names_the_environment_variable(server: OpenAIServer) -> None:
    for key in (None, "wrong"):
        with pytest.raises(BackendUnavailableError, match="set the environment variable MY_LLM_KEY") as raised:
            chat(backend_for(server, key=key))
        assert "401" in str(raised.value)
    assert "Authorization" not in server.requests[-2][2]  # no key: no header at all


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
    assert backend_for(server).list_models() == ["local-model"]


def test_server_down() -> None:
    backend = OpenAICompatBackend("m", base_url="http://127.0.0.1:9/v1", environ={})
    with pytest.raises(BackendUnavailableError, match=r"cannot reach .* is the server running"):
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
    with pytest.raises(MalformedResponseError, match=r"without `data: \[DONE\]`"):
        chat(backend_for(server))


def test_error_objects_and_other_statuses() -> None:
    backend = OpenAICompatBackend("m", environ={})
    assert "answered 500: boom" in str(backend._error(500, '{"error": {"message": "boom"}}'))
    assert type(backend._error(429, "slow down")) is ReasoningError
    assert backend.base_url == "https://api.openai.com/v1" and "api_key_env='OPENAI_API_KEY'" in repr(backend)
