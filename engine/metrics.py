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
from typing import Any

from attrs import frozen

__all__ = [
    "CounterHandle",
    "GaugeHandle",
    "HistogramHandle",
    "MetricBatch",
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


SeriesKey = tuple[str, MetricKind, Labels]


@frozen
class MetricBatch:
    """Several collections in columns, as a backtest hands them to stores and
    exporters that accept batches (``write_batch`` / ``export_batch``).

    ``keys[k]`` names column ``k`` (name, kind, labels); ``ts[i]`` is the time of
    collection ``i`` and ``rows[i][k]`` its value of column ``k``, ``None`` where the
    series did not exist yet. Histograms are never batched.
    """

    keys: tuple[SeriesKey, ...]
    ts: tuple[int, ...]
    rows: tuple[tuple[float | None, ...], ...]

    def collections(self) -> list[list[MetricRecord]]:
        """The batch as one list of records per collection."""
        keys = self.keys
        return [
            [
                MetricRecord(name, kind, labels, value, t)
                for (name, kind, labels), value in zip(keys, row, strict=False)
                if value is not None
            ]
            for t, row in zip(self.ts, self.rows, strict=True)
        ]


class _Buffer:
    """Collections kept in columns until the next flush (see :class:`MetricBatch`)."""

    def __init__(self) -> None:
        self.columns: dict[tuple[str, Labels], int] = {}
        self.keys: list[SeriesKey] = []
        self.ts: list[int] = []
        self.rows: list[list[float | None]] = []

    def add(self, metrics: Metrics, ts: int) -> bool:
        """Append one collection; False when it holds a histogram (not batched)."""
        columns = self.columns
        row: list[float | None] = [None] * len(self.keys)
        for collector in metrics._collectors:
            for name, kind, labels, value in collector():
                k = columns.get((name, labels))
                if k is None:
                    k = columns[(name, labels)] = len(self.keys)
                    self.keys.append((name, kind, labels))
                    row.append(None)
                row[k] = float(value)
        for key, (kind, handle) in metrics._handles.items():
            if kind is MetricKind.HISTOGRAM:
                return False
            k = columns.get(key)
            if k is None:
                k = columns[key] = len(self.keys)
                self.keys.append((key[0], kind, key[1]))
                row.append(None)
            row[k] = handle.value  # type: ignore[union-attr]
        self.ts.append(ts)
        self.rows.append(row)
        return True

    def take(self) -> MetricBatch:
        """The collections so far, as a batch; the buffer starts empty."""
        width = len(self.keys)
        rows = tuple(tuple(r) + (None,) * (width - len(r)) for r in self.rows)
        batch = MetricBatch(tuple(self.keys), tuple(self.ts), rows)
        self.ts, self.rows = [], []
        return batch


class Publisher:
    """Sends each collection to the metrics stores and exporters. Each fails open:
    an error is counted (``engine_plugin_errors_total``) and logged, once per
    delivery (a collection, or a batch of them), never per event; trading goes on.

    ``buffered`` (backtests): collections are kept in columns and delivered at each
    :meth:`flush` (the engine flushes after every chunk of bars and at the end), as a
    :class:`MetricBatch` to sinks with ``write_batch``/``export_batch`` and as one
    ``write``/``export`` call per collection to the others. The values are the same
    as unbuffered; a collection only computes the values (no records are built).
    """

    def __init__(
        self,
        metrics: Metrics,
        stores: Iterable[tuple[str, object]],
        exporters: Iterable[tuple[str, object]],
        *,
        buffered: bool = False,
    ) -> None:
        self.metrics = metrics
        self.sinks = [(name, "store", obj) for name, obj in stores]
        self.sinks += [(name, "exporter", obj) for name, obj in exporters]
        #: sink name -> its last error, for health (cleared when it works again)
        self.failures: dict[str, str] = {}
        self.metrics.help["engine_plugin_errors_total"] = (
            "errors raised by metrics stores and exporters"
        )
        self._buffer: _Buffer | None = _Buffer() if buffered else None

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def publish(self, ts: int, *, final: bool = False) -> list[MetricRecord]:
        """Collect at ``ts`` and hand the records to every store and exporter
        (buffered: keep the collection for the next :meth:`flush` and return ``[]``;
        ``final``: flush first, then deliver and return this collection's records)."""
        buffer = self._buffer
        if final:
            self.flush()
        elif buffer is not None:
            if buffer.add(self.metrics, ts):
                return []
            self.flush()  # histograms: this collection and the next go record by record
            self._buffer = None
        records = self.metrics.collect(ts)
        self._deliver(records, None)
        return records

    def flush(self) -> None:
        """Deliver the buffered collections (nothing when unbuffered or empty)."""
        if self._buffer is None or not self._buffer.ts:
            return
        batch = self._buffer.take()
        self._deliver(None, batch)

    def _deliver(self, records: list[MetricRecord] | None, batch: MetricBatch | None) -> None:
        collections: list[list[MetricRecord]] | None = None
        for name, kind, sink in self.sinks:
            if batch is None:
                each = sink.write if kind == "store" else sink.export  # type: ignore[attr-defined]
                self._call(name, kind, each, records)
                continue
            whole = getattr(sink, "write_batch" if kind == "store" else "export_batch", None)
            if whole is not None:
                self._call(name, kind, whole, batch)
                continue
            each = sink.write if kind == "store" else sink.export  # type: ignore[attr-defined]
            if collections is None:
                collections = batch.collections()
            for one in collections:
                self._call(name, kind, each, one)

    def _call(self, name: str, kind: str, deliver: Callable[[Any], None], what: Any) -> None:
        """One delivery to one sink, failing open."""
        try:
            deliver(what)
            self.failures.pop(name, None)
        except Exception as exc:
            from loguru import logger

            self.failures[name] = f"{type(exc).__name__}: {exc}"
            self.metrics.counter("engine_plugin_errors_total", plugin=name, kind=kind).inc()
            logger.warning("metrics {} {} failed: {}: {}", kind, name, type(exc).__name__, exc)

    def close(self) -> None:
        """Deliver what is buffered, then close every store and exporter that has
        ``close()``."""
        from loguru import logger

        self.flush()
        for name, kind, sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("metrics {} {} failed to close", kind, name)
