"""The per-invocation state of the CLI (``--home``, ``--server``) and how a command finds it: no rich, no pydantic,
so the root app that creates it stays cheap to import."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from vy_nexus.config import Settings
    from vy_nexus.interfaces.client import ApiClient
    from vy_nexus.system import VyNexus


@dataclass
class CliState:
    """Per-invocation state, created by the app callback and found on ``ctx.obj``."""

    home: str | None = None
    """As given (``--home``/``$VY_NEXUS_HOME``): an empty string is an error for ``load_settings`` to name."""
    server: str | None = None

    def settings(self) -> Settings:
        from vy_nexus.config import load_settings  # pydantic loads only for commands that read settings

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
