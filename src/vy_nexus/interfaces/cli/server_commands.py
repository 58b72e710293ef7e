"""The server: ``serve`` (foreground), ``start`` (background), and ``keys create|list|revoke`` (API keys)."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from vy_nexus.errors import ConfigError
from vy_nexus.interfaces.api.keys import KeyStore, keys_file
from vy_nexus.interfaces.cli.common import console, handle_errors, print_json, state

if TYPE_CHECKING:
    from vy_nexus.interfaces.api.server import TlsFiles


class QueryTarget(StrEnum):
    TASKS = "tasks"
    EXPERTS = "experts"
    METRICS = "metrics"


def _tls(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """The TLS files to serve HTTPS with, given together or not at all."""
    from vy_nexus.interfaces.api.server import TlsFiles

    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise ConfigError(f"{given} needs {missing}: HTTPS takes the certificate and its private key together")
    return TlsFiles(cert, key)


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="API keys for the server: create (shown once), list, revoke.", no_args_is_help=True)

    @app.command()
    @handle_errors
    def serve(
        ctx: typer.Context,
        host: str | None = typer.Option(None, "--host", help="Address to bind (default api.host: 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default api.port: 8000)."),
        tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve HTTPS: the certificate chain (PEM)."),
        tls_key: Path | None = typer.Option(None, "--tls-key", help="Serve HTTPS: its private key (PEM, unencrypted)."),
    ) -> None:
        """Run the REST API (and the OpenAI-compatible /v1) in the foreground until stopped.

        SIGTERM or Ctrl-C stops it gracefully: no new tasks, running ones get safety.grace_period_seconds to finish,
        then it exits 0 (a second signal stops it at once).

        Example: vy-nexus serve --port 8000
        """
        from vy_nexus.interfaces.api.server import serve  # httpx and uvicorn load only to serve

        serve(state(ctx).settings(), host=host, port=port, tls=_tls(tls_cert, tls_key))

    @app.command()
    @handle_errors
    def start(
        ctx: typer.Context,
        host: str | None = typer.Option(None, "--host", help="Address to bind (default api.host: 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default api.port: 8000)."),
        tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve HTTPS: the certificate chain (PEM)."),
        tls_key: Path | None = typer.Option(None, "--tls-key", help="Serve HTTPS: its private key (PEM, unencrypted)."),
    ) -> None:
        """Start the server in the background (pid file in <home>/api/); `vy-nexus stop` stops it.

        Example: vy-nexus start --port 8000
        """
        settings = state(ctx).settings()
        from vy_nexus.interfaces.api.server import start_background

        tls = _tls(tls_cert, tls_key)
        info = start_background(settings, host=host or settings.api.host, port=port or settings.api.port, tls=tls)
        console.print(f"server running at {info.url} (pid {info.pid})", highlight=False)

    @app.command()
    @handle_errors
    def shell(ctx: typer.Context) -> None:
        """An interactive shell (prompt `moie-os>`) with history and tab completion over these commands.

        Example: vy-nexus shell
        """
        from vy_nexus.interfaces.shell import Shell

        cli_state = state(ctx)
        history = cli_state.settings().cache_dir / "shell_history"
        Shell(ctx.find_root().command, cli_state.global_args(), history_file=history).run()

    @app.command()
    @handle_errors
    def query(
        ctx: typer.Context,
        what: QueryTarget = typer.Argument(..., help="tasks, experts or metrics."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The seed's query command: `query tasks` (tasks list), `query experts`, `query metrics` (metrics report).

        Example: vy-nexus query tasks --json
        """
        commands = {"tasks": ["tasks", "list"], "experts": ["experts"], "metrics": ["metrics", "report"]}
        args = [*state(ctx).global_args(), *commands[what.value], *(["--json"] if as_json else [])]
        ctx.find_root().command.main(args, prog_name="vy-nexus", standalone_mode=False)

    @keys_app.command("create")
    @handle_errors
    def create(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Who or what the key is for (letters, digits, . _ - @ :)."),
        as_json: bool = typer.Option(False, "--json", help="Print the key as JSON."),
    ) -> None:
        """Create an API key. The key is printed once; only its hash is kept.

        Example: vy-nexus keys create ci-bot
        """
        new = KeyStore(keys_file(state(ctx).settings().home)).create(name)
        if as_json:
            print_json({**new.record.public(), "key": new.secret})
            return
        console.print(f"key {new.record.id} ({name}) — shown once, keep it:", highlight=False)
        typer.echo(new.secret)

    @keys_app.command("list")
    @handle_errors
    def list_keys(
        ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON.")
    ) -> None:
        """List API keys (never the keys themselves)."""
        records = KeyStore(keys_file(state(ctx).settings().home)).all()
        if as_json:
            print_json({"keys": [record.public() for record in records]})
            return
        table = Table(title=f"{len(records)} API keys", header_style="bold")
        for column in ("id", "name", "created (UTC)", "revoked (UTC)"):
            table.add_column(column)
        for record in records:
            table.add_row(record.id, record.name, _when(record.created_at), _when(record.revoked_at))
        console.print(table)

    @keys_app.command("revoke")
    @handle_errors
    def revoke(ctx: typer.Context, key: str = typer.Argument(..., help="The key's id or name.")) -> None:
        """Revoke an API key: the server refuses it from its next request on."""
        record = KeyStore(keys_file(state(ctx).settings().home)).revoke(key)
        console.print(f"revoked key {record.id} ({record.name})", highlight=False)

    app.add_typer(keys_app, name="keys")
