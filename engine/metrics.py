"""Metrics: one small API for the core and plugins; free when nothing listens.

Values live in plain handles (:class:`CounterHandle`, :class:`GaugeHandle`,
:class:`HistogramHandle`): ``inc()``, ``set()`` and ``observe()`` only update a
number, never allocate, never call a store. The engine's own catalogue (orders by
state, denials, fills, equity...) is not even counted per event: *collectors*
derive it from the kernel's state when metrics are collected. Collection happens
on a cadence (``[metrics] interval``, engine time), when the run ends, and on
demand; each collection produces :class:`MetricRecord` values that go to every
metrics store and exporter. With no store and no exporter configured nothing is
collected at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from attrs import frozen

__all__ = [
    "CounterHandle",
    "GaugeHandle",
    "HistogramHandle",
    "MetricKind",
    "MetricRecord",
    "Metrics",
    "Publisher",
]

Labels = tuple[tuple[str, str], ...]

#: Histogram bucket upper bounds (seconds-like scale; values above the last land in +Inf).
DEFAULT_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


class MetricKind(Enum):
    """What a metric measures."""

    COUNTER = "counter"  # only goes up
    GAUGE = "gauge"  # a current value
    HISTOGRAM = "histogram"  # a distribution (count, sum, buckets)


@frozen
class MetricRecord:
    """One value of one metric at one time, as stores and exporters receive it.

    For a histogram ``value`` is the sum of observations, ``count`` their number and
    ``buckets`` the cumulative counts per upper bound.
    """

    name: str
    kind: MetricKind
    labels: Labels
    value: float
    ts: int
    count: int = 0
    buckets: tuple[tuple[float, int], ...] = ()

    def label(self, key: str) -> str | None:
        """One label's value."""
        return dict(self.labels).get(key)


class CounterHandle:
    """A counter: ``inc(n=1)``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, n: float = 1.0) -> None:
        """Add ``n`` (>= 0)."""
        self.value += n


class GaugeHandle:
    """A gauge: ``set(v)``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        """Set the current value."""
        self.value = value


class HistogramHandle:
    """A histogram with fixed buckets: ``observe(v)``."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.count += 1
        self.sum += value
        for k, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[k] += 1
                break

    def cumulative(self) -> tuple[tuple[float, int], ...]:
        """(upper bound, observations at or below it) per bucket."""
        out, total = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            total += n
            out.append((bound, total))
        return tuple(out)


Handle = CounterHandle | GaugeHandle | HistogramHandle
Collector = Callable[[], Iterable[tuple[str, MetricKind, Labels, float]]]


def _labels(labels: dict[str, object]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


class Metrics:
    """The metrics of one engine: handles for anyone, collectors for derived values."""

    def __init__(self) -> None:
        self._handles: dict[tuple[str, Labels], tuple[MetricKind, Handle]] = {}
        self._collectors: list[Collector] = []
        self.help: dict[str, str] = {}

    def _handle(
        self, name: str, kind: MetricKind, labels: dict[str, object], make: Callable[[], Handle]
    ) -> Handle:
        key = (name, _labels(labels))
        found = self._handles.get(key)
        if found is None:
            found = self._handles[key] = (kind, make())
        elif found[0] is not kind:
            raise ValueError(f"metric {name!r} is a {found[0].value}, not a {kind.value}")
        return found[1]

    def counter(self, name: str, help: str = "", **labels: object) -> CounterHandle:
        """The counter ``name`` with these labels (created on first use)."""
        if help:
            self.help[name] = help
        return self._handle(name, MetricKind.COUNTER, labels, CounterHandle)  # type: ignore[return-value]

    def gauge(self, name: str, help: str = "", **labels: object) -> GaugeHandle:
        """The gauge ``name`` with these labels (created on first use)."""
        if help:
            self.help[name] = help
        return self._handle(name, MetricKind.GAUGE, labels, GaugeHandle)  # type: ignore[return-value]

    def histogram(
        self,
        name: str,
        help: str = "",
        *,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
        **labels: object,
    ) -> HistogramHandle:
        """The histogram ``name`` with these labels (created on first use, with
        ``buckets`` as upper bounds; later calls get the existing handle)."""
        if help:
            self.help[name] = help
        return self._handle(  # type: ignore[return-value]
            name, MetricKind.HISTOGRAM, labels, lambda: HistogramHandle(buckets)
        )

    def add_collector(self, collector: Collector) -> None:
        """Add a function that yields ``(name, kind, labels, value)`` at collection."""
        self._collectors.append(collector)

    def collect(self, ts: int) -> list[MetricRecord]:
        """Every metric's current value, stamped ``ts``."""
        out = []
        for collector in self._collectors:
            for name, kind, labels, value in collector():
                out.append(MetricRecord(name, kind, labels, float(value), ts))
        for (name, labels), (kind, handle) in self._handles.items():
            if isinstance(handle, HistogramHandle):
                out.append(
                    MetricRecord(
                        name, kind, labels, handle.sum, ts, handle.count, handle.cumulative()
                    )
                )
            else:
                out.append(MetricRecord(name, kind, labels, handle.value, ts))
        return out


class Publisher:
    """Sends each collection to the metrics stores and exporters. Each fails open:
    an error is counted (``engine_plugin_errors_total``) and logged, once per
    collection, never per event; trading goes on."""

    def __init__(
        self,
        metrics: Metrics,
        stores: Iterable[tuple[str, object]],
        exporters: Iterable[tuple[str, object]],
    ) -> None:
        self.metrics = metrics
        self.sinks = [(name, "store", obj) for name, obj in stores]
        self.sinks += [(name, "exporter", obj) for name, obj in exporters]
        #: sink name -> its last error, for health (cleared when it works again)
        self.failures: dict[str, str] = {}
        self.metrics.help["engine_plugin_errors_total"] = (
            "errors raised by metrics stores and exporters"
        )

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def publish(self, ts: int) -> list[MetricRecord]:
        """Collect at ``ts`` and hand the records to every store and exporter."""
        from loguru import logger

        records = self.metrics.collect(ts)
        for name, kind, sink in self.sinks:
            try:
                (sink.write if kind == "store" else sink.export)(records)  # type: ignore[attr-defined]
                self.failures.pop(name, None)
            except Exception as exc:
                self.failures[name] = f"{type(exc).__name__}: {exc}"
                self.metrics.counter("engine_plugin_errors_total", plugin=name, kind=kind).inc()
                logger.warning("metrics {} {} failed: {}: {}", kind, name, type(exc).__name__, exc)
        return records

    def close(self) -> None:
        """Close every store and exporter that has ``close()``."""
        from loguru import logger

        for name, kind, sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("metrics {} {} failed to close", kind, name)
