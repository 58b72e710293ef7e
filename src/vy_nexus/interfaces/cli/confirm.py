"""How the CLI gives a person's approval to destructive commands (``stop``, ``configure KEY VALUE``).

``--yes`` approves up front; otherwise, when stdin and stdout are a terminal, the person is asked at a prompt;
``--approval ID`` names a request approved with ``vy-nexus approvals approve ID``. The decision itself is
``vy_nexus.admin``'s, shared with every other interface.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass

import typer

from vy_nexus.admin import Confirm


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return "unknown"


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@dataclass(frozen=True, slots=True)
class CliApproval:
    """The ``actor``, ``approved_by`` and ``confirm`` arguments of ``vy_nexus.admin`` for this command line."""

    actor: str
    approved_by: str | None
    confirm: Confirm | None


def cli_approval(yes: bool) -> CliApproval:
    user = current_user()

    def ask(question: str) -> str | None:
        return f"{user} (interactive confirmation)" if typer.confirm(question, default=False) else None

    return CliApproval(
        actor=f"cli:{user}",
        approved_by=f"{user} (--yes)" if yes else None,
        confirm=ask if interactive() else None,
    )
