"""The CLI as a client: ``--server URL`` turns ``run``, ``route``, ``experts``, ``tasks``, ``approvals`` and
``status`` into calls on a running server; the answers are rendered exactly as in-process ones."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vy_nexus.errors import VyNexusError
from vy_nexus.execution.governance import RoutingPreview, Ruling, Verdict
from vy_nexus.interfaces.cli.common import console
from vy_nexus.interfaces.cli.token_stream import TokenPrinter
from vy_nexus.reasoning.llm import TokenEvent
from vy_nexus.store import TaskRecord, TaskState
from vy_nexus.tasks import AggregatedResult, ExpertResult, RoutingDecision, Task

_EXIT_BY_STATE = {TaskState.CANCELLED: 8, TaskState.INTERRUPTED: 4}


class RemoteTaskError(VyNexusError):
    """The server ran the task and it ended without a result (refused, cancelled, interrupted)."""


if TYPE_CHECKING:
    from vy_nexus.interfaces.client import ApiClient


def task_body(task: Task, experts: list[str] | None, top_k: int, aggregation: str | None) -> dict[str, Any]:
    """The API's submission body for a task the CLI built (the experts ``--expert`` names travel as ``experts``)."""
    payload = task.input
    context = {key: value for key, value in task.context.items() if not (experts and key == "experts")}
    body: dict[str, Any] = {
        "description": task.description,
        "type": task.type,
        "input": payload,
        "experts": experts or None,
        "top_k": top_k,
        "aggregation": aggregation,
        "context": context or None,
        "priority": task.priority.value,
        "deadline": None if task.deadline is None else task.deadline.isoformat(),
    }
    if isinstance(payload, dict) and set(payload) == {"sqlite"}:  # a local database file: send its bytes
        database = Path(payload["sqlite"])
        body.update(input=None, input_base64=base64.b64encode(database.read_bytes()).decode(), filename=database.name)
    return body


def route_body(task: Task, top_k: int) -> dict[str, Any]:
    """The API's body for ``POST /api/route``: the task as ``task_body`` sends it, without what only a run takes."""
    body = task_body(task, None, top_k, None)
    for run_only in ("experts", "aggregation", "priority", "deadline"):
        del body[run_only]
    return body


def run(client: ApiClient, body: dict[str, Any], *, stream: bool) -> tuple[AggregatedResult, list[str]]:
    """Submit, follow the task's events (printing tokens live when ``stream``), return its result and the texts
    already shown."""
    accepted = client.submit(body)
    printer = TokenPrinter(console) if stream else None
    method = "single"
    record: TaskRecord | None = None
    for event, data in client.events(accepted["id"]):
        if event == "token" and printer is not None:
            printer(TokenEvent(data["text"], data["provider"], data["model"], data.get("expert_id")))
        elif event == "task.aggregated":
            method = str(data.get("metadata", {}).get("method", method))
        elif event == "result":
            record = TaskRecord.model_validate(data)
    if printer is not None:
        printer.finish()
    if record is None:
        raise RemoteTaskError(f"the event stream of task {accepted['id']} ended without its result")
    return to_result(record, method), printer.texts if printer is not None else []


def to_result(record: TaskRecord, method: str = "single") -> AggregatedResult:
    if not record.results:
        error = RemoteTaskError(f"task {record.id} {record.state.value}: {record.error}", task_id=record.id)
        refused = record.ruling is not None and record.ruling.get("verdict") not in (None, "allowed", "throttled")
        error.exit_code = 3 if refused else _EXIT_BY_STATE.get(record.state, 1)
        raise error
    results = [ExpertResult.from_dict(item) for item in record.results]
    return AggregatedResult(
        task_id=record.id,
        output=record.output,
        experts=[item.expert_id for item in results if item.ok],
        method=method,
        confidence=record.confidence or 0.0,
        results=results,
        decision=RoutingDecision.from_dict(record.decision) if record.decision else None,
        duration_ms=record.duration_ms or 0.0,
    )


def preview(reply: dict[str, Any]) -> RoutingPreview:
    """``POST /api/route``'s answer (``RoutingPreview.as_dict``) as the preview ``route`` renders."""
    governance = reply["governance"]
    ruling = Ruling(
        Verdict(governance["verdict"]),
        governance["policy"],
        governance["reason"],
        RoutingDecision.from_dict(reply),
    )
    return RoutingPreview(RoutingDecision.from_dict(reply["routed"]), ruling)
