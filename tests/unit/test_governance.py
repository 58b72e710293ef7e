"""Governance: each policy deciding both ways, the approval flow, the audit log and admission control."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vy_nexus.config import GovernanceSettings
from vy_nexus.errors import GovernanceError, StateError
from vy_nexus.events import Event, EventBus
from vy_nexus.execution.admission import AdmissionControl, Load
from vy_nexus.execution.approvals import Approval, ApprovalStore
from vy_nexus.execution.audit import AuditLog
from vy_nexus.execution.governance import (
    CONFIG_SET,
    SHUTDOWN,
    AdminAction,
    ConcurrencyPolicy,
    DestructiveActionPolicy,
    DurationPolicy,
    Governance,
    Policy,
    RetryPolicy,
    RoutingConfidencePolicy,
    Ruling,
    TaskRequest,
    Verdict,
)
from vy_nexus.tasks import RoutingDecision, Task


def decision(confidences: dict[str, float], strategy: str = "keyword") -> RoutingDecision:
    return RoutingDecision(
        task_id="t", expert_ids=list(confidences), confidences=confidences, strategy=strategy, reason="matched 'x'"
    )


def request(task: Task | None = None, routed: RoutingDecision | None = None, load: Load = Load(0, 0)) -> TaskRequest:
    return TaskRequest(task or Task(description="do it"), routed or decision({"code": 0.9}), load)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seen() -> list[Event]:
    return []


@pytest.fixture
def governance(tmp_path: Path, clock: Clock, seen: list[Event]) -> Governance:
    events = EventBus()
    events.subscribe(seen.append)
    return Governance(
        GovernanceSettings(max_concurrent_tasks=2, max_queue_size=1, approval_ttl_seconds=60),
        approvals=ApprovalStore(tmp_path / "approvals.json", ttl_seconds=60, clock=clock),
        audit=AuditLog(tmp_path / "audit.jsonl"),
        events=events,
    )


# Policies, each both ways ----------------------------------------------------------------------------------------


def test_concurrency_allows_throttles_and_denies() -> None:
    policy = ConcurrencyPolicy(max_concurrent=2, max_queue=1)
    assert policy.check_task(request(load=Load(1, 0))).verdict is Verdict.ALLOWED
    throttled = policy.check_task(request(load=Load(2, 0)))
    assert (
        throttled.verdict is Verdict.THROTTLED and throttled.proceeds and "waits in the queue (1/1)" in throttled.reason
    )
    denied = policy.check_task(request(load=Load(2, 1)))
    assert denied.verdict is Verdict.DENIED and "queue is full" in denied.reason


def test_duration_denies_a_passed_deadline() -> None:
    policy = DurationPolicy(300)
    soon = Task(description="x", deadline=datetime.now(UTC) + timedelta(seconds=30))
    allowed = policy.check_task(request(soon))
    assert allowed.verdict is Verdict.ALLOWED and "at most 3" in allowed.reason  # 30 s, not 300
    assert "at most 300.0 s" in policy.check_task(request()).reason
    late = Task(description="x", deadline=datetime.now() - timedelta(seconds=5))  # naive = UTC
    denied = policy.check_task(request(late))
    assert denied.verdict is Verdict.DENIED and "deadline passed" in denied.reason


def test_low_confidence_falls_back_to_the_general_expert() -> None:
    policy = RoutingConfidencePolicy(0.7, "fallback", "general")
    assert policy.check_task(request(routed=decision({"code": 0.7}))).decision is None
    ruling = policy.check_task(request(routed=decision({"code": 0.52, "writing": 0.4})))
    assert ruling.verdict is Verdict.ALLOWED and ruling.decision is not None
    assert ruling.decision.expert_ids == ["general"] and ruling.decision.fallback
    assert "below 0.70" in ruling.decision.reason
    already = policy.check_task(request(routed=decision({"general": 0.5})))
    assert already.verdict is Verdict.ALLOWED and already.decision is None


def test_low_confidence_can_ask_or_deny_but_explicit_choices_pass() -> None:
    low = decision({"code": 0.5})
    asked = RoutingConfidencePolicy(0.7, "ask", "general").check_task(request(routed=low))
    assert asked.verdict is Verdict.NEEDS_APPROVAL and "--expert code" in asked.reason
    denied = RoutingConfidencePolicy(0.7, "deny", "general").check_task(request(routed=low))
    assert denied.verdict is Verdict.DENIED and "governance.min_routing_confidence" in denied.reason
    explicit = decision({"code": 0.1}, strategy="explicit")
    assert RoutingConfidencePolicy(0.7, "deny", "general").check_task(request(routed=explicit)).proceeds


def test_retry_budget() -> None:
    policy = RetryPolicy(max_retries=3)
    assert policy.check_task(request()).verdict is Verdict.ALLOWED
    assert policy.check_task(request(Task(description="x", context={"attempt": 4}))).verdict is Verdict.ALLOWED
    denied = policy.check_task(request(Task(description="x", context={"attempt": 5})))
    assert denied.verdict is Verdict.DENIED and "retry 4" in denied.reason
    for bad in (0, "2", True):
        assert policy.check_task(request(Task(description="x", context={"attempt": bad}))).verdict is Verdict.DENIED


def test_destructive_actions_need_a_person() -> None:
    policy = DestructiveActionPolicy(require_approval=True)
    assert policy.check_action(AdminAction("approvals.list", "x")).verdict is Verdict.ALLOWED
    assert policy.check_action(AdminAction(SHUTDOWN, "system")).verdict is Verdict.NEEDS_APPROVAL
    assert policy.check_action(AdminAction(SHUTDOWN, "system", approved_by="ann (--yes)")).verdict is Verdict.ALLOWED
    off = DestructiveActionPolicy(require_approval=False)
    assert off.check_action(AdminAction(CONFIG_SET, "k")).verdict is Verdict.ALLOWED


def test_base_policy_allows_everything() -> None:
    assert Policy().check_task(request()).proceeds and Policy().check_action(AdminAction(SHUTDOWN, "s")).proceeds


# The policy list -------------------------------------------------------------------------------------------------


def test_check_task_publishes_the_ruling(governance: Governance, seen: list[Event]) -> None:
    task = Task(description="x")
    ruling = governance.check_task(task, decision({"code": 0.4}))
    assert ruling.verdict is Verdict.ALLOWED and ruling.policy == "routing_confidence"  # the amending policy speaks
    assert ruling.decision is not None and ruling.decision.expert_ids == ["general"]  # amended by the fallback
    assert "rerouted to general" in ruling.reason
    asked = ruling.as_dict()["checks"]  # every policy's own ruling, with the limit it applied
    assert [check["policy"] for check in asked] == [policy.name for policy in governance.policies]
    assert all(set(check) == {"verdict", "policy", "reason"} for check in asked)
    event = seen[-1]
    assert event.kind == "task.governed" and event.task_id == task.id and event.category == "decision"
    assert event.metadata["verdict"] == "allowed" and event.metadata["experts"] == ["general"]


def test_a_user_policy_can_refuse(governance: Governance, seen: list[Event]) -> None:
    class NoWeekendWork(Policy):
        name = "no_weekend_work"

        def check_task(self, request: TaskRequest) -> Ruling:
            return Ruling(Verdict.DENIED, self.name, "it is the weekend")

    governance.policies.append(NoWeekendWork())
    with pytest.raises(GovernanceError, match=r"no_weekend_work.*weekend") as info:
        governance.enforce_task(Task(description="x"), decision({"code": 0.9}))
    assert info.value.verdict == "denied" and info.value.policy == "no_weekend_work"
    refused = governance.check_task(Task(description="x"), decision({"code": 0.9}))
    assert [check.verdict for check in refused.checks][-1] is Verdict.DENIED
    assert refused.checks[-1].policy == "no_weekend_work" and len(refused.checks) == len(governance.policies)
    assert seen[-1].metadata == {
        "verdict": "denied",
        "policy": "no_weekend_work",
        "reason": "it is the weekend",
        "experts": ["code"],
    }


def test_needs_approval_refuses_a_task(tmp_path: Path) -> None:
    settings = GovernanceSettings(low_confidence_action="ask")
    governance = Governance(
        settings, approvals=ApprovalStore(tmp_path / "a.json"), audit=AuditLog(tmp_path / "audit.jsonl")
    )
    with pytest.raises(GovernanceError) as info:
        governance.enforce_task(Task(description="x"), decision({"code": 0.5}))
    assert info.value.verdict == "needs_approval" and info.value.exit_code == 3


# Administrative actions and approvals ------------------------------------------------------------------------------


def audit_lines(governance: Governance) -> list[dict[str, object]]:
    return [json.loads(line) for line in governance.audit.path.read_text().splitlines()]


def test_approval_flow_from_request_to_single_use(governance: Governance, seen: list[Event]) -> None:
    action = AdminAction(SHUTDOWN, "system", {"reason": "maintenance"}, actor="cli:ann")
    with pytest.raises(GovernanceError, match="needs approval") as info:
        governance.authorize(action, reason="maintenance")
    approval_id = info.value.approval_id
    assert approval_id is not None and info.value.verdict == "needs_approval"
    with pytest.raises(GovernanceError) as again:
        governance.authorize(action)
    assert again.value.approval_id == approval_id  # the same pending request, not a new one
    assert [a.id for a in governance.approvals.all("pending")] == [approval_id]

    with pytest.raises(GovernanceError, match="pending, not approved"):
        governance.authorize(action, approval_id=approval_id)
    approval = governance.decide_approval(approval_id, approve=True, by="cli:bob", note="ok")
    assert approval.status == "approved" and approval.decided_by == "cli:bob"
    ruling = governance.authorize(action, approval_id=approval_id)
    assert ruling.verdict is Verdict.ALLOWED and "used" in ruling.reason
    with pytest.raises(GovernanceError, match="consumed"):
        governance.authorize(action, approval_id=approval_id)

    verdicts = [(line["action"], line["verdict"]) for line in audit_lines(governance)]
    assert verdicts == [
        (SHUTDOWN, "needs_approval"),
        (SHUTDOWN, "needs_approval"),
        (SHUTDOWN, "needs_approval"),  # used while still pending
        ("approval.approve", "approved"),
        (SHUTDOWN, "allowed"),
        (SHUTDOWN, "denied"),  # used twice
    ]
    assert any(e.kind == "governance.approval" for e in seen)
    assert sum(e.kind == "governance.action" for e in seen) == 5


def test_an_approval_only_covers_the_action_it_names(governance: Governance) -> None:
    with pytest.raises(GovernanceError) as info:
        governance.authorize(AdminAction(CONFIG_SET, "logging.level", {"value": "debug"}))
    approval_id = info.value.approval_id
    assert approval_id is not None
    governance.decide_approval(approval_id, approve=True, by="bob")
    with pytest.raises(GovernanceError, match=r"is for config\.set of 'logging\.level'"):
        governance.authorize(AdminAction(CONFIG_SET, "logging.level", {"value": "error"}), approval_id=approval_id)
    governance.authorize(AdminAction(CONFIG_SET, "logging.level", {"value": "debug"}), approval_id=approval_id)


def test_denied_and_expired_requests_cannot_be_used(governance: Governance, clock: Clock) -> None:
    action = AdminAction(SHUTDOWN, "system")
    with pytest.raises(GovernanceError) as first:
        governance.authorize(action)
    denied_id = first.value.approval_id
    assert denied_id is not None
    governance.decide_approval(denied_id, approve=False, by="bob", note="not now")
    with pytest.raises(GovernanceError, match="already denied"):
        governance.decide_approval(denied_id, approve=True, by="bob")
    with pytest.raises(GovernanceError, match="denied, not approved"):
        governance.authorize(action, approval_id=denied_id)

    with pytest.raises(GovernanceError) as second:
        governance.authorize(action)
    late_id = second.value.approval_id
    assert late_id is not None and late_id != denied_id
    governance.decide_approval(late_id, approve=True, by="bob")
    clock.now += 61
    assert governance.approvals.get(late_id).status == "expired"
    with pytest.raises(GovernanceError, match="expired"):
        governance.authorize(action, approval_id=late_id)
    with pytest.raises(GovernanceError, match="no approval request with id 'nope'"):
        governance.authorize(action, approval_id="nope")


def test_a_confirmed_action_is_allowed_and_audited(governance: Governance) -> None:
    ruling = governance.authorize(AdminAction(SHUTDOWN, "system", approved_by="ann (--yes)", actor="cli:ann"))
    assert ruling.verdict is Verdict.ALLOWED
    (line,) = audit_lines(governance)
    assert line["actor"] == "cli:ann" and line["verdict"] == "allowed" and "ann (--yes)" in str(line["reason"])


def test_a_policy_denial_of_an_action_raises(governance: Governance) -> None:
    class Frozen(Policy):
        name = "frozen"

        def check_action(self, action: AdminAction) -> Ruling:
            return Ruling(Verdict.DENIED, self.name, "change freeze")

    governance.policies.insert(0, Frozen())
    with pytest.raises(GovernanceError, match="refused \\(frozen\\): change freeze"):
        governance.authorize(AdminAction(CONFIG_SET, "k", approved_by="ann"))
    assert audit_lines(governance)[-1]["verdict"] == "denied"


def test_audit_log_only_appends(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "governance" / "audit.jsonl")
    assert list(log.entries()) == []
    log.record("a", target="x")
    with log.path.open("a") as handle:
        handle.write("not json\n[1]\n")
    log.record("b", target="y")
    assert [entry["action"] for entry in log.entries()] == ["a", "b"]
    assert log.path.read_text().count("\n") == 4


@pytest.mark.parametrize(
    "text",
    [
        "[",
        "[]",
        '{"approvals": [{"id": "a"}]}',
        '{"approvals": [{"id": "a", "action": "x", "target": "t", "requested_at": 1, "status": "maybe"}]}',
        '{"approvals": [{"id": "a", "action": "x", "target": "t", "requested_at": 1, "colour": "red"}]}',
    ],
    ids=["not JSON", "not an object", "fields missing", "unknown status", "unknown field"],
)
def test_a_corrupt_approvals_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "approvals.json").write_text(text)
    with pytest.raises(StateError, match=r"approvals\.json is corrupt"):
        ApprovalStore(tmp_path / "approvals.json").all()


def test_an_approval_reads_back_from_its_json_and_the_file_keeps_it(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "approvals.json", clock=lambda: 100.0)
    approval = store.request("shutdown", "system", {"grace": 1}, reason="maintenance", requested_by="ops")
    assert Approval.from_dict(json.loads(json.dumps(approval.as_dict()))) == approval
    assert ApprovalStore(tmp_path / "approvals.json", clock=lambda: 100.0).all() == [approval]
    with pytest.raises(ValueError, match="status"):
        Approval.from_dict({**approval.as_dict(), "status": "maybe"})


# Admission control ---------------------------------------------------------------------------------------------


def test_admission_runs_two_queues_one_and_refuses_the_rest() -> None:
    async def scenario() -> list[str]:
        admission = AdmissionControl(max_running=2, max_queued=1)
        gate = asyncio.Event()
        log: list[str] = []

        async def job(name: str) -> None:
            async with admission.slot(name) as queued:
                log.append(f"{name} start{' (queued)' if queued else ''}")
                await gate.wait()

        first = [asyncio.ensure_future(job(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0.01)
        assert admission.load() == Load(running=2, queued=1)
        with pytest.raises(GovernanceError, match="queue is full") as info:
            await job("d")
        assert info.value.verdict == "denied" and info.value.policy == "concurrency"
        gate.set()
        await asyncio.gather(*first)
        assert admission.load() == Load(0, 0)
        return log

    assert asyncio.run(scenario()) == ["a start", "b start", "c start (queued)"]


def test_admission_lets_the_highest_priority_wait_least_then_the_earliest() -> None:
    from vy_nexus.tasks import Priority

    async def scenario() -> list[str]:
        admission = AdmissionControl(max_running=1, max_queued=10)
        gate = asyncio.Event()
        order: list[str] = []

        async def job(name: str, priority: Priority) -> None:
            async with admission.slot(name, priority.rank):
                order.append(name)
                await gate.wait()

        holder = asyncio.ensure_future(job("holder", Priority.LOW))
        await asyncio.sleep(0)
        queued = [("low", Priority.LOW), ("medium 1", Priority.MEDIUM), ("critical", Priority.CRITICAL)]
        queued += [("gone", Priority.CRITICAL), ("medium 2", Priority.MEDIUM), ("high", Priority.HIGH)]
        jobs = {name: asyncio.ensure_future(job(name, priority)) for name, priority in queued}
        await asyncio.sleep(0.01)
        jobs["gone"].cancel()  # a cancelled waiter leaves the queue without upsetting its order
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(holder, *(j for name, j in jobs.items() if name != "gone"))
        assert admission.load() == Load(0, 0)
        return order

    assert asyncio.run(scenario()) == ["holder", "critical", "high", "medium 1", "medium 2", "low"]


def test_admission_cancelled_waiters_do_not_leak_slots() -> None:
    async def scenario() -> Load:
        admission = AdmissionControl(max_running=1, max_queued=5)
        gate = asyncio.Event()

        async def job() -> None:
            async with admission.slot():
                await gate.wait()

        holder = asyncio.ensure_future(job())
        waiters = [asyncio.ensure_future(job()) for _ in range(3)]
        await asyncio.sleep(0.01)
        waiters[0].cancel()
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(holder, *waiters[1:])
        assert waiters[0].cancelled()
        return admission.load()

    assert asyncio.run(scenario()) == Load(0, 0)


def test_admission_is_shared_across_event_loops() -> None:
    admission = AdmissionControl(max_running=1, max_queued=0)

    async def hold() -> None:
        async with admission.slot():
            with pytest.raises(GovernanceError):
                async with admission.slot():
                    pass

    asyncio.run(hold())
    assert admission.load() == Load(0, 0)
    with pytest.raises(ValueError):
        AdmissionControl(0, 0)
