"""How built-in experts ask the reasoning core (``ExpertContext.llm``) for text, and report who answered."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vy_nexus.errors import ExpertExecutionError, ReasoningError
from vy_nexus.experts.base import ExpertContext

if TYPE_CHECKING:  # the reasoning core loads when an expert first thinks, not when `vy-nexus route` lists experts
    from vy_nexus.reasoning.core import ReasoningCore
    from vy_nexus.reasoning.llm import LLMResponse

FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Thought:
    """The reasoning core's answer, or why there is none (no core configured, or the call failed)."""

    response: LLMResponse | None = None
    error: str | None = None
    exception: ReasoningError | None = None
    """The backend's error, kept so a failure it causes is reported as the backend's (exit code 5)."""

    @property
    def text(self) -> str:
        return self.response.text.strip() if self.response is not None else ""

    def provenance(self) -> dict[str, Any]:
        """Output fields naming the backend that answered, or the reasoning error."""
        if self.response is not None:
            return {"reasoning": self.response.describe()}
        return {"reasoning_error": self.error} if self.error else {}


def reasoning_core(context: ExpertContext) -> ReasoningCore | None:
    """The context's reasoning core; a bare backend (e.g. passed by an embedding application) is wrapped."""
    from vy_nexus.reasoning.core import ReasoningCore
    from vy_nexus.reasoning.llm import LLMBackend

    llm = context.llm
    if isinstance(llm, ReasoningCore) or llm is None:
        return llm
    return ReasoningCore(llm) if isinstance(llm, LLMBackend) else None


async def think(
    context: ExpertContext,
    *,
    expert_id: str,
    system: str,
    prompt: str,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> Thought:
    """Ask the reasoning core; never raises for backend failures (they come back as ``Thought.error``)."""
    core = reasoning_core(context)
    if core is None:
        return Thought(error="no reasoning core is configured")
    from vy_nexus.reasoning.llm import GenerationOptions, Message

    options = GenerationOptions(temperature=temperature, max_tokens=max_tokens)
    try:
        response = await core.chat(
            [Message("system", system), Message("user", prompt)], options=options, expert_id=expert_id
        )
    except ReasoningError as exc:
        return Thought(error=str(exc), exception=exc)
    return Thought(response=response)


def require(thought: Thought, *, expert_id: str, task_id: str, what: str) -> LLMResponse:
    """The response, or an ``ExpertExecutionError`` saying the expert needs the reasoning core for ``what``."""
    if thought.response is not None:
        return thought.response
    raise ExpertExecutionError(
        f"{expert_id} needs the reasoning core to {what}: {thought.error}",
        expert_id=expert_id,
        task_id=task_id,
    ) from thought.exception


def fenced_code(text: str) -> str | None:
    """The first fenced code block of a model's answer (an unclosed fence runs to the end)."""
    match = FENCE.search(text)
    return match.group(1).strip("\n") if match else None


def mentions(text: str, words: tuple[str, ...]) -> bool:
    """Whether ``text`` contains any of ``words`` as whole words (case-insensitive)."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in words)
