"""Governance: policies that decide whether a task may run and whether an administrative action may happen.

Every policy is a small class in ``Governance.policies`` (append your own) with two methods, ``check_task`` and
``check_action``, each returning a ``Ruling``: ``allowed``, ``denied`` (with a reason), ``throttled`` (the task waits
for a slot) or ``needs_approval``. Policies are asked in order; the first ruling that is not ``allowed`` or
``throttled`` decides. A policy may amend the routing decision (the low-confidence fallback does).

Built-in policies, all numbers from ``governance.*`` in the config:

* ``ConcurrencyPolicy``      max_concurrent_tasks running; up to max_queue_size waiting (throttled); beyond: denied
* ``DurationPolicy``         a task whose deadline has passed is denied; max_task_duration_seconds is enforced by
                             the coordinator
* ``RoutingConfidencePolicy`` below min_routing_confidence: reroute to the general expert, ask, or deny
                             (low_confidence_action)
* ``RetryPolicy``            a resubmitted task (``context["attempt"]``) beyond max_retries is denied
* ``DestructiveActionPolicy`` destructive actions (shutdown, unregistering experts, config changes) need a person's
                             approval when require_approval_for_destructive is on

Every administrative action and its ruling is appended to the audit log; every task ruling is published as a
``task.governed`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from vy_nexus.config import GovernanceSettings, Settings
from vy_nexus.errors import GovernanceError, NextStep
from vy_nexus.events import EventBus, Level
from vy_nexus.execution.admission import AdmissionControl, Load
from vy_nexus.execution.approvals import Approval, ApprovalStore
from vy_nexus.execution.audit import AuditLog
from vy_nexus.tasks import RoutingDecision, Task

GOVERNANCE_DIRNAME = "governance"

SHUTDOWN = "system.shutdown"
UNREGISTER_EXPERT = "expert.unregister"
CONFIG_SET = "config.set"
DESTRUCTIVE_ACTIONS = frozenset({SHUTDOWN, UNREGISTER_EXPERT, CONFIG_SET})
NO_OBJECTION = "no objection"


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    THROTTLED = "throttled"
    NEEDS_APPROVAL = "needs_approval"


# Not ``frozen``: built on every task's hot path, where a frozen dataclass costs 8x to build; treat as read-only.
@dataclass(slots=True)
class Ruling:
    verdict: Verdict
    policy: str
    reason: str
    decision: RoutingDecision | None = None
    """A replacement routing decision, when the policy amended it."""
    checks: tuple[Ruling, ...] = ()
    """On the governance's overall ruling of a task: each policy's own ruling, in the order asked, up to the one that
    decided (their reasons state the limits in force: slots, time allowed, confidence, retries)."""

    @property
    def proceeds(self) -> bool:
        return self.verdict in (Verdict.ALLOWED, Verdict.THROTTLED)

    def as_dict(self) -> dict[str, Any]:
        """``verdict`` (a ``Verdict``, which is its ``str`` value), ``policy``, ``reason``; for a task's overall ruling
        also ``checks`` (those three keys each)."""
        ruling: dict[str, Any] = {"verdict": self.verdict, "policy": self.policy, "reason": self.reason}
        if self.checks:
            ruling["checks"] = [check.as_dict() for check in self.checks]
        return ruling


@dataclass(frozen=True, slots=True)
class RoutingPreview:
    """The routing decision ``submit`` would execute: gating's choice (``routed``) and governance's ruling on it,
    whose ``decision`` replaces it when a policy amended it (the low-confidence fallback)."""

    routed: RoutingDecision
    ruling: Ruling

    @property
    def decision(self) -> RoutingDecision:
        return self.ruling.decision or self.routed

    @property
    def amended(self) -> bool:
        return self.decision.expert_ids != self.routed.expert_ids

    def as_dict(self) -> dict[str, Any]:
        """The executed decision's fields, plus gating's own choice and governance's ruling."""
        return {
            **self.decision.as_dict(),
            "routed": self.routed.as_dict(),
            "amended": self.amended,
            "governance": {
                "verdict": self.ruling.verdict.value,
                "policy": self.ruling.policy,
                "reason": self.ruling.reason,
                "proceeds": self.ruling.proceeds,
            },
        }


# Not ``frozen``: built on every task's hot path, where a frozen dataclass costs 8x to build; treat as read-only.
@dataclass(slots=True)
class TaskRequest:
    task: Task
    decision: RoutingDecision
    load: Load


@dataclass(frozen=True, slots=True)
class AdminAction:
    """An administrative action. ``approved_by`` records a person's confirmation given right now (an interactive
    prompt, ``--yes``); ``approval`` is an approved request from the approvals store."""

    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    actor: str = "unknown"
    approved_by: str | None = None
    approval: Approval | None = None

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_ACTIONS


MAX_CACHED_RULINGS = 256


class Policy:
    """Base class: allows everything. Override one or both methods."""

    name: ClassVar[str] = "policy"
    _allowed: dict[Any, Ruling] | None = None

    def _allowing(self, reason: str, *values: Any) -> Ruling:
        """The shared ``allowed`` ruling whose reason is ``reason.format(*values)``, built once per ``values``: most
        tasks get one of a few, and a ruling is read-only."""
        cache = self._allowed
        if cache is None:
            cache = self._allowed = {}
        key = (reason, *values)
        ruling = cache.get(key)
        if ruling is None:
            if len(cache) >= MAX_CACHED_RULINGS:
                cache.clear()
            ruling = cache[key] = Ruling(Verdict.ALLOWED, self.name, reason.format(*values))
        return ruling

    def check_task(self, request: TaskRequest) -> Ruling:
        return self._allowing(NO_OBJECTION)

    def check_action(self, action: AdminAction) -> Ruling:
        return Ruling(Verdict.ALLOWED, self.name, NO_OBJECTION)


class ConcurrencyPolicy(Policy):
    name = "concurrency"

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue

    def check_task(self, request: TaskRequest) -> Ruling:
        load = request.load
        if load.running < self.max_concurrent:
            return self._allowing("{}/{} running", load.running, self.max_concurrent)
        if load.queued < self.max_queue:
            return Ruling(
                Verdict.THROTTLED,
                self.name,
                f"all {self.max_concurrent} slots busy; waits in the queue ({load.queued + 1}/{self.max_queue})",
            )
        return Ruling(
            Verdict.DENIED,
            self.name,
            f"the task queue is full ({load.running} running, {load.queued} waiting;"
            f" governance.max_queue_size = {self.max_queue})",
        )


