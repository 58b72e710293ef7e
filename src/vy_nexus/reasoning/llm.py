"""The LLM contract: messages in, streamed text chunks out.

A backend is a tiny class with one method, ``stream(messages, options)``, yielding ``Chunk`` objects (text deltas,
then a last chunk carrying token usage and the finish reason), plus ``aclose()``. Everything callers need on top
(whole responses, token callbacks, time to first token, the overall timeout, cancellation and the ``llm.completed``
event) lives once in ``ReasoningCore`` (see core.py), so backends stay small and interchangeable:

    ReasoningCore ── stream() ──► LLMBackend  (EmbeddedBackend · OllamaBackend · OpenAICompatBackend · test fakes)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from vy_nexus.errors import ReasoningError

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def system(content: str) -> Message:
    return Message("system", content)


def user(content: str) -> Message:
    return Message("user", content)


def assistant(content: str) -> Message:
    return Message("assistant", content)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, as the backend reports them."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Per-call knobs. ``None`` means: use the backend's configured default."""

    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """What a backend yields: a text delta; the last chunk carries ``usage`` and ``finish_reason``."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """A finished call: the whole text, who produced it, token usage and timings."""

    text: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason = "stop"
    duration_ms: float = 0.0
    time_to_first_token_ms: float | None = None

    @property
    def tokens_per_second(self) -> float:
        seconds = self.duration_ms / 1e3
        return self.usage.output_tokens / seconds if seconds > 0 else 0.0

    def describe(self) -> dict[str, object]:
        """The response's provenance, for expert outputs and the CLI."""
        return {
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "finish_reason": self.finish_reason,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One streamed text delta, as handed to token callbacks."""

    text: str
    provider: str
    model: str
    expert_id: str | None = None


TokenCallback = Callable[[TokenEvent], None]


@runtime_checkable
class LLMBackend(Protocol):
    """A language model behind one method. ``provider``/``model`` name it in events and outputs."""

    provider: str
    model: str

    def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        """Yield text deltas, then a final chunk with ``usage`` and ``finish_reason``. Raise ``ReasoningError``
        subclasses naming the problem (server down, model missing, malformed reply)."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and model memory."""
        ...


class BackendUnavailableError(ReasoningError):
    """The backend cannot be reached or loaded (server down, binding missing, model file unreadable)."""


class ModelNotFoundError(ReasoningError):
    """The backend is up but does not have the requested model."""


class ReasoningTimeoutError(ReasoningError):
    """A call ran past its time limit; generation was stopped."""


class MalformedResponseError(ReasoningError):
    """The backend answered with something that does not follow its protocol."""


@contextmanager
def translated_errors(translate: Callable[[Exception], ReasoningError | None]) -> Iterator[None]:
    """Re-raise what a client library raises as the ``ReasoningError`` that ``translate`` names (``None``: as is)."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc
