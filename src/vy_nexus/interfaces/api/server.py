"""Serving the app with uvicorn: ``serve`` in the foreground, and the background server that ``vy-nexus start``,
``stop`` (the kill switch, then ``await_stop``) and ``status`` manage through a pid file in the home
(``<home>/api/server.json``: pid, process start time, URL), so a pid left by a crashed server, or reused by another
process, is recognised as stale."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError, StateError
from vy_nexus.foundation.atomic import atomic_write_text


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    """Run the API server in this process until it is stopped (Ctrl-C, SIGTERM, the kill switch, the API)."""
    import uvicorn

    from vy_nexus.interfaces.api.app import create_app

    holder: list[uvicorn.Server] = []

    def request_exit() -> None:
        if holder:
            holder[0].should_exit = True

    host, port = host or settings.api.host, port or settings.api.port
    # Bound before the app (and the system behind it) is built: a taken port or an unknown host is a clear error at
    # once, where uvicorn would load everything, say "startup complete", then log the OSError and exit with 3.
    listener = listen(host, port)
    app = create_app(settings, request_exit=request_exit)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, int(settings.safety.grace_period_seconds)),
        server_header=False,
    )

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                announce(listener)

    server = AnnouncingServer(config)
    holder.append(server)
    with listener:
        server.run(sockets=[listener])


def announce(listener: socket.socket) -> None:
    """The line uvicorn prints once it serves, which it leaves out when handed a bound socket (as ``serve`` does)."""
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)


LISTEN_BACKLOG = 2048
"""uvicorn's own default."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, or a ``ConfigError`` naming the address and why it is refused."""
    where = f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, *_, address = found[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {where}: unknown host ({exc.strerror})") from exc
    try:
        return socket.create_server(address, family=family, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        hint = " (is another server running? `vy-nexus status` tells)" if exc.errno == errno.EADDRINUSE else ""
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {where}: {reason}{hint}") from exc


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
        offset = output.tell()
        # A detached child (own session, no Popen object left behind to wait for it): it outlives this command.
        pid = os.posix_spawn(
            sys.executable,
            command,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, output.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, output.fileno(), 2),
            ],
            setsid=True,
        )
    info = ServerInfo(pid, psutil.Process(pid).create_time(), f"http://{_url_host(host)}:{port}")
    atomic_write_text(pid_file(settings.home), json.dumps({"pid": info.pid, "started": info.started, "url": info.url}))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            pid_file(settings.home).unlink(missing_ok=True)
            raise StateError(f"the server exited at once{_last_error(log, since=offset)}; see {log}")
        if _healthy(info.url):
            return info
        time.sleep(0.1)
    raise StateError(f"the server did not answer within {wait:g} s; see {log}")


def server_status(settings: Settings) -> dict[str, Any]:
    """Whether this home's background server runs: ``{"running": True, "url", "pid"}``; a pid file whose process
    is gone is removed and said so."""
    info = read_info(settings.home)
    if info is None:
        return {"running": False}
    if not info.alive:
        pid_file(settings.home).unlink(missing_ok=True)
        return {"running": False, "stale_pid_file_removed": True}
    return {"running": True, "url": info.url, "pid": info.pid}


def await_stop(settings: Settings, *, wait: float | None = None) -> dict[str, Any]:
    """After the kill switch: wait for the recorded background server to exit (it notices the stop request, lets
    running tasks finish within the grace period), SIGTERM it if it does not, and remove its pid file."""
    status = server_status(settings)
    info = read_info(settings.home)
    if not status["running"] or info is None:
        return status
    safety = settings.safety
    limit = wait if wait is not None else safety.stop_poll_seconds + safety.grace_period_seconds + 10.0
    process = psutil.Process(info.pid)
    try:
        process.wait(timeout=limit)
    except psutil.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=limit)
        except psutil.TimeoutExpired as exc:
            raise StateError(f"the server (pid {info.pid}) did not stop within {2 * limit:g} s") from exc
    except psutil.NoSuchProcess:
        pass
    pid_file(settings.home).unlink(missing_ok=True)
    return {"running": False, "stopped": True, "pid": info.pid, "url": info.url}


def _last_error(log: Path, *, since: int) -> str:
    """`: <message>` from the last `error:` line the child wrote to its log, or nothing."""
    with log.open("rb") as output:
        output.seek(since)
        lines = output.read().decode("utf-8", "replace").splitlines()
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return f": {errors[-1]}" if errors else ""


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _healthy(url: str) -> bool:
    import httpx  # only while waiting for a server to come up: `vy-nexus status` reads the pid file alone

    try:
        return httpx.get(f"{url}/api/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
