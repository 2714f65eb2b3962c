"""Engine metric records as Prometheus metric families (types and help kept)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.metrics_core import Metric

from engine import MetricKind, MetricRecord

__all__ = ["families"]

_TYPE = {
    MetricKind.COUNTER: "counter",
    MetricKind.GAUGE: "gauge",
    MetricKind.HISTOGRAM: "histogram",
}


def families(records: Iterable[MetricRecord], help: Mapping[str, str]) -> Iterator[Metric]:
    """One family per metric name, a sample per label set.

    Counters keep their ``_total`` sample name; histograms get ``_bucket`` (with
    ``le``, cumulative, ending at ``+Inf``), ``_sum`` and ``_count``.
    """
    by_name: dict[str, Metric] = {}
    for r in records:
        family = by_name.get(r.name)
        if family is None:
            base = r.name.removesuffix("_total") if r.kind is MetricKind.COUNTER else r.name
            family = by_name[r.name] = Metric(base, help.get(r.name, r.name), _TYPE[r.kind])
        labels = dict(r.labels)
        if r.kind is MetricKind.COUNTER:
            family.add_sample(family.name + "_total", labels, r.value)
        elif r.kind is MetricKind.GAUGE:
            family.add_sample(r.name, labels, r.value)
        else:
            for bound, count in r.buckets:
                family.add_sample(f"{r.name}_bucket", {**labels, "le": _le(bound)}, count)
            family.add_sample(f"{r.name}_bucket", {**labels, "le": "+Inf"}, r.count)
            family.add_sample(f"{r.name}_sum", labels, r.value)
            family.add_sample(f"{r.name}_count", labels, r.count)
    yield from by_name.values()


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))
