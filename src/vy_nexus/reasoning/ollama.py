"""Ollama backend: chat (``/api/chat``) and raw completion (``/api/generate``) through the official ``ollama`` client.

One ``ollama.AsyncClient`` per backend and event loop (see pool.py), closed by ``aclose()``. What this module adds is
the mapping from the client's objects and errors to ``Chunk``s and errors that name the fix: server down →
``ollama serve``, model missing → ``ollama pull <model>``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import httpx
import ollama
import pydantic

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
from vy_nexus.reasoning.server_url import SETTING, check_base_url
from vy_nexus.tls import httpx_context

DEFAULT_BASE_URL = "http://localhost:11434"
DEFAULT_MODEL = "llama3:latest"
START_HINT = "is Ollama running? start it with `ollama serve`"

Part = ollama.ChatResponse | ollama.GenerateResponse


def pull_command(model: str) -> str:
    """The command that installs ``model`` (``llama3:latest`` → ``ollama pull llama3``)."""
    return f"ollama pull {model.removesuffix(':latest')}"


def same_model(a: str, b: str) -> bool:
    """Ollama treats ``llama3`` and ``llama3:latest`` as the same model."""

    def full(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return full(a) == full(b)


class OllamaBackend:
    """Chat with a model served by Ollama. Streams with ``/api/chat``; ``complete`` uses ``/api/generate``."""

    provider = "ollama"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 120.0,
        context_window: int | None = None,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.context_window = context_window
        self.clients: LoopClients[ollama.AsyncClient] = LoopClients(self._client, _close)

    def __repr__(self) -> str:
        return f"OllamaBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _client(self) -> ollama.AsyncClient:
        # The timeout is the limit between two bytes of an answer; ReasoningCore bounds the whole call.
        check_base_url(self.base_url, example=DEFAULT_BASE_URL, scheme_optional=True)
        timeout = httpx.Timeout(self.timeout_seconds, connect=min(self.timeout_seconds, 10.0))
        try:
            return ollama.AsyncClient(host=self.base_url, timeout=timeout, verify=httpx_context())
        except ValueError as exc:  # what the client's own parsing of a scheme-less `host:port` refuses
            raise BackendUnavailableError(
                f"{SETTING} {self.base_url!r} is not a server address ({exc}); write it like {DEFAULT_BASE_URL}"
            ) from None

    def _options(self, options: GenerationOptions) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if options.temperature is not None:
            wire["temperature"] = options.temperature
        if options.max_tokens is not None:
            wire["num_predict"] = options.max_tokens
        if options.stop:
            wire["stop"] = list(options.stop)
        if self.context_window is not None:
            wire["num_ctx"] = self.context_window
        return wire

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        client = self.clients.get()
        wire = [m.as_dict() for m in messages]
        with self._errors("/api/chat"):
            parts = await client.chat(self.model, wire, stream=True, options=self._options(options))
            async for chunk in self._chunks(parts, "/api/chat"):
                yield chunk

    async def complete(
        self, prompt: str, options: GenerationOptions, *, system: str | None = None
    ) -> AsyncGenerator[Chunk, None]:
        """Raw completion through ``/api/generate`` (the model's own template is applied by Ollama)."""
        client = self.clients.get()
        with self._errors("/api/generate"):
            parts = await client.generate(
                self.model, prompt, system=system or "", stream=True, options=self._options(options)
            )
            async for chunk in self._chunks(parts, "/api/generate"):
                yield chunk

    async def _chunks(self, parts: AsyncIterator[Part], path: str) -> AsyncGenerator[Chunk, None]:
        done = answering = False
        try:
            # Read to the end of the body even after `done: true`: a fully read response returns its connection
            # to the pool. Leaving early (the caller stopped listening) drops the connection, which stops generation.
            async for part in parts:
                answering = True
                chunk = self._chunk(part)
                done = done or chunk.finish_reason is not None
                yield chunk
        except httpx.TransportError as exc:
            if not answering or isinstance(exc, httpx.TimeoutException):
                raise
            raise BackendUnavailableError(  # not "cannot reach": it answered, then went away
                f"Ollama at {self.base_url} closed the connection in the middle of the answer "
                f"({type(exc).__name__}: {exc}): did it stop or run out of memory? check its log"
            ) from exc
        finally:
            await parts.aclose()  # type: ignore[attr-defined]
        if not done:
            raise MalformedResponseError(
                f"Ollama {path} at {self.base_url}: the stream ended without a final `done: true`"
            )

    def _chunk(self, part: Part) -> Chunk:
        text = (part.message.content if isinstance(part, ollama.ChatResponse) else part.response) or ""
        if part.done:
            return Chunk(
                text=text,
                usage=Usage(part.prompt_eval_count or 0, part.eval_count or 0),
                finish_reason=_finish(part.done_reason),
                model=part.model or self.model,
            )
        return Chunk(text=text)

    async def list_models(self) -> list[str]:
        """Names of the models the server has (``GET /api/tags``)."""
        with self._errors("/api/tags"):
            listing = await self.clients.get().list()
        return [str(m.model) for m in listing.models]

    async def show(self) -> dict[str, Any]:
        """Details of the configured model (``POST /api/show``)."""
        with self._errors("/api/show"):
            shown = await self.clients.get().show(self.model)
        return shown.model_dump(exclude_none=True)

    async def check(self) -> None:
        """Raise naming the fix unless the server is up and has the configured model."""
        if not any(same_model(name, self.model) for name in await self.list_models()):
            raise ModelNotFoundError(self._missing())

    def _missing(self) -> str:
        return f"Ollama at {self.base_url} has no model '{self.model}': run `{pull_command(self.model)}`"

    def _errors(self, path: str) -> AbstractContextManager[None]:
        return translated_errors(lambda exc: self.error(exc, path))

    def error(self, exc: BaseException, path: str) -> ReasoningError | None:
        """The ``ReasoningError`` naming the fix for what the client raised, or ``None`` for anything else."""
        where = f"Ollama at {self.base_url}"
        if isinstance(exc, ollama.ResponseError):
            text = _brief(exc.error)
            if "model" in text.lower() and (exc.status_code == 404 or "not found" in text):
                return ModelNotFoundError(self._missing())
            if exc.status_code == 404:  # Ollama's "404 page not found": nothing is served at that path
                return BackendUnavailableError(
                    f"{where} has nothing at {self.base_url}{path} (404: {text}); check reasoning_core.base_url "
                    f"(Ollama's is the server alone, without a path: {DEFAULT_BASE_URL})"
                )
            if exc.status_code < 0:  # an `{"error": ...}` object in the middle of a stream
                return ReasoningError(f"{where} reported an error mid-answer: {text}")
            return ReasoningError(f"{where} answered {exc.status_code}: {text}")
        if isinstance(exc, httpx.TimeoutException):
            return ReasoningTimeoutError(
                f"{where} sent nothing for {self.timeout_seconds:g} s ({type(exc).__name__}); "
                "raise reasoning_core.timeout_seconds"
            )
        if isinstance(exc, httpx.TransportError | ConnectionError):
            return BackendUnavailableError(f"cannot reach Ollama at {self.base_url}{path}: {START_HINT}")
        if isinstance(exc, json.JSONDecodeError):
            return MalformedResponseError(f"Ollama {path} at {self.base_url} sent a line that is not JSON: {exc}")
        if isinstance(exc, pydantic.ValidationError):
            problem = exc.errors()[0]
            field = ".".join(str(p) for p in problem["loc"])
            return MalformedResponseError(
                f"Ollama {path} at {self.base_url} sent an object that breaks the protocol: `{field}` {problem['msg']}"
            )
        return None

    async def aclose(self) -> None:
        """Close the pooled clients (their keep-alive connections)."""
        await self.clients.aclose()


async def _close(client: ollama.AsyncClient) -> None:
    await client.close()  # type: ignore[no-untyped-call]


def _brief(error: str, limit: int = 300) -> str:
    """A server's error text as one short line: a proxy's error page can be megabytes of HTML."""
    text = " ".join(error.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finish(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "stop"
