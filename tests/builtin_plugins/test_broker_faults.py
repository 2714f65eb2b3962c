"""The ``faulty`` broker (engine/builtins/broker_faults.py): each fault kind at
roughly its rate and exactly reproducible for a seed, one draw stream per kind,
the dangerous timeout (the venue has the order, the call never returned), outages
by engine time, and config errors by path. Driven directly with a recording sink."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from scripted import RecordingSink

from engine import (
    ConfigError,
    Engine,
    Instrument,
    NetworkError,
    Order,
    OrderIntent,
    OrderType,
    PluginSettings,
    Side,
)
from engine.builtins import broker_faults
from engine.builtins.broker_faults import OUTAGE_MESSAGE, FaultyBroker, FaultyConfig, Outage

D = Decimal
TICK = D("0.01")
X = Instrument("X", TICK)
MIN = 60_000_000_000
N = 2000


class Sink(RecordingSink):
    """The recording sink, with instrument X."""

    def __init__(self) -> None:
        super().__init__(X)


def order(cid: str, limit: str | None = None) -> Order:
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    intent = OrderIntent("s", "X", Side.BUY, D(1), kind, None if limit is None else D(limit))
    return Order(cid, intent, 0)


def bar(ts: int) -> Any:
    return SimpleNamespace(ts=ts, open=10000, high=10100, low=9900, close=10000, volume=1.0)


def faulty(**options: Any) -> tuple[FaultyBroker, Sink]:
    broker = FaultyBroker(FaultyConfig(**options))
    sink = Sink()
    broker.bind(sink)
    return broker, sink


async def submit_all(broker: FaultyBroker, n: int = N, limit: str | None = None) -> list[Any]:
    """Submit ``n`` orders concurrently (hung calls hang together); the outcome
    of each call: None or the exception it raised."""
    return await asyncio.gather(
        *(broker.submit(order(f"o-{i}", limit)) for i in range(n)), return_exceptions=True
    )


def failed(outcomes: list[Any], text: str) -> list[int]:
    return [i for i, o in enumerate(outcomes) if isinstance(o, NetworkError) and text in str(o)]


def near(count: int, rate: float, n: int = N) -> bool:
    """Within 4 standard deviations of the expected count."""
    sd: float = (n * rate * (1 - rate)) ** 0.5
    return abs(count - n * rate) <= 4 * sd + 1


# -- no faults ----------------------------------------------------------------------------


async def test_without_faults_it_is_the_simulated_venue() -> None:
    broker, sink = faulty(fee_bps=D(10))
    await broker.submit(order("a-1"))
    await broker.submit(order("a-2", limit="50"))
    broker.on_bar(X, bar(MIN))
    await broker.cancel("a-2")
    assert sink.events == [
        ("accepted", "a-1"),
        ("accepted", "a-2"),
        ("filled", "a-1", D(1), D(100), D("0.1"), "a-1:1"),
        ("canceled", "a-2", "canceled by request"),
    ]
    status = await broker.order_status("a-1")
    assert status is not None and status.state == "filled"
    assert (await broker.snapshot()) == broker.venue.snapshot()
    assert set(broker.injected.values()) == {0}


def test_the_record_and_its_defaults() -> None:
    (record,) = broker_faults.engine_brokers()
    assert (record.name, record.live, record.deduplicates) == ("faulty", False, True)
    assert record.config_type is FaultyConfig
    cfg = FaultyConfig()
    assert (cfg.seed, cfg.error_rate, cfg.timeout_after_venue, cfg.hang, cfg.latency) == (
        0,
        0.0,
        0.5,
        "1h",
        "0ms",
    )
    assert cfg.fee_bps == D(0) and cfg.state is None  # the simulated options


# -- submit errors ------------------------------------------------------------------------


async def test_errors_at_their_rate_never_reach_the_venue_and_repeat_with_the_seed() -> None:
    broker, sink = faulty(seed=3, error_rate=0.2)
    outcomes = await submit_all(broker)
    errors = failed(outcomes, "simulated network error")
    assert near(len(errors), 0.2)
    assert broker.injected["error"] == len(errors)
    assert all(broker.venue.order_status(f"o-{i}") is None for i in errors)
    assert len(sink.of("accepted")) == N - len(errors)
    again, _ = faulty(seed=3, error_rate=0.2)
    assert failed(await submit_all(again), "simulated network error") == errors
    other, _ = faulty(seed=4, error_rate=0.2)
    assert failed(await submit_all(other), "simulated network error") != errors


# -- timeouts -----------------------------------------------------------------------------


async def test_a_timeout_after_the_venue_leaves_the_order_there_though_the_call_never_returned() -> (
    None
):
    broker, sink = faulty(timeout_rate=1, timeout_after_venue=1)  # hang: 1h
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(broker.submit(order("a-1")), 0.05)
    status = broker.venue.order_status("a-1")
    assert status is not None and status.state == "accepted"
    assert sink.events == [("accepted", "a-1")]  # the venue reported it; the call hung
    assert broker.injected["timeout"] == broker.injected["timeout_after_venue"] == 1
    broker.on_bar(X, bar(MIN))
    assert [e[0] for e in sink.events] == ["accepted", "filled"]

    lost, sink = faulty(timeout_rate=1, timeout_after_venue=0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lost.submit(order("a-1")), 0.05)
    assert lost.venue.order_status("a-1") is None and sink.events == []


async def test_timeouts_at_their_rate_half_after_the_venue_reproducibly() -> None:
    broker, _ = faulty(seed=1, timeout_rate=0.1, hang="10ms")
    outcomes = await submit_all(broker)
    timeouts = failed(outcomes, "simulated timeout")
    assert near(len(timeouts), 0.1) and broker.injected["timeout"] == len(timeouts)
    reached = [i for i in timeouts if broker.venue.order_status(f"o-{i}") is not None]
    assert near(len(reached), 0.5, len(timeouts))
    assert broker.injected["timeout_after_venue"] == len(reached)
    again, _ = faulty(seed=1, timeout_rate=0.1, hang="10ms")
    assert failed(await submit_all(again), "simulated timeout") == timeouts
    assert [i for i in timeouts if again.venue.order_status(f"o-{i}") is not None] == reached


# -- acks and fills -------------------------------------------------------------------------


async def test_dropped_acks_at_their_rate_the_order_still_rests_and_fills() -> None:
    broker, sink = faulty(seed=5, drop_ack_rate=0.3)
    await submit_all(broker)
    acked = [e[1] for e in sink.of("accepted")]
    assert near(N - len(acked), 0.3) and broker.injected["drop_ack"] == N - len(acked)
    assert len(broker.venue.snapshot().open_orders) == N
    broker.on_bar(X, bar(MIN))
    assert len(sink.of("filled")) == N
    again, sink2 = faulty(seed=5, drop_ack_rate=0.3)
    await submit_all(again)
    assert [e[1] for e in sink2.of("accepted")] == acked


async def test_duplicate_fills_at_their_rate_with_the_same_fill_id() -> None:
    broker, sink = faulty(seed=9, duplicate_fill_rate=0.25)
    await submit_all(broker)
    broker.on_bar(X, bar(MIN))
    fills = sink.of("filled")
    duplicates = len(fills) - N
    assert near(duplicates, 0.25) and broker.injected["duplicate_fill"] == duplicates
    assert len({f[5] for f in fills}) == N  # every fill id once, plus repeats of it
    repeated = [a[1] for a, b in itertools.pairwise(fills) if a == b]
    assert len(repeated) == duplicates
    assert len(broker.venue.snapshot().fills) == N  # the venue executed each once
    again, sink2 = faulty(seed=9, duplicate_fill_rate=0.25)
    await submit_all(again)
    again.on_bar(X, bar(MIN))
    assert sink2.events == sink.events


# -- one stream per fault kind ----------------------------------------------------------------


async def test_changing_one_rate_does_not_reshuffle_the_others() -> None:
    calm, calm_sink = faulty(seed=2, timeout_rate=0.1, hang="10ms", drop_ack_rate=0.2)
    stormy, stormy_sink = faulty(
        seed=2, timeout_rate=0.1, hang="10ms", drop_ack_rate=0.2, error_rate=0.5
    )
    calm_out = await submit_all(calm, 500)
    stormy_out = await submit_all(stormy, 500)
    errors = failed(stormy_out, "network error")
    assert errors
    # the n-th submit draws the same timeout whatever the error rate: a call that did
    # not fail with an error times out exactly when it did in the calm run
    calm_timeouts = failed(calm_out, "timeout")
    assert failed(stormy_out, "timeout") == [i for i in calm_timeouts if i not in errors]
    # the n-th acknowledgement is dropped or not as in the calm run
    calm_acks = [e[1] for e in calm_sink.of("accepted")]
    stormy_acks = [e[1] for e in stormy_sink.of("accepted")]
    assert len(stormy_acks) < len(calm_acks)
    reached = [c for c in calm.venue.snapshot().orders if c.state == "accepted"]
    stormy_reached = [c for c in stormy.venue.snapshot().orders if c.state == "accepted"]
    kept_calm = [k for k, o in enumerate(reached) if ("accepted", o.client_id) in calm_sink.events]
    kept_stormy = [
        k for k, o in enumerate(stormy_reached) if ("accepted", o.client_id) in stormy_sink.events
    ]
    common = min(len(reached), len(stormy_reached))
    assert [k for k in kept_calm if k < common] == [k for k in kept_stormy if k < common]


async def test_the_same_seed_injects_exactly_the_same_faults() -> None:
    options = {
        "seed": 11,
        "error_rate": 0.1,
        "timeout_rate": 0.1,
        "hang": "5ms",
        "drop_ack_rate": 0.1,
        "duplicate_fill_rate": 0.1,
    }
    runs = []
    for _ in range(2):
        broker, sink = faulty(**options)
        outcomes = await submit_all(broker, 300)
        broker.on_bar(X, bar(MIN))
        runs.append(([repr(o) for o in outcomes], sink.events, dict(broker.injected)))
    assert runs[0] == runs[1]
    assert all(runs[0][2][k] > 0 for k in broker_faults.KINDS)


# -- latency and outages ------------------------------------------------------------------


async def test_latency_is_added_to_each_call() -> None:
    broker, _ = faulty(latency="30ms")
    started = time.perf_counter()
    await broker.submit(order("a-1"))
    await broker.order_status("a-1")
    assert time.perf_counter() - started >= 0.055


async def test_outages_by_engine_time_from_the_first_bar() -> None:
    broker, sink = faulty(outages=[Outage("10m", "5m"), Outage("0s", "1m")])
    assert len(broker.resting("X")) == 1  # the kernel must show it the first bar
    sink.now = 5 * MIN
    await broker.submit(order("a-0"))  # before the first bar: no outage yet
    sink.now = 100 * MIN
    broker.on_bar(X, bar(100 * MIN))  # origin; fills a-0
    assert broker.origin == 100 * MIN and len(broker.resting("X")) == 0
    calls = (
        lambda: broker.submit(order("a-1", limit="50")),
        lambda: broker.cancel("a-1"),
        lambda: broker.order_status("a-1"),
        broker.snapshot,
    )
    for minute, down in ((0, True), (1, False), (9, False), (10, True), (14, True), (15, False)):
        sink.now = (100 + minute) * MIN
        for call in calls:
            if down:
                with pytest.raises(NetworkError, match=r"venue unreachable \(simulated outage\)"):
                    await call()
            else:
                await call()
    assert broker.injected["outage"] == 3 * len(calls)
    assert OUTAGE_MESSAGE == "venue unreachable (simulated outage)"
    # a-1 submitted and canceled in each minute that was up (1, 9, 15): the first time
    assert ("canceled", "a-1", "canceled by request") in sink.events


# -- config ----------------------------------------------------------------------------------


def config(broker: dict[str, Any]) -> dict[str, Any]:
    return {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic"},
        "broker": {"type": "faulty", **broker},
        "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20}],
    }


def problems(broker: dict[str, Any]) -> list[str]:
    engine = Engine.from_config(config(broker), settings=PluginSettings(builtin_only=True))
    with pytest.raises(ConfigError) as err:
        engine.check()
    return sorted(str(p) for p in err.value.problems)


def test_config_errors_name_the_path() -> None:
    assert problems(
        {
            "error_rate": 2,
            "timeout_rate": -0.5,
            "duplicate_fill_rate": 1.5,
            "latency": "soon",
            "hang": "0s",
            "outages": [{"start": "-1m", "duration": "5m"}, {"start": "1m", "duration": "0m"}],
        }
    ) == [
        "config.broker.duplicate_fill_rate: must be between 0 and 1, got 1.5",
        "config.broker.error_rate: must be between 0 and 1, got 2",
        "config.broker.hang: expected an interval like 250ms, 1s, 1m, 4h or 1d, got '0s'",
        "config.broker.latency: expected an interval like 0ms, 250ms, 1s, 1m, 4h or 1d, got 'soon'",
        "config.broker.outages[0].start: expected an interval like 0ms, 250ms, 1s, 1m, 4h or 1d,"
        " got '-1m'",
        "config.broker.outages[1].duration: expected an interval like 250ms, 1s, 1m, 4h or 1d,"
        " got '0m'",
        "config.broker.timeout_rate: must be between 0 and 1, got -0.5",
    ]


def test_a_valid_config_structures_with_the_simulated_options() -> None:
    engine = Engine.from_config(
        config(
            {
                "fee_bps": "2",
                "seed": 4,
                "error_rate": 0.1,
                "outages": [{"start": "0s", "duration": "1m"}],
            }
        ),
        settings=PluginSettings(builtin_only=True),
    )
    spec = engine.check().component("broker")
    assert spec.options == FaultyConfig(
        fee_bps=D(2), seed=4, error_rate=0.1, outages=(Outage("0s", "1m"),)
    )
