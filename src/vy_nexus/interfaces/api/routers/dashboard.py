"""The web dashboard at ``/dashboard``: server-rendered pages (Jinja2), fragments the pages' script swaps in on each
live tick, JSON for the charts, and Server-Sent Events (the overview every ``TICK_SECONDS``; a task's feed).

Signing in posts an API key once; it then lives in an HttpOnly, SameSite=Strict session cookie (``dashboard.session``).
The routes only translate HTTP to library calls: figures come from ``observability.dashboard_stats`` (time series
for the overview and experts charts from ``observability.dashboard_series``), alerts from
``observability.alerts``, a task's "why" from ``dashboard.why``.

Errors: a person's browser opening a page gets an error page in the dashboard's layout (``error_page``, installed
with the app's one error handler); the JSON routes and other clients get the service's JSON error (``dashboard.pages``
tells them apart).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from vy_nexus.errors import (
    ConfigError,
    InputError,
    PayloadTooLargeError,
    RoutingError,
    TaskError,
    UnknownExpertError,
    VyNexusError,
)
from vy_nexus.interfaces.api import sse
from vy_nexus.interfaces.api.deps import Services
from vy_nexus.interfaces.api.errors import ErrorReply, client_message
from vy_nexus.interfaces.api.keys import ApiKey
from vy_nexus.interfaces.api.routers.tasks import task_frames
from vy_nexus.interfaces.api.schemas import TaskSubmission
from vy_nexus.interfaces.api.services import ApiServices
from vy_nexus.interfaces.dashboard import STATIC_DIR, TEMPLATES_DIR, formats, pages, session
from vy_nexus.interfaces.dashboard.snapshot import overview
from vy_nexus.interfaces.dashboard.why import explain
from vy_nexus.observability import dashboard_series, dashboard_stats
from vy_nexus.observability.alerts import AlertBook
from vy_nexus.observability.timeutil import parse_deadline
from vy_nexus.payloads import parse_context
from vy_nexus.store import TaskState

TICK_SECONDS = 2.0
PAGE_SIZE = 25
WINDOWS = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0}

templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters.update(formats.FILTERS)
router = APIRouter(prefix="/dashboard", include_in_schema=False)


def signed_in(request: Request, shared: Services) -> ApiKey:
    return session.current_key(request, shared.keys)


Key = Annotated[ApiKey, Depends(signed_in)]


def install(app: FastAPI) -> None:
    """Add the dashboard to ``app``: its routes, its static files, and the login redirect."""
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")

    async def login_required(request: Request, _exc: Exception) -> Response:
        if pages.wants_page(request):
            return RedirectResponse("/dashboard/login", status_code=303)
        body = {"error": "unauthorized", "message": "sign in at /dashboard/login", "details": {}}
        return JSONResponse(body, status_code=401)

    app.add_exception_handler(session.LoginRequiredError, login_required)


def error_page(request: Request, reply: ErrorReply) -> Response | None:
    """``reply`` as a page in the dashboard's layout for a person's browser; ``None`` for any other request."""
    if not pages.wants_page(request):
        return None
    context = {"status": reply.status, "title": pages.title(reply.status), "message": pages.message(request, reply)}
    page = _page(request, "error.html", _signed_in_or_none(request), **context)
    page.status_code = reply.status
    page.headers.update(reply.headers or {})
    return page


def _signed_in_or_none(request: Request) -> ApiKey | None:
    """The session's key, so an error page keeps the header; ``None`` when there is no (valid) session or the keys
    cannot be read (a damaged keys file is often the very error the page reports)."""
    shared = getattr(request.app.state, "services", None)
    if not isinstance(shared, ApiServices):
        return None
    try:
        return session.current_key(request, shared.keys)
    except (session.LoginRequiredError, VyNexusError):
        return None


def _book(shared: ApiServices) -> AlertBook:
    return AlertBook.for_home(shared.system.settings.home)


def _page(request: Request, name: str, key: ApiKey | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"key": key, "section": name.split(".")[0], **context})


async def _overview(shared: ApiServices) -> dict[str, Any]:
    return await asyncio.to_thread(overview, shared.system, _book(shared), shared.metrics, started_at=shared.started_at)


# -- login ------------------------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, error=None)


@router.post("/login", response_model=None)
def login(request: Request, shared: Services, key: Annotated[str, Form()] = "") -> Response:
    # No length limit on the field: an over-long paste is a key that is not valid, said on the form (the body
    # limit still bounds what is read).
    record = shared.keys.verify(key.strip()) if key.strip() else None
    if record is None:
        page = _page(request, "login.html", None, error="That key is not a valid API key (vy-nexus keys create NAME).")
        page.status_code = 401
        return page
    response = RedirectResponse("/dashboard", status_code=303)
    session.start(response, request, key.strip())
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    session.end(response)
    return response


# -- overview ---------------------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def overview_page(request: Request, shared: Services, key: Key) -> HTMLResponse:
    return _page(request, "overview.html", key, o=await _overview(shared))


@router.get("/fragments/overview", response_class=HTMLResponse)
async def overview_fragment(request: Request, shared: Services, _key: Key) -> HTMLResponse:
    return templates.TemplateResponse(request, "_overview.html", {"o": await _overview(shared)})


@router.get("/api/overview")
async def overview_json(shared: Services, _key: Key) -> dict[str, Any]:
    return await _overview(shared)


@router.get("/api/live", response_model=None)
async def live(shared: Services, _key: Key) -> EventSourceResponse:
    """The overview as an ``overview`` event every ``TICK_SECONDS``: pages refresh their live parts on each."""

    async def frames() -> AsyncIterator[bytes]:
        while not shared.system.safety.shutting_down:
            yield sse.frame("overview", await _overview(shared))
            await asyncio.sleep(TICK_SECONDS)
        yield sse.frame("overview", await _overview(shared))

    return sse.stream(frames())


# -- tasks ------------------------------------------------------------------------------------------------------------


async def _task_page(
    shared: ApiServices, state: str | None, expert: str | None, offset: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    if state and state not in STATES:
        raise InputError(f"unknown task state {state!r}; choose one of {', '.join(STATES)}")
    states = [TaskState(state)] if state else []
    page = await asyncio.to_thread(
        shared.system.list_tasks, states=states, expert=expert or None, limit=PAGE_SIZE, offset=offset
    )
    filters = {"state": state or "", "expert": expert or "", "offset": offset, "newer": _newer(offset, page.total)}
    return page.model_dump(mode="json"), filters


def _newer(offset: int, total: int) -> int | None:
    """The offset of the page before ``offset``; from past the end, the last page (not a page just as empty)."""
    if offset <= 0:
        return None
    last_page = max(0, (total - 1) // PAGE_SIZE * PAGE_SIZE)
    return max(0, min(offset - PAGE_SIZE, last_page))


STATES = [state.value for state in TaskState]
StateFilter = Annotated[str, Query(max_length=16, description="empty: any state")]
ExpertFilter = Annotated[str | None, Query(max_length=128)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(
    request: Request,
    shared: Services,
    key: Key,
    state: StateFilter = "",
    expert: ExpertFilter = None,
    offset: Offset = 0,
) -> HTMLResponse:
    page, filters = await _task_page(shared, state, expert, offset)
    return _page(request, "tasks.html", key, page=page, filters=filters, states=STATES)


@router.get("/fragments/tasks", response_class=HTMLResponse)
async def tasks_fragment(
    request: Request,
    shared: Services,
    _key: Key,
    state: StateFilter = "",
    expert: ExpertFilter = None,
    offset: Offset = 0,
) -> HTMLResponse:
    page, filters = await _task_page(shared, state, expert, offset)
    return templates.TemplateResponse(request, "_tasks.html", {"page": page, "filters": filters})


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, shared: Services, key: Key, task_id: str) -> HTMLResponse:
    record = await asyncio.to_thread(shared.system.get_task, task_id)
    why = await asyncio.to_thread(explain, record, shared.system.settings.logs_dir)
    return _page(request, "task.html", key, task=record.model_dump(mode="json"), why=why)


@router.get("/api/tasks/{task_id}")
async def task_json(shared: Services, _key: Key, task_id: str) -> dict[str, Any]:
    record = await asyncio.to_thread(shared.system.get_task, task_id)
    why = await asyncio.to_thread(explain, record, shared.system.settings.logs_dir)
    return {"task": record.model_dump(mode="json"), "why": why}


@router.get("/tasks/{task_id}/events", response_model=None)
async def task_events(shared: Services, _key: Key, task_id: str) -> EventSourceResponse:
    record = await asyncio.to_thread(shared.system.get_task, task_id)
    return sse.stream(task_frames(shared, task_id, record))


# -- run a task -------------------------------------------------------------------------------------------------------


def _experts(shared: ApiServices) -> list[str]:
    return sorted(expert.id for expert in shared.system.registry.list())


@router.get("/run", response_class=HTMLResponse)
def run_form(request: Request, shared: Services, key: Key) -> HTMLResponse:
    return _page(request, "run.html", key, experts=_experts(shared), error=None, form={})


@router.post("/run", response_model=None)
async def run(
    request: Request,
    shared: Services,
    key: Key,
    description: Annotated[str, Form()] = "",
    expert: Annotated[str, Form(max_length=128)] = "",
    top_k: Annotated[str, Form(max_length=4)] = "",
    priority: Annotated[str, Form(max_length=16)] = "",
    context: Annotated[str, Form(max_length=100_000)] = "",
    deadline: Annotated[str, Form(max_length=64)] = "",
    file: UploadFile | None = None,
) -> Response:
    """Submit like ``POST /api/tasks`` (the same checks, counted against the key's rate limit), then open the task."""
    form = dict(
        description=description, expert=expert, top_k=top_k, priority=priority, context=context, deadline=deadline
    )
    try:
        shared.limiter.check(key.id)
    except HTTPException as exc:  # refused like the API (429, Retry-After), on the form with what was typed
        page = _page(request, "run.html", key, experts=_experts(shared), error=str(exc.detail), form=form)
        page.status_code = exc.status_code
        page.headers.update(exc.headers or {})
        return page
    try:
        if expert:
            shared.system.registry.get(expert)  # an unknown expert is named here, not in a failed task
        upload = await file.read() if file is not None and file.filename else None
        body = TaskSubmission(
            description=description.strip(),
            input_base64=base64.b64encode(upload).decode() if upload is not None else None,
            filename=file.filename if upload is not None and file is not None else None,
            experts=[expert] if expert else None,
            top_k=int(top_k) if top_k.strip() else None,
            priority=priority or None,
            context=parse_context(context) if context.strip() else None,
            deadline=_deadline(deadline) if deadline.strip() else None,
        )
        task = body.to_task(shared.uploads_dir, body.experts)
        await shared.submit(task, top_k=body.top_k, aggregation=None)
    except (ValidationError, ValueError, VyNexusError) as exc:
        page = _page(request, "run.html", key, experts=_experts(shared), error=_problem(exc), form=form)
        page.status_code = _form_status(exc)
        return page
    return RedirectResponse(f"/dashboard/tasks/{task.id}", status_code=303)


TYPED_ERRORS = (TaskError, UnknownExpertError, RoutingError)
"""What was typed does not validate: a task field (the deadline included), an expert that is no longer an option.
A ``ConfigError`` is the server's configuration, never what was typed (a ``500``)."""


def _deadline(typed: str) -> datetime:
    """The deadline typed in the form. The CLI's parser calls a value it cannot read a ``ConfigError`` (an option
    of the command); here it is the person's typing, a task field that does not validate."""
    try:
        return parse_deadline(typed)
    except ConfigError as exc:
        raise TaskError(exc.message) from exc


def _form_status(exc: Exception) -> int:
    """``422`` when what was typed does not validate; else the status ``POST /api/tasks`` answers for the same
    refusal: ``413`` a payload too large, ``403`` governance, ``503`` the kill switch engaged or the store down."""
    if isinstance(exc, PayloadTooLargeError):
        return exc.http_status
    if isinstance(exc, VyNexusError) and not isinstance(exc, TYPED_ERRORS):
        return exc.http_status
    return 422


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, VyNexusError):
        return client_message(exc)
    return "number of experts must be a whole number from 1 to 16"


