"""Reading series back, by anyone, during or after a run.

>>> from engine_plugin_redis import read
>>> for s in read("redis://127.0.0.1:6379/0", "engine_equity"):  # doctest: +SKIP
...     print(s.source, s.labels, s.kind, s.points[-1])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import redis

from engine import Secret, parse_interval
from engine_plugin_redis.layout import decode_member, index_key, metrics_key, sources_key

__all__ = ["HistogramPoint", "Series", "connect", "metric_names", "read", "read_series", "sources"]


@attrs.frozen
class HistogramPoint:
    """One bucket of a histogram series: the sum and number of observations and the
    cumulative count at or below each upper bound, as last written in the bucket."""

    start: int
    sum: float
    count: int
    buckets: tuple[tuple[float, int], ...]


@attrs.frozen
class Series:
    """One series as stored: which process wrote it, its labels and kind, and its
    points ``(bucket_start_ns, value)``, oldest first (for a histogram the value is
    the sum of observations; ``histogram`` has the counts too)."""

    name: str
    source: str
    labels: dict[str, str]
    kind: str
    points: list[tuple[int, float]]
    histogram: list[HistogramPoint] = attrs.field(factory=list)
    #: the series' key in Redis, for redis-cli
    key: str = ""

    @property
    def last(self) -> float | None:
        """The value of the newest bucket (``None`` when empty)."""
        return self.points[-1][1] if self.points else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str, password: str | Secret | None = None, timeout: str = "5s") -> redis.Redis:
    """A redis-py client for reading (replies decoded to ``str``)."""
    if isinstance(password, Secret):
        password = password.reveal()
    seconds = parse_interval(timeout) / 1e9
    return redis.Redis.from_url(
        url,
        password=password,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        decode_responses=True,
    )


def read_series(
    client: redis.Redis,
    name: str,
    labels: Mapping[str, object] | None = None,
    *,
    prefix: str = "engine",
    source: str | None = None,
    exact: bool = False,
) -> list[Series]:
    """Every series of metric ``name`` whose labels include ``labels`` (all of them
    with ``exact``), from every source or only ``source``; sorted by source, then
    labels. Two round trips: the index, then the series."""
    wanted = {k: str(v) for k, v in (labels or {}).items()}
    chosen: list[tuple[str, dict[str, Any]]] = []
    for raw_key, raw_meta in client.hgetall(index_key(prefix, name)).items():
        meta = json.loads(_text(raw_meta))
        got: dict[str, str] = meta["labels"]
        if source is not None and meta["source"] != source:
            continue
        if exact and got != wanted:
            continue
        if any(got.get(k) != v for k, v in wanted.items()):
            continue
        chosen.append((_text(raw_key), meta))
    chosen.sort(key=lambda c: (c[1]["source"], sorted(c[1]["labels"].items())))
    pipe = client.pipeline(transaction=False)
    for key, _meta in chosen:
        pipe.zrange(key, 0, -1)
    members = pipe.execute() if chosen else []
    out = []
    for (key, meta), found in zip(chosen, members, strict=True):
        points, histogram = [], []
        for member in found:
            point = decode_member(_text(member))
            points.append((int(point[0]), float(point[1])))
            if len(point) == 4:
                bounds = tuple((float(le), int(n)) for le, n in point[3])
                histogram.append(
                    HistogramPoint(int(point[0]), float(point[1]), int(point[2]), bounds)
                )
        out.append(
            Series(
                name=name,
                source=meta["source"],
                labels=meta["labels"],
                kind=meta["kind"],
                points=points,
                histogram=histogram,
                key=key,
            )
        )
    return out


def read(
    url: str,
    name: str,
    labels: Mapping[str, object] | None = None,
    prefix: str = "engine",
    *,
    password: str | Secret | None = None,
    source: str | None = None,
) -> list[Series]:
    """The series of metric ``name`` in the Redis at ``url`` whose labels include
    ``labels``: one :class:`Series` per (source, labels), oldest point first."""
    client = connect(url, password)
    try:
        return read_series(client, name, labels, prefix=prefix, source=source)
    finally:
        client.close()


def metric_names(
    url: str, prefix: str = "engine", *, password: str | Secret | None = None
) -> list[str]:
    """The names of every metric written under ``prefix``, sorted."""
    client = connect(url, password)
    try:
        return sorted(_text(n) for n in client.smembers(metrics_key(prefix)))
    finally:
        client.close()


def sources(url: str, prefix: str = "engine", *, password: str | Secret | None = None) -> list[str]:
    """The sources (engine processes) that wrote under ``prefix``, sorted."""
    client = connect(url, password)
    try:
        return sorted(_text(n) for n in client.smembers(sources_key(prefix)))
    finally:
        client.close()
