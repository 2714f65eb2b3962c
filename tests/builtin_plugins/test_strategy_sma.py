"""The built-in SMA crossover against a slow, obviously correct reference."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import BarSeries, Engine, Feed, PluginSettings, hookimpl


def reference_fills(
    closes: list[int], opens: list[int], fast: int, slow: int
) -> list[tuple[int, str, int]]:
    """(bar index of the fill, side, open price in ticks): averages from full slices."""
    fills = []
    long = False
    prev = None
    for i in range(slow - 1, len(closes)):
        fast_avg = Decimal(sum(closes[i - fast + 1 : i + 1])) / fast
        slow_avg = Decimal(sum(closes[i - slow + 1 : i + 1])) / slow
        diff = fast_avg - slow_avg
        if prev is not None and i + 1 < len(closes):
            if prev <= 0 < diff and not long:
                fills.append((i + 1, "buy", opens[i + 1]))
                long = True
            elif prev >= 0 > diff and long:
                fills.append((i + 1, "sell", opens[i + 1]))
                long = False
        prev = diff
    return fills


def engine_fills(
    closes: list[int], opens: list[int], fast: int, slow: int
) -> list[tuple[int, str, int]]:
    class Fixed:
        def __init__(self, _: Any) -> None:
            pass

        def load(self, instrument: Any, ctx: Any) -> BarSeries:
            n = len(closes)
            highs = [max(o, c) for o, c in zip(opens, closes, strict=True)]
            lows = [min(o, c) for o, c in zip(opens, closes, strict=True)]
            return BarSeries.from_arrays(
                instrument, list(range(n)), opens, highs, lows, closes, [1.0] * n
            )

    class P:
        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="fixed", factory=Fixed)]

    eng = Engine.from_config(
        {
            "instruments": [{"symbol": "X", "tick_size": "1"}],
            "feed": {"type": "fixed"},
            "strategies": [{"type": "sma_crossover", "fast": fast, "slow": slow}],
        },
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(P(), "fixed")
    result = eng.backtest_sync()
    return [(f.ts, f.side.value, int(f.price)) for f in result.fill_records]


prices = st.lists(st.integers(min_value=90, max_value=110), min_size=2, max_size=300)


@settings(max_examples=150, deadline=None)
@given(prices, st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=12))
def test_matches_the_reference_on_any_prices(closes: list[int], fast: int, extra: int) -> None:
    slow = fast + extra
    opens = [closes[0], *closes[:-1]]
    assert engine_fills(closes, opens, fast, slow) == reference_fills(closes, opens, fast, slow)


def test_trades_on_a_clear_cycle() -> None:
    closes = [100] * 5 + list(range(101, 121)) + list(range(119, 90, -1))
    opens = [closes[0], *closes[:-1]]
    fills = engine_fills(closes, opens, 2, 5)
    assert [side for _, side, _ in fills] == ["buy", "sell"]
    assert fills == reference_fills(closes, opens, 2, 5)


@settings(max_examples=200, deadline=None)
@given(prices, st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=12))
def test_prepared_crossings_equal_the_bar_by_bar_ones(
    closes: list[int], fast: int, extra: int
) -> None:
    """Backtests look crossings up from prepare(); paper runs compute them per bar."""
    from decimal import Decimal

    from engine import Instrument
    from engine.builtins.strategy_sma import SmaConfig, SmaCrossover
    from engine.kernel.context import BarView

    slow = fast + extra
    inst = Instrument("X", Decimal(1))
    series = BarSeries.from_arrays(inst, list(range(len(closes))), closes, closes, closes, closes)

    view = BarView(inst)

    class Recording(SmaCrossover):
        seen: list[tuple[int, bool]]

        def _cross(self, up: bool) -> None:
            self.seen.append((view.index, up))

    def crossings(prepared: bool) -> list[tuple[int, bool]]:
        strategy = Recording(SmaConfig(fast=fast, slow=slow))
        strategy.seen = seen = []
        if prepared:
            strategy.prepare(series)
        for i, c in enumerate(closes):
            view.index, view.close = i, c
            strategy.on_bar(view)
        return seen

    assert crossings(prepared=True) == crossings(prepared=False)
