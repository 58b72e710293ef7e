"""Foundation commands: ``stop`` (the kill switch), ``pulse`` (the heartbeat) and ``approvals`` (governance)."""

from __future__ import annotations

import json
import math
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from vy_nexus.admin import request_stop
from vy_nexus.config import LONGEST_WAIT_SECONDS
from vy_nexus.execution.approvals import Approval
from vy_nexus.execution.governance import Governance
from vy_nexus.foundation.default_state import default_state
from vy_nexus.foundation.kill_switch import StopRequest, sigterm_requests_shutdown
from vy_nexus.foundation.pulse import BeatResult, describe
from vy_nexus.foundation.safety import Severity
from vy_nexus.foundation.state import StateStore
from vy_nexus.interfaces.cli.common import console, handle_errors, print_json, state
from vy_nexus.interfaces.cli.confirm import cli_approval, current_user

APPROVAL_COLUMNS = ("id", "status", "action", "target", "params", "requested_by")


def _minutes(value: float | None) -> float | None:
    """``--every``: click's range check lets NaN through (every comparison with it is false), and a heartbeat
    waiting NaN minutes would beat without pause."""
    if value is not None and math.isnan(value):
        raise typer.BadParameter("nan is not a number of minutes")
    return value


APPROVALS_ON_ONE_LINE = 120
"""Below this many columns each request takes three lines: six columns folded its text into a word per line."""


def approvals_view(approvals: list[Approval], width: int) -> Table:
    """A table on a wide terminal; on a narrow one, per request: id, status, action and target, then who asked,
    then the parameters (user text, shown literally)."""
    if width >= APPROVALS_ON_ONE_LINE:
        table = Table(title="approval requests", header_style="bold")
        for column in APPROVAL_COLUMNS:
            table.add_column(column, overflow="fold", no_wrap=column in ("id", "status", "action"))
        for approval in approvals:
            params = json.dumps(approval.params, ensure_ascii=False)
            table.add_row(approval.id, approval.status, approval.action, approval.target, params, approval.requested_by)
        return table
    table = Table(title="approval requests", show_header=False, box=None, pad_edge=False, title_justify="left")
    table.add_column(overflow="fold")
    for approval in approvals:
        table.add_row(
            Text.assemble(
                (approval.id, "bold"),
                f"  {approval.status}  {approval.action} → ",
                Text(approval.target),
                "\n  requested by ",
                Text(approval.requested_by),
                "\n  params ",
                Text(json.dumps(approval.params, ensure_ascii=False)),
            )
        )
    return table


def _beat_line(result: BeatResult) -> Text:
    if result.action == "complete":
        return Text(f"phase {result.phase}: every phase holds")
    if result.action == "advanced":
        return Text(f"phase {result.phase} holds; now in phase {result.advanced_to}")
    verification = result.verification
    assert verification is not None
    mark = ("✓", "green") if verification.passed else ("✗", "red")
    line = Text.assemble(mark, f" phase {result.phase} · job {result.job_id}: {verification.summary()}")
    if not verification.passed and verification.stderr.strip():
        line.append(f"\n  {verification.stderr.strip().splitlines()[-1]}", style="dim")
    if result.advanced_to is not None:
        line.append(f"\nphase {result.phase} holds; now in phase {result.advanced_to}", style="bold")
    return line


def _status_table(info: dict[str, Any]) -> Table:
    meta = info["meta"]
    table = Table(
        title=f"{meta['project']} · phase {meta['current_phase']} · last heartbeat {meta['last_heartbeat'] or 'never'}",
        header_style="bold",
    )
    for column in ("phase", "job", "task", "status", "last result"):
        table.add_column(column, overflow="fold")
    for phase in info["phases"]:
        marker = "▶ " if phase["current"] else ""
        label = Text(f"{marker}{phase['id']} {phase['name']}")
        if phase["holds"]:
            label.append(" (holds)", style="green")
        for index, job in enumerate(phase["jobs"]):
            colour = {"completed": "green", "cyclic": "cyan"}.get(job["status"], "yellow")
            table.add_row(
                label if index == 0 else "",
                job["id"],
                job["task"],
                Text(job["status"], style=colour),
                job["last_result"] or "",
            )
    if meta.get("last_shutdown_reason"):
        table.caption = f"last shutdown: {meta['last_shutdown_reason']} ({meta['last_shutdown_at']})"
    return table


