"""``vy-nexus worker``: run expert calls from the Celery broker (executor.kind: celery)."""

from __future__ import annotations

import typer
from rich.text import Text

from vy_nexus.interfaces.cli.common import err_console, handle_errors, state


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def worker(
        ctx: typer.Context,
        queues: str | None = typer.Option(
            None, "--queues", "-Q", help="Comma-separated queues to consume (default: every expert's queue)."
        ),
        concurrency: int | None = typer.Option(
            None, "--concurrency", "-c", min=1, help="Worker processes running calls at once (default: CPUs)."
        ),
        loglevel: str = typer.Option("info", "--loglevel", "-l", help="Celery log level: debug, info, warning."),
    ) -> None:
        """Run experts for a cluster: take expert calls from executor.broker_url and store their results in
        store.url. Uses the same config and experts (built-ins, experts directory, plugins) as the server.

        Example: vy-nexus worker --queues vy-nexus.expert.code --concurrency 2
        """
        from vy_nexus.interfaces.worker import run_worker

        def waiting(message: str) -> None:  # the message holds config text (the broker URL): printed literally
            err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)

        def ready(names: list[str]) -> None:
            err_console.print(f"vy-nexus worker consuming {', '.join(names)}", highlight=False, markup=False)

        chosen = queues.split(",") if queues is not None else None
        code = run_worker(
            state(ctx).settings(),
            queues=chosen,
            concurrency=concurrency,
            loglevel=loglevel,
            on_waiting=waiting,
            on_ready=ready,
        )
        raise typer.Exit(code)
