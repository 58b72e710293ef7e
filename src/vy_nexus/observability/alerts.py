"""Alerts over the metrics database and the kill switch: evaluated on demand, deduplicated, acknowledged, cleared.

``evaluate`` reads what happened (tasks, expert runs) and says which conditions hold now; ``AlertBook`` keeps the
alerts in ``<home>/dashboard/alerts.json``. One condition is one alert, whatever how often it is evaluated (its key is
the kind and the subject: ``expert_failing:flaky``). Clearing an alert forgets it and remembers when: the condition is
then evaluated only on what happened after, so a cleared "expert failing" alert comes back only when the expert
fails again that many times. A state (the kill switch) comes back at once while it lasts.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from filelock import FileLock

from vy_nexus.config import AlertsSettings
from vy_nexus.errors import VyNexusError
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import executions, tasks
from vy_nexus.observability.metricsquery import percentile

Severity = Literal["warning", "critical"]


class AlertNotFoundError(VyNexusError):
    http_status = 404


@dataclass(frozen=True)
class Condition:
    """A condition that holds now."""

    key: str
    kind: str
    severity: Severity
    message: str


@dataclass
class Alert:
    key: str
    kind: str
    severity: Severity
    message: str
    first_seen: float
    last_seen: float
    active: bool = True
    """The condition held at the last evaluation."""
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acknowledged": self.acknowledged}


def evaluate(
    rules: AlertsSettings,
    database: MetricsDatabase,
    *,
    cleared: dict[str, float] | None = None,
    shutdown_reason: str | None = None,
    now: float | None = None,
) -> list[Condition]:
    """The conditions that hold at ``now``. ``cleared`` maps alert keys to when they were cleared: only what came
    after counts for them. ``shutdown_reason`` is set while the kill switch is engaged."""
    if not rules.enabled:
        return []
    moment = time.time() if now is None else now
    start = moment - rules.window_seconds
    after = cleared or {}
    found: list[Condition] = []
    if rules.kill_switch and shutdown_reason is not None:
        found.append(Condition("kill_switch", "kill_switch", "critical", f"kill switch engaged: {shutdown_reason}"))
    e = executions
    with database.reading() as connection:
        if connection is None:
            return found
        finished = (
            connection.execute(
                sa.select(tasks.c.finished_at, tasks.c.duration_ms, tasks.c.success).where(tasks.c.finished_at >= start)
            )
            .mappings()
            .all()
        )
        runs = (
            connection.execute(
                sa.select(e.c.expert_id, e.c.started_at, e.c.success, e.c.error)
                .where(e.c.started_at >= start)
                .order_by(e.c.started_at.desc(), e.c.id.desc())
            )
            .mappings()
            .all()
        )
    found.extend(_task_conditions(rules, finished, after))
    found.extend(_expert_conditions(rules, runs, after))
    return found


def _task_conditions(rules: AlertsSettings, tasks: Sequence[Any], after: dict[str, float]) -> list[Condition]:
    found: list[Condition] = []
    recent = [row for row in tasks if row["finished_at"] > after.get("error_rate", 0.0)]
    if len(recent) >= rules.min_tasks:
        failed = sum(1 for row in recent if not row["success"])
        rate = failed / len(recent)
        if rate >= rules.error_rate:
            message = f"error rate {rate:.0%} ({failed} of {len(recent)} tasks failed) ≥ {rules.error_rate:.0%}"
            found.append(Condition("error_rate", "error_rate", "critical" if rate >= 0.5 else "warning", message))
    recent = [row for row in tasks if row["finished_at"] > after.get("latency", 0.0)]
    if len(recent) >= rules.min_tasks:
        p95 = percentile([float(row["duration_ms"]) for row in recent], 95)
        if p95 > rules.latency_p95_ms:
            message = f"p95 task latency {p95:.0f} ms > {rules.latency_p95_ms:.0f} ms over {len(recent)} tasks"
            found.append(Condition("latency", "latency", "warning", message))
    return found


def _expert_conditions(rules: AlertsSettings, runs: Sequence[Any], after: dict[str, float]) -> list[Condition]:
    latest: dict[str, list[Any]] = defaultdict(list)
    for row in runs:  # newest first
        expert = str(row["expert_id"])
        if (
            row["started_at"] > after.get(f"expert_failing:{expert}", 0.0)
            and len(latest[expert]) < rules.expert_failures
        ):
            latest[expert].append(row)
    found: list[Condition] = []
    for expert, rows in sorted(latest.items()):
        if len(rows) == rules.expert_failures and not any(row["success"] for row in rows):
            last_error = rows[0]["error"] or "no error recorded"
            message = f"expert {expert} failed {len(rows)} times in a row; last error: {last_error}"
            found.append(Condition(f"expert_failing:{expert}", "expert_failing", "warning", message))
    return found


class AlertBook:
    """The alerts of one home, in a JSON file shared by the processes serving it (a file lock guards updates)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=10)

    @classmethod
    def for_home(cls, home: Path) -> AlertBook:
        return cls(home / "dashboard" / "alerts.json")

    def alerts(self) -> list[Alert]:
        """Active first, then by severity and recency."""
        active, _ = self._read()
        return sorted(
            active.values(), key=lambda alert: (not alert.active, alert.severity != "critical", -alert.last_seen)
        )

    def cleared(self) -> dict[str, float]:
        return self._read()[1]

    def record(self, conditions: list[Condition], *, now: float | None = None) -> list[Alert]:
        """Merge what holds now into the book: new conditions open an alert, known ones refresh theirs, alerts whose
        condition no longer holds stay (inactive) until cleared."""
        moment = time.time() if now is None else now
        with self._locked():
            active, cleared = self._read()
            holding = {condition.key for condition in conditions}
            for alert in active.values():
                alert.active = alert.key in holding
            for condition in conditions:
                known = active.get(condition.key)
                if known is None:
                    active[condition.key] = Alert(
                        condition.key, condition.kind, condition.severity, condition.message, moment, moment
                    )
                else:
                    known.message, known.severity, known.last_seen = condition.message, condition.severity, moment
            self._write(active, cleared)
        return self.alerts()

    def acknowledge(self, key: str, by: str, *, now: float | None = None) -> Alert:
        with self._locked():
            active, cleared = self._read()
            alert = self._find(active, key)
            alert.acknowledged_by, alert.acknowledged_at = by, time.time() if now is None else now
            self._write(active, cleared)
        return alert

    def clear(self, key: str, *, now: float | None = None) -> Alert:
        with self._locked():
            active, cleared = self._read()
            alert = self._find(active, key)
            del active[key]
            cleared[key] = time.time() if now is None else now
            self._write(active, cleared)
        return alert

    @staticmethod
    def _find(active: dict[str, Alert], key: str) -> Alert:
        try:
            return active[key]
        except KeyError:
            raise AlertNotFoundError(f"no alert {key!r}") from None

    def _locked(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self._lock

    def _read(self) -> tuple[dict[str, Alert], dict[str, float]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError):
            return {}, {}  # a damaged book starts over: alerts are re-evaluated from the metrics
        alerts = {item["key"]: Alert(**item) for item in data.get("alerts", [])}
        return alerts, {str(key): float(value) for key, value in data.get("cleared", {}).items()}

    def _write(self, active: dict[str, Alert], cleared: dict[str, float]) -> None:
        temporary = self.path.with_suffix(".tmp")
        payload = {"alerts": [asdict(alert) for alert in active.values()], "cleared": cleared}
        temporary.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        temporary.replace(self.path)


@dataclass(frozen=True)
class Health:
    status: Literal["healthy", "degraded", "critical"]
    reason: str


def health(alerts: list[Alert], *, shutdown_reason: str | None = None) -> Health:
    """Critical while shutting down or a critical alert holds; degraded while any other alert holds and is not
    acknowledged; healthy otherwise. The reason names the worst alert."""
    if shutdown_reason is not None:
        return Health("critical", f"shutting down: {shutdown_reason}")
    holding = [alert for alert in alerts if alert.active]
    critical = [alert for alert in holding if alert.severity == "critical"]
    if critical:
        return Health("critical", critical[0].message)
    unacknowledged = [alert for alert in holding if not alert.acknowledged]
    if unacknowledged:
        return Health("degraded", unacknowledged[0].message)
    return Health("healthy", "no alert holds" if not holding else "only acknowledged alerts hold")
