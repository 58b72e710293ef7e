"""What every CLI command shares: the home directory, building the system, printing, error mapping."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import VyNexusError

if TYPE_CHECKING:
    from vy_nexus.interfaces.client import ApiClient
    from vy_nexus.system import VyNexus

P = ParamSpec("P")
R = TypeVar("R")

# Markup off: every string printed is shown literally (user text such as "[/]" or "notes[draft].txt" included);
# styling is explicit, with Text objects.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


@dataclass
class CliState:
    """Per-invocation state, created by the app callback and found on ``ctx.obj``."""

    home: str | None = None
    """As given (``--home``/``$VY_NEXUS_HOME``): an empty string is an error for ``load_settings`` to name."""
    server: str | None = None

    def settings(self) -> Settings:
        return load_settings(self.home)

    def global_args(self) -> list[str]:
        """The global options of this invocation, to run another command the same way (shell, query)."""
        return [*(["--home", str(self.home)] if self.home else []), *(["--server", self.server] if self.server else [])]

    def client(self) -> ApiClient | None:
        """A client of the server named by ``--server`` (else ``api.server_url``), or ``None``: work in-process."""
        settings = self.settings()
        url = self.server or settings.api.server_url
        if not url:
            return None
        from vy_nexus.interfaces.client import ApiClient  # httpx loads only when a server is named

        return ApiClient(url, os.environ.get(settings.api.key_env))

    def system(self, **kwargs: Any) -> VyNexus:
        from vy_nexus.system import VyNexus  # the whole system loads only for commands that use it

        return VyNexus(self.settings(), **kwargs)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn vy-nexus errors into a one-line message on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except VyNexusError as exc:
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colour, no wrapping."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
