"""An in-process LLM backend for tests: answers with ``reply(messages)`` split into word tokens, records calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from vy_nexus.experts.base import BaseExpert, ExpertContext, ExpertOutput
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import Chunk, GenerationOptions, LLMBackend, Message, Usage
from vy_nexus.tasks import Task

Reply = Callable[[Sequence[Message]], str]


def echo(messages: Sequence[Message]) -> str:
    return f"You said: {messages[-1].content}"


class ScriptedBackend:
    """Deterministic backend. ``delay`` seconds between tokens lets tests exercise timeouts and cancellation."""

    provider = "scripted"

    def __init__(self, reply: Reply | str = echo, *, model: str = "scripted-1", delay: float = 0.0) -> None:
        self.reply: Reply = (lambda _messages: reply) if isinstance(reply, str) else reply
        self.model = model
        self.delay = delay
        self.calls: list[tuple[list[Message], GenerationOptions]] = []
        self.cancelled = 0
        self.closed = False

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        self.calls.append((list(messages), options))
        words = self.reply(messages).split(" ")
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
        finish = "stop"
        if options.max_tokens is not None and len(tokens) > options.max_tokens:
            tokens, finish = tokens[: options.max_tokens], "length"
        try:
            for token in tokens:
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield Chunk(text=token)
        except (GeneratorExit, asyncio.CancelledError):
            self.cancelled += 1
            raise
        prompt = sum(len(m.content.split()) for m in messages)
        yield Chunk(usage=Usage(prompt, len(tokens)), finish_reason="length" if finish == "length" else "stop")

    @property
    def last_prompt(self) -> str:
        return "\n".join(m.content for m in self.calls[-1][0]) if self.calls else ""

    async def aclose(self) -> None:
        self.closed = True


def core_with(backend: ScriptedBackend, *, timeout_seconds: float = 5.0) -> ReasoningCore:
    return ReasoningCore(backend, defaults=GenerationOptions(max_tokens=256, timeout_seconds=timeout_seconds))


def context_with(
    backend: ScriptedBackend | None, settings: Any = None, *, timeout_seconds: float = 5.0
) -> ExpertContext:
    """An expert context whose reasoning core is ``backend`` (``None``: no reasoning core)."""
    core = core_with(backend, timeout_seconds=timeout_seconds) if backend is not None else None
    return ExpertContext(llm=core, settings=settings)


def run_expert(expert: BaseExpert, task: Task, context: ExpertContext) -> ExpertOutput:
    """Initialise ``expert`` with ``context`` and run ``task`` through validate and execute."""

    async def go() -> ExpertOutput:
        await expert.initialize(context)
        expert.validate(task)
        return await expert.execute(task)

    return asyncio.run(go())


T = TypeVar("T")


def using(backend: LLMBackend, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a fresh event loop and close the backend before that loop ends, as VyNexus does."""

    async def go() -> T:
        try:
            return await work()
        finally:
            await backend.aclose()

    return asyncio.run(go())