# -- alerts -----------------------------------------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, shared: Services, key: Key) -> HTMLResponse:
    return _page(request, "alerts.html", key, o=await _overview(shared), rules=shared.system.settings.alerts)


@router.get("/fragments/alerts", response_class=HTMLResponse)
async def alerts_fragment(request: Request, shared: Services, _key: Key) -> HTMLResponse:
    return templates.TemplateResponse(request, "_alerts.html", {"o": await _overview(shared)})


@router.post("/alerts/{alert_key}/acknowledge")
def acknowledge(shared: Services, key: Key, alert_key: str) -> Response:
    _book(shared).acknowledge(alert_key, f"api:{key.name}")
    return RedirectResponse("/dashboard/alerts", status_code=303)


@router.post("/alerts/{alert_key}/clear")
def clear(shared: Services, _key: Key, alert_key: str) -> Response:
    _book(shared).clear(alert_key)
    return RedirectResponse("/dashboard/alerts", status_code=303)


# -- experts, routing quality, resources ------------------------------------------------------------------------------

Window = Annotated[Literal["15m", "1h", "24h"], Query()]


def _since(window: str) -> tuple[float, float]:
    now = time.time()
    return now - WINDOWS[window], now


@router.get("/experts", response_class=HTMLResponse)
async def experts_page(request: Request, shared: Services, key: Key, window: Window = "1h") -> HTMLResponse:
    since, now = _since(window)
    figures = await asyncio.to_thread(dashboard_stats.experts_figures, shared.metrics, since=since, now=now)
    registered = [
        {"id": expert.id, "name": expert.name, "source": shared.system.registry.source(expert.id)}
        for expert in shared.system.registry.list()
    ]
    return _page(request, "experts.html", key, figures=figures, registered=registered, window=window)


