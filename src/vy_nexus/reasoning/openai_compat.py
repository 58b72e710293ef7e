"""OpenAI-compatible backend: ``POST {base_url}/chat/completions`` with ``stream: true`` (server-sent events).

Works with llama.cpp's server, vLLM, LM Studio, Ollama's ``/v1`` and hosted APIs. ``base_url`` includes the version
prefix, as in OpenAI's own clients (``http://localhost:8080/v1``). The API key is read from the environment variable
named by ``reasoning_core.api_key_env`` when a call is made; it is sent only in the ``Authorization`` header and
never appears in reprs, messages, logs or events.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.http import error_text, get_json, stream_lines
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    Chunk,
    FinishReason,
    GenerationOptions,
    MalformedResponseError,
    Message,
    ModelNotFoundError,
    Usage,
)
from vy_nexus.reasoning.streaming import sse_data

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DONE = "[DONE]"


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
        transport: httpx.AsyncBaseTransport | None = None,
        sync_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_seconds = timeout_seconds
        self._environ = environ
        self._transport = transport
        self._sync_transport = sync_transport

    def __repr__(self) -> str:
        return (
            f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"
        )

    @property
    def service(self) -> str:
        return f"the OpenAI-compatible server at {self.base_url}"

    def _headers(self) -> dict[str, str]:
        key = (self._environ if self._environ is not None else os.environ).get(self.api_key_env, "")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _error(self, status: int, body: str) -> ReasoningError:
        text = error_text(body)
        if status in (401, 403):
            return BackendUnavailableError(
                f"{self.service} refused the API key ({status}: {text}); "
                f"set the environment variable {self.api_key_env}"
            )
        if status == 404 or "model_not_found" in body:
            return ModelNotFoundError(
                f"{self.service} has no model '{self.model}' ({status}: {text}); set reasoning_core.model"
            )
        return ReasoningError(f"{self.service} answered {status}: {text}")

    def _payload(self, messages: Sequence[Message], options: GenerationOptions) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if options.temperature is not None:
            payload["temperature"] = options.temperature
        if options.max_tokens is not None:
            payload["max_tokens"] = options.max_tokens
        if options.stop:
            payload["stop"] = list(options.stop)
        return payload

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        source = f"{self.service} (/chat/completions)"
        lines = stream_lines(
            f"{self.base_url}/chat/completions",
            self._payload(messages, options),
            service=self.service,
            unreachable_hint="is the server running? check reasoning_core.base_url",
            timeout=options.timeout_seconds or self.timeout_seconds,
            on_error=self._error,
            headers=self._headers(),
            transport=self._transport,
        )
        async with aclosing(lines), aclosing(sse_data(lines, source=source)) as events:
            async for chunk in self._chunks(events, source):
                yield chunk

    async def _chunks(self, events: AsyncIterator[str], source: str) -> AsyncGenerator[Chunk, None]:
        finish: FinishReason | None = None
        usage: Usage | None = None
        model = self.model
        async for data in events:
            if data.strip() == DONE:
                yield Chunk(usage=usage, finish_reason=finish or "stop", model=model)
                return
            event = _decode(data, source)
            if "error" in event:
                raise ReasoningError(f"{self.service} reported an error mid-stream: {error_text(json.dumps(event))}")
            model = str(event.get("model") or model)
            if isinstance(event.get("usage"), dict):
                usage = Usage(
                    int(event["usage"].get("prompt_tokens") or 0), int(event["usage"].get("completion_tokens") or 0)
                )
            for choice in _choices(event, source):
                delta = choice.get("delta") or {}
                text = delta.get("content") if isinstance(delta, dict) else None
                if text:
                    yield Chunk(text=str(text))
                if choice.get("finish_reason"):
                    finish = "length" if choice["finish_reason"] == "length" else "stop"
        raise MalformedResponseError(f"{source} stream ended without `data: [DONE]`")

    def list_models(self) -> list[str]:
        """Model ids the server offers (``GET {base_url}/models``)."""
        data = get_json(
            f"{self.base_url}/models",
            service=self.service,
            unreachable_hint="is the server running? check reasoning_core.base_url",
            timeout=min(self.timeout_seconds, 30.0),
            on_error=self._error,
            headers=self._headers(),
            transport=self._sync_transport,
        )
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise MalformedResponseError(f"{self.service} /models returned no `data` list")
        return [str(item.get("id")) for item in items if isinstance(item, dict)]

    async def aclose(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""


def _decode(data: str, source: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(f"{source} sent an event that is not JSON: {data[:120]!r}") from exc
    if not isinstance(event, dict):
        raise MalformedResponseError(f"{source} sent an event that is not an object: {data[:120]!r}")
    return event


def _choices(event: dict[str, Any], source: str) -> list[dict[str, Any]]:
    choices = event.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise MalformedResponseError(f"{source} sent `choices` that is not a list of objects")
    return choices
