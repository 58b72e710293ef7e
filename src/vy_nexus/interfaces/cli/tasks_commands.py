"""``vy-nexus tasks list|show|cancel``: the task store, read and steered from the shell."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from vy_nexus.errors import ConfigError
from vy_nexus.interfaces.cli.common import console, handle_errors, print_json, state
from vy_nexus.observability.timeutil import iso_utc, parse_time
from vy_nexus.store import TaskPage, TaskRecord, TaskState

tasks_app = typer.Typer(
    no_args_is_help=True, help="Tasks in the task store: list them, show one with its history, cancel one."
)

STATE_STYLES = {
    TaskState.QUEUED: "cyan",
    TaskState.RUNNING: "yellow",
    TaskState.SUCCEEDED: "green",
    TaskState.FAILED: "red",
    TaskState.CANCELLED: "magenta",
    TaskState.INTERRUPTED: "red",
}


def _states(values: list[str] | None) -> list[TaskState]:
    chosen: list[TaskState] = []
    for value in values or []:
        try:
            chosen.append(TaskState(value.strip().lower()))
        except ValueError:
            names = ", ".join(s.value for s in TaskState)
            raise ConfigError(f"unknown task state {value!r}; choose from {names}") from None
    return chosen


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else iso_utc(timestamp)[:19].replace("T", " ")


def _duration(record: TaskRecord) -> str:
    if record.duration_ms is not None:
        return f"{record.duration_ms / 1e3:.2f} s"
    if record.started_at is not None and record.finished_at is not None:
        return f"{record.finished_at - record.started_at:.2f} s"
    return ""


def _state_text(record: TaskRecord) -> Text:
    if record.cancel_requested and not record.state.finished:
        return Text("cancelling", style=STATE_STYLES[TaskState.CANCELLED])
    return Text(record.state.value, style=STATE_STYLES[record.state])


WIDE_ENOUGH_FOR_ONE_LINE = 110
"""Below this many columns a task's text gets a line of its own: beside five fixed columns it kept 8 characters."""


def tasks_view(records: list[TaskRecord], width: int) -> Table:
    """The table on a wide terminal; two lines per task on a narrow one (fields, then the task's text)."""
    if width >= WIDE_ENOUGH_FOR_ONE_LINE:
        return tasks_table(records)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("id · state · experts · created · took  /  task", no_wrap=True, overflow="ellipsis")
    for record in records:
        experts = ", ".join(record.experts)
        experts = experts if len(experts) <= 16 else experts[:15] + "…"
        state_text = _state_text(record)
        fields = Text.assemble(
            (f"{record.id:<17}", "bold"),
            state_text,
            " " * max(1, 12 - len(state_text.plain)),
            f"{experts:<17}{_when(record.created_at)[5:16]}  {_duration(record):>8}",
        )
        first_line = record.description.splitlines()[0] if record.description else ""
        table.add_row(Text.assemble(fields, "\n  ", Text(first_line, style="dim")))
    return table