def _approval_row(approval: Approval) -> dict[str, Any]:
    return approval.as_dict()


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def stop(
        ctx: typer.Context,
        reason: str = typer.Option("stop requested from the command line", "--reason", "-r", help="Why."),
        yes: bool = typer.Option(False, "--yes", "-y", help="You approve this shutdown (destructive action)."),
        approval: str | None = typer.Option(None, "--approval", help="Use an approved request (vy-nexus approvals)."),
        as_json: bool = typer.Option(False, "--json", help="Print the request as JSON."),
    ) -> None:
        """Kill switch: ask every running vy-nexus of this home to shut down gracefully.

        Writes <home>/STOP; running systems (and `pulse --every`) notice it within safety.stop_poll_seconds, stop
        taking tasks, let running ones finish (cancelled after safety.grace_period_seconds) and record the reason.
        Destructive, so it needs approval: --yes, an interactive confirmation, or --approval ID.

        A background server (`vy-nexus start`) is waited for and its pid file removed.

        Example: vy-nexus stop --reason "maintenance" --yes
        """
        settings = state(ctx).settings()
        who = cli_approval(yes)
        notice = request_stop(
            settings, reason, actor=who.actor, approved_by=who.approved_by, approval_id=approval, confirm=who.confirm
        )
        from vy_nexus.interfaces.api.server import await_stop  # httpx loads only for stop

        server = await_stop(settings)
        if as_json:
            print_json({"stop_file": str(StopRequest(settings.home).path), "reason": notice.reason, "server": server})
            return
        console.print(
            f"stop requested: running vy-nexus processes of {settings.home} will shut down ({notice.reason})",
            highlight=False,
        )
        if server.get("stopped"):
            console.print(f"server stopped ({server['url']}, pid {server['pid']})", highlight=False)
        elif server.get("stale_pid_file_removed"):
            console.print("removed a stale server pid file (its process was gone)", highlight=False)

    @app.command()
    @handle_errors
    def pulse(
        ctx: typer.Context,
        every: float | None = typer.Option(
            None,
            "--every",
            min=0.0001,
            max=LONGEST_WAIT_SECONDS // 60,
            callback=_minutes,
            help="Beat every MINUTES until stopped (vy-nexus stop, SIGTERM, Ctrl-C).",
        ),
        loop: bool = typer.Option(False, "--loop", help="Beat every heartbeat.interval_minutes until stopped."),
        show_status: bool = typer.Option(False, "--status", help="Show phases and jobs; run nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Heartbeat: verify the current phase's first pending job; advance the phase when all its jobs hold.

        Verification commands run without a shell in the home directory, with heartbeat.verification_timeout_seconds
        as the limit; their output goes to the journal (pulse.verified events). With --every/--loop and --json, each
        beat is printed as one JSON line.

        Example: vy-nexus pulse --status
        """
        if show_status:
            info = describe(StateStore(state(ctx).settings().state_file, default=default_state).load())
            if as_json:
                print_json(info)
            else:
                console.print(_status_table(info))
            return
        system = state(ctx).system()
        if every is None and loop:
            every = system.settings.heartbeat.interval_minutes

        def show(result: BeatResult) -> None:
            if as_json and every is not None:  # a loop prints one JSON object per line
                typer.echo(json.dumps(result.as_dict(), default=str, ensure_ascii=False))
            elif as_json:
                print_json(result.as_dict())
            else:
                console.print(_beat_line(result))

        with system:
            heartbeat = system.heartbeat()
            if every is None:
                beat = heartbeat.beat()
                show(beat)
                if beat.verification is not None and not beat.verification.passed:
                    raise typer.Exit(1)  # scripts (cron) see that the job does not hold yet
                return
            with sigterm_requests_shutdown(system.safety):
                try:
                    heartbeat.run(
                        every * 60.0,
                        system.safety.wait,
                        on_beat=show,
                        on_error=lambda exc: system.safety.report(str(exc), Severity.HIGH, component="heartbeat"),
                    )
                except KeyboardInterrupt:
                    system.safety.request_shutdown("interrupted (Ctrl-C)")
            if system.safety.shutting_down and not as_json:
                console.print(f"heartbeat stopped: {system.safety.shutdown_reason}", highlight=False)

    approvals_app = typer.Typer(
        help="Approval requests for destructive actions (shutdown, unregistering experts, config changes).\n\n"
        "Example: vy-nexus approvals approve 3f9c2a71b0",
        no_args_is_help=False,
        invoke_without_command=True,
    )

    def _list(ctx: typer.Context, include_all: bool, as_json: bool) -> None:
        client = state(ctx).client()
        if client is not None:
            with client:
                approvals = [Approval.from_dict(item) for item in client.approvals(include_all=include_all)]
        else:
            governance = Governance.from_settings(state(ctx).settings())
            approvals = governance.approvals.all(None if include_all else "pending")
        if as_json:
            print_json({"approvals": [_approval_row(a) for a in approvals]})
            return
        if not approvals:
            console.print("no pending approval requests" if not include_all else "no approval requests")
            return
        console.print(approvals_view(approvals, console.width))

    @approvals_app.callback()
    @handle_errors
    def approvals_root(ctx: typer.Context) -> None:
        """List pending approval requests (same as `approvals list`).

        Example: vy-nexus approvals
        """
        if ctx.invoked_subcommand is None:
            _list(ctx, include_all=False, as_json=False)

    @approvals_app.command("list")
    @handle_errors
    def list_approvals(
        ctx: typer.Context,
        include_all: bool = typer.Option(False, "--all", help="Include decided, used and expired requests."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List approval requests (pending ones unless --all).

        Example: vy-nexus approvals list --all --json
        """
        _list(ctx, include_all, as_json)

    def _decide(ctx: typer.Context, approval_id: str, approve: bool, note: str | None, as_json: bool) -> None:
        client = state(ctx).client()
        if client is not None:
            with client:
                approval = Approval.from_dict(client.decide(approval_id, approve=approve, note=note))
        else:
            governance = Governance.from_settings(state(ctx).settings())
            approval = governance.decide_approval(approval_id, approve=approve, by=f"cli:{current_user()}", note=note)
        if as_json:
            print_json(_approval_row(approval))
            return
        console.print(f"{approval.id}: {approval.action} of '{approval.target}' {approval.status}", highlight=False)
        if approve:
            console.print(f"now repeat the command with --approval {approval.id}", highlight=False)

    @approvals_app.command("approve")
    @handle_errors
    def approve(
        ctx: typer.Context,
        approval_id: str = typer.Argument(..., help="The request id (vy-nexus approvals list)."),
        note: str | None = typer.Option(None, "--note", help="Why you approve."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Approve a pending request; the action it names may then run once with --approval ID.

        Example: vy-nexus approvals approve 3f9c2a71b0
        """
        _decide(ctx, approval_id, True, note, as_json)

    @approvals_app.command("deny")
    @handle_errors
    def deny(
        ctx: typer.Context,
        approval_id: str = typer.Argument(..., help="The request id (vy-nexus approvals list)."),
        note: str | None = typer.Option(None, "--note", help="Why you deny."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Deny a pending request.

        Example: vy-nexus approvals deny 3f9c2a71b0 --note "not during the demo"
        """
        _decide(ctx, approval_id, False, note, as_json)

    app.add_typer(approvals_app, name="approvals")
