"""The uvicorn server ``serve`` runs: graceful on SIGTERM and Ctrl-C, and quiet about a startup that failed for a
reason vy-nexus can name (the caller raises it as one line)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vy_nexus.errors import VyNexusError
from vy_nexus.interfaces.api.server import announce
from vy_nexus.system import VyNexus

_log = logging.getLogger("uvicorn.error")


class ApiServer(uvicorn.Server):
    """uvicorn's server, which says where it listens and stops gracefully on SIGTERM or Ctrl-C: the system stops
    taking tasks, running ones get ``safety.grace_period_seconds`` to finish (then they are interrupted, and the
    task store says so), and the process exits 0. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, listener: socket.socket, *, grace: float) -> None:
        super().__init__(config)
        self._app = app
        self._listener = listener
        self._grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signalled = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if not self.should_exit:
            announce(self._listener, scheme="https" if self.config.is_ssl else "http")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's own handler, the signal is not raised again once the server has stopped: a stop the
        # server carried out gracefully exits 0.
        services = getattr(self._app.state, "services", None)
        name = signal.Signals(sig).name
        if self.should_exit:
            self.force_exit = True
        elif services is None or self._loop is None:
            _log.info("%s received while starting: stopping once started", name)
            self.should_exit = True
        elif self._signalled or services.system.safety.shutting_down:  # asked again (by a signal, the kill switch)
            self._stop_now(self._loop, services.system, name)
        else:
            self._signalled = True
            self._stop_gracefully(self._loop, services.system, name)

    def _stop_gracefully(self, loop: asyncio.AbstractEventLoop, system: VyNexus, name: str) -> None:
        _log.info(
            "%s received: taking no new tasks; running ones get %g s to finish (safety.grace_period_seconds),"
            " then the server exits. %s again stops it now.",
            name,
            self._grace,
            name,
        )
        # Off the event loop, as every other stop request: the shutdown's listeners write the state file. The app
        # asks the server to exit once the grace period is over (``create_app``'s ``request_exit``).
        loop.call_soon_threadsafe(loop.run_in_executor, None, system.safety.request_shutdown, f"{name} received")

    def _stop_now(self, loop: asyncio.AbstractEventLoop, system: VyNexus, name: str) -> None:
        _log.info("%s received: stopping now, interrupting what runs", name)
        # Requests waiting on a task (/v1, a task's events) end as soon as their task does, so uvicorn's drain of open
        # connections is not left to wait out the grace period.
        reason = system.safety.shutdown_reason or f"{name} received"
        loop.call_soon_threadsafe(loop.run_in_executor, None, system.inflight.cancel_after, 0.0, reason)
        self.should_exit = True


class StartupGuard:
    """The app as uvicorn runs it, keeping the ``VyNexusError`` that failed its startup (a home it cannot write, a
    task store it cannot open) for ``serve`` to raise: uvicorn would log the traceback and exit 3."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failure: VyNexusError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[str] = []

        async def quiet(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":  # starlette's message is the traceback
                failed.append(message.get("message", ""))
                message = {**message, "message": ""}
            await send(message)

        try:
            await self.app(scope, receive, quiet)
        except VyNexusError as exc:
            if not failed:
                raise
            self.failure = exc
        except BaseException:
            if failed:  # not one of ours: a defect, whose traceback belongs in the log
                _log.error(failed[0])
            raise
