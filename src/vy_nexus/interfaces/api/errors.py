"""The one error body: every failure becomes ``{"error", "message", "details"}`` with the status the project's
exception tree names (``VyNexusError.http_status``); under ``/v1`` it takes OpenAI's shape instead, so OpenAI clients
read it. No body carries a traceback, a file path or a key: messages are scrubbed of paths, and unexpected errors say
only ``internal error`` (the server log has the rest). The server's own misconfiguration (``ConfigError``) is a
``500`` naming the problem, logged with what to fix; a governance refusal's next step is worded in the API's terms
(``API_STEPS``); an error a retry cannot help says ``x-should-retry: false``, which OpenAI's clients obey.

A person's browser opening a page gets the same error as an HTML page instead, when the app installs a renderer
for it (``ErrorPage``: the dashboard's); everything else keeps the JSON."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from vy_nexus.errors import ConfigError, GovernanceError, NextStep, SafetyError, VyNexusError

_log = logging.getLogger(__name__)

_PATH = re.compile(r"(?<![\w:/.])(?:~/|\.{1,2}/|/(?!api/|v1/))(?:[\w.@+-]+/)+[\w.@+-]*")
"""A file path, not one of this API's own endpoints (which a message may name: ``POST /api/approvals/ID``)."""
_KEY = re.compile(r"vyn_[0-9a-f]{12}_[A-Za-z0-9_-]+")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error",
                 415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}  # fmt: skip


API_STEPS: dict[NextStep, str] = {
    NextStep.APPROVE_THEN_REPEAT: ". Approve it with POST /api/approvals/{id} (decision: approve), then send this"
    " request again with approval_id {id}",
    NextStep.APPROVE_FIRST: ": approve it first with POST /api/approvals/{id} (decision: approve)",
    NextStep.REPEAT_WITH_APPROVAL: ": send the action's request again with approval_id {id} to use it",
    NextStep.FILE_NEW_REQUEST: "; send the request again without approval_id to file a new request",
    NextStep.FILE_REQUEST_FOR_THIS: "; send this request again without approval_id to file a request for it",
    NextStep.LIST_APPROVALS: ": GET /api/approvals?all=true lists every request",
}
"""A governance refusal's next step in the API's terms (the CLI words the same steps as commands and options).
Each wording starts with what joins it to the error's facts."""

NO_RETRY = {"x-should-retry": "false"}
"""On an error a retry cannot help: OpenAI's (and Anthropic's) clients retry 409, 429 and every 5xx twice unless a
server says otherwise."""


def scrub(message: str) -> str:
    """``message`` without file paths or API keys."""
    return _PATH.sub("<path>", _KEY.sub("<key>", message))


def error_code(exc: VyNexusError) -> str:
    """``GovernanceError`` → ``governance``, ``TaskNotFoundError`` → ``task_not_found``."""
    name = type(exc).__name__.removesuffix("Error") or "vy_nexus"
    return _CAMEL.sub("_", name).lower()


def _details(exc: VyNexusError) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for name in ("task_id", "expert_id", "verdict", "policy", "approval_id", "param", "next_step"):
        value = getattr(exc, name, None)
        if value is not None:
            details[name] = value
    if "next_step" in details:
        details["problem"] = scrub(exc.message)  # the facts without the advice, for a client that words it itself
    return details


def client_message(exc: VyNexusError) -> str:
    """What the error says to an API client: the facts, with a governance refusal's next step in the API's terms,
    and a server misconfiguration said to be the server's."""
    if isinstance(exc, ConfigError):
        return f"the server's configuration is wrong (not the request): {scrub(exc.message)}"
    if isinstance(exc, GovernanceError) and exc.next_step is not None:
        return scrub(exc.message + API_STEPS[exc.next_step].format(id=exc.approval_id))
    return scrub(str(exc))


def retry_headers(status: int, exc: VyNexusError | None = None) -> dict[str, str]:
    """``x-should-retry: false`` where the same request cannot succeed soon: a conflict with the current state
    (``409``: a cancelled task, a decided approval), a shutdown or engaged kill switch (``SafetyError``), the
    server's configuration (``ConfigError``). A throttle (``429`` with ``Retry-After``) and a store or broker outage
    (``503``) keep the client's retries."""
    if status == 409 or isinstance(exc, SafetyError | ConfigError):
        return dict(NO_RETRY)
    return {}


def _status_code(status: int) -> str:
    if status == 413:  # RFC 9110's name; Python 3.11 still says "Request Entity Too Large"
        return "content_too_large"
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


@dataclass(frozen=True)
class ErrorReply:
    """What an error answers, before it is written as JSON (or, for a person's browser, as a page)."""

    status: int
    error: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] | None = None


ErrorPage = Callable[[Request, ErrorReply], Response | None]
"""Renders ``reply`` as a page when ``request`` is a person's page request, else ``None`` (then JSON answers)."""


