"""Approval requests for destructive actions, kept in ``<home>/governance/approvals.json``.

A request is ``pending`` until a person approves or denies it (``vy-nexus approvals approve|deny ID``). An approved
request is single-use: the action it names (same action, target and parameters) consumes it. Requests expire after
``governance.approval_ttl_seconds``. The file is read and written under a file lock, atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from vy_nexus.errors import ApprovalNotFoundError, ApprovalNotPendingError, GovernanceError, NextStep, StateError
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.foundation.file_lock import FileGuard

Status = Literal["pending", "approved", "denied", "consumed", "expired"]


if TYPE_CHECKING:
    from pydantic import TypeAdapter


@dataclass(kw_only=True)
class Approval:
    """One request. A dataclass: governance imports it on every command; pydantic checks it only where it comes from
    outside (the file, a server's reply: ``from_dict``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    id: str
    action: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    requested_by: str = "unknown"
    requested_at: float
    status: Status = "pending"
    decided_by: str | None = None
    decided_at: float | None = None
    note: str | None = None

    def matches(self, action: str, target: str, params: dict[str, Any]) -> bool:
        return self.action == action and self.target == target and self.params == params

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Approval:
        """An approval from JSON, checked (``pydantic.ValidationError`` names what is wrong)."""
        approval: Approval = _adapter().validate_python(data)
        return approval


def _unknown(approval_id: str) -> ApprovalNotFoundError:
    return ApprovalNotFoundError(
        f"no approval request with id '{approval_id}'", policy="approval", next_step=NextStep.LIST_APPROVALS
    )


@functools.cache
def _adapter() -> TypeAdapter[Approval]:
    from pydantic import TypeAdapter

    return TypeAdapter(Approval)


@functools.cache
def _list_adapter() -> TypeAdapter[list[Approval]]:
    from pydantic import TypeAdapter

    return TypeAdapter(list[Approval])


class ApprovalStore:
    def __init__(
        self,
        path: Path,
        *,
        ttl_seconds: float = 86400.0,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 10.0,
    ) -> None:
        self.path = path
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._guard = FileGuard(path, lock_timeout)

    def request(
        self, action: str, target: str, params: dict[str, Any], *, reason: str = "", requested_by: str = "unknown"
    ) -> Approval:
        """A pending request for this exact action; an identical pending one is reused instead of duplicated."""
        with self._edit() as approvals:
            for existing in approvals:
                if existing.status == "pending" and existing.matches(action, target, params):
                    return existing
            approval = Approval(
                id=uuid.uuid4().hex[:10],
                action=action,
                target=target,
                params=params,
                reason=reason,
                requested_by=requested_by,
                requested_at=self._clock(),
            )
            approvals.append(approval)
            return approval

    def get(self, approval_id: str) -> Approval:
        for approval in self.all():
            if approval.id == approval_id:
                return approval
        raise _unknown(approval_id)

    def all(self, status: Status | None = None) -> list[Approval]:
        with self._locked():
            approvals = self._expire(self._read())
        return [a for a in approvals if status is None or a.status == status]

    def approve(self, approval_id: str, *, by: str, note: str | None = None) -> Approval:
        return self._decide(approval_id, "approved", by=by, note=note)

    def deny(self, approval_id: str, *, by: str, note: str | None = None) -> Approval:
        return self._decide(approval_id, "denied", by=by, note=note)

    def consume(self, approval_id: str, action: str, target: str, params: dict[str, Any]) -> Approval:
        """Use an approved request for the action it names; afterwards it cannot be used again."""
        with self._edit() as approvals:
            approval = self._find(approvals, approval_id)
            if not approval.matches(action, target, params):
                raise GovernanceError(
                    f"approval '{approval_id}' is for {approval.action} of '{approval.target}' {approval.params},"
                    f" not {action} of '{target}' {params}: an approval covers only the exact action it names",
                    policy="approval",
                    approval_id=approval_id,
                    next_step=NextStep.FILE_REQUEST_FOR_THIS,
                )
            if approval.status != "approved":
                why, step = self._next_step(approval)
                raise GovernanceError(
                    f"approval '{approval_id}' is {approval.status}, not approved{why}",
                    verdict="needs_approval" if approval.status == "pending" else "denied",
                    policy="approval",
                    approval_id=approval_id,
                    next_step=step,
                )
            approval.status = "consumed"
            return approval

    def _decide(self, approval_id: str, status: Status, *, by: str, note: str | None) -> Approval:
        with self._edit() as approvals:
            approval = self._find(approvals, approval_id)
            if approval.status != "pending":
                why, step = self._next_step(approval)
                raise ApprovalNotPendingError(
                    f"approval '{approval_id}' is already {approval.status}{why}",
                    policy="approval",
                    approval_id=approval_id,
                    next_step=step,
                )
            approval.status = status
            approval.decided_by = by
            approval.decided_at = self._clock()
            approval.note = note
            return approval

    def _next_step(self, approval: Approval) -> tuple[str, NextStep]:
        """Why the request cannot serve as asked (``": ..."``, or nothing when its status says it all) and what the
        person holding it can do now; each interface words the step (``NextStep``)."""
        if approval.status == "pending":
            return "", NextStep.APPROVE_FIRST
        if approval.status == "approved":
            return "", NextStep.REPEAT_WITH_APPROVAL
        if approval.status == "consumed":
            return ": an approval is used once", NextStep.FILE_NEW_REQUEST
        if approval.status == "expired":
            why = f": requests expire after {self.ttl_seconds:g} s (governance.approval_ttl_seconds)"
            return why, NextStep.FILE_NEW_REQUEST
        decided = f" by {approval.decided_by}" if approval.decided_by else ""
        return f": it was denied{decided}; a decided request cannot change", NextStep.FILE_NEW_REQUEST

    def _find(self, approvals: list[Approval], approval_id: str) -> Approval:
        for approval in approvals:
            if approval.id == approval_id:
                return approval
        raise _unknown(approval_id)

    def _expire(self, approvals: list[Approval]) -> list[Approval]:
        now = self._clock()
        for approval in approvals:
            if approval.status in ("pending", "approved") and now - approval.requested_at > self.ttl_seconds:
                approval.status = "expired"
        return approvals

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self._guard.locked()

    @contextlib.contextmanager
    def _edit(self) -> Iterator[list[Approval]]:
        with self._locked():
            approvals = self._expire(self._read())
            yield approvals
            payload = {"approvals": [approval.as_dict() for approval in approvals]}
            atomic_write_text(self.path, json.dumps(payload, indent=2) + "\n")

    def _read(self) -> list[Approval]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        from pydantic import ValidationError

        try:
            loaded = json.loads(data.decode("utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            return _list_adapter().validate_python(loaded.get("approvals", []))
        except (UnicodeDecodeError, RecursionError, ValueError, ValidationError) as exc:
            raise StateError(
                f"{self.path} is corrupt ({exc.__class__.__name__}); fix or remove it to reset pending approvals"
            ) from exc
