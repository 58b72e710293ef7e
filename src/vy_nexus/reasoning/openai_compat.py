"""OpenAI-compatible backend: streamed chat completions through the official ``openai`` client (``AsyncOpenAI``).

Works with llama.cpp's server, vLLM, LM Studio, Ollama's ``/v1`` and hosted APIs. ``base_url`` includes the version
prefix, as in OpenAI's own clients (``http://localhost:8080/v1``). One ``AsyncOpenAI`` per backend and event loop
(see pool.py), closed by ``aclose()``; the client's own retries are off (the coordinator retries experts).

The API key is read from the environment variable named by ``reasoning_core.api_key_env`` on every request (the
client's key provider); without a key no ``Authorization`` header is sent (local servers). The key never appears in
reprs, messages, logs or events.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Mapping, Sequence

import httpx
import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    Chunk,
    FinishReason,
    GenerationOptions,
    MalformedResponseError,
    Message,
    ModelNotFoundError,
    ReasoningTimeoutError,
    Usage,
    translated_errors,
)
from vy_nexus.reasoning.pool import LoopClients
from vy_nexus.reasoning.server_url import check_base_url
from vy_nexus.tls import openai_context

DEFAULT_BASE_URL = "https://api.openai.com/v1"
START_HINT = "is the server running? check reasoning_core.base_url"


class OpenAICompatBackend:
    """Chat through any server that speaks OpenAI's chat-completions API."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_seconds: float = 120.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_seconds = timeout_seconds
        self._environ = environ
        self.clients: LoopClients[openai.AsyncOpenAI] = LoopClients(self._client, _close)

    def __repr__(self) -> str:
        return (
            f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"
        )

    @property
    def service(self) -> str:
        return f"the OpenAI-compatible server at {self.base_url}"

    def _key(self) -> str:
        """The key, without the whitespace an env file or a copy and paste leaves around it (``"sk-...\\r"``).
        A character no HTTP header can carry is named by position only: the key never appears in a message."""
        key = (self._environ if self._environ is not None else os.environ).get(self.api_key_env, "").strip()
        unsendable = next((index for index, char in enumerate(key) if not " " <= char <= "~"), None)
        if unsendable is not None:
            raise BackendUnavailableError(
                f"the environment variable {self.api_key_env} holds a control or non-ASCII character at position "
                f"{unsendable + 1} of the API key, which no HTTP header can carry; set it to the key alone"
            )
        return key

    async def _provide_key(self) -> str:
        return self._key()

    def _client(self) -> openai.AsyncOpenAI:
        check_base_url(self.base_url, example="http://localhost:8080/v1")
        timeout = openai.Timeout(self.timeout_seconds, connect=min(self.timeout_seconds, 10.0))
        http_client = openai.DefaultAsyncHttpxClient(verify=openai_context())
        return openai.AsyncOpenAI(
            api_key=self._provide_key, base_url=self.base_url, timeout=timeout, max_retries=0, http_client=http_client
        )

    def _auth(self) -> dict[str, str | openai.Omit]:
        """Per-request header override: none with a key (the key provider sends it), an omitted header without."""
        return {} if self._key() else {"Authorization": openai.omit}

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        client = self.clients.get()
        source = f"{self.service} (/chat/completions)"
        with translated_errors(self.error):
            events = await client.chat.completions.create(
                model=self.model,
                messages=[_param(m) for m in messages],
                stream=True,
                stream_options={"include_usage": True},
                temperature=openai.omit if options.temperature is None else options.temperature,
                max_tokens=openai.omit if options.max_tokens is None else options.max_tokens,
                stop=list(options.stop) if options.stop else openai.omit,
                timeout=options.timeout_seconds or self.timeout_seconds,
                extra_headers=self._auth(),
            )
            async with events:
                finish: FinishReason | None = None
                usage: Usage | None = None
                model = self.model
                try:
                    async for event in events:
                        event_model, event_usage, texts, event_finish = _read_event(event, source)
                        model, usage = event_model or model, event_usage or usage
                        for text in texts:
                            yield Chunk(text=text)
                        finish = event_finish or finish
                except openai.APITimeoutError:
                    raise
                except openai.APIConnectionError as exc:  # the answer had begun: the server went away
                    raise BackendUnavailableError(
                        f"{self.service} closed the connection in the middle of the answer "
                        f"({_cause(exc)}): did the server stop or run out of memory? check its log"
                    ) from exc
        if finish is None:
            raise MalformedResponseError(
                f"{source}: the stream ended before any choice had a `finish_reason`{_not_events(events)}"
            )
        yield Chunk(usage=usage, finish_reason=finish, model=model)

    async def list_models(self) -> list[str]:
        """Model ids the server offers (``GET {base_url}/models``)."""
        with translated_errors(self.error):
            return [model.id async for model in self.clients.get().models.list(extra_headers=self._auth())]

    def error(self, exc: BaseException) -> ReasoningError | None:
        """The ``ReasoningError`` naming the fix for what the client raised, or ``None`` for anything else."""
        # openai 2.x lets httpx's errors from the middle of a stream through; 3.x wraps them in APIConnectionError.
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return ReasoningTimeoutError(
                f"{self.service} timed out ({type(exc).__name__}); raise reasoning_core.timeout_seconds"
            )
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            return BackendUnavailableError(f"cannot reach {self.service}: {START_HINT}")
        if isinstance(exc, openai.APIStatusError):
            status, text = exc.status_code, _error_text(exc)
            if status in (401, 403):
                return BackendUnavailableError(
                    f"{self.service} refused the API key ({status}: {text}); "
                    f"set the environment variable {self.api_key_env}"
                )
            if exc.code == "model_not_found" or (status == 404 and "model" in text.lower()):
                return ModelNotFoundError(
                    f"{self.service} has no model '{self.model}' ({status}: {text}); set reasoning_core.model"
                )
            if status == 404:  # a 404 that is not about the model: nothing is served at that address
                return BackendUnavailableError(
                    f"{self.service} has nothing at {exc.request.url} (404: {text}); check reasoning_core.base_url "
                    "(OpenAI-compatible servers usually serve under /v1, e.g. http://localhost:8080/v1)"
                )
            return ReasoningError(f"{self.service} answered {status}: {text}")
        if isinstance(exc, openai.APIError):  # an error event in the middle of the stream
            return ReasoningError(f"{self.service} reported an error mid-stream: {_error_text(exc)}")
        if isinstance(exc, json.JSONDecodeError):
            return MalformedResponseError(f"{self.service} sent an event that is not JSON ({exc})")
        if isinstance(exc, UnicodeDecodeError):
            return MalformedResponseError(f"{self.service} sent an event that is not UTF-8 text ({exc.reason})")
        return None

    async def aclose(self) -> None:
        """Close the pooled clients (their keep-alive connections)."""
        await self.clients.aclose()