class DurationPolicy(Policy):
    name = "duration"

    def __init__(self, max_duration_seconds: float) -> None:
        self.max_duration_seconds = max_duration_seconds

    def check_task(self, request: TaskRequest) -> Ruling:
        deadline = request.task.deadline
        budget = self.max_duration_seconds
        if deadline is None:
            return self._allowing("may run for at most {:.1f} s", budget)
        aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        remaining = (aware - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            return Ruling(Verdict.DENIED, self.name, f"the task's deadline passed {-remaining:.1f} s ago")
        budget = min(budget, remaining)
        return Ruling(Verdict.ALLOWED, self.name, f"may run for at most {budget:.1f} s")


class RoutingConfidencePolicy(Policy):
    name = "routing_confidence"

    def __init__(self, min_confidence: float, action: str, fallback_expert: str) -> None:
        self.min_confidence = min_confidence
        self.action = action
        self.fallback_expert = fallback_expert

    def check_task(self, request: TaskRequest) -> Ruling:
        decision = request.decision
        confidence = decision.confidence
        if decision.strategy == "explicit" or confidence >= self.min_confidence:
            return self._allowing("routing confidence {:.2f} (at least {:.2f})", confidence, self.min_confidence)
        low = (
            f"routing confidence {confidence:.2f} for {', '.join(decision.expert_ids)} is below"
            f" {self.min_confidence:.2f} (governance.min_routing_confidence)"
        )
        if self.action == "deny":
            return Ruling(Verdict.DENIED, self.name, low)
        if self.action == "ask":
            return Ruling(
                Verdict.NEEDS_APPROVAL,
                self.name,
                f"{low}; confirm by naming the expert (e.g. --expert {decision.expert_ids[0]})",
            )
        if decision.expert_ids == [self.fallback_expert]:
            return Ruling(Verdict.ALLOWED, self.name, f"{low}; already with the {self.fallback_expert} expert")
        rerouted = decision.with_changes(
            expert_ids=[self.fallback_expert],
            confidences={self.fallback_expert: confidence},
            fallback=True,
            reason=f"{decision.reason}; {low}, so the {self.fallback_expert} expert takes it",
        )
        return Ruling(Verdict.ALLOWED, self.name, f"{low}; rerouted to {self.fallback_expert}", rerouted)


class RetryPolicy(Policy):
    name = "retries"

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries

    def check_task(self, request: TaskRequest) -> Ruling:
        attempt = request.task.context.get("attempt", 1)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            return Ruling(Verdict.DENIED, self.name, f"context 'attempt' must be a positive integer, got {attempt!r}")
        retries = attempt - 1
        if retries > self.max_retries:
            return Ruling(
                Verdict.DENIED,
                self.name,
                f"this is retry {retries} of the task; governance.max_retries allows {self.max_retries}",
            )
        return self._allowing("retry {} of {}", retries, self.max_retries)


class DestructiveActionPolicy(Policy):
    name = "destructive_action"

    def __init__(self, require_approval: bool) -> None:
        self.require_approval = require_approval

    def check_action(self, action: AdminAction) -> Ruling:
        if not action.destructive:
            return Ruling(Verdict.ALLOWED, self.name, f"{action.kind} is not destructive")
        if not self.require_approval:
            return Ruling(Verdict.ALLOWED, self.name, "governance.require_approval_for_destructive is off")
        if action.approved_by is not None:
            return Ruling(Verdict.ALLOWED, self.name, f"confirmed by {action.approved_by}")
        if action.approval is not None and action.approval.status == "approved":
            return Ruling(
                Verdict.ALLOWED,
                self.name,
                f"approval {action.approval.id} granted by {action.approval.decided_by}",
            )
        return Ruling(Verdict.NEEDS_APPROVAL, self.name, f"{action.kind} of '{action.target}' is destructive")


def _ruling_level(ruling: Ruling, routed: RoutingDecision) -> Level:
    """How loud a task's ruling is in the journal: a plain "allowed" is ``debug`` (every task gets one), a task
    rerouted or kept waiting is ``info``, a refusal ``warn``."""
    if not ruling.proceeds:
        return "warn"
    if ruling.verdict is Verdict.THROTTLED or (ruling.decision is not None and ruling.decision is not routed):
        return "info"
    return "debug"


def default_policies(settings: GovernanceSettings, fallback_expert: str) -> list[Policy]:
    return [
        ConcurrencyPolicy(settings.max_concurrent_tasks, settings.max_queue_size),
        DurationPolicy(settings.max_task_duration_seconds),
        RetryPolicy(settings.max_retries),
        RoutingConfidencePolicy(settings.min_routing_confidence, settings.low_confidence_action, fallback_expert),
        DestructiveActionPolicy(settings.require_approval_for_destructive),
    ]


def governance_dir(settings: Settings) -> Path:
    return settings.home / GOVERNANCE_DIRNAME


class Governance:
    """The policy list, the admission control, the approvals store and the audit log of one home."""

    def __init__(
        self,
        settings: GovernanceSettings,
        *,
        approvals: ApprovalStore,
        audit: AuditLog,
        fallback_expert: str = "general",
        policies: list[Policy] | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.policies: list[Policy] = policies if policies is not None else default_policies(settings, fallback_expert)
        self.admission = AdmissionControl(settings.max_concurrent_tasks, settings.max_queue_size)
        self.approvals = approvals
        self.audit = audit
        self._events = events or EventBus()

    @classmethod
    def from_settings(cls, settings: Settings, events: EventBus | None = None) -> Governance:
        directory = governance_dir(settings)
        return cls(
            settings.governance,
            approvals=ApprovalStore(directory / "approvals.json", ttl_seconds=settings.governance.approval_ttl_seconds),
            audit=AuditLog(directory / "audit.jsonl"),
            fallback_expert=settings.routing.fallback_expert,
            events=events,
        )

    # Tasks -------------------------------------------------------------------------------------------------------

    def check_task(self, task: Task, decision: RoutingDecision) -> Ruling:
        """Ask every policy about a routed task; publishes ``task.governed``. Never raises."""
        final = self.preview_task(task, decision)
        assert final.decision is not None
        level = _ruling_level(final, decision)
        if self._events.wants(level, "task.governed"):
            metadata: dict[str, Any] = {
                "verdict": final.verdict,  # a StrEnum: the str itself, no ``.value`` lookup on the hot path
                "policy": final.policy,
                "reason": final.reason,
                "experts": final.decision.expert_ids,
            }
            if final.decision is not decision:  # amended (a low-confidence fallback): what will run, and why
                metadata["decision"] = final.decision.as_dict()
            self._events.publish(
                "task.governed",
                "governance",
                f"{final.verdict} by {final.policy}: {final.reason}",
                level=level,
                category="decision",
                task_id=task.id,
                metadata=metadata,
            )
        return final

    def preview_task(self, task: Task, decision: RoutingDecision) -> Ruling:
        """What ``check_task`` would rule right now, publishing nothing; the ruling carries the (possibly amended)
        decision. ``vy-nexus route`` shows it, so it names the experts ``run`` would use."""
        load = self.admission.load()
        final: Ruling | None = None
        throttled: Ruling | None = None
        amending: Ruling | None = None
        request = TaskRequest(task, decision, load)
        checks: list[Ruling] = []
        for policy in self.policies:
            ruling = policy.check_task(request)
            checks.append(ruling)  # as_dict keeps its verdict, policy and reason
            if ruling.decision is not None:
                decision = ruling.decision
                request = TaskRequest(task, decision, load)
                amending = ruling
            if ruling.verdict is Verdict.THROTTLED:
                throttled = ruling
            elif not ruling.proceeds:
                final = ruling
                break
        if final is None:
            final = (
                throttled
                or amending
                or Ruling(Verdict.ALLOWED, "all", f"{len(self.policies)} policies allowed the task")
            )
        return Ruling(final.verdict, final.policy, final.reason, decision, tuple(checks))

    def enforce_task(self, task: Task, decision: RoutingDecision) -> RoutingDecision:
        """The (possibly amended) decision when the task may run; ``GovernanceError`` otherwise."""
        ruling = self.rule_task(task, decision)
        assert ruling.decision is not None
        return ruling.decision

    def rule_task(self, task: Task, decision: RoutingDecision) -> Ruling:
        """The ruling, carrying the (possibly amended) decision, when the task may run; ``GovernanceError``
        otherwise."""
        return self.refuse_unless_proceeds(task, self.check_task(task, decision))

    @staticmethod
    def refuse_unless_proceeds(task: Task, ruling: Ruling) -> Ruling:
        """``ruling`` when the task may run (allowed, throttled); ``GovernanceError`` otherwise."""
        if not ruling.proceeds:
            raise GovernanceError(
                f"task refused by governance ({ruling.policy}): {ruling.reason}",
                verdict=ruling.verdict.value,
                policy=ruling.policy,
                task_id=task.id,
            )
        return ruling

    # Administrative actions --------------------------------------------------------------------------------------

    def authorize(self, action: AdminAction, *, approval_id: str | None = None, reason: str = "") -> Ruling:
        """Decide an administrative action and record it in the audit log.

        With ``approval_id`` the approved request is checked against the action and consumed. When approval is
        needed and missing, a pending request is filed and ``GovernanceError`` (verdict ``needs_approval``) carries
        its id; a denial raises ``GovernanceError`` too. Returns the allowing ruling otherwise.
        """
        if approval_id is not None:
            try:
                approval = self.approvals.get(approval_id)
            except GovernanceError as exc:
                self.record(action, Ruling(Verdict.DENIED, "approval", str(exc)), approval_id)
                # The action is what is refused (403 over HTTP), not a lookup that found nothing (404).
                raise GovernanceError(exc.message, policy="approval", next_step=exc.next_step) from exc
            action = replace(action, approval=approval)
        ruling = self._decide(action)
        if ruling.verdict is Verdict.NEEDS_APPROVAL and approval_id is None:
            pending = self.approvals.request(
                action.kind, action.target, action.params, reason=reason, requested_by=action.actor
            )
            self.record(action, ruling, pending.id)
            raise GovernanceError(
                f"{ruling.reason}: it needs approval",
                verdict=Verdict.NEEDS_APPROVAL.value,
                policy=ruling.policy,
                approval_id=pending.id,
                next_step=NextStep.APPROVE_THEN_REPEAT,
            )
        if not ruling.proceeds and ruling.verdict is not Verdict.NEEDS_APPROVAL:
            self.record(action, ruling, approval_id)
            raise GovernanceError(
                f"{action.kind} of '{action.target}' refused ({ruling.policy}): {ruling.reason}",
                verdict=ruling.verdict.value,
                policy=ruling.policy,
                approval_id=approval_id,
            )
        if approval_id is not None:
            # Consuming checks the approval's status and that it names this exact action.
            try:
                self.approvals.consume(approval_id, action.kind, action.target, action.params)
            except GovernanceError as exc:
                self.record(action, Ruling(Verdict(exc.verdict), "approval", str(exc)), approval_id)
                raise
            ruling = Ruling(Verdict.ALLOWED, ruling.policy, f"approval {approval_id} granted and used")
        self.record(action, ruling, approval_id)
        return ruling

    def decide_approval(self, approval_id: str, *, approve: bool, by: str, note: str | None = None) -> Approval:
        """Approve or deny a pending request; recorded in the audit log."""
        store = self.approvals
        approval = (
            store.approve(approval_id, by=by, note=note) if approve else store.deny(approval_id, by=by, note=note)
        )
        self.audit.record(
            "approval.approve" if approve else "approval.deny",
            target=approval_id,
            actor=by,
            verdict=approval.status,
            policy="approval",
            reason=note or "",
            params={"action": approval.action, "target": approval.target, **approval.params},
        )
        self._events.publish(
            "governance.approval",
            "governance",
            f"approval {approval_id} ({approval.action} of '{approval.target}') {approval.status} by {by}",
            category="decision",
            metadata={"approval_id": approval_id, "status": approval.status, "action": approval.action},
        )
        return approval

    def _decide(self, action: AdminAction) -> Ruling:
        reasons: list[str] = []
        for policy in self.policies:
            ruling = policy.check_action(action)
            if not ruling.proceeds:
                return ruling
            if ruling.reason != NO_OBJECTION:
                reasons.append(ruling.reason)
        return Ruling(Verdict.ALLOWED, "all", "; ".join(reasons) or f"no policy objected to {action.kind}")

    def record(self, action: AdminAction, ruling: Ruling, approval_id: str | None = None) -> None:
        """Append an action and its ruling to the audit log and publish it (``governance.action``)."""
        self.audit.record(
            action.kind,
            target=action.target,
            params=action.params,
            actor=action.actor,
            verdict=ruling.verdict.value,
            policy=ruling.policy,
            reason=ruling.reason,
            approval_id=approval_id,
        )
        self._events.publish(
            "governance.action",
            "governance",
            f"{action.kind} of '{action.target}': {ruling.verdict.value} ({ruling.reason})",
            level="info" if ruling.proceeds else "warn",
            category="decision",
            metadata={
                "action": action.kind,
                "target": action.target,
                "verdict": ruling.verdict.value,
                "policy": ruling.policy,
                "reason": ruling.reason,
                "approval_id": approval_id,
            },
        )
