"""vy-nexus observability: the journal (daily.md + structured.jsonl), SQLite metrics, Prometheus exposition.

Observers subscribe to the ``EventBus``; the hot path only queues, and one background thread per process writes
(safe with several processes on one home). See docs/observability.md. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vy_nexus._lazy import lazy_exports

if TYPE_CHECKING:
    from vy_nexus.observability.journal import Journal
    from vy_nexus.observability.logquery import LogEntry, LogFilter, QueryStats, follow, query
    from vy_nexus.observability.metrics import MetricsCollector, SystemSample
    from vy_nexus.observability.metricsquery import MetricsReport, build_report, export_table, percentile
    from vy_nexus.observability.prometheus import PrometheusMetrics
    from vy_nexus.observability.sampler import SystemSampler
    from vy_nexus.observability.signals import (
        CONFIG_CHANGED,
        LLM_COMPLETED,
        publish_config_changed,
        publish_llm_completed,
    )
    from vy_nexus.observability.stack import Observability

_EXPORTS: dict[str, str] = {
    "Journal": "vy_nexus.observability.journal",
    **dict.fromkeys(("LogEntry", "LogFilter", "QueryStats", "follow", "query"), "vy_nexus.observability.logquery"),
    **dict.fromkeys(("MetricsCollector", "SystemSample"), "vy_nexus.observability.metrics"),
    **dict.fromkeys(
        ("MetricsReport", "build_report", "export_table", "percentile"), "vy_nexus.observability.metricsquery"
    ),
    "PrometheusMetrics": "vy_nexus.observability.prometheus",
    "SystemSampler": "vy_nexus.observability.sampler",
    **dict.fromkeys(
        (
            "CONFIG_CHANGED",
            "LLM_COMPLETED",
            "publish_config_changed",
            "publish_llm_completed",
        ),
        "vy_nexus.observability.signals",
    ),
    "Observability": "vy_nexus.observability.stack",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
