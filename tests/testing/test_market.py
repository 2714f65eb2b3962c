"""The ``scripted_market`` fixture (engine/testing/market.py): bars and quotes from
lists, DataFrames and generators, as the feed of backtests and paper runs; data
mistakes reported with their row."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from engine import Bar, DataError, Instrument, Quote, Strategy, hookimpl
from engine.testing import EngineHarness, ScriptedMarket

D = Decimal
MIN = 60_000_000_000
START = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
BTC = Instrument("BTC-USD", D("0.01"))


class Dip:
    """Buys 1 below 95 when flat, sells above 100; records what it saw."""

    def __init__(self, config: Any) -> None:
        self.ctx: Any = None
        self.seen: list[tuple[int, Decimal]] = []

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx
        SEEN.append(self)

    def on_bar(self, bar: Any) -> None:
        price = self.ctx.price(bar.close)
        self.seen.append((bar.index, price))
        if price < 95 and not self.ctx.position() and not self.ctx.open_order_count():
            self.ctx.buy(1)
        elif price > 100 and self.ctx.position() > 0:
            self.ctx.sell(self.ctx.position())


SEEN: list[Dip] = []


class DipPlugin:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="dip", factory=Dip)]


@pytest.fixture
def dip(engine: EngineHarness, register_plugin: Any) -> EngineHarness:
    SEEN.clear()
    register_plugin(DipPlugin(), "dip")
    engine.strategy("dip")
    return engine


def trades(result: Any) -> list[tuple[str, Decimal, Decimal]]:
    return [(f.side.value, f.quantity, f.price) for f in result.fill_records]


# -- data forms ---------------------------------------------------------------------------


def test_a_list_of_prices_is_flat_bars_a_minute_apart() -> None:
    s = ScriptedMarket([100, "100.5", D("99.25")]).series(BTC)
    assert s.ts.tolist() == [START, START + MIN, START + 2 * MIN]
    assert [s.bar(i).close for i in range(3)] == [D("100"), D("100.5"), D("99.25")]
    bar = s.bar(1)
    assert bar.open == bar.high == bar.low == bar.close


def test_bars_as_dicts_tuples_and_records() -> None:
    items = [
        {"open": 100, "high": 102, "low": 99, "close": 101, "volume": 5},
        (101, 103, 100, 102),
        Bar("BTC-USD", START + 5 * MIN, D(102), D(104), D(101), D(103), D(7)),
        {"ts": "2024-01-01T00:10:00Z", "close": 104},
    ]
    s = ScriptedMarket(items, start=START, interval="1m").series(BTC)
    assert s.ts.tolist() == [START, START + MIN, START + 5 * MIN, START + 10 * MIN]
    assert s.bar(0) == Bar("BTC-USD", START, D(100), D(102), D(99), D(101), D(5))
    assert s.bar(1).high == D(103) and s.bar(1).volume == D(1)
    assert s.bar(2).volume == D(7)
    assert s.bar(3).open == s.bar(3).close == D(104)


def test_quotes_become_bars_at_the_mid_rounded_to_the_tick_with_the_book() -> None:
    items = [
        {"bid": 99.99, "ask": 100.02, "bid_size": 3, "ask_size": 4},  # mid 100.005
        Quote("BTC-USD", START + MIN, D("100.00"), D("100.10"), D(1), D(2)),
    ]
    s = ScriptedMarket(items).series(BTC)
    assert [s.bar(i).close for i in range(2)] == [D("100.01"), D("100.05")]
    assert s.extra["bid"].tolist() == [99.99, 100.0]
    assert s.extra["ask"].tolist() == [100.02, 100.1]
    assert s.extra["ask_size"].tolist() == [4.0, 2.0]


def test_a_dataframe_with_a_datetime_index() -> None:
    index = pd.date_range("2024-03-01", periods=3, freq="5min", tz="UTC")
    frame = pd.DataFrame(
        {"open": [10, 11, 12], "high": [11, 12, 13], "low": [9, 10, 11], "close": [11, 12, 12]},
        index=index,
    )
    s = ScriptedMarket(frame).series(BTC)
    assert s.ts.tolist() == index.asi8.tolist()
    assert s.bar(2) == Bar("BTC-USD", int(index.asi8[2]), D(12), D(13), D(11), D(12), D(1))


def test_several_instruments_and_missing_ones() -> None:
    market = ScriptedMarket({"BTC-USD": [100, 101], "ETH-USD": [10, 11, 12]})
    assert market.symbols == ["BTC-USD", "ETH-USD"]
    assert len(market.series(Instrument("ETH-USD", D("0.01")))) == 3
    with pytest.raises(DataError, match="no data for SOL-USD; it has: BTC-USD, ETH-USD"):
        market.series(Instrument("SOL-USD", D("0.01")))


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [100, 100.005],
            "scripted market BTC-USD row 1, column open: price 100.005 is not a multiple",
        ),
        (
            [{"open": 100, "high": 99, "low": 98, "close": 100}],
            "row 0, column high/low: inconsistent bar",
        ),
        ([100, {"cls": 3}], "scripted market BTC-USD row 1, column cls: unknown column"),
        ([100, "abc"], "scripted market BTC-USD row 1, column close: not a number: 'abc'"),
        (
            [{"ts": 5, "close": 1}, {"ts": 5, "close": 2}],
            "row 1, column timestamp: timestamp does not increase",
        ),
        ([{"volume": 3}], "scripted market BTC-USD row 0: needs a price: close, or bid and ask"),
        ([object()], "cannot read object"),
    ],
)
def test_data_mistakes_name_the_row(items: list[Any], message: str) -> None:
    with pytest.raises(DataError) as caught:
        ScriptedMarket(items).series(BTC)
    assert message in str(caught.value)


# -- as the feed of a run -------------------------------------------------------------------


async def test_the_fixture_makes_it_the_feed_and_adds_its_instruments(
    dip: EngineHarness, scripted_market: Any
) -> None:
    market = scripted_market({"ETH-USD": [100, 99, 90, 92, 101, 102]})
    assert dip.has_instrument("ETH-USD") and dip.data["feed"] == {"type": market.name}
    dip.data["strategies"][0]["instrument"] = "ETH-USD"
    result = await dip.backtest()
    # bought at the open after 90 (92), sold at the open after 101 (102)
    assert trades(result) == [("buy", D(1), D(92)), ("sell", D(1), D(102))]


async def test_backtest_and_paper_runs_see_the_same_market(
    dip: EngineHarness, scripted_market: Any
) -> None:
    scripted_market([100, 99, 90, 92, 101, 102, 93, 94, 105, 106])
    backtest = await dip.backtest()
    paper = await dip.paper()
    assert paper.bars == backtest.bars == 10
    assert (
        trades(paper)
        == trades(backtest)
        == [
            ("buy", D(1), D(92)),
            ("sell", D(1), D(102)),
            ("buy", D(1), D(94)),
            ("sell", D(1), D(106)),
        ]
    )
    assert [f.ts for f in paper.fill_records] == [f.ts for f in backtest.fill_records]


async def test_a_generator_is_pulled_one_bar_at_a_time_in_a_paper_run(
    dip: EngineHarness, scripted_market: Any
) -> None:
    pulled: list[int] = []

    def prices() -> Iterator[float]:
        for k, price in enumerate([100, 90, 96, 101, 103]):
            pulled.append(k)
            yield price

    scripted_market(prices())
    result = await dip.paper()
    assert result.bars == 5 and trades(result) == [("buy", D(1), D(96)), ("sell", D(1), D(103))]
    # when the strategy saw bar k, the generator had been pulled up to k only
    (strategy,) = SEEN
    assert [i for i, _ in strategy.seen] == [0, 1, 2, 3, 4] and pulled == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match="its iterator was consumed by an earlier run"):
        await dip.backtest()


async def test_a_generator_function_serves_every_run(
    dip: EngineHarness, scripted_market: Any
) -> None:
    scripted_market(lambda: iter([100, 90, 96, 101, 103]))
    first = await dip.backtest()
    second = await dip.paper()
    assert trades(first) == trades(second) == [("buy", D(1), D(96)), ("sell", D(1), D(103))]


async def test_quotes_feed_the_spread_filter(dip: EngineHarness, scripted_market: Any) -> None:
    quotes = [
        {"bid": 99.9, "ask": 100.1},
        {"bid": 89, "ask": 91},  # mid 90: the strategy buys, but the spread is 222 bps
        {"bid": 95.95, "ask": 96.05},  # mid 96: no signal
        {"bid": 89.95, "ask": 90.05},  # mid 90 again, 11 bps: allowed
        {"bid": 92, "ask": 92.02},
    ]
    scripted_market(quotes)
    dip.use("filters")
    dip.filter("max_spread", max_bps=50)
    result = await dip.backtest()
    assert result.denials_by_reason == {"max_spread.too_wide": 1}
    assert trades(result) == [("buy", D(1), D("92.01"))]
