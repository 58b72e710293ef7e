"""Which requests are a person's browser opening a dashboard page, and what an error says to that person.

A page request (a navigation or a form the browser submits: GET or POST, ``Accept`` naming ``text/html``, a path
under ``/dashboard`` outside its JSON API and the fragments its script fetches) gets HTML: the login redirect, or an
error page in the dashboard's layout. Everything else (the dashboard's own JSON API, the fragments, curl, the API's
clients) keeps the service's one JSON error shape, so the page's script and programs read a status they can act on.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request

from vy_nexus.interfaces.api.errors import ErrorReply

ROOT = "/dashboard"
DATA_PREFIXES = ("/dashboard/api", "/dashboard/fragments")
PAGE_METHODS = ("GET", "POST")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def wants_page(request: Request) -> bool:
    path = request.url.path
    if not _under(path, ROOT) or any(_under(path, prefix) for prefix in DATA_PREFIXES):
        return False
    return request.method in PAGE_METHODS and "text/html" in request.headers.get("accept", "").lower()


def title(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"Error {status}"


def message(request: Request, reply: ErrorReply) -> str:
    """One or two sentences naming the problem: the reply's own (scrubbed) message, made readable where it is
    only an HTTP phrase or a validation error's location."""
    if reply.error == "not_found":  # no route: FastAPI's message is just "Not Found"
        return f"There is no dashboard page at {request.url.path}."
    if reply.error == "method_not_allowed":
        return f"{request.url.path} cannot be opened with {request.method}."
    if reply.error == "internal":
        return "Something went wrong on the server (an internal error); the server's log has the details."
    problems = reply.details.get("errors")
    if reply.error == "invalid_request" and isinstance(problems, list) and problems:
        return "; ".join(_problem(item) for item in problems[:5])
    return reply.message


def _problem(item: object) -> str:
    """``offset: Input should be greater than or equal to 0`` for a validation error at ``query.offset``."""
    if not isinstance(item, dict):
        return str(item)
    location = [str(part) for part in item.get("loc", ()) if part not in ("query", "path", "body")]
    return f"{'.'.join(location) or 'request'}: {item.get('msg', '')}"
