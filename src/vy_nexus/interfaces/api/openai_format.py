"""The OpenAI chat-completions wire format: a conversation in, a task out; a result in, a completion (or chunks)
out. The routing decision rides along in the extension field ``vy_nexus`` (and the ``X-Vy-Nexus-Experts`` header)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vy_nexus.errors import InputError
from vy_nexus.interfaces.output_view import OutputView, Source, cell_text, columns, numeric, plain, records, view
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
    """An expert's output as the assistant's message, in Markdown a chat client shows: the answer in words, then
    what checks it (the terms it asserts that its source lacks, the summary line, static findings, the extractive
    summary), the result rows as a table and the passages it cites. Bookkeeping (statistics, the query spec, the
    model's provenance) stays in the task record (``GET /api/tasks/{id}``, the id in ``vy_nexus.task_id``)."""
    shown = view(output)
    answer = shown.answer if shown.worded else escape(shown.answer)  # a model writes Markdown; a summary line is text
    return "\n\n".join(part for part in (answer, *after_answer(shown)) if part)


def stream_ending(output: Any, streamed: str) -> str:
    """What a stream sends after the tokens it ``streamed``, so that the client ends up with ``answer_text`` once:
    all of it when nothing was streamed; the parts after the answer when the tokens were the answer (but for the
    ``[n]`` citations an expert adds to it); else, after a blank line, all of it."""
    shown = view(output)
    if not streamed.strip():
        return answer_text(output)
    if shown.worded and _uncited(streamed) == _uncited(shown.answer):
        return "".join("\n\n" + part for part in after_answer(shown))
    return "\n\n" + answer_text(output)


def after_answer(shown: OutputView) -> list[str]:
    """The Markdown parts that follow the answer, in order."""
    parts = [_unsupported(shown), escape(shown.summary or "")]
    if shown.findings:
        parts.append("**Findings** (static analysis)\n\n" + table(shown.findings, strong={"severity": BUG}))
    if shown.extractive:
        parts.append(f"**Extractive summary** (sentences taken from the source)\n\n{escape(shown.extractive)}")
    if shown.rows:
        parts.append(table(shown.rows))
    if shown.column_statistics:
        parts.append("**Columns**\n\n" + _mapping_table(shown.column_statistics))
    parts.append(_sources(shown.sources))
    if not shown.worded and not shown.rows:
        parts.extend(_field(key, value) for key, value in shown.other.items())
    return [part for part in parts if part]


BUG = "bug"
SOURCE_CHARS = 200
"""How much of a cited passage the message quotes."""
MARKDOWN_SPECIAL = re.compile(r"[\\`*<|]|(?<!\w)_|_(?!\w)")
"""What makes text markup in Markdown: emphasis (``*``, ``_`` at a word's edge), code, HTML, a table's cell border."""
CITATION_MARK = re.compile(r"\s*\[\d{1,2}\]")


def escape(text: str) -> str:
    """``text`` shown as it is by a Markdown renderer, on one line (a table cell or a list item)."""
    return MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def table(rows: list[dict[str, Any]], *, strong: dict[str, str] | None = None) -> str:
    """``rows`` as a Markdown table, every key a column, numbers right-aligned. ``strong`` names cells to embolden
    (column: value), e.g. a finding's severity ``bug``."""
    names = columns(rows)
    rule = ["---:" if numeric(rows, name) else "---" for name in names]
    lines = [_row(names), _row(rule, escaped=True)]
    for row in rows:
        cells = [_cell(row.get(name)) for name in names]
        for index, name in enumerate(names):
            if strong is not None and strong.get(name) == row.get(name):
                cells[index] = f"**{cells[index]}**"
        lines.append(_row(cells, escaped=True))
    return "\n".join(lines)


def _row(cells: list[str], *, escaped: bool = False) -> str:
    return "| " + " | ".join(cell if escaped else escape(cell) for cell in cells) + " |"


def _cell(value: Any) -> str:
    return escape(" ".join(cell_text(value).split()))


def _unsupported(shown: OutputView) -> str:
    if not shown.unsupported:
        return ""
    terms = ", ".join(f"`{term.replace('`', chr(39))}`" for term in shown.unsupported)
    counted = len(shown.unsupported)
    share = f"{counted} of {shown.checked_terms}" if shown.checked_terms else str(counted)
    noun = "term" if (shown.checked_terms or counted) == 1 else "terms"
    them = "it" if counted == 1 else "them"
    return f"> **Not in the source:** {share} {noun} this answer asserts: {terms}. Check {them} before relying on it."


def _sources(sources: list[Source]) -> str:
    cited = [source for source in sources if source.referenced]
    if not cited:
        return ""
    lines = [f"- [{source.number}] {escape(source.name)}: {escape(_quoted(source.passage))}" for source in cited]
    return "**Sources**\n\n" + "\n".join(lines)


def _quoted(passage: str) -> str:
    flat = " ".join(passage.split())
    return flat if len(flat) <= SOURCE_CHARS else flat[:SOURCE_CHARS].rsplit(" ", 1)[0] + " …"


def _field(key: str, value: Any) -> str:
    """A field no convention covers: a value on its line, text as a paragraph, rows or a mapping of mappings as a
    table, anything else as a JSON block."""
    title = f"**{escape(key.replace('_', ' '))}**"
    if isinstance(value, str) and "\n" in value:
        return f"{title}\n\n{escape(value)}"
    if records(value):
        return f"{title}\n\n{table(value)}"
    if isinstance(value, dict) and value and all(isinstance(item, dict) for item in value.values()):
        return f"{title}\n\n{_mapping_table(value)}"
    if plain(value) or (isinstance(value, list) and all(plain(item) for item in value)):
        return f"{title}: {_cell(value)}"
    return f"{title}\n\n```json\n{json.dumps(value, indent=2, ensure_ascii=False, default=str)}\n```"


def _mapping_table(mapping: dict[str, dict[str, Any]]) -> str:
    """A mapping of mappings (statistics per column) as a table: one row per key, named in the first column."""
    return table([{"": name, **item} for name, item in mapping.items()])


def _uncited(text: str) -> str:
    return " ".join(CITATION_MARK.sub("", text).split())


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