def error_response(
    request: Request,
    status: int,
    error: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    message = scrub(message)
    if request.url.path.startswith("/v1/"):
        return openai_error(status, error, message, details or {}, headers)
    body = {"error": error, "message": message, "details": details or {}}
    return JSONResponse(body, status_code=status, headers=headers)


def openai_error(
    status: int, error: str, message: str, details: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``. A request that cannot be read or
    honoured is a ``400`` there (never a ``422``), with ``param`` naming the parameter at fault."""
    if status == 422:
        status = 400
    problems = details.get("errors")
    param = details.get("param")
    if isinstance(problems, list) and problems:
        named = [(openai_param(problem["loc"]), problem["msg"]) for problem in problems[:5]]
        param = named[0][0]
        message = scrub("; ".join(f"{at}: {problem}" for at, problem in named))
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": error}}
    return JSONResponse(body, status_code=status, headers=headers)


def openai_param(location: list[str]) -> str:
    """A validation error's location as OpenAI names a parameter: ``["body", "messages", "0", "role"]`` is
    ``messages[0].role``."""
    name = ""
    for part in location[1:] if location[:1] == ["body"] else location:
        name += f"[{part}]" if part.isdigit() else f".{part}" if name else part
    return name or "body"


def respond(request: Request, reply: ErrorReply, page: ErrorPage | None = None) -> Response:
    """``reply`` as ``page`` renders it for this request, else in the one JSON shape."""
    if page is not None:
        try:
            rendered = page(request, reply)
        except Exception:  # an error handler must answer: a page that cannot be drawn falls back to the JSON
            _log.exception("%s %s: the error page could not be rendered", request.method, request.url.path)
            rendered = None
        if rendered is not None:
            return rendered
    return error_response(request, reply.status, reply.error, reply.message, reply.details, reply.headers)


def describe_error(request: Request, exc: Exception) -> ErrorReply:
    """The status, code, scrubbed message, details and headers of the project's errors, HTTP errors, validation
    errors and anything else (``internal error``, logged with its traceback)."""
    if isinstance(exc, VyNexusError):
        status = exc.http_status
        if isinstance(exc, ConfigError):
            _log.error(
                "%s %s: the server's configuration is wrong; fix it and restart the server: %s",
                request.method,
                request.url.path,
                exc,
            )
        elif status >= 500:
            _log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        headers = retry_headers(status, exc)
        if isinstance(exc, GovernanceError) and status == 429:
            headers["Retry-After"] = "1"
        code = "server_config" if isinstance(exc, ConfigError) else error_code(exc)
        return ErrorReply(status, code, client_message(exc), _details(exc), headers or None)
    if isinstance(exc, HTTPException):
        code = _status_code(exc.status_code)
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        message = _body_problem(exc) or message
        return ErrorReply(exc.status_code, code, scrub(message), headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        unread = _unread_body(request, exc)
        if unread is not None:
            return ErrorReply(*unread)
        problems = [
            {
                "loc": [str(part) for part in item.get("loc", ())],
                "msg": str(item.get("msg", "")),
                "type": item.get("type"),
            }
            for item in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems[:5]) or "invalid request"
        return ErrorReply(422, "invalid_request", scrub(summary), {"errors": problems})
    _log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return ErrorReply(500, "internal", "internal error")


def _body_problem(exc: HTTPException) -> str | None:
    """What was wrong with a body FastAPI could not parse: it answers "There was an error parsing the body" for
    anything but invalid JSON, and keeps the reason only as the exception's cause."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 text (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the request body's JSON is nested too deeply"
    return None


def _unread_body(request: Request, exc: RequestValidationError) -> tuple[int, str, str] | None:
    """Status, code and message for a JSON body FastAPI never read. It parses a body only when ``Content-Type``
    says JSON and hands any other body to validation as raw bytes, which then says the body "should be a valid
    dictionary": a JSON object sent as ``text/plain`` or without the header got a message that misled. A body that
    is not JSON at all is a ``400`` (its syntax, like a body that is not UTF-8), not a ``422`` located at a number."""
    for item in exc.errors():
        if item.get("type") == "json_invalid":  # FastAPI's "body.18: JSON decode error", as a 422
            problem = (item.get("ctx") or {}).get("error", "JSON decode error")
            position = tuple(item.get("loc", ()))[1:2]
            at = f" (at character {position[0]})" if position else ""
            return 400, "bad_request", f"the request body is not valid JSON: {problem}{at}"
        if tuple(item.get("loc", ())) != ("body",):
            continue
        if isinstance(item.get("input"), bytes):
            content_type = request.headers.get("content-type", "")[:100]
            sent = f"it was sent as {content_type!r}" if content_type else "it was sent without a Content-Type"
            message = f"the request body must be JSON sent with Content-Type: application/json ({sent})"
            return 415, "unsupported_media_type", message
        if item.get("type") == "missing":
            return 422, "invalid_request", "the request body is empty: send a JSON object"
    return None


def install_error_handlers(app: FastAPI, page: ErrorPage | None = None) -> None:
    """One handler for the project's errors, HTTP errors, validation errors and anything else. ``page`` renders an
    error as a page for the requests it recognises (a person's browser)."""

    async def handle(request: Request, exc: Exception) -> Response:
        return respond(request, describe_error(request, exc), page)

    for kind in (VyNexusError, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, handle)
