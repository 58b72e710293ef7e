"""HTTP plumbing shared by the Ollama and OpenAI-compatible backends: streaming POSTs with errors that name the fix.

Each call opens its own ``httpx.AsyncClient``: the CLI runs every task in a fresh event loop, and a pooled async
client must not outlive its loop. LLM calls are long, so one connection per call costs nothing measurable.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import httpx

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.llm import BackendUnavailableError, ReasoningTimeoutError

ErrorMapper = Callable[[int, str], ReasoningError]


def timeouts(seconds: float) -> httpx.Timeout:
    """Connect quickly; allow ``seconds`` between bytes of a streamed answer."""
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def error_text(body: str) -> str:
    """The human part of an error body: ``{"error": "..."}``, ``{"error": {"message": ...}}`` or the raw text."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return body.strip()[:300]


async def stream_lines(
    url: str,
    payload: Mapping[str, Any],
    *,
    service: str,
    unreachable_hint: str,
    timeout: float,
    on_error: ErrorMapper,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncGenerator[str, None]:
    """POST ``payload`` as JSON and yield the response body line by line.

    Connection failures raise ``BackendUnavailableError`` with ``unreachable_hint``; timeouts raise
    ``ReasoningTimeoutError``; a non-2xx status goes through ``on_error(status, body)``.
    """
    try:
        async with (
            httpx.AsyncClient(timeout=timeouts(timeout), transport=transport) as client,
            client.stream("POST", url, json=dict(payload), headers=dict(headers or {})) as response,
        ):
            if response.status_code >= 400:
                body = (await response.aread()).decode("utf-8", errors="replace")
                raise on_error(response.status_code, body)
            async for line in response.aiter_lines():
                yield line
    except httpx.TimeoutException as exc:
        raise ReasoningTimeoutError(f"{service} at {url} timed out after {timeout:g} s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise BackendUnavailableError(f"cannot reach {service} at {url}: {unreachable_hint}") from exc


def get_json(
    url: str,
    *,
    service: str,
    unreachable_hint: str,
    timeout: float,
    on_error: ErrorMapper,
    method: str = "GET",
    payload: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """A blocking JSON request (model listings, health checks) with the same error mapping."""
    try:
        with httpx.Client(timeout=timeouts(timeout), transport=transport) as client:
            response = client.request(
                method, url, json=dict(payload) if payload is not None else None, headers=dict(headers or {})
            )
    except httpx.TimeoutException as exc:
        raise ReasoningTimeoutError(f"{service} at {url} timed out after {timeout:g} s") from exc
    except httpx.TransportError as exc:
        raise BackendUnavailableError(f"cannot reach {service} at {url}: {unreachable_hint}") from exc
    if response.status_code >= 400:
        raise on_error(response.status_code, response.text)
    try:
        return response.json()
    except ValueError as exc:
        raise ReasoningError(f"{service} at {url} answered with something that is not JSON") from exc
