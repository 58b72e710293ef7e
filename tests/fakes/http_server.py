"""A real HTTP/1.1 server on 127.0.0.1 (random port) in a background thread, for protocol-faithful fakes."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """Helpers for JSON requests, JSON responses and chunked streaming responses."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small streamed writes go out at once, as from a real server
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.count_connection(+1)

    def finish(self) -> None:
        super().finish()
        self.server.count_connection(-1)

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        return json.loads(body) if body else None

    def send_json(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_stream(self, content_type: str, pieces: Iterable[bytes]) -> None:
        """A chunked-transfer body, one chunk per piece, flushed as produced (like a real streaming server)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in pieces:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnects += 1
            self.close_connection = True


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[JsonHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.disconnects = 0
        self.connections = 0  # accepted so far
        self.open_connections = 0  # not yet closed by the client
        self._lock = threading.Lock()

    def count_connection(self, change: int) -> None:
        with self._lock:
            self.open_connections += change
            self.connections += max(change, 0)

    def wait_until_closed(self, timeout: float = 5.0) -> bool:
        """Whether every client connection has been closed within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections == 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client hung up: what a dropped stream looks like
            self.disconnects += 1
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def json_bodies(self, path: str) -> list[Any]:
        return [json.loads(body) for _, p, _, body in self.requests if p == path and body]


@contextmanager
def serving(server: FakeServer) -> Iterator[FakeServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def split_tokens(text: str) -> list[str]:
    """Word-ish streaming pieces: each word keeps its leading space, like BPE tokens do."""
    pieces: list[str] = []
    for index, word in enumerate(text.split(" ")):
        pieces.append(word if index == 0 else " " + word)
    return [p for p in pieces if p]