@router.get("/api/series/tasks")
async def task_series_json(shared: Services, _key: Key, window: Window = "1h") -> dict[str, Any]:
    since, now = _since(window)
    db = shared.metrics
    return await asyncio.to_thread(dashboard_series.task_series, db, since=since, now=now)


@router.get("/api/series/experts")
async def expert_series_json(shared: Services, _key: Key, window: Window = "1h") -> dict[str, Any]:
    since, now = _since(window)
    db = shared.metrics
    return await asyncio.to_thread(dashboard_series.expert_series, db, since=since, now=now)


@router.get("/routing", response_class=HTMLResponse)
def routing_page(request: Request, key: Key, window: Window = "1h") -> HTMLResponse:
    return _page(request, "routing.html", key, window=window)


@router.get("/api/routing")
async def routing_json(shared: Services, _key: Key, window: Window = "1h") -> dict[str, Any]:
    since, now = _since(window)
    db = shared.metrics
    return await asyncio.to_thread(dashboard_stats.routing_quality, db, since=since, now=now)


@router.get("/resources", response_class=HTMLResponse)
def resources_page(request: Request, key: Key, window: Window = "1h") -> HTMLResponse:
    return _page(request, "resources.html", key, window=window)


@router.get("/api/resources")
async def resources_json(shared: Services, _key: Key, window: Window = "1h") -> dict[str, Any]:
    since, now = _since(window)
    db = shared.metrics
    return await asyncio.to_thread(dashboard_stats.resources, db, since=since, now=now)
