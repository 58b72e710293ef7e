"""Human approval for destructive commands (``stop``, ``configure KEY VALUE``).

A person's approval comes in one of three ways: ``--yes`` on the command line, an interactive confirmation (only
when stdin and stdout are a terminal), or ``--approval ID`` naming a request approved with
``vy-nexus approvals approve ID``. Without any of them, governance files a pending request and the command fails
with its id. When ``governance.require_approval_for_destructive`` is off, none of this is asked.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import replace

import typer
from pydantic import ValidationError

from vy_nexus.config import Settings, _format_validation_error, read_config_file
from vy_nexus.config_writer import parse_value
from vy_nexus.errors import ConfigError, GovernanceError
from vy_nexus.execution.governance import CONFIG_SET, AdminAction, Governance, Ruling, Verdict


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return "unknown"


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def authorize(
    governance: Governance,
    action: AdminAction,
    *,
    yes: bool,
    approval_id: str | None,
    prompt: str,
    reason: str = "",
) -> Ruling:
    """Authorize ``action`` for the CLI, asking the person at the terminal when that is possible."""
    user = current_user()
    action = replace(action, actor=f"cli:{user}")
    needs_person = action.destructive and governance.settings.require_approval_for_destructive
    if yes:
        action = replace(action, approved_by=f"{user} (--yes)")
    elif needs_person and approval_id is None and interactive():
        if not typer.confirm(prompt, default=False):
            governance.record(action, Ruling(Verdict.DENIED, "cli_confirmation", f"{user} declined at the prompt"))
            raise GovernanceError(f"{action.kind} cancelled: not confirmed", policy="cli_confirmation")
        action = replace(action, approved_by=f"{user} (interactive confirmation)")
    return governance.authorize(action, approval_id=approval_id, reason=reason)


def check_config_change(settings: Settings, key: str, value: str) -> None:
    """``ConfigError`` when setting ``key`` to ``value`` would make the config invalid (nothing is written), so a
    bad value fails before anyone is asked to approve it."""
    data = read_config_file(settings.config_file)
    node = data
    *sections, last = key.split(".")
    for part in sections:
        child = node.get(part)
        node[part] = child = child if isinstance(child, dict) else {}
        node = child
    node[last] = parse_value(value)
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, f"{settings.config_file} (after setting {key})")) from exc


def authorize_config_change(settings: Settings, key: str, value: str, *, yes: bool, approval_id: str | None) -> None:
    """``vy-nexus configure KEY VALUE`` is destructive: the change must be approved before it is written."""
    check_config_change(settings, key, value)
    governance = Governance.from_settings(settings)
    action = AdminAction(CONFIG_SET, key, {"value": value})
    authorize(governance, action, yes=yes, approval_id=approval_id, prompt=f"Set {key} to {value!r}?")
