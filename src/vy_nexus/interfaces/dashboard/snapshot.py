"""The overview at one moment: health (with the reason), uptime, task rate, error rate, latency, queue depth, the kill
switch and pending approvals, with alerts evaluated (and recorded) on the way."""

from __future__ import annotations

import time
from typing import Any

from vy_nexus.observability.alerts import AlertBook, evaluate, health
from vy_nexus.observability.dashboard_stats import as_dict, task_figures
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.system import VyNexus


def overview(
    system: VyNexus, book: AlertBook, metrics: MetricsDatabase, *, started_at: float, now: float | None = None
) -> dict[str, Any]:
    moment = time.time() if now is None else now
    settings = system.settings
    shutdown_reason = (system.safety.shutdown_reason or "requested") if system.safety.shutting_down else None
    if system.observability is not None:
        system.observability.flush(timeout=2.0)  # what the flow observed so far is in the metrics database
    conditions = evaluate(settings.alerts, metrics, cleared=book.cleared(), shutdown_reason=shutdown_reason)
    alerts = book.record(conditions, now=moment)
    state = health(alerts, shutdown_reason=shutdown_reason)
    load = system.governance.admission.load()
    figures = task_figures(metrics, since=moment - settings.alerts.window_seconds, now=moment)
    return {
        "generated_at": moment,
        "health": {"status": state.status, "reason": state.reason},
        "uptime_seconds": round(moment - started_at, 1),
        "tasks": as_dict(figures),
        "queue_depth": load.queued,
        "running": load.running,
        "kill_switch": {"engaged": shutdown_reason is not None, "reason": shutdown_reason},
        "pending_approvals": len(system.governance.approvals.all("pending")),
        "alerts": [alert.as_dict() for alert in alerts],
    }
