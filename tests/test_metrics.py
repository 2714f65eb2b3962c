"""Metrics: handles, the engine's catalogue, collection cadence, fail-open sinks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from engine import Engine, Exporter, MetricKind, Metrics, hookimpl


def test_handles_accumulate_and_collect() -> None:
    m = Metrics()
    m.counter("jobs_total", kind="a").inc()
    m.counter("jobs_total", kind="a").inc(2)
    m.gauge("queue").set(7)
    h = m.histogram("latency")
    for v in (0.5e-6, 3e-4, 0.5, 50):
        h.observe(v)
    records = {(r.name, r.labels): r for r in m.collect(ts=5)}
    assert records[("jobs_total", (("kind", "a"),))].value == 3
    assert records[("queue", ())].value == 7
    hist = records[("latency", ())]
    assert (
        hist.kind is MetricKind.HISTOGRAM
        and hist.count == 4
        and hist.value == pytest.approx(50.5003005)
    )
    assert (
        dict(hist.buckets)[1e-6] == 1
        and dict(hist.buckets)[1e-3] == 2
        and dict(hist.buckets)[10.0] == 3
    )
    with pytest.raises(ValueError, match="is a counter, not a gauge"):
        m.gauge("jobs_total", kind="a")


def values(result: Any, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {r.labels: r.value for r in result.metrics if r.name == name}


def test_the_catalogue_agrees_with_the_engine(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    base_config["guards"] = [{"type": "max_position", "limit": "0.5"}]  # every buy of 1 is reduced
    base_config["filters"] = [
        {"type": "max_spread", "max_bps": 5}
    ]  # no quotes: every intent denied
    result = make_engine(base_config).backtest_sync()
    assert values(result, "engine_bars_total") == {(("instrument", "BTC-USD"),): 2000}
    orders = {dict(k)["state"]: v for k, v in values(result, "engine_orders_total").items()}
    assert orders == {s.value: n for s, n in result.order_counts.items()}
    denials = values(result, "engine_denials_total")
    assert sum(denials.values()) == len(result.denials) > 0
    assert denials[
        (("plugin", "filters"), ("reason", "max_spread.no_quote"), ("stage", "filter"))
    ] == len(result.denials)
    assert values(result, "engine_equity")[()] == pytest.approx(float(result.final_equity))
    assert values(result, "engine_trading_state")[()] == 0


def test_nothing_is_collected_during_a_run_without_stores_or_exporters(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = Metrics.collect
    monkeypatch.setattr(Metrics, "collect", lambda self, ts: calls.append(ts) or real(self, ts))
    make_engine().backtest_sync()
    assert len(calls) == 1  # only the final values for the result


def with_sinks(base_config: dict[str, Any], **sections: Any) -> dict[str, Any]:
    config = copy.deepcopy(base_config)
    config.update(sections)
    return config


def test_collections_follow_the_interval_into_a_sqlite_store(
    make_engine: Callable[..., Engine], base_config: dict[str, Any], tmp_path: Path
) -> None:
    from engine.builtins.metrics_sinks import query

    db = tmp_path / "metrics.db"
    config = with_sinks(
        base_config,
        metrics={"interval": "10m"},
        metrics_stores=[{"type": "sqlite", "path": str(db), "bucket": "10m"}],
    )
    make_engine(config).backtest_sync()
    rows = query(str(db), "engine_bars_total")
    # 2000 one-minute bars: collections at minutes 10, 20 ... 1990, and the final one at
    # minute 1999 lands in the last bucket: 199 rows; 11 bars seen at 00:10, 2000 at the end
    assert len(rows) == 199
    assert rows[0]["value"] == 11 and rows[-1]["value"] == 2000
    assert all(b["bucket"] % 600_000_000_000 == 0 for b in rows)


def test_a_raising_exporter_is_counted_and_logged_once_per_collection(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    class Boom:
        def __init__(self, _: Any) -> None:
            self.calls = 0

        def export(self, records: Any) -> None:
            self.calls += 1
            raise ConnectionError("collector down")

    made: list[Boom] = []

    class P:
        @hookimpl
        def engine_exporters(self) -> list[Exporter]:
            return [Exporter(name="boom", factory=lambda c: made.append(Boom(c)) or made[-1])]

    config = with_sinks(base_config, metrics={"interval": "1h"}, exporters=[{"type": "boom"}])
    eng = make_engine(config)
    eng.register(P(), "boom")
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        result = eng.backtest_sync()
    finally:
        logger.remove(sink)
    (exporter,) = made
    assert result.bars == 2000 and result.fill_records  # trading went on
    assert exporter.calls == 34  # 33 hourly boundaries in 2000 minutes, plus the final one
    failures = [line for line in lines if "metrics exporter boom failed" in line]
    assert len(failures) == exporter.calls  # once per collection, not per bar or order
    errors = values(result, "engine_plugin_errors_total")
    assert (
        errors[(("kind", "exporter"), ("plugin", "boom"))] == exporter.calls - 1
    )  # the final record predates its own failure


def test_every_metric_a_run_emits_is_documented(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    from engine.kernel.catalogue import CATALOGUE, EMITTED

    base_config["logging"] = {"trace_orders": True}
    base_config["guards"] = [{"type": "max_position", "limit": "0.5"}]
    result = make_engine(base_config).backtest_sync()
    names = {r.name for r in result.metrics}
    assert {"engine_order_span_seconds", "engine_process_rss_bytes"} <= names
    assert names <= set(CATALOGUE) | set(EMITTED), names - set(CATALOGUE) - set(EMITTED)


class _Sink:
    """A store without batch support: records every collection it is given."""

    def __init__(self) -> None:
        self.collections: list[list[Any]] = []

    def write(self, records: Any) -> None:
        self.collections.append(list(records))


def _drive(publisher: Any, metrics: Metrics, steps: int) -> None:
    g = metrics.gauge("price")
    c = metrics.counter("ticks_total")
    for k in range(steps):
        g.set(100 + k % 7)
        c.inc()
        if k == 5:  # a series that appears mid-run
            metrics.counter("late_total", why="x").inc()
        publisher.publish(60_000_000_000 * k + 1)
        if k % 4 == 3:
            publisher.flush()
    publisher.flush()


@pytest.mark.parametrize("bucket", ["1m", "3m"])
def test_buffered_collections_reach_stores_exactly_as_unbuffered(bucket: str) -> None:
    from engine.builtins.metrics_sinks import MemoryConfig, MemoryStore
    from engine.metrics import Publisher

    got = []
    for buffered in (False, True):
        memory, plain = MemoryStore(MemoryConfig(bucket=bucket)), _Sink()
        metrics = Metrics()
        publisher = Publisher(
            metrics, [("memory", memory), ("plain", plain)], [], buffered=buffered
        )
        _drive(publisher, metrics, 13)
        got.append((memory.snapshot(), [sorted(map(repr, c)) for c in plain.collections]))
    assert got[0] == got[1]
    assert len(got[1][1]) == 13  # one write per collection for a store without batches
    assert got[1][0][("late_total", (("why", "x"),))]  # the late series is there


def test_buffered_sqlite_store_equals_unbuffered(tmp_path: Path) -> None:
    from engine.builtins.metrics_sinks import SqliteConfig, SqliteStore, query
    from engine.metrics import Publisher

    rows = []
    for buffered in (False, True):
        path = str(tmp_path / f"m{buffered}.sqlite")
        metrics = Metrics()
        store = SqliteStore(SqliteConfig(path=path, bucket="2m"))
        publisher = Publisher(metrics, [("sqlite", store)], [], buffered=buffered)
        _drive(publisher, metrics, 9)
        publisher.close()
        rows.append([query(path, n) for n in ("price", "ticks_total", "late_total")])
    assert rows[0] == rows[1] and rows[0][0]


def test_a_histogram_turns_buffering_off_without_losing_a_collection() -> None:
    from engine.metrics import Publisher

    sink = _Sink()
    metrics = Metrics()
    publisher = Publisher(metrics, [("plain", sink)], [], buffered=True)
    metrics.gauge("g").set(1)
    publisher.publish(1)
    publisher.publish(2)
    metrics.histogram("h").observe(0.1)
    publisher.publish(3)
    publisher.publish(4)
    publisher.flush()
    assert [c[0].ts for c in sink.collections] == [1, 2, 3, 4]
    assert any(r.name == "h" for r in sink.collections[-1])
