"""Experts: list, describe, unregister (governed), and the routing decision for a task (runs nothing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from vy_nexus.interfaces.api.deps import Actor, System, api_key
from vy_nexus.interfaces.api.schemas import ExpertRemoved, RouteRequest

router = APIRouter(tags=["experts"], dependencies=[Depends(api_key)])


def _describe(system: System, expert_id: str) -> dict[str, Any]:
    expert = system.registry.get(expert_id)
    return {**expert.describe(), "source": system.registry.source(expert.id)}


@router.get("/api/experts")
def list_experts(system: System) -> dict[str, Any]:
    """The registered experts, and problems met while loading plugins."""
    return {
        "experts": [_describe(system, expert.id) for expert in system.registry.list()],
        "problems": list(system.registry.problems),
    }


@router.get("/api/experts/{expert_id}")
def get_expert(system: System, expert_id: str) -> dict[str, Any]:
    return _describe(system, expert_id)


@router.delete("/api/experts/{expert_id}", response_model=ExpertRemoved)
def remove_expert(
    system: System,
    who: Actor,
    expert_id: str,
    approval_id: Annotated[str | None, Query(max_length=64, description="An approved request.")] = None,
) -> ExpertRemoved:
    """Unregister an expert. Destructive, so governance decides: without an approval the 403 carries the id of the
    request filed for a person to approve (``POST /api/approvals/{id}``); repeat with ``?approval_id=``."""
    system.unregister_expert(expert_id, actor=who, approval_id=approval_id)
    return ExpertRemoved(id=expert_id)


@router.post("/api/route")
async def route(system: System, body: RouteRequest) -> dict[str, Any]:
    """The decision a submit would execute, as ``vy-nexus route --json``: gating's choice with confidences and the
    reasoning, and governance's ruling on it (its low-confidence fallback included). Runs and records nothing."""
    task = body.to_task(system.settings.cache_dir / "uploads", body.experts)
    preview = await system.apreview(task, top_k=body.top_k)
    return preview.as_dict()