def tasks_table(records: list[TaskRecord]) -> Table:
    """One line per task: the fixed-width columns never wrap, the task text takes what is left."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=16)
    table.add_column("state", no_wrap=True, min_width=11)
    table.add_column("experts", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("created", no_wrap=True, min_width=11)
    table.add_column("took", justify="right", no_wrap=True, min_width=7)
    table.add_column("task", no_wrap=True, overflow="ellipsis", min_width=8)
    for record in records:
        table.add_row(
            Text(record.id),
            _state_text(record),
            Text(", ".join(record.experts)),
            _when(record.created_at)[5:16],
            _duration(record),
            Text(record.description.splitlines()[0] if record.description else ""),
        )
    return table


def record_details(record: TaskRecord) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("id", Text(record.id)),
        ("state", _state_text(record)),
        ("task", Text(record.description)),
        ("type", Text(record.type)),
        ("priority", Text(str(record.task.get("priority", "")))),
        ("deadline", Text(str(record.task.get("deadline") or ""))),
        (
            "context",
            Text(
                json.dumps(record.task.get("context") or {}, ensure_ascii=False) if record.task.get("context") else ""
            ),
        ),
        ("created", _when(record.created_at)),
        ("started", _when(record.started_at)),
        ("finished", _when(record.finished_at)),
        ("took", _duration(record)),
        ("owner", Text(record.owner or "")),
    ]
    if record.decision:
        confidences = record.decision.get("confidences", {})
        chosen = ", ".join(f"{e} ({confidences.get(e, 0):.2f})" for e in record.decision.get("expert_ids", []))
        rows.append(("routing", Text(f"{chosen} · {record.decision.get('strategy', '')}")))
        rows.append(("why", Text(str(record.decision.get("reason", "")))))
    if record.ruling:
        rows.append(("governance", Text(f"{record.ruling.get('verdict')} by {record.ruling.get('policy')}")))
    for result in record.results:
        outcome = f"failed: {result.get('error')}" if result.get("error") else f"ok ({result.get('confidence', 0):.2f})"
        rows.append((f"expert {result.get('expert_id')}", Text(f"{outcome}, {result.get('attempts', 1)} attempt(s)")))
    if record.error:
        rows.append(("error", Text(record.error, style="red")))
    for key, value in rows:
        if not isinstance(value, Text) or value.plain:
            table.add_row(key, value)
    return table


@tasks_app.command("list")
@handle_errors
def list_tasks(
    ctx: typer.Context,
    task_state: list[str] | None = typer.Option(None, "--state", "-s", help="Only this state (repeatable)."),
    expert: str | None = typer.Option(None, "--expert", "-e", help="Only tasks routed to this expert."),
    since: str | None = typer.Option(None, "--since", help="Created from this time: 30m, 1h, 2d or ISO 8601."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500, help="How many tasks per page."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many (the next page)."),
    as_json: bool = typer.Option(False, "--json", help="Print the page as JSON."),
) -> None:
    """Recent tasks, newest first.

    Example: vy-nexus tasks list --state failed --since 1d
    """
    cli_state = state(ctx)
    states, start = _states(task_state), None if since is None else parse_time(since)
    client = cli_state.client()
    if client is not None:
        with client:
            reply = client.tasks(
                state=[s.value for s in states], expert=expert, since=start, limit=limit, offset=offset
            )
        page = TaskPage.model_validate(reply)
    else:
        from vy_nexus.store import open_task_store  # SQLAlchemy loads only for the tasks commands

        with open_task_store(cli_state.settings()) as store:
            page = store.list_tasks(states=states, expert=expert, since=start, limit=limit, offset=offset)
    if as_json:
        print_json(page.model_dump(mode="json"))
        return
    if not page.items:
        console.print("no tasks match", highlight=False)
        return
    console.print(tasks_view(page.items, console.width))
    shown = f"{offset + 1}-{offset + len(page.items)} of {page.total}"
    hint = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    console.print(Text(shown + hint, style="dim"))


@tasks_app.command("show")
@handle_errors
def show_task(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The task id (from `tasks list` or `run --json`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole record as JSON."),
) -> None:
    """One task: state, routing decision and why, governance ruling, each expert's result, error.

    Example: vy-nexus tasks show 3f2a9c0d1e4b5a69
    """
    record = _remote_or_local(ctx, task_id, cancel=False)
    if as_json:
        print_json(record.model_dump(mode="json"))
    else:
        console.print(record_details(record))


@tasks_app.command("cancel")
@handle_errors
def cancel_task(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The task id to cancel."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Cancel a queued or running task; the process running it stops it within a moment.

    Example: vy-nexus tasks cancel 3f2a9c0d1e4b5a69
    """
    record = _remote_or_local(ctx, task_id, cancel=True)
    if as_json:
        print_json(record.model_dump(mode="json"))
    elif record.state.finished:
        console.print(Text(f"task {record.id} already ended: {record.state.value}"))
    else:
        console.print(Text(f"cancel requested for task {record.id} ({record.state.value})"))


def _remote_or_local(ctx: typer.Context, task_id: str, *, cancel: bool) -> TaskRecord:
    """The record from the server (``--server``) or the store; ``cancel`` asks for the task to be cancelled first."""
    client = state(ctx).client()
    if client is not None:
        with client:
            return TaskRecord.model_validate(client.cancel(task_id) if cancel else client.task(task_id))
    from vy_nexus.store import open_task_store  # SQLAlchemy loads only for the tasks commands

    with open_task_store(state(ctx).settings()) as store:
        return store.request_cancel(task_id) if cancel else store.get(task_id)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
