"""Histogram and counter families for a custom prometheus_client collector.

prometheus_client's ``Histogram.observe`` takes a lock per bucket series and walks the buckets in Python; at several
observations per task that cost shows in throughput. These families keep plain per-label-set arrays (one ``bisect``
and two additions per observation), and ``collect`` turns them into the standard metric families, so the exposition
(text format, ``_bucket``/``_sum``/``_count``/``_total`` samples) is exactly what prometheus_client would produce.
Callers serialise ``observe``/``inc`` and ``collect`` with one lock (see ``PrometheusMetrics``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString


def _go_float(value: float) -> str:
    """A bucket bound as prometheus_client writes it (``0.005``, ``16.0``, ``6.7108864e+07``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


class HistogramFamily:
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.buckets = tuple(float(bound) for bound in buckets)
        self._bucket_names = [_go_float(bound) for bound in self.buckets]
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            # one slot per finite bucket, one for +Inf, then the sum
            series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        series[bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def collect(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in sorted(self._series.items()):
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for name, count in zip([*self._bucket_names, "+Inf"], series[:-1], strict=True):
                cumulative += count
                buckets.append((name, cumulative))
            family.add_metric(list(labels), buckets, series[-1])
        return family


class CounterFamily:
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def collect(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames and not self._values:
            family.add_metric([], 0.0)
        for labels, value in sorted(self._values.items()):
            family.add_metric(list(labels), value)
        return family
