"""Core commands: run, route, experts, status, configure."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from vy_nexus.errors import TaskError, failure_error
from vy_nexus.execution.aggregation import AGGREGATORS
from vy_nexus.execution.governance import RoutingPreview
from vy_nexus.interfaces.cli.common import console, err_console, handle_errors, print_json, state
from vy_nexus.observability.timeutil import parse_deadline
from vy_nexus.payloads import build_task, parse_context, parse_payload, read_limited, read_payload
from vy_nexus.tasks import AggregatedResult, RoutingDecision, Task

# Imported inside the commands that use them, so that `route` does not load them: the result rendering and token
# streaming of `run`, the config writer (ruamel.yaml) and approvals of `configure`, the client side of --server.


def task_from_options(
    text: str,
    task_type: str,
    input_path: str | None,
    experts: list[str] | None,
    *,
    context: str | None = None,
    priority: str | None = None,
    deadline: str | None = None,
) -> Task:
    """``--input PATH`` reads a file; ``--input -`` reads stdin. ``--context`` is a JSON object; ``--deadline`` a
    duration from now or an ISO time."""
    payload: Any = None
    if input_path == "-":
        stdin = typer.get_binary_stream("stdin")
        if stdin.isatty():
            err_console.print("reading the input from the terminal: type or paste it, then press Ctrl-D on a new line")
        payload = parse_payload(read_limited(stdin, name="stdin"), filename="stdin")
    elif input_path is not None:
        payload = read_payload(input_path)
    return build_task(
        text,
        task_type=task_type,
        payload=payload,
        experts=experts,
        context=None if context is None else parse_context(context),
        priority=priority,
        deadline=None if deadline is None else parse_deadline(deadline),
    )


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested status data as ``("routing.cache.hits", "3")`` rows for a two-column table."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, f"{name}."))
        elif isinstance(value, list):
            rows.append((name, ", ".join(str(item) for item in value) or "-"))
        else:
            rows.append((name, "-" if value is None else str(value)))
    return rows


def _plain(value: Any) -> Any:
    """A whole float as an int (``600``, not ``600.0``): as the person typed it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def render_decision(decision: RoutingDecision) -> Group:
    """The chosen experts as a table, then the strategy and the reason on lines of their own (a reason is often
    wider than the table)."""
    table = Table(title="Routing decision", show_header=True, header_style="bold")
    table.add_column("expert")
    table.add_column("confidence", justify="right")
    for expert_id in decision.expert_ids:
        table.add_row(expert_id, f"{decision.confidences.get(expert_id, 0.0):.2f}")
    strategy = (
        f"strategy: {decision.strategy}{' (out of scope)' if decision.out_of_scope else ''}"
        f"{' (fallback)' if decision.fallback else ''}"
        f"{' · cached' if decision.cache_hit else ''} · {decision.latency_ms:.2f} ms"
    )
    return Group(table, Text(strategy, style="dim"), Text(decision.reason))


def render_ruling(preview: RoutingPreview) -> Text:
    ruling = preview.ruling
    if preview.amended:
        routed = ", ".join(f"{e} ({c:.2f})" for e, c in preview.routed.confidences.items())
        return Text(f"governance ({ruling.policy}): gating chose {routed}; {ruling.reason}")
    if not ruling.proceeds:
        return Text.assemble(
            ("run would not start:", "bold red"), f" {ruling.verdict.value} by {ruling.policy}: {ruling.reason}"
        )
    return Text(f"governance: {ruling.verdict.value} ({ruling.reason})", style="dim")


def render_result(
    result: AggregatedResult, streamed: list[str] | None = None, shown: RoutingDecision | None = None
) -> None:
    """``shown``: the decision already printed while the task ran; printed again only when governance changed it."""
    from vy_nexus.interfaces.cli.render import render_output
    from vy_nexus.interfaces.cli.token_stream import backends_used, truncation_notes

    if result.decision is not None and (shown is None or shown.expert_ids != result.decision.expert_ids):
        console.print(render_decision(result.decision))
    for item in result.results:
        if not item.ok:
            console.print(Text.assemble((f"✗ {item.expert_id}", "red"), f": {item.error}"))
    if not result.ok:
        console.print(Text.assemble(("no result:", "bold red"), f" all {len(result.results)} chosen expert(s) failed"))
        return
    title = f"{', '.join(result.experts)} · {result.method} · confidence {result.confidence:.2f}"
    console.rule(title, style="dim")
    output = result.output
    if result.method == "ensemble" and isinstance(output, dict) and list(output) == result.experts:
        for expert_id, part in output.items():  # one section per expert, not one JSON blob
            console.rule(Text(expert_id), style="dim", align="left")
            console.print(render_output(part, streamed or ()))
    else:
        console.print(render_output(output, streamed or ()))
    for used in backends_used(result):
        console.print(Text(f"answered by {used}", style="dim"))
    for note in truncation_notes(result):
        console.print(Text(note, style="yellow"))


