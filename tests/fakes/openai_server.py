"""A local server speaking OpenAI's chat-completions API: ``POST /v1/chat/completions`` (SSE when
``"stream": true``, one ``chat.completion`` object otherwise) and ``GET /v1/models``.

Requires ``Authorization: Bearer <api_key>`` when ``api_key`` is set (401 otherwise, with OpenAI's error shape);
unknown models get 404 ``model_not_found``. With ``stream_options.include_usage`` the last event before
``data: [DONE]`` carries ``usage`` and empty ``choices``, as OpenAI sends it.
Knobs: ``token_delay``, ``malformed`` (a non-JSON event mid-stream), ``truncated`` (no ``[DONE]``), ``status``
(answer chat completions with this status and body), ``error_event`` (an error object mid-stream).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from fakes.http_server import FakeServer, JsonHandler, split_tokens

Reply = Callable[[list[dict[str, Any]]], str]


def echo_reply(messages: list[dict[str, Any]]) -> str:
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"You said: {last}"


class OpenAIServer(FakeServer):
    def __init__(
        self, models: tuple[str, ...] = ("local-model",), api_key: str | None = None, reply: Reply = echo_reply
    ) -> None:
        super().__init__(OpenAIHandler)
        self.models = list(models)
        self.api_key = api_key
        self.reply = reply
        self.token_delay = 0.0
        self.malformed = False
        self.truncated = False
        self.status: tuple[int, Any] | None = None
        self.error_event: dict[str, Any] | None = None


def _error(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class OpenAIHandler(JsonHandler):
    server: OpenAIServer

    def _authorised(self) -> bool:
        if self.server.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.server.api_key}":
            return True
        self.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append((self.command, self.path, dict(self.headers), b""))
        if not self._authorised():
            return
        if self.path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "local"} for m in self.server.models
            ]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_json(404, _error(f"Unknown path {self.path}", "invalid_request_error", "unknown_url"))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.read_json() or {}
        if not self._authorised():
            return
        if self.path != "/v1/chat/completions":
            self.send_json(404, _error(f"Unknown path {self.path}", "invalid_request_error", "unknown_url"))
            return
        if self.server.status is not None:
            self._send_status(*self.server.status)
            return
        model = str(body.get("model", ""))
        if model not in self.server.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            self.send_json(404, _error(message, "invalid_request_error", "model_not_found"))
            return
        messages = list(body.get("messages") or [])
        tokens = split_tokens(self.server.reply(messages))
        finish = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        usage = {
            "prompt_tokens": sum(len(str(m.get("content", "")).split()) + 4 for m in messages),
            "completion_tokens": len(tokens),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake123", "created": 1700000000, "model": model, "system_fingerprint": "fp_local"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(tokens)}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            self.send_json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_stream("text/event-stream", self._events(base, tokens, finish, usage if include_usage else None))

    def _send_status(self, status: int, body: Any) -> None:
        if not isinstance(body, str):
            self.send_json(status, body)
            return
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(
        self, base: dict[str, Any], tokens: list[str], finish: str, usage: dict[str, int] | None
    ) -> Iterator[bytes]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
            return f"data: {json.dumps(data)}\n\n".encode()

        yield event(
            [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]
        )
        for index, token in enumerate(tokens):
            if self.server.token_delay:
                time.sleep(self.server.token_delay)
            if self.server.malformed and index == 1:
                yield b"data: {not json\n\n"
                return
            if self.server.error_event is not None and index == 1:
                yield f"data: {json.dumps(self.server.error_event)}\n\n".encode()
                return
            yield event([{"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}])
        if self.server.truncated:
            return
        yield event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        if usage is not None:
            yield event([], usage=usage)
        yield b"data: [DONE]\n\n"
