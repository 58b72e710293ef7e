"""Tasks: submit (202 once the task is in the store), list, show, follow (Server-Sent Events), cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import EventSourceResponse

from vy_nexus.interfaces.api import sse
from vy_nexus.interfaces.api.deps import Services, System, api_key
from vy_nexus.interfaces.api.schemas import TaskAccepted, TaskSubmission
from vy_nexus.interfaces.api.services import ApiServices
from vy_nexus.store import TaskPage, TaskRecord, TaskState

router = APIRouter(tags=["tasks"], dependencies=[Depends(api_key)])

POLL_SECONDS = 0.25
"""How often a feed read from the store (a task this server does not run) looks again."""


@router.post("/api/tasks", status_code=202, response_model=TaskAccepted)
async def submit(shared: Services, body: TaskSubmission, response: Response) -> TaskAccepted:
    """Accept a task: it is committed to the task store before this answers; routing and the experts run after.
    Follow it with ``GET /api/tasks/{id}/events`` or poll ``GET /api/tasks/{id}``."""
    task = body.to_task(shared.uploads_dir, body.experts)
    await shared.submit(task, top_k=body.top_k, aggregation=body.aggregation)
    location = f"/api/tasks/{task.id}"
    response.headers["Location"] = location
    return TaskAccepted(id=task.id, location=location, events=f"{location}/events")


@router.get("/api/tasks", response_model=TaskPage)
async def list_tasks(
    system: System,
    state: Annotated[list[TaskState] | None, Query(description="Only tasks in these states (repeatable).")] = None,
    expert: Annotated[str | None, Query(max_length=128, description="Only tasks this expert took.")] = None,
    since: Annotated[
        float | None, Query(allow_inf_nan=False, description="Created at or after (epoch seconds).")
    ] = None,
    until: Annotated[float | None, Query(allow_inf_nan=False, description="Created before (epoch seconds).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> TaskPage:
    """Newest first, one page at a time: ``next_offset`` is the next page's offset (``null`` on the last)."""
    return await asyncio.to_thread(
        system.list_tasks, states=state or (), expert=expert, since=since, until=until, limit=limit, offset=offset
    )


@router.get("/api/tasks/{task_id}", response_model=TaskRecord)
async def get_task(system: System, task_id: str) -> TaskRecord:
    return await asyncio.to_thread(system.get_task, task_id)


@router.delete("/api/tasks/{task_id}", response_model=TaskRecord)
async def cancel_task(shared: Services, task_id: str) -> TaskRecord:
    """Cancel a queued or running task (a finished one is left as it is). The answer is the record as it is now;
    the cancellation shows as ``cancelled`` within a moment."""
    return await shared.cancel(task_id)


@router.get(
    "/api/tasks/{task_id}/events",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}, "description": "state, task.*, expert.*, token, result"}},
)
async def follow(shared: Services, task_id: str) -> EventSourceResponse:
    """The task's story as Server-Sent Events: ``state`` changes, the routing decision (``task.routed``), the
    ruling (``task.governed``), ``expert.*``, each streamed LLM ``token``, then ``result`` (the task record)."""
    record = await asyncio.to_thread(shared.system.get_task, task_id)  # 404 before any stream starts
    return sse.stream(task_frames(shared, task_id, record))


async def task_frames(shared: ApiServices, task_id: str, record: TaskRecord) -> AsyncIterator[bytes]:
    """The SSE frames of one task (shared with the dashboard)."""
    if task_id in shared.feeds:
        async for item in shared.feeds.follow(task_id):
            yield sse.frame(item.event, item.data)
        return
    # Not run here (another process, or before this server started): follow the store.
    state: TaskState | None = None
    while True:
        if record.state != state:
            state = record.state
            yield sse.frame("state", {"state": state.value})
        if record.state.finished:
            yield sse.frame("result", record.model_dump(mode="json"))
            return
        await asyncio.sleep(POLL_SECONDS)
        record = await asyncio.to_thread(shared.system.get_task, task_id)
