"""Serving the app with uvicorn: ``serve`` in the foreground, and the background server ``vy-nexus start`` /
``stop`` / ``status`` manage through a pid file in the home (``<home>/api/server.json``: pid, process start time,
URL), so a pid left by a crashed server, or reused by another process, is recognised as stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from vy_nexus.config import Settings
from vy_nexus.errors import StateError
from vy_nexus.foundation.atomic import atomic_write_text


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    """Run the API server in this process until it is stopped (Ctrl-C, SIGTERM, the kill switch, the API)."""
    import uvicorn

    from vy_nexus.interfaces.api.app import create_app

    holder: list[uvicorn.Server] = []

    def request_exit() -> None:
        if holder:
            holder[0].should_exit = True

    app = create_app(settings, request_exit=request_exit)
    config = uvicorn.Config(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, int(settings.safety.grace_period_seconds)),
        server_header=False,
    )
    server = uvicorn.Server(config)
    holder.append(server)
    server.run()


@dataclass(frozen=True, slots=True)
class ServerInfo:
    pid: int
    started: float
    url: str

    @property
    def alive(self) -> bool:
        """The recorded process still runs (the same one: a reused pid has another start time)."""
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except psutil.Error:
            return False


def pid_file(home: Path) -> Path:
    return home / "api" / "server.json"


def read_info(home: Path) -> ServerInfo | None:
    try:
        data = json.loads(pid_file(home).read_text(encoding="utf-8"))
        return ServerInfo(int(data["pid"]), float(data["started"]), str(data["url"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{pid_file(home)} is corrupt ({exc.__class__.__name__}); remove it") from exc


def start_background(settings: Settings, *, host: str, port: int, wait: float = 30.0) -> ServerInfo:
    """Start ``vy-nexus serve`` detached, record it, and wait until it answers its health check."""
    current = read_info(settings.home)
    if current is not None and current.alive:
        raise StateError(f"a server is already running at {current.url} (pid {current.pid})")
    log = settings.home / "api" / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(settings.home), "serve"]
    command += ["--host", host, "--port", str(port)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        )
    info = ServerInfo(process.pid, psutil.Process(process.pid).create_time(), f"http://{_url_host(host)}:{port}")
    atomic_write_text(pid_file(settings.home), json.dumps({"pid": info.pid, "started": info.started, "url": info.url}))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file(settings.home).unlink(missing_ok=True)
            raise StateError(f"the server exited at once (code {process.returncode}); see {log}")
        if _healthy(info.url):
            return info
        time.sleep(0.1)
    raise StateError(f"the server did not answer within {wait:g} s; see {log}")


def stop_background(settings: Settings, *, wait: float = 30.0) -> ServerInfo | None:
    """Stop the recorded server (SIGTERM: a graceful stop), wait for it, remove the pid file. ``None`` when no
    server was recorded or the record was stale."""
    info = read_info(settings.home)
    if info is None:
        return None
    if not info.alive:
        pid_file(settings.home).unlink(missing_ok=True)
        return None
    os.kill(info.pid, signal.SIGTERM)
    try:
        psutil.Process(info.pid).wait(timeout=wait)
    except psutil.TimeoutExpired as exc:
        raise StateError(f"the server (pid {info.pid}) did not stop within {wait:g} s") from exc
    except psutil.NoSuchProcess:
        pass
    pid_file(settings.home).unlink(missing_ok=True)
    return info


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
