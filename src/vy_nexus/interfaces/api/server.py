"""Serving the app with uvicorn: ``serve`` in the foreground, and the background server that ``vy-nexus start``,
``stop`` (the kill switch, then ``await_stop``) and ``status`` manage through a pid file in the home
(``<home>/api/server.json``: pid, process start time, URL), so a pid left by a crashed server, or reused by another
process, is recognised as stale."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError, StateError
from vy_nexus.foundation.atomic import atomic_write_text

if TYPE_CHECKING:
    import ssl


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    tls: TlsFiles | None = None,
    log_level: str = "info",
) -> None:
    """Run the API server in this process until it is stopped (SIGTERM or Ctrl-C, the kill switch, the API); over
    HTTPS with ``tls``. Raises the ``VyNexusError`` that kept it from starting (an address it cannot have, TLS files
    it cannot use, a home it cannot write), never a traceback."""
    import uvicorn

    from vy_nexus.interfaces.api.app import create_app
    from vy_nexus.interfaces.api.serving import ApiServer, StartupGuard

    host, port = host or settings.api.host, port or settings.api.port
    context = tls.context() if tls is not None else None
    ensure_writable(settings.home)
    # Bound before the app (and the system behind it) is built: a taken port or an unknown host is a clear error at
    # once, where uvicorn would load everything, say "startup complete", then log the OSError and exit with 3.
    listener = listen(host, port, home=settings.home)
    holder: list[ApiServer] = []

    def request_exit() -> None:
        if holder:
            holder[0].should_exit = True

    app = create_app(settings, request_exit=request_exit)
    guard = StartupGuard(app)
    config = uvicorn.Config(
        guard,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, int(settings.safety.grace_period_seconds)),
        server_header=False,
        ssl_context_factory=None if context is None else lambda _config, _default: context,
    )
    server = ApiServer(config, app, listener, grace=settings.safety.grace_period_seconds)
    holder.append(server)
    with listener:
        try:
            server.run(sockets=[listener])
        except SystemExit:  # uvicorn's own exit when the app could not start
            if guard.failure is None:
                raise
    if guard.failure is not None:
        raise guard.failure


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain and its private key (PEM) for serving HTTPS."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """The server's TLS context, or a ``ConfigError`` naming the file at fault and why: missing or unreadable,
        no PEM certificate or key in it, a key that does not match the certificate, a key that needs a passphrase."""
        import ssl

        if CERTIFICATE not in self._read("--tls-cert", self.cert):
            raise ConfigError(f"--tls-cert {self.cert} holds no PEM certificate ({CERTIFICATE} ...)")
        if PRIVATE_KEY.search(self._read("--tls-key", self.key)) is None:
            raise ConfigError(f"--tls-key {self.key} holds no PEM private key (-----BEGIN PRIVATE KEY----- ...)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def no_passphrase() -> str:
            raise ConfigError(f"--tls-key {self.key} is encrypted: serve needs a key without a passphrase")

        try:
            context.load_cert_chain(self.cert, self.key, password=no_passphrase)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                problem = f"--tls-key {self.key} is not the private key of --tls-cert {self.cert}: they do not match"
            else:
                problem = (
                    f"cannot serve HTTPS with --tls-cert {self.cert} and --tls-key {self.key}: {exc.reason or exc}"
                )
            raise ConfigError(problem) from exc
        return context

    @staticmethod
    def _read(flag: str, path: Path) -> str:
        """The start of a PEM file (a certificate chain or a key is a few kB)."""
        try:
            with path.open("rb") as pem:
                return pem.read(1 << 20).decode("ascii", "replace")
        except OSError as exc:
            problem = "is a directory" if path.is_dir() else exc.strerror or str(exc)
            raise ConfigError(f"{flag} {path}: {problem.lower()}; name a PEM file") from exc


CERTIFICATE = "-----BEGIN CERTIFICATE-----"
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")
"""PKCS#8 (plain or encrypted), or a traditional RSA/EC key."""


