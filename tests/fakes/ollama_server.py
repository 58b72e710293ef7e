"""A local server speaking Ollama's HTTP API as documented in ollama/docs/api.md.

Endpoints: ``GET /api/tags``, ``POST /api/show``, ``POST /api/chat`` and ``POST /api/generate`` (streaming NDJSON by
default, one JSON object when ``"stream": false``), ``GET /api/version``. Unknown models get Ollama's 404
``{"error": "model \"x\" not found, try pulling it first"}``. The "model" answers with ``reply(messages)``.
Knobs for failure paths: ``token_delay`` (seconds between streamed objects), ``malformed`` (a non-JSON line
mid-stream), ``truncated`` (the stream ends without ``done: true``), ``raw_lines`` (stream these lines instead).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fakes.http_server import FakeServer, JsonHandler, split_tokens

Reply = Callable[[list[dict[str, Any]]], str]


def echo_reply(messages: list[dict[str, Any]]) -> str:
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"You said: {last}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _model_entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2024-05-01T10:00:00.123456789Z",
        "size": 4661224676,
        "digest": "365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_0",
        },
    }


class OllamaServer(FakeServer):
    def __init__(self, models: tuple[str, ...] = ("llama3:latest",), reply: Reply = echo_reply) -> None:
        super().__init__(OllamaHandler)
        self.models = list(models)
        self.reply = reply
        self.token_delay = 0.0
        self.malformed = False
        self.truncated = False
        self.raw_lines: list[str] | None = None

    def resolve(self, name: str) -> str | None:
        full = name if ":" in name else f"{name}:latest"
        return full if full in self.models else None


class OllamaHandler(JsonHandler):
    server: OllamaServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append((self.command, self.path, dict(self.headers), b""))
        if self.path == "/api/tags":
            self.send_json(200, {"models": [_model_entry(m) for m in self.server.models]})
        elif self.path == "/api/version":
            self.send_json(200, {"version": "0.5.7"})
        else:
            self.send_json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.read_json() or {}
        name = str(body.get("model", ""))
        if self.path not in ("/api/chat", "/api/generate", "/api/show"):
            self.send_json(404, {"error": "404 page not found"})
            return
        model = self.server.resolve(name)
        if model is None:
            self.send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        if self.path == "/api/show":
            self.send_json(200, self._show(model))
            return
        if self.path == "/api/chat":
            messages = list(body.get("messages") or [])
        else:
            messages = [{"role": "user", "content": str(body.get("prompt", ""))}]
            if body.get("system"):
                messages.insert(0, {"role": "system", "content": str(body["system"])})
        limit = (body.get("options") or {}).get("num_predict")
        tokens = split_tokens(self.server.reply(messages))
        done_reason = "stop"
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
        final = {
            "done": True,
            "done_reason": done_reason,
            "total_duration": 5_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 1_000_000,
            "eval_count": len(tokens),
            "eval_duration": 3_000_000,
        }
        chat = self.path == "/api/chat"
        if body.get("stream", True) is False:
            text = "".join(tokens)
            payload = {"model": model, "created_at": _now(), **self._piece(chat, text), **final}
            if not chat:
                payload["context"] = list(range(prompt_tokens + len(tokens)))
            self.send_json(200, payload)
            return
        self.send_stream("application/x-ndjson", self._objects(model, chat, tokens, final))

    def _piece(self, chat: bool, text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": text}} if chat else {"response": text}

    def _objects(self, model: str, chat: bool, tokens: list[str], final: dict[str, Any]) -> Iterator[bytes]:
        if self.server.raw_lines is not None:
            yield from (line.encode() + b"\n" for line in self.server.raw_lines)
            return
        for index, token in enumerate(tokens):
            if self.server.token_delay:
                time.sleep(self.server.token_delay)
            if self.server.malformed and index == 1:
                yield b"{this is not json\n"
                return
            yield (
                json.dumps({"model": model, "created_at": _now(), **self._piece(chat, token), "done": False}) + "\n"
            ).encode()
        if self.server.truncated:
            return
        last = {"model": model, "created_at": _now(), **self._piece(chat, ""), **final}
        if not chat:
            last["context"] = list(range(int(final["prompt_eval_count"]) + len(tokens)))
        yield (json.dumps(last) + "\n").encode()

    def _show(self, model: str) -> dict[str, Any]:
        return {
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model}\n',
            "parameters": 'stop "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": _model_entry(model)["details"],
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
            "capabilities": ["completion"],
            "modified_at": "2024-05-01T10:00:00.123456789Z",
        }
