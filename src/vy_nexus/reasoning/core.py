"""``ReasoningCore``: what experts hold as ``context.llm``.

It wraps one ``LLMBackend`` and adds, once for every backend: default options from settings, whole-response calls
(``chat``/``generate``), token callbacks, time to first token, the overall timeout, cancellation (leaving the
``async with``/``await`` closes the backend's stream, which stops generation) and one ``llm.completed`` event per
call with ``{duration_ms, model, provider, input_tokens, output_tokens, time_to_first_token_ms}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import replace

from vy_nexus.errors import ReasoningError
from vy_nexus.events import EventBus
from vy_nexus.observability.signals import publish_llm_completed
from vy_nexus.reasoning.llm import (
    FinishReason,
    GenerationOptions,
    LLMBackend,
    LLMResponse,
    Message,
    ReasoningTimeoutError,
    TokenCallback,
    TokenEvent,
    Usage,
)
from vy_nexus.reasoning.streaming import deliver_token
from vy_nexus.reasoning.token_limits import capped
from vy_nexus.unicode_text import without_lone_surrogates


class ReasoningCore:
    """A backend plus defaults, timing, timeouts and events. Safe to share between experts and tasks."""

    def __init__(
        self,
        backend: LLMBackend,
        *,
        defaults: GenerationOptions | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.backend = backend
        self.defaults = defaults or GenerationOptions()
        self.events = events or EventBus()

    @property
    def provider(self) -> str:
        return self.backend.provider

    @property
    def model(self) -> str:
        return self.backend.model

    def options(self, options: GenerationOptions | None) -> GenerationOptions:
        """``options`` with every unset field taken from the defaults, and ``max_tokens`` lowered to the caller's cap
        (token_limits.py) when there is one."""
        if options is None:
            options = GenerationOptions()
        return replace(
            options,
            temperature=self.defaults.temperature if options.temperature is None else options.temperature,
            max_tokens=capped(self.defaults.max_tokens if options.max_tokens is None else options.max_tokens),
            stop=options.stop or self.defaults.stop,
            timeout_seconds=self.defaults.timeout_seconds
            if options.timeout_seconds is None
            else options.timeout_seconds,
        )

    async def generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        options: GenerationOptions | None = None,
        on_token: TokenCallback | None = None,
        expert_id: str | None = None,
    ) -> LLMResponse:
        """One prompt (optionally with a system instruction) to one response."""
        messages = [Message("system", system)] if system else []
        messages.append(Message("user", prompt))
        return await self.chat(messages, options=options, on_token=on_token, expert_id=expert_id)

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        options: GenerationOptions | None = None,
        on_token: TokenCallback | None = None,
        expert_id: str | None = None,
    ) -> LLMResponse:
        """Run a chat to completion, streaming tokens to ``on_token`` (and the context's token sink)."""
        chosen = self.options(options)
        messages = [_sendable(message) for message in messages]
        started = time.perf_counter()
        first_token_at: float | None = None
        parts: list[str] = []
        usage: Usage | None = None
        finish: FinishReason = "stop"
        model = self.model
        try:
            async with asyncio.timeout(chosen.timeout_seconds):
                async with aclosing(self.backend.stream(messages, chosen)) as chunks:
                    async for chunk in chunks:
                        if chunk.model:
                            model = chunk.model
                        if chunk.text:
                            if first_token_at is None:
                                first_token_at = time.perf_counter()
                            parts.append(chunk.text)
                            deliver_token(TokenEvent(chunk.text, self.provider, model, expert_id), on_token)
                        if chunk.usage is not None:
                            usage = chunk.usage
                        if chunk.finish_reason is not None:
                            finish = chunk.finish_reason
        except TimeoutError:
            error = ReasoningTimeoutError(
                f"{self.provider} model '{model}' did not finish within {chosen.timeout_seconds:g} s "
                "(raise reasoning_core.timeout_seconds or lower reasoning_core.max_tokens)"
            )
            self._publish(started, first_token_at, model, None, expert_id, error)
            raise error from None
        except ReasoningError as exc:
            self._publish(started, first_token_at, model, None, expert_id, exc)
            raise
        except asyncio.CancelledError:
            self._publish(started, first_token_at, model, None, expert_id, ReasoningError("cancelled"))
            raise
        response = LLMResponse(
            text="".join(parts),
            provider=self.provider,
            model=model,
            usage=usage or Usage(output_tokens=len(parts)),
            finish_reason=finish,
            duration_ms=(time.perf_counter() - started) * 1e3,
            time_to_first_token_ms=None if first_token_at is None else (first_token_at - started) * 1e3,
        )
        self._publish(started, first_token_at, model, response, expert_id, None)
        return response

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        options: GenerationOptions | None = None,
        expert_id: str | None = None,
    ) -> AsyncIterator[str]:
        """Yield text deltas as they arrive; the call is timed and reported like ``chat``."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        job = asyncio.create_task(
            self.chat(messages, options=options, on_token=lambda t: queue.put_nowait(t.text), expert_id=expert_id)
        )
        job.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (text := await queue.get()) is not None:
                yield text
            job.result()
        finally:
            if not job.done():
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)

    async def aclose(self) -> None:
        """Release the backend's pooled connections and model memory; call it in the event loop that used it."""
        await self.backend.aclose()

    async def __aenter__(self) -> ReasoningCore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _publish(
        self,
        started: float,
        first_token_at: float | None,
        model: str,
        response: LLMResponse | None,
        expert_id: str | None,
        error: BaseException | None,
    ) -> None:
        publish_llm_completed(
            self.events,
            provider=self.provider,
            model=model,
            duration_ms=(time.perf_counter() - started) * 1e3,
            input_tokens=response.usage.input_tokens if response else None,
            output_tokens=response.usage.output_tokens if response else None,
            error=None if error is None else str(error),
            error_type=None if error is None else type(error).__name__,
            expert_id=expert_id,
            time_to_first_token_ms=None if first_token_at is None else (first_token_at - started) * 1e3,
            finish_reason=response.finish_reason if response else None,
        )


def _sendable(message: Message) -> Message:
    """``message`` with text every backend can encode: a lone surrogate (from bytes that were not UTF-8 in an input)
    makes the HTTP clients and llama.cpp's tokenizer raise ``UnicodeEncodeError`` (unicode_text.py)."""
    text = without_lone_surrogates(message.content)
    return message if text is message.content else Message(message.role, text)
