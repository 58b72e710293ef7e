"""Request and response bodies of the REST API (pydantic: validated in, documented in ``/openapi.json``)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vy_nexus.errors import InputError
from vy_nexus.execution.aggregation import AGGREGATORS
from vy_nexus.payloads import build_task, parse_payload
from vy_nexus.tasks import MAX_DESCRIPTION_CHARS, Task

Aggregation = Literal["single", "confidence_weighted", "majority_vote", "ensemble"]
Priority = Literal["low", "medium", "high", "critical"]
assert set(AGGREGATORS) == set(Aggregation.__args__)  # type: ignore[attr-defined]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskText(_Body):
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS, description="What you want done.")
    type: str = Field(default="general", min_length=1, max_length=64, description="code, research, data, ...")
    input: Any = Field(default=None, description="The payload: JSON as is; a string is parsed like a file's text.")
    input_base64: str | None = Field(default=None, description="A binary payload (e.g. an SQLite file), base64.")
    filename: str | None = Field(
        default=None, max_length=255, description="The payload's file name: its suffix picks the format."
    )
    top_k: int | None = Field(default=None, ge=1, le=16, description="How many experts to choose.")
    context: dict[str, Any] | None = Field(
        default=None,
        description='Hints for routing and the experts, e.g. {"explain": true} or {"capabilities": [...]}.',
    )
    priority: Priority | None = Field(default=None, description="low, medium (the default), high or critical.")
    deadline: datetime | None = Field(
        default=None, description="Finish by this time (ISO 8601; UTC without a zone): caps every expert's time."
    )

    def to_task(self, spool_dir: Path, experts: list[str] | None = None) -> Task:
        """The task, its payload read by the same rules as the CLI's ``--input``."""
        if self.input is not None and self.input_base64 is not None:
            raise InputError("send either input or input_base64, not both")
        payload = self.input
        if self.input_base64 is not None:
            try:
                raw = base64.b64decode(self.input_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InputError("input_base64 is not valid base64") from exc
            payload = parse_payload(raw, filename=self.filename or "upload", spool_dir=spool_dir)
        elif isinstance(payload, str) and self.filename is not None:
            payload = parse_payload(payload, filename=self.filename)
        return build_task(
            self.description,
            task_type=self.type,
            payload=payload,
            experts=experts,
            context=self.context,
            priority=self.priority,
            deadline=self.deadline,
        )


class TaskSubmission(TaskText):
    experts: list[str] | None = Field(default=None, max_length=16, description="Use these experts, skip routing.")
    aggregation: Aggregation | None = Field(default=None, description="How to combine several experts' results.")


class RouteRequest(TaskSubmission):
    """A task body as ``POST /api/tasks`` takes it, so the same body previews what its submit would run: named
    ``experts`` are the decision (checked like a submit's); ``aggregation`` decides nothing here."""


class TaskAccepted(BaseModel):
    id: str
    state: Literal["queued"] = "queued"
    location: str
    events: str


class ApprovalDecision(_Body):
    decision: Literal["approve", "deny"]
    note: str | None = Field(default=None, max_length=1000)


class StopRequestBody(_Body):
    reason: str = Field(default="requested through the API", min_length=1, max_length=500)
    approval_id: str | None = Field(default=None, max_length=64, description="An approved request for this stop.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    ready: bool
    reason: str
    version: str


class ExpertRemoved(BaseModel):
    id: str
    removed: bool = True


class StopAccepted(BaseModel):
    stopping: bool
    reason: str


class ErrorBody(BaseModel):
    """Every error of the REST API has this shape."""

    error: str = Field(description="What kind: `task_not_found`, `governance`, `invalid_request`, `safety`, ...")
    message: str = Field(description="The problem in words: what was wrong and, where it helps, what to do.")
    details: dict[str, Any] = Field(
        description="`task_id`, `expert_id`, `verdict`, `policy`, `approval_id` where they apply; for a governance"
        " refusal with something to do, `next_step` (`approve_then_repeat`, `approve_first`, `repeat_with_approval`,"
        " `file_new_request`, `file_request_for_this`, `list_approvals`) and `problem` (the message without the"
        " advice); `errors` (each problem's `loc`, `msg`, `type`) for a request that does not validate."
    )


class OpenAIError(BaseModel):
    message: str
    type: str = Field(description="`invalid_request_error`, `authentication_error`, `not_found_error`, ...")
    param: str | None = Field(description="The request parameter at fault, as OpenAI names it: `messages[0].role`.")
    code: str | None = Field(description="`unsupported_parameter`, `unsupported_value`, `model_not_found`, ...")


class OpenAIErrorBody(BaseModel):
    """Every error under ``/v1``: OpenAI's shape, so OpenAI clients raise their usual exceptions."""

    error: OpenAIError


ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorBody,
        "description": "401 no valid key, 403 refused by governance, 404 unknown id, 409 conflicts with the current"
        " state, 413 body too large, 415 not JSON, 422 invalid input, 429 over the rate limit (`Retry-After`)",
    },
    "5XX": {
        "model": ErrorBody,
        "description": "500 internal or the server's configuration (`server_config`), 502 a backend failed, 503"
        " shutting down or unavailable; `x-should-retry: false` where a retry cannot help",
    },
}
"""The error responses every keyed route documents (they replace FastAPI's ``{"detail"}`` validation schema, which
this API never sends)."""

OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": OpenAIErrorBody,
        "description": "400 a request the door cannot read or honour (`param` names it), 401, 404 unknown model, 429",
    },
    "5XX": {
        "model": OpenAIErrorBody,
        "description": "500 the server's configuration, 502 every chosen expert failed, 503 shutting down or"
        " unavailable; `x-should-retry: false` where a retry cannot help",
    },
}