def _param(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _read_event(event: object, source: str) -> tuple[str | None, Usage | None, list[str], FinishReason | None]:
    """An event's model, usage, text deltas and finish reason. The client builds events without validating them, so
    a server off the protocol (an array, ``"choices": null``, a delta that is a number) is named here, not left to
    surface as an ``AttributeError`` deep in the caller."""

    def broken(problem: str) -> MalformedResponseError:
        return MalformedResponseError(f"{source} sent an event that breaks the protocol: {problem}")

    if not isinstance(event, ChatCompletionChunk):
        raise broken(f"a JSON {type(event).__name__}, not an object")
    choices = event.choices
    if not isinstance(choices, list):
        raise broken(f"`choices` is {type(choices).__name__}, not a list")
    texts: list[str] = []
    finish: FinishReason | None = None
    for choice in choices:
        delta = getattr(choice, "delta", None)
        content = getattr(delta, "content", None) if delta is not None else None
        if not isinstance(choice, Choice) or not isinstance(delta, ChoiceDelta | None):
            raise broken("a choice without an object `delta`")
        if content is not None and not isinstance(content, str):
            raise broken(f"`delta.content` is {type(content).__name__}, not text")
        if content:
            texts.append(content)
        if choice.finish_reason:
            finish = "length" if choice.finish_reason == "length" else "stop"
    model = event.model if isinstance(event.model, str) and event.model else None
    return model, _usage(event), texts, finish


def _usage(event: ChatCompletionChunk) -> Usage | None:
    usage = event.usage
    if usage is None:
        return None
    prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    return Usage(prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0)


def _not_events(events: openai.AsyncStream[ChatCompletionChunk]) -> str:
    """Why no event came, when the answer was not an event stream at all (an HTML page, a whole JSON answer)."""
    kind = events.response.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() == "text/event-stream":
        return ""
    return (
        f" (the answer was {kind or 'of no Content-Type'}, not an event stream: "
        "is reasoning_core.base_url an OpenAI-compatible API?)"
    )


def _cause(exc: BaseException) -> str:
    """The transport's own words for a broken connection (the client wraps them)."""
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _error_text(exc: openai.APIError) -> str:
    """The human part of an error: OpenAI's ``{"error": {"message": ...}}`` or the raw body."""
    body = exc.body
    if isinstance(body, Mapping):
        body = body.get("message", body)
    return str(body if body is not None else exc.message)[:300]


async def _close(client: openai.AsyncOpenAI) -> None:
    await client.close()
