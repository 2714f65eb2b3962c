"""engine-plugin-redis: a metrics store writing bucketed series to Redis.

Install it into the engine's environment and configure a store::

    [[metrics_stores]]
    type = "redis"
    url = "redis://127.0.0.1:6379/0"
    source = "sweep-7"          # names this process; default <hostname>:<pid>

    [metrics]
    interval = "1m"             # engine time between collections

At each collection every series' value goes to a sorted set scored by its time
bucket (the last value of a bucket is kept, ``retention`` buckets per series), in
one round trip. Several engine processes can write to one Redis: ``source`` keeps
their series apart. :func:`read` (or ``redis-cli``; see
:mod:`engine_plugin_redis.layout`) reads them back. A Redis that is down or slow
costs at most about ``timeout`` per collection: the error is counted and logged
and the run goes on.
"""

from __future__ import annotations

from engine import MetricsStore, hookimpl
from engine_plugin_redis.config import RedisConfig
from engine_plugin_redis.reading import (
    HistogramPoint,
    Series,
    connect,
    metric_names,
    read,
    read_series,
    sources,
)
from engine_plugin_redis.store import RedisStore

__all__ = [
    "HistogramPoint",
    "RedisConfig",
    "RedisStore",
    "Series",
    "connect",
    "engine_metrics_stores",
    "metric_names",
    "read",
    "read_series",
    "sources",
]


@hookimpl
def engine_metrics_stores() -> list[MetricsStore]:
    """The ``redis`` metrics store."""
    return [
        MetricsStore(
            name="redis",
            factory=RedisStore,
            config_type=RedisConfig,
            description="Bucketed series in Redis, shared by many engine processes.",
        )
    ]
