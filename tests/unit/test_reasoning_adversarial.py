"""The HTTP backends against servers that break the protocol, drop the connection, sit at the wrong address, and
against settings a user can get wrong (a base URL, an API key with a stray character): each failure is a
``ReasoningError`` that names the backend and the cause (exit code 5, through the task flow)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from fakes.http_server import FakeServer, JsonHandler, serving
from fakes.llm import ScriptedBackend, using
from fakes.ollama_server import OllamaServer
from fakes.openai_server import OpenAIServer
from vy_nexus.config import Settings
from vy_nexus.errors import ReasoningError, failure_error
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    GenerationOptions,
    LLMBackend,
    LLMResponse,
    MalformedResponseError,
    ModelNotFoundError,
    user,
)
from vy_nexus.reasoning.ollama import OllamaBackend
from vy_nexus.reasoning.openai_compat import OpenAICompatBackend
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


class RawServer(FakeServer):
    """Answers every request with ``status``, ``content_type`` and the chunks of ``pieces`` (chunked transfer);
    ``hang_up`` closes the connection after the pieces instead of ending the body."""

    def __init__(self) -> None:
        super().__init__(RawHandler)
        self.status = 200
        self.content_type = "text/event-stream"
        self.pieces: list[bytes] = []
        self.hang_up = False


class RawHandler(JsonHandler):
    server: RawServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.read_json()
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in self.server.pieces:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.flush()
        if self.server.hang_up:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def raw() -> Iterator[RawServer]:
    with serving(RawServer()) as running:
        yield running


def chat(backend: LLMBackend, text: str = "hello there") -> LLMResponse:
    core = ReasoningCore(backend, defaults=GenerationOptions(timeout_seconds=10))
    return using(backend, lambda: core.chat([user(text)]))


def openai_at(url: str, **kwargs: object) -> OpenAICompatBackend:
    return OpenAICompatBackend("m", base_url=url, environ=kwargs.pop("environ", {}), **kwargs)  # type: ignore[arg-type]


def sse(data: object) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def chunk_event(**choice: object) -> dict[str, object]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


FINISHED = sse(chunk_event(index=0, delta={}, finish_reason="stop")) + b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (sse([1, 2]), "a JSON list, not an object"),
        (sse({**chunk_event(), "choices": None}), "`choices` is NoneType, not a list"),
        (sse(chunk_event(index=0, delta=5)), "a choice without an object `delta`"),
        (sse(chunk_event(index=0, delta={"content": 7})), "`delta.content` is int, not text"),
    ],
    ids=["array", "choices-null", "delta-number", "content-number"],
)
def test_openai_events_off_the_protocol_are_malformed_responses(raw: RawServer, event: bytes, problem: str) -> None:
    """They used to surface as AttributeError/TypeError from inside the backend: an expert failure of kind "error"
    (exit code 1) that did not say the server was at fault."""
    raw.pieces = [event, FINISHED]
    with pytest.raises(MalformedResponseError, match=rf"/chat/completions\) sent an event that breaks the protocol: "
                                                     rf"{problem}"):  # fmt: skip
        chat(openai_at(f"{raw.url}/v1"))


def test_openai_event_that_is_not_utf8_is_a_malformed_response(raw: RawServer) -> None:
    raw.pieces = [sse(chunk_event(index=0, delta={"content": "hi"})).replace(b"hi", b"h\xff\xfei"), FINISHED]
    with pytest.raises(MalformedResponseError, match=r"sent an event that is not UTF-8 text \(invalid start byte\)"):
        chat(openai_at(f"{raw.url}/v1"))


def test_openai_answer_that_is_not_an_event_stream_names_its_content_type(raw: RawServer) -> None:
    raw.content_type, raw.pieces = "text/html; charset=utf-8", [b"<html><body>Sign in to the network</body></html>"]
    hint = r"the answer was text/html; charset=utf-8, not an event stream: is reasoning_core.base_url an OpenAI-"
    with pytest.raises(MalformedResponseError, match=hint):
        chat(openai_at(f"{raw.url}/v1"))
    raw.content_type, raw.pieces = "text/event-stream", [b"data: [DONE]\n\n"]
    with pytest.raises(MalformedResponseError) as truncated:
        chat(openai_at(f"{raw.url}/v1"))
    assert str(truncated.value).endswith("before any choice had a `finish_reason`")  # a real stream: no hint


def test_connection_dropped_mid_answer_is_not_reported_as_a_server_that_is_down(raw: RawServer) -> None:
    """A server that crashes mid-answer (out of memory) was reported as "cannot reach …: is the server running?"."""
    raw.hang_up = True
    raw.pieces = [sse(chunk_event(index=0, delta={"content": "hi"}))]
    dropped = r"closed the connection in the middle of the answer \(RemoteProtocolError: .*check its log"
    with pytest.raises(BackendUnavailableError, match=dropped) as openai_error:
        chat(openai_at(f"{raw.url}/v1"))
    assert "cannot reach" not in str(openai_error.value)
    raw.content_type = "application/x-ndjson"
    line = {"model": "llama3", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "hi"}}
    raw.pieces = [(json.dumps({**line, "done": False}) + "\n").encode()]
    with pytest.raises(BackendUnavailableError, match=rf"Ollama at {raw.url} closed the connection in the middle of "
                                                      r"the answer \(RemoteProtocolError: "):  # fmt: skip
        chat(OllamaBackend(base_url=raw.url))


def test_api_key_whitespace_is_trimmed_and_unsendable_characters_are_named_without_the_key() -> None:
    """A key with a trailing CR (an env file saved on Windows) or a newline was refused by the HTTP layer and reported
    as "cannot reach …: is the server running?"; a non-ASCII one raised a bare UnicodeEncodeError."""
    secret = "sk-abc123"
    with serving(OpenAIServer(models=("m",), api_key=secret)) as server:
        answer = chat(openai_at(f"{server.url}/v1", environ={"OPENAI_API_KEY": f"  {secret}\r\n"}))
        assert answer.text == "You said: hello there"
        for key, position in ((f"{secret[:3]}\n{secret[3:]}", 4), (f"{secret}é", 10), ("\x7f", 1)):
            with pytest.raises(BackendUnavailableError) as raised:
                chat(openai_at(f"{server.url}/v1", environ={"OPENAI_API_KEY": key}))
            message = str(raised.value)
            assert message == (
                f"the environment variable OPENAI_API_KEY holds a control or non-ASCII character at position "
                f"{position} of the API key, which no HTTP header can carry; set it to the key alone"
            )
            assert secret not in message and "abc" not in message
        assert len(server.json_bodies("/v1/chat/completions")) == 1  # the unsendable keys were never sent


def test_a_404_for_the_path_is_not_a_missing_model() -> None:
    """Ollama's base_url with `/api`, or an OpenAI-compatible one without `/v1`, got "has no model …: run `ollama
    pull …`" / "set reasoning_core.model": a fix that cannot work. A missing model still says so."""
    with serving(OllamaServer()) as ollama_server, serving(OpenAIServer(models=("m",))) as openai_server:
        with pytest.raises(BackendUnavailableError) as ollama_path:
            chat(OllamaBackend(base_url=f"{ollama_server.url}/api"))
        assert str(ollama_path.value) == (
            f"Ollama at {ollama_server.url}/api has nothing at {ollama_server.url}/api/api/chat (404: 404 page not "
            "found); check reasoning_core.base_url (Ollama's is the server alone, without a path: "
            "http://localhost:11434)"
        )
        with pytest.raises(ModelNotFoundError, match="run `ollama pull nope`"):
            chat(OllamaBackend("nope", base_url=ollama_server.url))
        with pytest.raises(BackendUnavailableError) as openai_path:
            chat(openai_at(openai_server.url))
        assert str(openai_path.value).startswith(
            f"the OpenAI-compatible server at {openai_server.url} has nothing at {openai_server.url}/chat/completions"
            " (404: Unknown path /chat/completions); check reasoning_core.base_url (OpenAI-compatible servers "
            "usually serve under /v1"
        )
        with pytest.raises(ModelNotFoundError, match="has no model 'gpt-9'"):
            chat(OpenAICompatBackend("gpt-9", base_url=f"{openai_server.url}/v1", environ={}))
        vllm_style = {"object": "error", "message": "The model `m` does not exist.", "type": "NotFoundError"}
        openai_server.status = (404, vllm_style)  # no `code`: the text says it is the model
        with pytest.raises(ModelNotFoundError):
            chat(openai_at(f"{openai_server.url}/v1"))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "Invalid port: ':1'"),
        ("ftp://127.0.0.1:9/v1", "it does not start with http:// or https://"),
        ("localhost:8080/v1", "it does not start with http:// or https://"),
        ("   ", "it does not start with http:// or https://"),
        ("http:///v1", "it names no host"),
        ("http://127.0.0.1:70000/v1", "the port 70000 is not one from 1 to 65535"),
    ],
    ids=["bracket-open", "ftp", "no-scheme", "blank", "no-host", "port-too-big"],
)
def test_a_base_url_that_is_no_server_address_names_the_setting(url: str, problem: str) -> None:
    """These raised a bare ValueError/InvalidURL, or read as "cannot reach …: is the server running?"."""
    with pytest.raises(BackendUnavailableError) as raised:
        chat(openai_at(url))
    assert str(raised.value) == (
        f"reasoning_core.base_url {url!r} is not a server address ({problem}); write it like http://localhost:8080/v1"
    )


def test_ollama_base_url_checks_keep_its_scheme_less_host_port() -> None:
    with pytest.raises(BackendUnavailableError, match=r"base_url 'http://\[::1' is not a server address"):
        chat(OllamaBackend(base_url="http://[::1"))
    with pytest.raises(BackendUnavailableError, match=r"base_url 'ftp://localhost' is not a server address"):
        chat(OllamaBackend(base_url="ftp://localhost"))
    with serving(OllamaServer()) as server:  # `host:port`, as OLLAMA_HOST is written, still works
        assert chat(OllamaBackend(base_url=server.url.removeprefix("http://"))).text == "You said: hello there"


def test_ollama_error_page_is_kept_short(raw: RawServer) -> None:
    """A proxy's multi-megabyte error page became the whole error message (the OpenAI backend already cut it)."""
    raw.status, raw.content_type = 502, "text/html"
    raw.pieces = [b"<html>\n  <body>Bad   gateway</body>\n</html>" + b"x" * 1_000_000]
    with pytest.raises(ReasoningError) as raised:
        chat(OllamaBackend(base_url=raw.url))
    message = str(raised.value)
    assert message.startswith(f"Ollama at {raw.url} answered 502: <html> <body>Bad gateway</body> </html>xxx")
    assert len(message) < 400 and message.endswith("…")


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_prompt_with_lone_surrogates_is_sent_with_replacement_characters(provider: str) -> None:
    """Bytes that were not UTF-8 in an input (a lone surrogate in Python) made every backend raise a bare
    UnicodeEncodeError before sending anything."""
    with serving(OllamaServer() if provider == "ollama" else OpenAIServer(models=("m",))) as server:
        backend = OllamaBackend(base_url=server.url) if provider == "ollama" else openai_at(f"{server.url}/v1")
        assert chat(backend, text="caf\udce9 au lait").text == "You said: caf\ufffd au lait"


def test_a_protocol_break_fails_the_task_as_a_reasoning_failure(raw: RawServer, settings: Settings) -> None:
    """Through the task flow the failure is of kind "reasoning" (exit code 5, HTTP 502), as README promises."""
    raw.pieces = [sse({**chunk_event(), "choices": None}), FINISHED]
    with VyNexus(settings, llm=openai_at(f"{raw.url}/v1"), observe=False) as system:
        result = system.run(Task(description="hello", context={"expert": "general"}))
    (failure,) = result.results
    assert failure.error_kind == "reasoning" and "breaks the protocol" in (failure.error or "")
    assert failure_error(failure.error_kind).exit_code == 5


def test_scripted_backend_is_unaffected_by_the_replacement(settings: Settings) -> None:
    """The replacement happens only where there is a lone surrogate: other text reaches the backend as it is."""
    backend = ScriptedBackend("ok")
    core = ReasoningCore(backend)
    text = "naïve — 日本語 \x00 tab\t"
    using(backend, lambda: core.chat([user(text)]))
    assert backend.calls[0][0][0].content == text
