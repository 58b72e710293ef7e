"""The Ollama backend (the official ``ollama`` AsyncClient underneath) against a local server speaking Ollama's API,
and the official sync client against the same server, so the server, and with it these tests, stay faithful to the
real protocol."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import aclosing

import ollama
import pytest

from fakes.http_server import serving
from fakes.llm import using
from fakes.ollama_server import OllamaServer
from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    Chunk,
    GenerationOptions,
    LLMResponse,
    MalformedResponseError,
    ModelNotFoundError,
    ReasoningTimeoutError,
    Usage,
    system,
    user,
)
from vy_nexus.reasoning.ollama import OllamaBackend, pull_command, same_model


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with serving(OllamaServer(models=("llama3:latest", "phi3:mini"))) as running:
        yield running


def chat(backend: OllamaBackend, text: str = "hello there", **options: object) -> tuple[str, list[str], LLMResponse]:
    tokens: list[str] = []
    core = ReasoningCore(backend, defaults=GenerationOptions(**options))  # type: ignore[arg-type]
    response = using(
        backend, lambda: core.chat([system("be nice"), user(text)], on_token=lambda t: tokens.append(t.text))
    )
    return response.text, tokens, response


def test_chat_streams_and_reports_ollama_token_counts(server: OllamaServer) -> None:
    text, tokens, response = chat(OllamaBackend(base_url=server.url), temperature=0.1, max_tokens=50, stop=("##",))
    assert text == "You said: hello there"
    assert tokens == ["You", " said:", " hello", " there"]
    assert response.usage == Usage(input_tokens=12, output_tokens=4)
    assert response.model == "llama3:latest" and response.provider == "ollama"
    (body,) = server.json_bodies("/api/chat")
    assert body["model"] == "llama3:latest" and body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello there"}]
    assert body["options"] == {"temperature": 0.1, "num_predict": 50, "stop": ["##"]}


def test_num_predict_limit_gives_finish_reason_length(server: OllamaServer) -> None:
    text, _, response = chat(OllamaBackend(base_url=server.url, context_window=4096), max_tokens=2)
    assert text == "You said:" and response.finish_reason == "length"
    assert server.json_bodies("/api/chat")[0]["options"]["num_ctx"] == 4096


def test_complete_uses_api_generate(server: OllamaServer) -> None:
    backend = OllamaBackend("phi3:mini", base_url=server.url)

    async def run() -> list[Chunk]:
        return [c async for c in backend.complete("why is the sky blue", GenerationOptions(), system="short")]

    chunks = using(backend, run)
    assert "".join(c.text for c in chunks) == "You said: why is the sky blue"
    assert chunks[-1].usage is not None and chunks[-1].finish_reason == "stop"
    (body,) = server.json_bodies("/api/generate")
    assert body["prompt"] == "why is the sky blue" and body["system"] == "short"


def test_one_pooled_connection_serves_every_call_until_aclose(server: OllamaServer) -> None:
    backend = OllamaBackend("llama3", base_url=server.url)
    core = ReasoningCore(backend)

    async def calls() -> list[str]:
        texts = [(await core.generate(f"call {n}")).text for n in range(3)]
        models = await backend.list_models()
        assert backend.clients.open == 1 and server.open_connections == 1  # the kept-alive connection
        return [*texts, *models]

    assert using(backend, calls) == ["You said: call 0", "You said: call 1", "You said: call 2", "llama3:latest",
                                     "phi3:mini"]  # fmt: skip
    assert backend.clients.created == 1 and server.connections == 1
    assert backend.clients.open == 0 and server.wait_until_closed()  # aclose closed the client and its connection
    using(backend, lambda: core.generate("again"))  # a closed backend opens a new client on its next call
    assert backend.clients.created == 2 and server.connections == 2 and server.wait_until_closed()


def test_leaving_mid_answer_drops_the_connection(server: OllamaServer) -> None:
    server.token_delay = 0.05
    server.reply = lambda messages: "one two three four five six seven eight nine ten"
    backend = OllamaBackend(base_url=server.url)
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


def test_tags_show_and_check(server: OllamaServer) -> None:
    backend = OllamaBackend("llama3", base_url=server.url)
    assert using(backend, backend.list_models) == ["llama3:latest", "phi3:mini"]
    using(backend, backend.check)  # "llama3" is "llama3:latest"
    assert using(backend, backend.show)["details"]["family"] == "llama"
    missing = OllamaBackend("mistral:latest", base_url=server.url)
    with pytest.raises(ModelNotFoundError, match=r"run `ollama pull mistral`"):
        using(missing, missing.check)


def test_missing_model_names_the_pull_command(server: OllamaServer) -> None:
    with pytest.raises(ModelNotFoundError, match=r"has no model 'llama3:8b': run `ollama pull llama3:8b`"):
        chat(OllamaBackend("llama3:8b", base_url=server.url))
    missing = OllamaBackend("llama3:8b", base_url=server.url)
    with pytest.raises(ModelNotFoundError, match=r"run `ollama pull llama3:8b`"):
        using(missing, missing.show)
    assert pull_command("llama3:latest") == "ollama pull llama3"
    assert same_model("llama3", "llama3:latest") and not same_model("llama3:8b", "llama3")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down_names_the_url_and_how_to_start_ollama() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    backend = OllamaBackend(base_url=url)
    with pytest.raises(BackendUnavailableError, match=rf"cannot reach Ollama at {url}/api/chat: is Ollama running\? "
                                                      r"start it with `ollama serve`"):  # fmt: skip
        chat(backend)
    with pytest.raises(BackendUnavailableError, match=rf"{url}/api/tags: .*ollama serve"):
        using(backend, backend.list_models)


def test_slow_server_times_out(server: OllamaServer) -> None:
    server.token_delay = 0.3
    with pytest.raises(ReasoningTimeoutError, match=r"sent nothing for 0.1 s .*raise reasoning_core.timeout_seconds"):
        chat(OllamaBackend(base_url=server.url, timeout_seconds=0.1))


def test_malformed_and_truncated_streams_are_protocol_errors(server: OllamaServer) -> None:
    server.malformed = True
    with pytest.raises(MalformedResponseError, match=r"/api/chat .* sent a line that is not JSON"):
        chat(OllamaBackend(base_url=server.url))
    server.malformed, server.truncated = False, True
    with pytest.raises(MalformedResponseError, match="without a final `done: true`"):
        chat(OllamaBackend(base_url=server.url))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"message": {"role": "assistant", "content": 5}, "done": false}', r"`message.content` Input should be"),
        ('{"model": "llama3", "done": false}', r"`message` Field required"),
        ('{"error": "model crashed"}', "reported an error mid-answer: model crashed"),
    ],
)
def test_objects_that_break_the_protocol(server: OllamaServer, line: str, message: str) -> None:
    server.raw_lines = [line]
    with pytest.raises(ReasoningError, match=message):
        chat(OllamaBackend(base_url=server.url))


def test_other_errors_keep_the_servers_message() -> None:
    backend = OllamaBackend()
    error = backend.error(ollama.ResponseError('{"error": "out of memory"}', 500), "/api/chat")
    assert type(error) is ReasoningError and "answered 500: out of memory" in str(error)
    assert backend.error(KeyError("x"), "/api/chat") is None  # not the client's: raised as it is


def test_official_ollama_client_reads_the_same_server(server: OllamaServer) -> None:
    """What ollama-python's sync client parses from this server (streamed and whole answers) equals what the backend
    reports: same models, same text, same token counts, same error for a missing model."""
    with ollama.Client(host=server.url) as client:
        check_parity(client, server)


def check_parity(client: ollama.Client, server: OllamaServer) -> None:
    backend = OllamaBackend(base_url=server.url)
    assert [m.model for m in client.list().models] == using(backend, backend.list_models)
    parts = list(client.chat(model="llama3", messages=[{"role": "user", "content": "hello there"}], stream=True))
    assert all(p.message.role == "assistant" for p in parts)
    assert "".join(p.message.content or "" for p in parts) == "You said: hello there"
    final = parts[-1]
    assert final.done and final.done_reason == "stop"
    whole = client.chat(model="llama3", messages=[{"role": "user", "content": "hello there"}])
    assert whole.message.content == "You said: hello there" and whole.eval_count == 4
    generated = client.generate(model="phi3:mini", prompt="sky", options={"num_predict": 1})
    assert generated.response == "You" and generated.done_reason == "length" and generated.context
    assert client.show("llama3").details.family == "llama"  # type: ignore[union-attr]
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 404 and "not found" in raised.value.error

    same = list(
        client.chat(
            model="llama3",
            messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello there"}],
            stream=True,
        )
    )
    _, _, ours = chat(backend)
    assert ours.usage == Usage(same[-1].prompt_eval_count or 0, same[-1].eval_count or 0)
