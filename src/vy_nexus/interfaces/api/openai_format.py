"""The OpenAI chat-completions wire format: a conversation in, a task out; a result in, a completion (or chunks)
out. The routing decision rides along in the extension field ``vy_nexus`` (and the ``X-Vy-Nexus-Experts`` header)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vy_nexus.errors import InputError
from vy_nexus.payloads import build_task
from vy_nexus.tasks import MAX_DESCRIPTION_CHARS, AggregatedResult, Task

AUTO = "auto"


class RequestParameterError(InputError):
    """A request the door cannot honour or read, naming the parameter at fault (OpenAI's ``param``): a ``400``.
    The subclass names OpenAI's ``code``."""

    http_status = 400

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedParameterError(RequestParameterError):
    """A parameter vy-nexus has no way to honour whatever its value (``tools``, ``stop``, ...)."""


class UnsupportedValueError(RequestParameterError):
    """A value vy-nexus cannot honour (``n`` above 1, a JSON ``response_format``, ``logprobs``, ...)."""


class InvalidValueError(RequestParameterError):
    """A value that is readable but unusable (a task message without text, or longer than a task may be)."""


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
        """The text parts, one per line (a refusal part of an earlier assistant answer counts as its text)."""
        if isinstance(self.content, list):
            return "\n".join(text for text in map(_part_text, self.content) if text)
        return self.content or ""

    def unread_parts(self) -> list[str]:
        """The kinds of the parts vy-nexus cannot read (``image_url``, ``input_audio``, ``file``, ...)."""
        if not isinstance(self.content, list):
            return []
        return sorted({part.type for part in self.content if part.type not in READABLE_PARTS})

    def as_turn(self) -> dict[str, Any]:
        """The message as a turn of ``context.conversation``: role and text, plus how it ties to tool calls."""
        turn: dict[str, Any] = {"role": self.role, "content": self.text()}
        if self.name is not None:
            turn["name"] = self.name
        extra = self.model_extra or {}
        turn.update({key: extra[key] for key in TURN_LINKS if extra.get(key) is not None})
        return turn


READABLE_PARTS = frozenset({"text", "refusal"})
TURN_LINKS = ("tool_calls", "tool_call_id", "function_call")
"""Fields that tie an assistant's tool calls to the tool messages answering them: kept in the conversation."""


def _part_text(part: ContentPart) -> str:
    if part.type == "refusal":
        refusal = (part.model_extra or {}).get("refusal")
        return refusal if isinstance(refusal, str) else ""
    if part.type == "text":
        return part.text or ""
    return ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Only `text`: vy-nexus cannot promise JSON.")


class ChatCompletionRequest(BaseModel):
    """The fields vy-nexus uses or refuses. A parameter it cannot honour (``n`` above 1, tools, a JSON
    ``response_format``, ``logprobs``, ``stop``, audio) is a ``400`` naming it, never ignored. Sampling hints
    (``temperature``, ``top_p``, ``seed``, penalties, ``logit_bias``, ``user``, ``metadata``, ...) are accepted and
    have no effect: the experts and the configured reasoning core decide. ``max_completion_tokens`` (or the older
    ``max_tokens``) caps each reasoning call of the task (it never raises ``reasoning_core.max_tokens``); an answer
    cut at the cap ends with ``finish_reason`` ``length``."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=128, description="`auto` (route) or an expert id.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="Deprecated by OpenAI; as max_completion_tokens.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Tokens per reasoning call, at most.")
    n: int | None = Field(default=None, ge=1, description="Only 1: one choice.")
    tools: list[dict[str, Any]] | None = Field(default=None, description="Refused unless empty: experts call no tools.")
    functions: list[dict[str, Any]] | None = Field(default=None, description="Refused unless empty, as `tools`.")
    tool_choice: str | dict[str, Any] | None = Field(default=None, description="Only `none` or `auto`.")
    function_call: str | dict[str, Any] | None = Field(default=None, description="Only `none` or `auto`.")
    response_format: ResponseFormat | None = None
    logprobs: bool | None = Field(default=None, description="Only false: no log probabilities.")
    top_logprobs: int | None = Field(default=None, ge=0, description="Only 0.")
    stop: str | list[str] | None = Field(default=None, description="Refused unless empty: answers are not cut.")
    modalities: list[str] | None = Field(default=None, description='Only ["text"].')
    audio: dict[str, Any] | None = Field(default=None, description="Refused: no audio output.")
    web_search_options: dict[str, Any] | None = Field(default=None, description="Refused: no web search.")

    def token_cap(self) -> int | None:
        """The smaller of ``max_tokens`` and ``max_completion_tokens``, when either is given."""
        given = [limit for limit in (self.max_tokens, self.max_completion_tokens) if limit is not None]
        return min(given) if given else None

    def refuse_what_cannot_be_honoured(self) -> None:
        """Raise ``RequestParameterError`` naming the first parameter this door cannot honour."""
        for param, error, refused, why in REFUSALS:
            if refused(self):
                raise error(f"{param}: {why}", param=param)

    def to_task(self) -> Task:
        """The last user message is the task's description (the last message when none is from a user); every
        other message travels in order in the task's context: ``conversation`` (the turns before it) and
        ``conversation_after`` (the turns after it, e.g. an assistant prefill or a tool result)."""
        self.refuse_what_cannot_be_honoured()
        index = self._task_index()
        description = self._description(index)
        task = build_task(description, experts=None if self.model == AUTO else [self.model])
        context: dict[str, Any] = {}
        before = [message.as_turn() for message in self.messages[:index]]
        after = [message.as_turn() for message in self.messages[index + 1 :]]
        if before:
            context["conversation"] = before
        if after:
            context["conversation_after"] = after
        return task.with_changes(context={**task.context, **context}) if context else task

    def _task_index(self) -> int:
        users = [index for index, message in enumerate(self.messages) if message.role == "user"]
        return users[-1] if users else len(self.messages) - 1

    def _description(self, index: int) -> str:
        """The text of the message at ``index``, refused when the answer could not be faithful to it: parts vy-nexus
        cannot read, no text at all, or more text than a task takes."""
        message = self.messages[index]
        param = f"messages[{index}].content"
        unread = message.unread_parts()
        if unread:
            raise UnsupportedValueError(
                f"the last {message.role} message has {', '.join(unread)} parts: vy-nexus reads text only"
                " (send the text, or describe what the parts hold)",
                param=param,
            )
        description = message.text().strip()
        if not description:
            raise InvalidValueError(f"the last {message.role} message has no text to work on", param=param)
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidValueError(
                f"the last {message.role} message is {len(description)} characters long; a task takes at most"
                f" {MAX_DESCRIPTION_CHARS}",
                param=param,
            )
        return description

    def prompt_tokens(self) -> int:
        return sum(len(message.text().split()) for message in self.messages)


NO_TOOL_CALLS = (None, "none", "auto")
NO_TOOLS = "vy-nexus experts call no tools"

REFUSALS: tuple[tuple[str, type[RequestParameterError], Callable[[ChatCompletionRequest], bool], str], ...] = (
    ("n", UnsupportedValueError, lambda r: r.n not in (None, 1), "vy-nexus answers with one choice (use 1)"),
    ("tools", UnsupportedParameterError, lambda r: bool(r.tools), NO_TOOLS),
    ("functions", UnsupportedParameterError, lambda r: bool(r.functions), NO_TOOLS),
    ("tool_choice", UnsupportedValueError, lambda r: r.tool_choice not in NO_TOOL_CALLS, NO_TOOLS + " (use none)"),
    ("function_call", UnsupportedValueError, lambda r: r.function_call not in NO_TOOL_CALLS, NO_TOOLS + " (use none)"),
    (
        "response_format",
        UnsupportedValueError,
        lambda r: r.response_format is not None and r.response_format.type != "text",
        "vy-nexus cannot promise a JSON answer (use type text)",
    ),
    ("logprobs", UnsupportedValueError, lambda r: bool(r.logprobs), "vy-nexus returns no log probabilities"),
    ("top_logprobs", UnsupportedValueError, lambda r: bool(r.top_logprobs), "vy-nexus returns no log probabilities"),
    ("stop", UnsupportedParameterError, lambda r: bool(r.stop), "vy-nexus does not cut answers at stop sequences"),
    (
        "modalities",
        UnsupportedValueError,
        lambda r: bool(set(r.modalities or ()) - {"text"}),
        'vy-nexus answers in text only (use ["text"])',
    ),
    ("audio", UnsupportedParameterError, lambda r: r.audio is not None, "vy-nexus answers in text only"),
    (
        "web_search_options",
        UnsupportedParameterError,
        lambda r: r.web_search_options is not None,
        "vy-nexus does not search the web",
    ),
)
"""What the door cannot honour: the parameter, the error naming it (its OpenAI ``code``), when it is refused, why."""


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