def ensure_writable(home: Path) -> None:
    """A ``ConfigError`` unless ``home`` is (or can be made) a directory this process can write in: the server
    keeps its task store, journal, metrics and pid file there."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-check-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the home directory {home} cannot be written ({exc.strerror or exc}): the server keeps its task store,"
            " journal and metrics there; choose another --home (or VY_NEXUS_HOME) or make it writable"
        ) from exc


def announce(listener: socket.socket, *, scheme: str = "http") -> None:
    """The line uvicorn prints once it serves, which it leaves out when handed a bound socket (as ``serve`` does)."""
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", scheme, shown, port)


LISTEN_BACKLOG = 2048
"""uvicorn's own default."""


def listen(host: str, port: int, *, home: Path | None = None) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, or a ``ConfigError`` naming the address and why it is refused
    (for a port in use, who holds it: ``home``'s background server, or another process)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, *_, address = found[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {where}: unknown host ({exc.strerror})") from exc
    try:
        return socket.create_server(address, family=family, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        hint = _port_holder(port, home) if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {where}: {reason}{hint}") from exc


def _port_holder(port: int, home: Path | None) -> str:
    """Who listens on ``port``, as the end of a sentence: this home's background server (and how to stop it),
    another process (pid and command line), or what to do when it cannot be seen (another user's process)."""
    try:
        listening = [
            conn.pid
            for conn in psutil.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid
        ]
        pid = listening[0] if listening else None
        command = " ".join(" ".join(psutil.Process(pid).cmdline()).split()) if pid is not None else ""
    except (psutil.Error, OSError):
        pid, command = None, ""
    if pid is None:
        return " (by a process this user cannot see): choose another --port"
    recorded = _recorded(home)
    if recorded is not None and recorded.pid == pid:
        return f" by this home's server (pid {pid}, {recorded.url}): `vy-nexus stop` stops it"
    shown = command if len(command) <= 120 else command[:117] + "..."
    return f" by pid {pid} ({shown}): choose another --port, or stop that process"


def _recorded(home: Path | None) -> ServerInfo | None:
    if home is None:
        return None
    try:
        info = read_info(home)
    except StateError:
        return None
    return info if info is not None and info.alive else None


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
    """The background server recorded in ``home``, or ``None`` when none is (no pid file, or no home to hold one)."""
    try:
        text = pid_file(home).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StateError(f"cannot read the server's pid file {pid_file(home)}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
        return ServerInfo(int(data["pid"]), float(data["started"]), str(data["url"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{pid_file(home)} is corrupt ({exc.__class__.__name__}); remove it") from exc


def start_background(
    settings: Settings, *, host: str, port: int, tls: TlsFiles | None = None, wait: float = 30.0
) -> ServerInfo:
    """Start ``vy-nexus serve`` detached, record it, and wait until it answers its health check."""
    current = read_info(settings.home)
    if current is not None and current.alive:
        raise StateError(f"a server is already running at {current.url} (pid {current.pid})")
    if tls is not None:
        tls.context()  # files it cannot use are named here, not in the child's log
    ensure_writable(settings.home)
    log = settings.home / "api" / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(settings.home), "serve"]
    command += ["--host", host, "--port", str(port)]
    if tls is not None:
        command += ["--tls-cert", str(tls.cert.resolve()), "--tls-key", str(tls.key.resolve())]
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
    scheme = "http" if tls is None else "https"
    info = ServerInfo(pid, psutil.Process(pid).create_time(), f"{scheme}://{_url_host(host)}:{port}")
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

    from vy_nexus.tls import httpx_context

    try:
        # The probe asks the process just started whether it serves; whether a client trusts its certificate (one
        # self-signed, often) is the client's matter.
        verify = httpx_context() if url.startswith("http://") else False
        return httpx.get(f"{url}/api/health", timeout=1.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False
