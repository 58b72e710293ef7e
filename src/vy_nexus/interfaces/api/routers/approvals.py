"""Approval requests for destructive actions: list them, read one, approve or deny one. An id that names no
request is a ``404``; deciding a request that is no longer pending (approved, denied, used or expired) is a
``409`` saying what it is now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from vy_nexus.execution.approvals import Approval
from vy_nexus.interfaces.api.deps import Actor, System, api_key
from vy_nexus.interfaces.api.schemas import ApprovalDecision

router = APIRouter(tags=["approvals"], dependencies=[Depends(api_key)])


@router.get("/api/approvals", response_model=list[Approval])
def list_approvals(
    system: System, include_all: Annotated[bool, Query(alias="all", description="Not only pending ones.")] = False
) -> list[Approval]:
    return system.governance.approvals.all(None if include_all else "pending")


@router.get("/api/approvals/{approval_id}", response_model=Approval)
def get_approval(system: System, approval_id: str) -> Approval:
    """One request, whatever its status (a client waiting for a person's decision polls it)."""
    return system.governance.approvals.get(approval_id)


@router.post("/api/approvals/{approval_id}", response_model=Approval)
def decide(system: System, who: Actor, approval_id: str, body: ApprovalDecision) -> Approval:
    """Approve or deny a pending request; the action it names may then run once with its ``approval_id``."""
    return system.governance.decide_approval(approval_id, approve=body.decision == "approve", by=who, note=body.note)
