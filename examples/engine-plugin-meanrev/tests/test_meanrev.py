"""The meanrev plugin, tested with the engine's own fixtures (engine.testing) only."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from engine import ConfigError

import engine_plugin_meanrev

D = Decimal
CALM = [100, 101] * 10  # mean 100.5, std 0.5: the bands are 99.5 and 101.5


def trades(result):
    return [(f.side.value, f.quantity, f.price) for f in result.fill_records]


def test_the_plugin_conforms(assert_conforms):
    report = assert_conforms(engine_plugin_meanrev, name="meanrev")
    assert report.built == ["engine_strategies meanrev"]


def test_it_is_found_through_its_entry_point(engine):
    engine.use("meanrev")  # the installed distribution's entry point
    (info,) = [i for i in engine.plugins.infos() if i.name == "meanrev"]
    assert (info.status, info.distribution) == ("loaded", "engine-plugin-meanrev")
    assert "meanrev" in engine.plugins.records("engine_strategies")


async def test_buys_below_the_lower_band_and_sells_above_the_mean(
    engine, register_plugin, scripted_market
):
    register_plugin(engine_plugin_meanrev, "meanrev")
    # bar 20 closes at 97, under the lower band (98.53): buy at the next open (98);
    # bar 24 closes at 101, over the mean (100.15): sell at the next open (102)
    scripted_market([*CALM, 97, 98, 99, 100, 101, 102, 103])
    engine.strategy("meanrev", window=20, k=2.0, quantity="0.5")
    result = await engine.backtest()
    assert trades(result) == [("buy", D("0.5"), D(98)), ("sell", D("0.5"), D(102))]
    assert result.portfolio.realized_pnl == D(2)


async def test_the_upper_band_exit_holds_longer(engine, register_plugin, scripted_market):
    register_plugin(engine_plugin_meanrev, "meanrev")
    scripted_market([*CALM, 97, 98, 99, 100, 101, 102, 110, 111])
    engine.strategy("meanrev", window=20, k=2.0, exit="upper")
    result = await engine.backtest()
    # 101 and 102 are not above the upper band; 110 is: sold at the next open (111)
    assert trades(result) == [("buy", D(1), D(98)), ("sell", D(1), D(111))]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_backtest_and_paper_take_the_same_decisions(
    engine, register_plugin, scripted_market, seed
):
    # the backtest uses prepare() (numpy over the whole series), the paper run rolling
    # sums bar by bar: the same fills prove they decide alike
    rng = random.Random(seed)
    prices = [100.0]
    for _ in range(400):
        prices.append(round(max(prices[-1] * (1 + rng.gauss(0, 0.01)), 1.0), 2))
    register_plugin(engine_plugin_meanrev, "meanrev")
    scripted_market(prices)
    engine.strategy("meanrev", window=15, k=1.5)
    backtest = await engine.backtest()
    paper = await engine.paper()
    assert len(backtest.fill_records) >= 4
    assert [(f.side, f.price, f.ts) for f in paper.fill_records] == [
        (f.side, f.price, f.ts) for f in backtest.fill_records
    ]


async def test_partial_fills_are_waited_for(engine, register_plugin, scripted_market, fake_broker):
    register_plugin(engine_plugin_meanrev, "meanrev")
    scripted_market([*CALM, 97, 96, 95, 99, 101, 102, 103, 104, 105, 106])
    fake_broker.partial_fills(1, 1, 1, 1)
    engine.strategy("meanrev", window=20, quantity="1")
    result = await engine.backtest()
    buys = [f for f in result.fill_records if f.side.value == "buy"]
    sells = [f for f in result.fill_records if f.side.value == "sell"]
    # still under the band on the next bars, yet no second buy while the first fills
    assert [f.quantity for f in buys] == [D("0.250")] * 4
    assert len({f.client_id for f in buys}) == 1
    assert sum(f.quantity for f in sells) == D(1)
    assert result.portfolio.positions["BTC-USD"].quantity == 0


async def test_rejected_entries_are_tried_again(
    engine, register_plugin, scripted_market, fake_broker
):
    register_plugin(engine_plugin_meanrev, "meanrev")
    scripted_market([*CALM, 97, 96, 99, 101, 102])
    fake_broker.reject(times=1, reason="venue busy")
    engine.strategy("meanrev", window=20)
    result = await engine.backtest()
    assert fake_broker.of("rejected") == [("rejected", "meanrev-BTC-USD-1", "venue busy")]
    # bar 21 is still under the band: the second order goes through
    assert trades(result)[0] == ("buy", D(1), D(99))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"window": 1}, "config.strategies[0].window: must be >= 2, got 1"),
        ({"k": 0}, "config.strategies[0].k: must be > 0, got 0"),
        ({"exit": "top"}, "config.strategies[0].exit"),
        ({"windw": 5}, "config.strategies[0].windw: unknown key (did you mean 'window'?)"),
    ],
)
def test_config_mistakes_name_their_path(
    engine, register_plugin, scripted_market, options, problem
):
    register_plugin(engine_plugin_meanrev, "meanrev")
    scripted_market(CALM)
    engine.strategy("meanrev", **options)
    with pytest.raises(ConfigError) as caught:
        engine.check()
    assert problem in str(caught.value)
