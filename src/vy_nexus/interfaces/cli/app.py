"""The Typer application: the global options; the commands load on first use (lazy_group.py, catalog.py)."""

from __future__ import annotations

import typer

from vy_nexus.interfaces.cli.cli_state import CliState
from vy_nexus.interfaces.cli.lazy_group import LazyGroup

app = typer.Typer(
    name="vy-nexus",
    cls=LazyGroup,
    help="MOIE-OS: route tasks to the right AI experts, run them, observe everything. Local-first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from vy_nexus import __version__

        typer.echo(f"vy-nexus {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: str | None = typer.Option(
        None, "--home", envvar="VY_NEXUS_HOME", help="Home directory (config, logs, metrics, state, experts)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="URL of a running vy-nexus server: run, route, tasks, experts, approvals, status use it"
        " (key from $VY_NEXUS_API_KEY).",
    ),
) -> None:
    ctx.obj = CliState(home=home, server=server)


def main() -> None:
    app()
