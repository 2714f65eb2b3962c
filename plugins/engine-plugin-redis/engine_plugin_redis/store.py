"""The store: each collection written to Redis in one round trip."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from loguru import logger

from engine import MetricKind, MetricRecord
from engine_plugin_redis.config import RedisConfig
from engine_plugin_redis.layout import (
    NS_PER_MS,
    describe,
    encode_member,
    index_key,
    metrics_key,
    series_key,
    sources_key,
)
from engine_plugin_redis.reading import read_series

__all__ = ["RedisStore"]

Labels = tuple[tuple[str, str], ...]


class RedisStore:
    """Series of (bucket start, value) in Redis: the last value of each time bucket,
    ``retention`` buckets per series, one sorted set per (metric, source, labels).

    ``write`` is called on the engine's event loop at each collection; it sends one
    non-transactional pipeline (one round trip) and raises on any failure, which
    the engine counts in ``engine_plugin_errors_total{plugin="redis",kind="store"}``
    and logs; the run goes on. Nothing connects before the first write.
    """

    def __init__(self, config: RedisConfig | None) -> None:
        self.config = config = config or RedisConfig()
        self.prefix = config.prefix
        self.source = config.source_name()
        self.bucket_ns = config.bucket_ns
        self.retention = config.retention
        self.client: redis.Redis = redis.Redis.from_url(config.url, **config.client_options())
        # (name, kind, labels) -> (series key, index entry); the same every collection
        self._keys: dict[tuple[str, MetricKind, Labels], tuple[str, str]] = {}
        logger.info(
            "redis metrics store: {} prefix {!r} source {!r}", config.url, self.prefix, self.source
        )

    def _series(self, record: MetricRecord) -> tuple[str, str]:
        ident = (record.name, record.kind, record.labels)
        found = self._keys.get(ident)
        if found is None:
            found = self._keys[ident] = (
                series_key(self.prefix, record.name, self.source, record.labels),
                describe(record, self.source, self.config.bucket),
            )
        return found

    def write(self, records: Iterable[MetricRecord]) -> None:
        """Store one collection: per series, replace its bucket's member, trim to
        ``retention`` buckets, and (re)register it in the index. One round trip."""
        pipe = self.client.pipeline(transaction=False)
        names: set[str] = set()
        for r in records:
            key, entry = self._series(r)
            start = r.ts - r.ts % self.bucket_ns
            score = start // NS_PER_MS  # buckets are whole milliseconds (intervals are)
            pipe.zremrangebyscore(key, score, score)
            pipe.zadd(key, {encode_member(r, start): score})
            pipe.zremrangebyrank(key, 0, -self.retention - 1)
            pipe.hset(index_key(self.prefix, r.name), key, entry)
            names.add(r.name)
        if not names:
            return
        pipe.sadd(metrics_key(self.prefix), *sorted(names))
        pipe.sadd(sources_key(self.prefix), self.source)
        pipe.execute()

    def series(self, name: str, **labels: object) -> dict[str, list[tuple[int, float]]]:
        """Points of the series ``name`` whose labels are exactly ``labels``, from
        every source in this store's Redis and prefix: ``{source: [(bucket_start_ns,
        value), ...]}``, oldest first."""
        found = read_series(self.client, name, labels, prefix=self.prefix, exact=True)
        return {s.source: s.points for s in found}

    def close(self) -> None:
        """Close the connection (called when the run ends)."""
        self.client.close()
