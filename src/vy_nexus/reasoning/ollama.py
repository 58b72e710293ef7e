"""Ollama backend: a client for Ollama's HTTP API (``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/show``).

Streaming answers are newline-delimited JSON: one object per token batch with ``message.content`` (chat) or
``response`` (generate), then a last object with ``done: true``, ``done_reason`` and the token counts
``prompt_eval_count``/``eval_count``. Errors come back as ``{"error": "..."}`` with a 4xx/5xx status.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.http import error_text, get_json, stream_lines
from vy_nexus.reasoning.llm import (
    Chunk,
    FinishReason,
    GenerationOptions,
    MalformedResponseError,
    Message,
    ModelNotFoundError,
    Usage,
)
from vy_nexus.reasoning.streaming import ndjson_objects

DEFAULT_BASE_URL = "http://localhost:11434"
DEFAULT_MODEL = "llama3:latest"
SERVICE = "Ollama"
START_HINT = "is Ollama running? start it with `ollama serve`"


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
        transport: httpx.AsyncBaseTransport | None = None,
        sync_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.context_window = context_window
        self._transport = transport
        self._sync_transport = sync_transport

    def __repr__(self) -> str:
        return f"OllamaBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _error(self, status: int, body: str) -> ReasoningError:
        text = error_text(body)
        if status == 404 or ("not found" in text and "model" in text):
            return ModelNotFoundError(
                f"Ollama at {self.base_url} has no model '{self.model}': run `{pull_command(self.model)}`"
            )
        return ReasoningError(f"Ollama at {self.base_url} answered {status}: {text}")

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

    def _lines(self, path: str, payload: dict[str, Any], options: GenerationOptions) -> AsyncGenerator[str, None]:
        return stream_lines(
            f"{self.base_url}{path}",
            payload,
            service=SERVICE,
            unreachable_hint=START_HINT,
            timeout=options.timeout_seconds or self.timeout_seconds,
            on_error=self._error,
            transport=self._transport,
        )

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        payload = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
            "options": self._options(options),
        }
        async with aclosing(self._lines("/api/chat", payload, options)) as lines:
            async for chunk in self._chunks(lines, "/api/chat"):
                yield chunk

    async def complete(
        self, prompt: str, options: GenerationOptions, *, system: str | None = None
    ) -> AsyncGenerator[Chunk, None]:
        """Raw completion through ``/api/generate`` (the model's own template is applied by Ollama)."""
        payload: dict[str, Any] = {"model": self.model, "prompt": prompt, "stream": True}
        if system:
            payload["system"] = system
        payload["options"] = self._options(options)
        async with aclosing(self._lines("/api/generate", payload, options)) as lines:
            async for chunk in self._chunks(lines, "/api/generate"):
                yield chunk

    async def _chunks(self, lines: AsyncIterator[str], path: str) -> AsyncGenerator[Chunk, None]:
        source = f"Ollama {path}"
        async with aclosing(ndjson_objects(lines, source=source)) as objects:
            async for data in objects:
                chunk = self._chunk(data, source)
                yield chunk
                if chunk.finish_reason is not None:
                    return
        raise MalformedResponseError(f"{source} stream ended without a final `done: true` object")

    def _chunk(self, data: dict[str, Any], source: str) -> Chunk:
        if "error" in data:
            raise self._error(500, str(data["error"]))
        text = _text_of(data, source)
        if data.get("done") is True:
            return Chunk(
                text=text,
                usage=Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0)),
                finish_reason=_finish(data.get("done_reason")),
                model=str(data.get("model") or self.model),
            )
        return Chunk(text=text)

    def list_models(self) -> list[str]:
        """Names of the models the server has (``GET /api/tags``)."""
        data = self._get("/api/tags")
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise MalformedResponseError(f"Ollama /api/tags at {self.base_url} returned no `models` list")
        return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]

    def show(self) -> dict[str, Any]:
        """Details of the configured model (``POST /api/show``)."""
        data = self._get("/api/show", method="POST", payload={"model": self.model})
        if not isinstance(data, dict):
            raise MalformedResponseError(f"Ollama /api/show at {self.base_url} did not return an object")
        return data

    def check(self) -> None:
        """Raise with the fixing command when the server is down or lacks the model."""
        if not any(same_model(name, self.model) for name in self.list_models()):
            raise ModelNotFoundError(
                f"Ollama at {self.base_url} has no model '{self.model}': run `{pull_command(self.model)}`"
            )

    def _get(self, path: str, *, method: str = "GET", payload: dict[str, Any] | None = None) -> Any:
        return get_json(
            f"{self.base_url}{path}",
            service=SERVICE,
            unreachable_hint=START_HINT,
            timeout=min(self.timeout_seconds, 30.0),
            on_error=self._error,
            method=method,
            payload=payload,
            transport=self._sync_transport,
        )

    async def aclose(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""


def _text_of(data: dict[str, Any], source: str) -> str:
    if "message" in data:
        message = data["message"]
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise MalformedResponseError(f"{source} sent a `message` without string `content`")
        return str(message.get("content", ""))
    if "response" in data:
        if not isinstance(data["response"], str):
            raise MalformedResponseError(f"{source} sent a non-string `response`")
        return data["response"]
    if data.get("done") is True:
        return ""
    raise MalformedResponseError(f"{source} sent an object with neither `message` nor `response`: {str(data)[:120]}")


def _finish(reason: Any) -> FinishReason:
    return "length" if reason == "length" else "stop"
