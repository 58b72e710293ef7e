"""Health (no key needed), status, the system stop (governed), the metrics report and ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from vy_nexus import __version__
from vy_nexus.interfaces.api.deps import Actor, Services, System, api_key
from vy_nexus.interfaces.api.schemas import Health, StopAccepted, StopRequestBody
from vy_nexus.observability.metricsquery import build_report

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

public = APIRouter(tags=["system"])
router = APIRouter(tags=["system"], dependencies=[Depends(api_key)])


@public.get("/api/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request, response: Response) -> Health:
    """Liveness and readiness, with the reason when not ready. Needs no key."""
    shared = getattr(request.app.state, "services", None)
    if shared is None:
        ready, reason = False, "starting"
    elif shared.system.safety.shutting_down:
        ready, reason = False, f"shutting down: {shared.system.safety.shutdown_reason or 'requested'}"
    else:
        ready, reason = True, "accepting tasks"
    if not ready:
        response.status_code = 503
    return Health(status="ok" if ready else "unavailable", ready=ready, reason=reason, version=__version__)


@router.get("/api/status")
def status(shared: Services) -> dict[str, Any]:
    """The system's status (as ``vy-nexus status``) and the server's."""
    info = shared.system.status()
    info["server"] = {
        "version": __version__,
        "uptime_seconds": round(time.time() - shared.started_at, 3),
        "tasks_in_progress": len(shared.jobs),
        "rate_limit_per_minute": shared.limiter.per_minute,
    }
    return info


@router.post("/api/system/stop", status_code=202, response_model=StopAccepted)
def stop(system: System, who: Actor, body: StopRequestBody | None = None) -> StopAccepted:
    """Shut the server down gracefully (governed: may need an approval; the 403 names the request to approve)."""
    body = body or StopRequestBody()
    started = system.request_shutdown(body.reason, actor=who, approval_id=body.approval_id)
    return StopAccepted(stopping=True, reason=body.reason if started else system.safety.shutdown_reason or body.reason)


@router.get("/api/metrics/report")
async def metrics_report(
    shared: Services,
    since: Annotated[
        float | None, Query(allow_inf_nan=False, description="Epoch seconds; default: everything kept.")
    ] = None,
) -> dict[str, Any]:
    """Performance report (as ``vy-nexus metrics report --json``), the API's own requests included."""

    def build() -> dict[str, Any]:
        report: dict[str, Any] = build_report(shared.metrics, since=since).as_dict()
        report["api"] = shared.requests.summary(since)
        return report

    return await asyncio.to_thread(build)


@router.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS_TYPE: {}}}})
async def prometheus(shared: Services) -> Response:
    """Prometheus text exposition: the system's metrics and the API's request histogram. Rendered in a thread:
    filling the registry may read the metrics database."""
    observability = shared.system.observability

    def render() -> bytes:
        system_part = observability.exposition() if observability is not None else b""
        return system_part + shared.requests.exposition()

    return Response(await asyncio.to_thread(render), media_type=PROMETHEUS_TYPE)
