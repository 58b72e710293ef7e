"""413 before the body is read: a request that announces (``Content-Length``) more than ``api.max_body_bytes`` is
answered at once; a body sent without a length is counted as it arrives and refused as soon as it passes the limit
(the endpoint reading it gets an ``HTTPException`` that the one error handler renders). ``page`` renders the 413
as a page for a person's browser (a file too large for the dashboard's form), as the error handler does."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vy_nexus.interfaces.api.errors import ErrorPage, ErrorReply, respond


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, page: ErrorPage | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.page = page

    def _message(self, size: str) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            reply = ErrorReply(413, "content_too_large", self._message(length))
            response = respond(Request(scope), reply, self.page)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message(f"more than {self.max_bytes}"))
            return message

        await self.app(scope, counted, send)
