"""vy-nexus observability: the journal (daily.md + structured.jsonl), SQLite metrics, Prometheus exposition.

Observers subscribe to the ``EventBus``; the hot path only queues, background threads write in batches.
See docs/observability.md.
"""

from vy_nexus.observability.journal import Journal
from vy_nexus.observability.logquery import LogEntry, LogFilter, QueryStats, follow, query
from vy_nexus.observability.metrics import MetricsCollector, SystemSample
from vy_nexus.observability.metricsquery import MetricsReport, build_report, export_table, percentile
from vy_nexus.observability.prometheus import PrometheusMetrics
from vy_nexus.observability.sampler import SystemSampler
from vy_nexus.observability.signals import (
    API_REQUEST,
    CONFIG_CHANGED,
    LLM_COMPLETED,
    publish_api_request,
    publish_config_changed,
    publish_llm_completed,
)
from vy_nexus.observability.stack import Observability

__all__ = [
    "API_REQUEST",
    "CONFIG_CHANGED",
    "LLM_COMPLETED",
    "Journal",
    "LogEntry",
    "LogFilter",
    "MetricsCollector",
    "MetricsReport",
    "Observability",
    "PrometheusMetrics",
    "QueryStats",
    "SystemSample",
    "SystemSampler",
    "build_report",
    "export_table",
    "follow",
    "percentile",
    "publish_api_request",
    "publish_config_changed",
    "publish_llm_completed",
    "query",
]
