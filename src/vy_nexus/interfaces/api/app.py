"""The FastAPI application: one ``VyNexus`` per server process, opened in the lifespan (so the routing cache, the
encoder and the LLM stay loaded between requests), routers per area, one error handler, the request log, the
body limit and (only when configured) CORS."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from vy_nexus import __version__
from vy_nexus.config import Settings
from vy_nexus.interfaces.api.body_limit import BodyLimit
from vy_nexus.interfaces.api.deps import document_api_keys
from vy_nexus.interfaces.api.errors import install_error_handlers
from vy_nexus.interfaces.api.feeds import TaskFeeds
from vy_nexus.interfaces.api.keys import KeyStore, keys_file
from vy_nexus.interfaces.api.ratelimit import RateLimiter
from vy_nexus.interfaces.api.request_log import RequestLog, RequestLogMiddleware
from vy_nexus.interfaces.api.routers import approvals, dashboard, experts, openai, system, tasks
from vy_nexus.interfaces.api.schemas import ERRORS, OPENAI_ERRORS
from vy_nexus.interfaces.api.services import ApiServices, load_record
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.system import VyNexus

SystemFactory = Callable[[Settings], VyNexus]

DESCRIPTION = """MOIE-OS as a service: submit tasks, follow them, steer the system.

Every route but `/api/health` needs an API key (`vy-nexus keys create NAME`), sent as `Authorization: Bearer KEY`
or `X-API-Key: KEY`. Errors answer `{"error", "message", "details"}` (OpenAI's error shape under `/v1`)."""


def create_app(
    settings: Settings,
    *,
    system_factory: SystemFactory = VyNexus,
    request_exit: Callable[[], None] | None = None,
) -> FastAPI:
    """``system_factory`` builds the system in the lifespan (tests inject experts or an LLM); ``request_exit`` asks
    the server to stop serving once a shutdown begins (the kill switch, ``POST /api/system/stop``)."""
    api = settings.api
    metrics = MetricsDatabase.for_settings(settings)
    requests = RequestLog(metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        async with system_factory(settings) as vy:
            feeds = TaskFeeds(loop, functools.partial(load_record, vy))
            unsubscribe = vy.events.subscribe(feeds.observe)
            shared = ApiServices(
                system=vy,
                keys=KeyStore(keys_file(settings.home)),
                limiter=RateLimiter(api.rate_limit_per_minute),
                requests=requests,
                feeds=feeds,
                metrics=metrics,
            )
            background: set[asyncio.Task[None]] = set()
            if request_exit is not None:
                exit_now = request_exit

                async def exit_after_grace() -> None:
                    # Running tasks get the grace period the safety handler gives them, then the server exits.
                    jobs = list(shared.jobs.values())
                    if jobs:
                        await asyncio.wait(jobs, timeout=settings.safety.grace_period_seconds)
                    exit_now()

                def on_shutdown(_reason: str) -> None:
                    loop.call_soon_threadsafe(lambda: background.add(loop.create_task(exit_after_grace())))

                vy.safety.on_shutdown(on_shutdown)
            requests.start()
            app.state.services = shared
            try:
                yield
            finally:
                del app.state.services
                # What still runs is interrupted for the shutdown's reason (a signal, the kill switch), if any.
                await vy.astop(vy.safety.shutdown_reason or "server stopped")
                await shared.drain()
                unsubscribe()
                await asyncio.to_thread(requests.stop)
                metrics.close()

    app = FastAPI(
        title="vy-nexus",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app, page=dashboard.error_page)
    app.include_router(system.public)
    keyed = (system.router, tasks.router, experts.router, approvals.router, openai.router)
    document_api_keys(app, keyed)
    for router in keyed:
        app.include_router(router, responses=OPENAI_ERRORS if router is openai.router else ERRORS)
    dashboard.install(app)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes, page=dashboard.error_page)
    app.add_middleware(RequestLogMiddleware, log=requests)
    return app
