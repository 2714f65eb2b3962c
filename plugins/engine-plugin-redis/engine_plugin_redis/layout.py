"""The data layout in Redis, in one place: key names and how points are encoded.

With prefix ``P`` (default ``engine``)::

    P:metrics                          SET   metric names ever written
    P:sources                          SET   sources (engine processes) ever written
    P:index:<name>                     HASH  series key -> {"source", "labels", "kind", "bucket"}
    P:series:<name>:<source>[:<labels>] ZSET  one member per time bucket

``<labels>`` is ``k=v,k=v`` sorted by key. Names, label keys and label values are
percent-encoded (``quote(..., safe="")``) and sources too (``:`` and ``@`` kept),
so no two series share a key; plain values such as ``ETH-USD`` read as they are.

A series' members are JSON arrays, scored by their bucket's start in
**milliseconds** since the epoch (exact in a double; nanoseconds are not):

- counters and gauges: ``[bucket_start_ns, value]``
- histograms: ``[bucket_start_ns, sum, count, [[upper_bound, cumulative_count], ...]]``

One bucket holds one member: writing a bucket again replaces it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from engine import MetricKind, MetricRecord

__all__ = [
    "NS_PER_MS",
    "decode_member",
    "describe",
    "encode_member",
    "index_key",
    "labels_text",
    "metrics_key",
    "series_key",
    "sources_key",
]

NS_PER_MS = 1_000_000

Labels = tuple[tuple[str, str], ...]


def _q(text: str) -> str:
    return quote(text, safe="")


def metrics_key(prefix: str) -> str:
    """The SET of metric names."""
    return f"{prefix}:metrics"


def sources_key(prefix: str) -> str:
    """The SET of sources."""
    return f"{prefix}:sources"


def index_key(prefix: str, name: str) -> str:
    """The HASH of one metric's series: series key -> JSON description."""
    return f"{prefix}:index:{_q(name)}"


def labels_text(labels: Labels) -> str:
    """``k=v,k=v`` (sorted by key, each part percent-encoded)."""
    return ",".join(f"{_q(k)}={_q(v)}" for k, v in sorted(labels))


def series_key(prefix: str, name: str, source: str, labels: Labels) -> str:
    """The ZSET of one series: one metric, one source, one set of labels."""
    key = f"{prefix}:series:{_q(name)}:{quote(source, safe=':@')}"
    return f"{key}:{labels_text(labels)}" if labels else key


def describe(record: MetricRecord, source: str, bucket: str) -> str:
    """The index entry of ``record``'s series (JSON)."""
    return json.dumps(
        {
            "source": source,
            "labels": dict(record.labels),
            "kind": record.kind.value,
            "bucket": bucket,
        },
        sort_keys=True,
    )


def encode_member(record: MetricRecord, start: int) -> str:
    """The member holding ``record`` in the bucket starting at ``start`` (ns)."""
    point: list[Any] = [start, record.value]
    if record.kind is MetricKind.HISTOGRAM:
        point += [record.count, [[le, n] for le, n in record.buckets]]
    return json.dumps(point, separators=(",", ":"))


def decode_member(member: str) -> list[Any]:
    """A member back as ``[start_ns, value]`` or ``[start_ns, sum, count, buckets]``."""
    point = json.loads(member)
    if not isinstance(point, list) or len(point) not in (2, 4):
        raise ValueError(f"not a point of this store: {member!r}")
    return point
