"""A real uvicorn server on a free loopback port, serving the real app, in a thread of the test process; the test
talks to it over HTTP like any client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from vy_nexus.config import Settings, load_settings
from vy_nexus.interfaces.api.app import create_app
from vy_nexus.interfaces.api.keys import KeyStore, keys_file
from vy_nexus.system import VyNexus
from vy_nexus.tls import httpx_context


def get(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.get`` with the process's TLS context (a context of its own would cost ~30 ms per call)."""
    return httpx.get(url, verify=httpx_context(), **kwargs)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, verify=httpx_context(), **kwargs)


@dataclass
class LiveApi:
    url: str
    key: str
    settings: Settings
    server: uvicorn.Server
    exits: list[str]

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key if key is None else key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0, verify=httpx_context(), **kwargs)

    def new_key(self, name: str = "other") -> str:
        return KeyStore(keys_file(self.settings.home)).create(name).secret


def api_settings(home: Path, **api: Any) -> Settings:
    return load_settings(home, store={"flush_interval_seconds": 0.02}, api=api)


@contextmanager
def live_api(
    settings: Settings, system_factory: Callable[[Settings], VyNexus] = VyNexus, *, wait: float = 20.0
) -> Iterator[LiveApi]:
    exits: list[str] = []
    holder: list[uvicorn.Server] = []

    def request_exit() -> None:
        exits.append("exit")
        holder[0].should_exit = True

    app = create_app(settings, system_factory=system_factory, request_exit=request_exit)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    server = uvicorn.Server(config)
    holder.append(server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + wait
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    key = KeyStore(keys_file(settings.home)).create("tester").secret
    try:
        yield LiveApi(f"http://127.0.0.1:{port}", key, settings, server, exits)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