def experts_table(rows: list[dict[str, Any]]) -> Table:
    """One expert to a row, its id unbroken beside the details: 80 columns are enough, wider ones are not wasted."""
    table = Table(title=f"{len(rows)} experts", show_header=False, box=None, pad_edge=False, padding=(0, 2, 1, 0))
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("details", overflow="fold")
    for row in rows:
        details = Text(f"{row['name']} · v{row['version']} · priority {row['priority']} · {row['source']}\n")
        details.append(", ".join(row["capabilities"]), style="dim")
        table.add_row(Text(row["id"]), details)
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def run(
        ctx: typer.Context,
        text: str = typer.Argument(..., help="What you want done, in plain words."),
        task_type: str = typer.Option(
            "general", "--type", "-t", help="Task type hint: code, research, writing, data..."
        ),
        input_path: str | None = typer.Option(
            None, "--input", "-i", help="Input payload file (JSON parsed; '-' = stdin)."
        ),
        experts: int = typer.Option(1, "--experts", "-n", min=1, max=16, help="How many experts to consult."),
        expert: list[str] | None = typer.Option(None, "--expert", "-e", help="Use this expert (repeatable)."),
        aggregation: str | None = typer.Option(
            None, "--aggregation", "-a", help=f"How to combine experts: {', '.join(AGGREGATORS)}."
        ),
        context: str | None = typer.Option(
            None, "--context", "-c", help="The task context, a JSON object: '{\"explain\": true}'."
        ),
        priority: str | None = typer.Option(None, "--priority", help="low, medium (default), high or critical."),
        deadline: str | None = typer.Option(
            None, "--deadline", help="Finish by: a duration from now (30s, 5m) or an ISO time; caps every expert."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Route a task to the best expert(s), run them and print the result.

        Example: vy-nexus run "compute the mean of this csv" --input data.csv
        """
        if aggregation is not None and aggregation not in AGGREGATORS:
            raise TaskError(f"unknown aggregation '{aggregation}'; choose one of {', '.join(AGGREGATORS)}")
        task = task_from_options(
            text, task_type, input_path, expert, context=context, priority=priority, deadline=deadline
        )
        client = state(ctx).client()
        if client is not None:
            from vy_nexus.interfaces.cli import remote

            with client:
                body = remote.task_body(task, expert, experts, aggregation)
                result, streamed = remote.run(client, body, stream=not as_json)
            if as_json:
                print_json(result.as_dict())
            else:
                render_result(result, streamed)
            raise typer.Exit(0 if result.ok else failure_error(result.failure_kind).exit_code)
        from vy_nexus.interfaces.cli.token_stream import RoutingPrinter, TokenPrinter
        from vy_nexus.reasoning.streaming import stream_tokens_to

        with state(ctx).system() as system:
            if as_json:
                result = system.run(task, top_k=experts, aggregation=aggregation)
            else:
                printer = TokenPrinter(console)
                routing = RoutingPrinter(console, render_decision)  # the decision shows before any streamed answer
                unsubscribe = system.events.subscribe(routing)
                try:
                    with stream_tokens_to(printer):
                        result = system.run(task, top_k=experts, aggregation=aggregation)
                finally:
                    unsubscribe()
                    printer.finish()  # an error printed next starts on its own line
        if as_json:
            print_json(result.as_dict())
        else:
            render_result(result, printer.texts, routing.shown)
        if not result.ok:
            raise typer.Exit(failure_error(result.failure_kind).exit_code)

    @app.command()
    @handle_errors
    def route(
        ctx: typer.Context,
        text: str = typer.Argument(..., help="The task text to route."),
        task_type: str = typer.Option("general", "--type", "-t", help="Task type hint."),
        input_path: str | None = typer.Option(
            None, "--input", "-i", help="Input payload file, read as `run` reads it ('-' = stdin)."
        ),
        experts: int = typer.Option(1, "--experts", "-n", min=1, max=16, help="How many experts to choose."),
        context: str | None = typer.Option(
            None, "--context", "-c", help='The task context, a JSON object: \'{"capabilities": ["sql"]}\'.'
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    ) -> None:
        """Show which expert(s) `run` would use for a task, with confidences and the reasoning (governance's
        low-confidence fallback included). Runs nothing.

        Example: vy-nexus route "what does this show" --input sales.csv
        """
        task = task_from_options(text, task_type, input_path, None, context=context)
        client = state(ctx).client()
        if client is not None:
            from vy_nexus.interfaces.cli import remote

            with client:
                preview = remote.preview(client.route(remote.route_body(task, experts)))
        else:  # a preview records nothing: no journal, metrics or task store to load
            preview = state(ctx).system(observe=False).preview(task, top_k=experts)
        if as_json:
            print_json(preview.as_dict())
        else:
            console.print(render_decision(preview.decision))
            console.print(render_ruling(preview), highlight=False)

    @app.command("experts")
    @handle_errors
    def list_experts(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print the experts as JSON."),
    ) -> None:
        """List the registered experts, their capabilities and where each came from.

        Example: vy-nexus experts --json
        """
        client = state(ctx).client()
        if client is not None:
            with client:
                listing = client.experts()
        else:
            system = state(ctx).system()
            rows = [{**e.describe(), "source": system.registry.source(e.id)} for e in system.registry.list()]
            listing = {"experts": rows, "problems": system.registry.problems}
        rows, problems = listing["experts"], listing["problems"]
        if as_json:
            print_json(listing)
            return
        console.print(experts_table(rows))
        for problem in problems:
            console.print(Text(f"! {problem}", style="yellow"))

    @app.command()
    @handle_errors
    def status(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    ) -> None:
        """Show the home directory, experts, routing, reasoning core and executor.

        Example: vy-nexus status
        """
        cli_state = state(ctx)
        client = cli_state.client()
        if client is not None:
            with client:
                info = client.status()
        else:
            from vy_nexus.interfaces.api.server import server_status  # httpx loads only for status

            info = {**cli_state.system(observe=False).status(), "server": server_status(cli_state.settings())}
        if as_json:
            print_json(info)
            return
        table = Table(title="vy-nexus status", show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in flatten(info):
            table.add_row(key, value)
        console.print(table)

    @app.command()
    @handle_errors
    def configure(
        ctx: typer.Context,
        key: str = typer.Argument(..., help="Dotted key, e.g. routing.cache.ttl_seconds."),
        value: str | None = typer.Argument(None, help="New value (YAML scalar). Omit to print the current value."),
        yes: bool = typer.Option(False, "--yes", "-y", help="You approve this change (config changes need approval)."),
        approval: str | None = typer.Option(None, "--approval", help="Use an approved request (vy-nexus approvals)."),
    ) -> None:
        """Read or change one config key; the file is validated, written atomically and keeps its comments.

        A change is destructive (governance.require_approval_for_destructive): confirm it at the prompt, pass
        --yes, or name an approved request with --approval ID.

        Example: vy-nexus configure routing.cache.ttl_seconds 600 --yes
        """
        from vy_nexus.admin import change_config
        from vy_nexus.config import get_key
        from vy_nexus.interfaces.cli.confirm import cli_approval
        from vy_nexus.observability.signals import publish_config_changed

        cli_state = state(ctx)
        if value is None:
            current = get_key(cli_state.settings(), key)
            typer.echo(json.dumps(_plain(current), default=str))
            return
        who = cli_approval(yes)
        change = change_config(
            cli_state.settings(),
            key,
            value,
            actor=who.actor,
            approved_by=who.approved_by,
            approval_id=approval,
            confirm=who.confirm,
        )
        system = cli_state.system()  # built after the change, so it journals with the new settings
        publish_config_changed(system.events, key=key, previous=change.previous, value=change.value, source="cli")
        system.stop("config changed")
        shown = json.dumps(_plain(change.value), default=str)
        console.print(Text.assemble(f"{key} = {shown}  ", (f"({change.path})", "dim")))
