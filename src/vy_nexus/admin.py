"""Administrative actions every interface shares: ask the running systems of a home to stop, change a config key.

Both are destructive, so governance decides first (``governance.require_approval_for_destructive``). A person's
approval comes one of three ways: ``approved_by`` (given up front, e.g. ``--yes``), ``confirm`` (a person asked right
now, e.g. a terminal prompt; the caller passes it only when someone can answer), or ``approval_id`` (a request
approved earlier with ``vy-nexus approvals approve ID``). Without any of them governance files a pending request and
the ``GovernanceError`` carries its id.

``actor`` reads ``channel:user`` (``cli:alice``); a refusal at the prompt is audited under ``<channel>_confirmation``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vy_nexus.config import Settings, get_key
from vy_nexus.config_writer import prepare_config_edit, set_config_value
from vy_nexus.errors import GovernanceError
from vy_nexus.execution.governance import CONFIG_SET, SHUTDOWN, AdminAction, Governance, Ruling, Verdict
from vy_nexus.foundation.kill_switch import StopNotice, StopRequest

Confirm = Callable[[str], str | None]
"""Asks a person a yes/no question; returns who approved (recorded in the audit log), or ``None`` for no."""


@dataclass(frozen=True, slots=True)
class ConfigChange:
    key: str
    previous: Any
    value: Any
    path: Path


def authorize(
    governance: Governance,
    action: AdminAction,
    *,
    approval_id: str | None = None,
    confirm: Confirm | None = None,
    question: str = "",
    reason: str = "",
) -> Ruling:
    """Let governance decide ``action``, asking ``confirm`` first when a person's approval is needed and missing."""
    needs_person = action.destructive and governance.settings.require_approval_for_destructive
    if needs_person and action.approved_by is None and approval_id is None and confirm is not None:
        approved_by = confirm(question or f"Allow {action.kind} of '{action.target}'?")
        if approved_by is None:
            policy = f"{action.actor.partition(':')[0]}_confirmation"
            governance.record(action, Ruling(Verdict.DENIED, policy, f"{action.actor} declined when asked"))
            raise GovernanceError(f"{action.kind} cancelled: not confirmed", policy=policy)
        action = replace(action, approved_by=approved_by)
    return governance.authorize(action, approval_id=approval_id, reason=reason)


def request_stop(
    settings: Settings,
    reason: str,
    *,
    actor: str,
    approved_by: str | None = None,
    approval_id: str | None = None,
    confirm: Confirm | None = None,
) -> StopNotice:
    """The kill switch across processes: once governance allows it, write ``<home>/STOP``; every running system of
    that home notices within ``safety.stop_poll_seconds`` and shuts down gracefully."""
    action = AdminAction(SHUTDOWN, "system", {"reason": reason}, actor=actor, approved_by=approved_by)
    governance = Governance.from_settings(settings)
    authorize(
        governance, action, approval_id=approval_id, confirm=confirm, question="Shut down vy-nexus?", reason=reason
    )
    return StopRequest(settings.home).write(reason, requested_by=actor)


def change_config(
    settings: Settings,
    key: str,
    value: Any,
    *,
    actor: str,
    approved_by: str | None = None,
    approval_id: str | None = None,
    confirm: Confirm | None = None,
) -> ConfigChange:
    """Set one config key: validated first (a bad value fails before anyone is asked), then authorized, then
    written atomically (re-read, so an edit made while a person was asked is kept). ``value`` as in
    ``prepare_config_edit``; approvals name it as given."""
    previous = get_key(settings, key)
    path = prepare_config_edit(settings.home, key, value).path
    action = AdminAction(CONFIG_SET, key, {"value": value}, actor=actor, approved_by=approved_by)
    governance = Governance.from_settings(settings)
    authorize(governance, action, approval_id=approval_id, confirm=confirm, question=f"Set {key} to {value!r}?")
    return ConfigChange(key, previous, set_config_value(settings.home, key, value), path)
