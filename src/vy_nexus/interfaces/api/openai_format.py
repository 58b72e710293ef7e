"""The OpenAI chat-completions wire format: a conversation in, a task out; a result in, a completion (or chunks)
out. The routing decision rides along in the extension field ``vy_nexus`` (and the ``X-Vy-Nexus-Experts`` header)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vy_nexus.errors import InputError
from vy_nexus.payloads import build_task
from vy_nexus.tasks import MAX_DESCRIPTION_CHARS, AggregatedResult, Task

AUTO = "auto"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type == "text" and part.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields vy-nexus uses; the rest of OpenAI's request (temperature, n, tools, ...) is accepted and ignored:
    the experts and the configured reasoning core decide. ``max_completion_tokens`` (or the older ``max_tokens``)
    caps each reasoning call of the task (it never raises ``reasoning_core.max_tokens``); an answer cut at the cap
    ends with ``finish_reason`` ``length``."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=128, description="`auto` (route) or an expert id.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="Deprecated by OpenAI; as max_completion_tokens.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Tokens per reasoning call, at most.")

    def token_cap(self) -> int | None:
        """The smaller of ``max_tokens`` and ``max_completion_tokens``, when either is given."""
        given = [limit for limit in (self.max_tokens, self.max_completion_tokens) if limit is not None]
        return min(given) if given else None

    def to_task(self) -> Task:
        """The last user message is the task; the turns before it travel in ``context.conversation``."""
        users = [index for index, message in enumerate(self.messages) if message.role == "user"]
        last = users[-1] if users else len(self.messages) - 1
        message = self.messages[last]
        description = message.text().strip()
        if not description:
            parts_given = message.content if isinstance(message.content, list) else []
            unread = sorted({part.type for part in parts_given} - {"text"})
            parts = f" (vy-nexus reads text; it got {', '.join(unread)} parts)" if unread else ""
            raise InputError(f"the last {message.role} message has no text to work on{parts}")
        task = build_task(description[:MAX_DESCRIPTION_CHARS], experts=None if self.model == AUTO else [self.model])
        earlier = [{"role": m.role, "content": m.text()} for m in self.messages[:last]]
        if not earlier:
            return task
        return task.with_changes(context={**task.context, "conversation": earlier})

    def prompt_tokens(self) -> int:
        return sum(len(message.text().split()) for message in self.messages)


def answer_text(output: Any) -> str:
    """An expert's output as the assistant's message: its answer, else its summary with the result as JSON."""
    if isinstance(output, str):
        return output
    if not isinstance(output, dict):
        return json.dumps(output, indent=2, default=str, ensure_ascii=False)
    if isinstance(output.get("answer"), str):
        return str(output["answer"])
    parts: list[str] = []
    summary = output.get("summary")
    if isinstance(summary, str):
        parts.append(summary)
    rest = (
        output["result"]
        if "result" in output
        else {key: value for key, value in output.items() if key not in ("summary", "reasoning")}
    )
    if rest not in ({}, None):
        parts.append("```json\n" + json.dumps(rest, indent=2, default=str, ensure_ascii=False) + "\n```")
    return "\n\n".join(parts)


def routing_extension(result: AggregatedResult) -> dict[str, Any]:
    decision = result.decision
    return {
        "task_id": result.task_id,
        "experts": result.experts,
        "method": result.method,
        "confidence": result.confidence,
        "decision": decision.as_dict() if decision is not None else None,
    }


def finish_reason(result: AggregatedResult) -> str:
    """``length`` when a backend cut an answer at its token limit, else ``stop``."""
    from vy_nexus.reasoning.token_limits import cut_at_token_limit

    return "length" if cut_at_token_limit(result) else "stop"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(request: ChatCompletionRequest, result: AggregatedResult, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.task_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(request.prompt_tokens(), len(content.split())),
        "vy_nexus": routing_extension(result),
    }


def chunk(
    completion_id: str,
    model: str,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        **(extra or {}),
    }
