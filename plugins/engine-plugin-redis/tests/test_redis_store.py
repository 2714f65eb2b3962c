"""The store against a real Redis: buckets, retention, labels, histograms, the key
layout, and reading back."""

from __future__ import annotations

import json
import os
import socket

import pytest
import redis
from engine_plugin_redis import (
    HistogramPoint,
    RedisConfig,
    RedisStore,
    metric_names,
    read,
    sources,
)

from engine import MetricKind, MetricRecord

MIN = 60_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def rec(name: str, value: float, ts: int, **labels: str) -> MetricRecord:
    return MetricRecord(name, MetricKind.GAUGE, tuple(sorted(labels.items())), value, ts)


def store(url: str, **options: object) -> RedisStore:
    return RedisStore(RedisConfig(url=url, source=str(options.pop("source", "s1")), **options))  # type: ignore[arg-type]


def test_two_writes_in_one_bucket_keep_the_later_value(redis_url: str, raw: redis.Redis) -> None:
    s = store(redis_url, bucket="1m")
    s.write([rec("engine_equity", 100.0, T0 + 10_000_000_000)])
    s.write([rec("engine_equity", 101.5, T0 + 50_000_000_000)])  # same minute: replaces
    s.write([rec("engine_equity", 102.0, T0 + MIN)])
    assert s.series("engine_equity") == {"s1": [(T0, 101.5), (T0 + MIN, 102.0)]}
    key = "engine:series:engine_equity:s1"
    # one member per bucket, scored by the bucket's start in ms, readable as JSON
    assert raw.zrange(key, 0, -1, withscores=True) == [
        (f"[{T0},101.5]", T0 // 1_000_000),
        (f"[{T0 + MIN},102.0]", (T0 + MIN) // 1_000_000),
    ]
    # an equal value in the same bucket is still one member
    s.write([rec("engine_equity", 102.0, T0 + MIN + 1)])
    assert raw.zcard(key) == 2
    s.close()


def test_retention_keeps_the_newest_buckets(redis_url: str, raw: redis.Redis) -> None:
    s = store(redis_url, retention=3)
    for k in range(5):
        s.write([rec("x", float(k), T0 + k * MIN, side="a")])
    assert s.series("x", side="a") == {"s1": [(T0 + k * MIN, float(k)) for k in (2, 3, 4)]}
    assert raw.zcard("engine:series:x:s1:side=a") == 3
    # an older bucket arriving late is placed in order, then trimmed as the oldest
    s.write([rec("x", 9.0, T0, side="a")])
    assert [v for _, v in s.series("x", side="a")["s1"]] == [2.0, 3.0, 4.0]


def test_labels_and_sources_are_kept_apart(redis_url: str, raw: redis.Redis) -> None:
    a, b = store(redis_url, source="a"), store(redis_url, source="b")
    a.write([rec("pos", 1.0, T0, instrument="BTC-USD"), rec("pos", 2.0, T0, instrument="ETH-USD")])
    b.write([rec("pos", 3.0, T0, instrument="BTC-USD")])
    assert a.series("pos", instrument="BTC-USD") == {"a": [(T0, 1.0)], "b": [(T0, 3.0)]}
    assert a.series("pos", instrument="ETH-USD") == {"a": [(T0, 2.0)]}
    assert a.series("pos") == {}  # labels must match exactly
    rows = read(redis_url, "pos")  # a subset filter: every series of the metric
    assert [(r.source, r.labels, r.kind, r.points) for r in rows] == [
        ("a", {"instrument": "BTC-USD"}, "gauge", [(T0, 1.0)]),
        ("a", {"instrument": "ETH-USD"}, "gauge", [(T0, 2.0)]),
        ("b", {"instrument": "BTC-USD"}, "gauge", [(T0, 3.0)]),
    ]
    assert [r.source for r in read(redis_url, "pos", {"instrument": "BTC-USD"})] == ["a", "b"]
    assert [r.last for r in read(redis_url, "pos", source="b")] == [3.0]
    assert metric_names(redis_url) == ["pos"]
    assert sources(redis_url) == ["a", "b"]
    assert sorted(raw.keys("*")) == [
        "engine:index:pos",
        "engine:metrics",
        "engine:series:pos:a:instrument=BTC-USD",
        "engine:series:pos:a:instrument=ETH-USD",
        "engine:series:pos:b:instrument=BTC-USD",
        "engine:sources",
    ]
    assert json.loads(raw.hget("engine:index:pos", "engine:series:pos:b:instrument=BTC-USD")) == {  # type: ignore[arg-type]
        "source": "b",
        "labels": {"instrument": "BTC-USD"},
        "kind": "gauge",
        "bucket": "1m",
    }


def test_awkward_names_and_values_get_distinct_readable_keys(
    redis_url: str, raw: redis.Redis
) -> None:
    s = store(redis_url, source="host:42")
    s.write(
        [
            rec("m", 1.0, T0, a="1,b=2"),  # would read as two labels if not encoded
            rec("m", 2.0, T0, a="1", b="2"),
            rec("m", 3.0, T0),
        ]
    )
    assert sorted(raw.keys("engine:series:*")) == [
        "engine:series:m:host:42",
        "engine:series:m:host:42:a=1%2Cb%3D2",
        "engine:series:m:host:42:a=1,b=2",
    ]
    assert s.series("m", a="1,b=2") == {"host:42": [(T0, 1.0)]}
    assert s.series("m", a="1", b="2") == {"host:42": [(T0, 2.0)]}
    assert s.series("m") == {"host:42": [(T0, 3.0)]}


def test_histograms_keep_sum_count_and_buckets(redis_url: str, raw: redis.Redis) -> None:
    s = store(redis_url)
    hist = MetricRecord(
        "engine_op_seconds", MetricKind.HISTOGRAM, (("op", "submit"),), 0.75, T0, 4,
        ((0.1, 1), (1.0, 3)),
    )  # fmt: skip
    s.write([hist])
    (row,) = read(redis_url, "engine_op_seconds", {"op": "submit"})
    assert row.kind == "histogram"
    assert row.points == [(T0, 0.75)]  # the value is the sum of observations
    assert row.histogram == [HistogramPoint(T0, 0.75, 4, ((0.1, 1), (1.0, 3)))]
    assert raw.zrange(row.key, 0, -1) == [f"[{T0},0.75,4,[[0.1,1],[1.0,3]]]"]


def test_prefixes_do_not_see_each_other(redis_url: str, raw: redis.Redis) -> None:
    store(redis_url, prefix="prod").write([rec("eq", 1.0, T0)])
    store(redis_url, prefix="test").write([rec("eq", 2.0, T0)])
    assert [r.points for r in read(redis_url, "eq", prefix="prod")] == [[(T0, 1.0)]]
    assert [r.points for r in read(redis_url, "eq", prefix="test")] == [[(T0, 2.0)]]
    assert read(redis_url, "eq") == []  # the default prefix "engine" has nothing
    assert all(k.startswith(("prod:", "test:")) for k in raw.keys("*"))


def test_one_round_trip_per_collection_and_none_when_empty(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store(redis_url)
    executed: list[int] = []
    real = redis.client.Pipeline.execute

    def counting(pipe: redis.client.Pipeline, raise_on_error: bool = True) -> list[object]:
        executed.append(len(pipe.command_stack))
        return real(pipe, raise_on_error)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    s.write([rec("a", 1.0, T0), rec("b", 2.0, T0, k="v"), rec("c", 3.0, T0)])
    s.write([])
    assert executed == [3 * 4 + 2]  # per series: remove, add, trim, index; then 2 SADDs


def test_the_default_source_is_host_and_pid(redis_url: str) -> None:
    s = RedisStore(RedisConfig(url=redis_url))
    assert s.source == f"{socket.gethostname()}:{os.getpid()}"
    s.write([rec("eq", 1.0, T0)])
    assert s.series("eq") == {s.source: [(T0, 1.0)]}
