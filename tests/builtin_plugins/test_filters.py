"""Tests of the built-in ``filters`` plugin (pipeline stage 1).

Each filter is tested twice: at unit level (``factory(Config(...))`` gives
``check(intent, ctx)``, driven with :class:`FakeCtx`, a stand-in for the kernel's
read-only queries) and end to end through ``Engine.backtest_sync()`` with a
scripted strategy and fixed bars, where a denial is recorded as
``<filter>.<reason>`` and never reaches the broker.
"""

from __future__ import annotations

import copy
import itertools
import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scripted import Script, buy, sell

from engine import (
    BarSeries,
    ConfigError,
    Deny,
    Engine,
    Feed,
    Instrument,
    OrderIntent,
    OrderType,
    PluginSettings,
    Side,
    Strategy,
    hookimpl,
)
from engine.builtins import filters as F

D = Decimal
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z, a Monday
SEC = 1_000_000_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
MON, TUE, WED, THU, FRI, SAT, SUN = (T0 + k * DAY for k in range(7))


def at(day: int, hh: int, mm: int = 0) -> int:
    """ns timestamp of ``hh:mm`` UTC on ``day`` (one of MON..SUN)."""
    return day + hh * HOUR + mm * MIN


def intent(side: Side = Side.BUY, qty: str = "1", symbol: str = "X", **kw: Any) -> OrderIntent:
    return OrderIntent("s", symbol, side, D(qty), **kw)


BUY = intent(Side.BUY)
SELL = intent(Side.SELL)


class FakeCtx:
    """What the filters read from the pipeline context, for instruments of fixed
    columns: ``data[symbol][column]`` is the column's history up to the current bar
    (the last element is the current bar's value)."""

    def __init__(
        self,
        data: dict[str, dict[str, list[float]]] | None = None,
        *,
        now: int = T0,
        bars: dict[str, Any] | None = None,
    ) -> None:
        self.data = data or {}
        self.now = now
        self.bars = bars or {}
        self.asked: list[tuple[str, str, int]] = []

    def column(self, symbol: str, name: str) -> float | None:
        values = self.data.get(symbol, {}).get(name)
        return float(values[-1]) if values else None

    def history(self, symbol: str, column: str, n: int) -> np.ndarray[Any, Any]:
        self.asked.append((symbol, column, n))
        values = self.data.get(symbol, {}).get(column)
        return np.asarray(values[-n:]) if values else np.empty(0)

    def window_sum(self, symbol: str, column: str, n: int) -> float:
        return float(self.history(symbol, column, n).sum())

    def bar(self, symbol: str) -> Any:
        return self.bars.get(symbol, SimpleNamespace(ts=0, index=-1, high=0, low=0, close=0))


def quotes(**cols: float) -> FakeCtx:
    return FakeCtx({"X": {k: [v] for k, v in cols.items()}})


def closes(*values: int) -> FakeCtx:
    return FakeCtx({"X": {"close": list(values)}})


# -- end-to-end helpers -------------------------------------------------------------------


class Table:
    """A feed of fixed columns per symbol: ``close`` (also open/high/low), and
    optionally ``ts``, ``volume`` and extra columns (``bid``, ``ask``...)."""

    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self.data = data

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        cols = dict(self.data[instrument.symbol])
        close = cols.pop("close")
        n = len(close)
        ts = cols.pop("ts", [T0 + MIN * k for k in range(n)])
        volume = cols.pop("volume", [1.0] * n)
        return BarSeries.from_arrays(
            instrument, ts, close, close, close, close, volume, extra=cols or None
        )


def run(
    steps: dict[int, list[Any]],
    data: dict[str, dict[str, Any]],
    config: dict[str, Any],
    strategy: dict[str, Any] | None = None,
) -> tuple[Any, Script]:
    """Backtest ``steps`` on the first instrument of ``data`` with ``config`` added."""
    script = Script(steps)

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="table", factory=lambda _: Table(data))]

    cfg = {
        "instruments": [{"symbol": s, "tick_size": "0.01"} for s in data],
        "feed": {"type": "table"},
        "strategies": [{"type": "script", **(strategy or {})}],
        **copy.deepcopy(config),
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    return eng.backtest_sync(), script


def assert_denials_never_fill(result: Any, script: Script) -> None:
    denied = {d.client_id for d in result.denials}
    assert not denied & {f.client_id for f in result.fill_records}
    assert script.orders.count(None) == len(result.denials)


# -- max_spread ---------------------------------------------------------------------------


class TestMaxSpread:
    def test_allows_a_tight_spread(self) -> None:
        check = F.max_spread(F.MaxSpreadConfig(max_bps=5))
        assert check(BUY, quotes(bid=99.99, ask=100.01)) is None  # 2 bps
        assert check(SELL, quotes(bid=99.99, ask=100.01)) is None

    def test_a_spread_at_the_limit_passes(self) -> None:
        ctx = quotes(bid=99.5, ask=100.5)  # 1 / 100 = exactly 100 bps
        assert F.max_spread(F.MaxSpreadConfig(max_bps=100))(BUY, ctx) is None

    def test_denies_a_wide_spread(self) -> None:
        check = F.max_spread(F.MaxSpreadConfig(max_bps=99.9))
        assert check(BUY, quotes(bid=99.5, ask=100.5)) == Deny(
            "too_wide", "spread 100.0 bps > 99.9 bps"
        )

    def test_reads_the_intents_instrument(self) -> None:
        ctx = FakeCtx({"X": {"bid": [99.0], "ask": [101.0]}, "Y": {"bid": [100.0], "ask": [100.0]}})
        check = F.max_spread(F.MaxSpreadConfig(max_bps=5))
        assert check(intent(symbol="Y"), ctx) is None
        assert check(intent(symbol="X"), ctx).reason == "too_wide"  # type: ignore[union-attr]

    def test_only_the_current_quote_counts(self) -> None:
        ctx = FakeCtx({"X": {"bid": [90.0, 99.99], "ask": [110.0, 100.01]}})
        assert F.max_spread(F.MaxSpreadConfig(max_bps=5))(BUY, ctx) is None

    @pytest.mark.parametrize("cols", [{}, {"bid": 100.0}, {"ask": 100.0}])
    def test_fails_closed_without_a_quote(self, cols: dict[str, float]) -> None:
        check = F.max_spread(F.MaxSpreadConfig(max_bps=5))
        assert check(BUY, quotes(**cols)) == Deny("no_quote", "the feed has no bid/ask columns")

    def test_a_non_positive_mid_is_an_infinite_spread(self) -> None:
        check = F.max_spread(F.MaxSpreadConfig(max_bps=1e9))
        assert check(BUY, quotes(bid=0.0, ask=0.0)) == Deny(
            "too_wide", "spread inf bps > 1000000000.0 bps"
        )


# -- min_depth ----------------------------------------------------------------------------


class TestMinDepth:
    def test_allows_enough_size_at_the_touch(self) -> None:
        check = F.min_depth(F.MinDepthConfig(min_size=10))
        assert check(BUY, quotes(ask_size=10.0, bid_size=10.0)) is None  # == limit passes
        assert check(SELL, quotes(ask_size=10.0, bid_size=50.0)) is None

    def test_a_buy_takes_the_asks_and_a_sell_the_bids(self) -> None:
        check = F.min_depth(F.MinDepthConfig(min_size=10))
        ctx = quotes(ask_size=50.0, bid_size=5.0)
        assert check(BUY, ctx) is None
        assert check(SELL, ctx) == Deny("too_thin", "bid_size 5 < 10")
        ctx = quotes(ask_size=2.5, bid_size=50.0)
        assert check(BUY, ctx) == Deny("too_thin", "ask_size 2.5 < 10")
        assert check(SELL, ctx) is None

    def test_fails_closed_without_the_size_column(self) -> None:
        check = F.min_depth(F.MinDepthConfig(min_size=1))
        assert check(BUY, quotes(bid_size=100.0)) == Deny(
            "no_quote", "the feed has no ask_size column"
        )
        assert check(SELL, quotes(ask_size=100.0)) == Deny(
            "no_quote", "the feed has no bid_size column"
        )


# -- min_volume ---------------------------------------------------------------------------


class TestMinVolume:
    def test_allows_enough_volume_over_the_window(self) -> None:
        ctx = FakeCtx({"X": {"volume": [0.0, 2.0, 2.0, 1.0]}})
        assert F.min_volume(F.MinVolumeConfig(window=3, min_volume=5))(BUY, ctx) is None
        assert ctx.asked == [("X", "volume", 3)]

    def test_denies_low_volume(self) -> None:
        ctx = FakeCtx({"X": {"volume": [100.0, 1.0, 1.0, 1.0]}})
        assert F.min_volume(F.MinVolumeConfig(window=3, min_volume=5))(SELL, ctx) == Deny(
            "low_volume", "volume 3 over 3 bars < 5"
        )
        # the bar that leaves the window no longer counts; a longer window sees it
        assert F.min_volume(F.MinVolumeConfig(window=4, min_volume=5))(SELL, ctx) is None

    def test_counts_what_there_is_before_the_window_fills(self) -> None:
        ctx = FakeCtx({"X": {"volume": [4.0]}})
        check = F.min_volume(F.MinVolumeConfig(window=10, min_volume=5))
        assert check(BUY, ctx) == Deny("low_volume", "volume 4 over 10 bars < 5")
        assert check(BUY, FakeCtx()).reason == "low_volume"  # type: ignore[union-attr]


# -- volatility_band ----------------------------------------------------------------------

SWING = (100, 110, 100, 110, 100)  # four log returns of +-ln(1.1): std = ln(1.1)
GROWTH = (1000, 1100, 1210, 1331, 1464)  # ~constant returns: std ~ 0.0005


class TestVolatilityBand:
    def test_allows_volatility_inside_the_band(self) -> None:
        check = F.volatility_band(F.VolatilityBandConfig(window=4, min=0.09, max=0.1))
        assert check(BUY, closes(*SWING)) is None

    def test_denies_too_volatile(self) -> None:
        check = F.volatility_band(F.VolatilityBandConfig(window=4, max=0.09))
        assert check(BUY, closes(*SWING)) == Deny("too_volatile", "volatility 0.09531 > 0.09")

    def test_denies_too_calm(self) -> None:
        check = F.volatility_band(F.VolatilityBandConfig(window=4, min=0.01))
        decision = check(SELL, closes(*GROWTH))
        assert decision is not None and decision.reason == "too_calm"
        assert decision.message.endswith("< 0.01")
        flat = check(SELL, closes(100, 100, 100, 100, 100))
        assert flat == Deny("too_calm", "volatility 0.00000 < 0.01")

    def test_denies_while_warming_up(self) -> None:
        ctx = closes(100, 110, 100, 110)
        check = F.volatility_band(F.VolatilityBandConfig(window=4))
        assert check(BUY, ctx) == Deny("warming_up", "3 of 4 returns seen")
        assert ctx.asked == [("X", "close", 5)]
        assert check(BUY, FakeCtx()) == Deny("warming_up", "0 of 4 returns seen")

    def test_only_the_last_window_returns_count(self) -> None:
        # a huge old move (1 -> 100) is outside a window of 2: the returns seen are
        # +-ln(1.1); a window of 3 sees it
        ctx = closes(1, 100, 110, 100)
        assert F.volatility_band(F.VolatilityBandConfig(window=2, max=0.1))(BUY, ctx) is None
        vol = _pstdev([math.log(100), math.log(1.1), math.log(1 / 1.1)])
        assert vol > 1
        assert F.volatility_band(F.VolatilityBandConfig(window=3, max=0.1))(BUY, ctx) == Deny(
            "too_volatile", f"volatility {vol:.5f} > 0.1"
        )

    def test_the_band_is_the_population_std_of_log_returns(self) -> None:
        path = (100, 103, 101, 106, 104, 108)
        rets = [math.log(b / a) for a, b in itertools.pairwise(path)]
        vol = _pstdev(rets)
        lo = F.volatility_band(F.VolatilityBandConfig(window=5, min=vol - 1e-9, max=vol + 1e-9))
        assert lo(BUY, closes(*path)) is None
        hi = F.volatility_band(F.VolatilityBandConfig(window=5, max=vol - 1e-6))
        assert hi(BUY, closes(*path)) == Deny(
            "too_volatile", f"volatility {vol:.5f} > {vol - 1e-6}"
        )


def _pstdev(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))


# -- rsi and rsi_band ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([100], None),
        ([100, 100], 50.0),  # no change at all
        ([1, 2, 3], 100.0),  # only gains
        ([3, 2, 1], 0.0),  # only losses
        ([10, 17, 14], 70.0),  # gains 7, losses 3: 100 - 100 / (1 + 7/3)
        ([10, 13, 12], 75.0),  # gains 3, losses 1
        ([10, 9, 12], 75.0),  # order of the moves does not matter
        ([10, 11, 8], 25.0),  # gains 1, losses 3
        ([100, 97, 99], 40.0),  # gains 2, losses 3
        ([100, 102, 101, 104, 100], 50.0),  # gains 5, losses 5
        ([10, 11, 10, 10], 50.0),  # a flat step adds nothing
    ],
)
def test_rsi_against_hand_computed_values(values: list[int], expected: float | None) -> None:
    result = F.rsi(values)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-9)


class TestRsiBand:
    def test_allows_inside_the_band(self) -> None:
        check = F.rsi_band(F.RsiBandConfig(period=2, max_buy=75, min_sell=25))
        assert check(BUY, closes(10, 13, 12)) is None  # RSI 75 == max_buy
        assert check(SELL, closes(10, 11, 8)) is None  # RSI 25 == min_sell
        assert check(BUY, closes(100, 100, 100)) is None  # RSI 50
        assert check(SELL, closes(100, 100, 100)) is None

    def test_denies_buying_overbought(self) -> None:
        check = F.rsi_band(F.RsiBandConfig(period=3))
        ctx = closes(1, 2, 3, 4)
        assert check(BUY, ctx) == Deny("overbought", "RSI 100.0 > 70.0")
        assert check(SELL, ctx) is None  # selling into strength is fine

    def test_denies_selling_oversold(self) -> None:
        check = F.rsi_band(F.RsiBandConfig(period=3))
        ctx = closes(4, 3, 2, 1)
        assert check(SELL, ctx) == Deny("oversold", "RSI 0.0 < 30.0")
        assert check(BUY, ctx) is None

    def test_limits_are_exclusive_by_side(self) -> None:
        check = F.rsi_band(F.RsiBandConfig(period=2, max_buy=74.9, min_sell=25.1))
        assert check(BUY, closes(10, 13, 12)) == Deny("overbought", "RSI 75.0 > 74.9")
        assert check(SELL, closes(10, 11, 8)) == Deny("oversold", "RSI 25.0 < 25.1")

    def test_denies_while_warming_up(self) -> None:
        ctx = closes(1, 2, 3)
        check = F.rsi_band(F.RsiBandConfig(period=3))
        assert check(BUY, ctx) == Deny("warming_up", "2 of 3 price changes seen")
        assert ctx.asked == [("X", "close", 4)]
        assert check(SELL, FakeCtx()).reason == "warming_up"  # type: ignore[union-attr]

    def test_uses_only_the_last_period_changes(self) -> None:
        # an old crash is outside the window: the last 3 changes are all gains
        check = F.rsi_band(F.RsiBandConfig(period=3))
        assert check(BUY, closes(1000, 1, 2, 3, 4)).reason == "overbought"  # type: ignore[union-attr]
        assert F.rsi_band(F.RsiBandConfig(period=4))(BUY, closes(1000, 1, 2, 3, 4)) is None


# -- trading_hours ------------------------------------------------------------------------


def open_at(config: F.TradingHoursConfig, ts: int) -> bool:
    decision = F.trading_hours(config)(BUY, FakeCtx(now=ts))
    assert decision in (None, Deny("closed", "outside the trading sessions"))
    return decision is None


class TestTradingHours:
    def test_allows_inside_a_session(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("09:00-17:00",))
        assert F.trading_hours(cfg)(SELL, FakeCtx(now=at(WED, 12))) is None

    def test_denies_outside_a_session(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("09:00-17:00",))
        assert F.trading_hours(cfg)(BUY, FakeCtx(now=at(WED, 8, 59))) == Deny(
            "closed", "outside the trading sessions"
        )

    def test_start_is_inclusive_and_end_exclusive(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("09:30-16:00",))
        assert [open_at(cfg, at(MON, h, m)) for h, m in [(9, 29), (9, 30), (15, 59), (16, 0)]] == [
            False,
            True,
            True,
            False,
        ]

    def test_the_minute_is_floored_not_rounded(self) -> None:
        # 1 ns before the end of the session is still inside it, 1 ns before its
        # start still outside
        cfg = F.TradingHoursConfig(sessions=("09:00-17:00",))
        assert open_at(cfg, at(MON, 17) - 1)
        assert not open_at(cfg, at(MON, 9) - 1)

    def test_one_check_follows_time_as_it_moves(self) -> None:
        # the same check instance over a run: every call answers for its own time
        check = F.trading_hours(F.TradingHoursConfig(sessions=("09:00-17:00",)))
        times = [
            at(MON, 16, 59),
            at(MON, 16, 59) + 30 * SEC,
            at(MON, 17),
            at(MON, 17) + 59 * SEC,
            at(TUE, 8, 59) + 59 * SEC,
            at(TUE, 9),
            at(SAT, 9),
            at(SAT + 2 * DAY, 9),
        ]
        assert [check(BUY, FakeCtx(now=t)) is None for t in times] == [
            True,
            True,
            False,
            False,
            False,
            True,
            False,
            True,
        ]

    def test_weekends_are_closed_by_default(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("09:00-17:00",))
        assert cfg.days == ("mon", "tue", "wed", "thu", "fri")
        assert [open_at(cfg, at(d, 12)) for d in (MON, TUE, WED, THU, FRI, SAT, SUN)] == [
            True,
            True,
            True,
            True,
            True,
            False,
            False,
        ]

    def test_weekend_only_days(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("00:00-24:00",), days=("sat", "sun"))
        assert [open_at(cfg, at(d, 0)) for d in (FRI, SAT, SUN)] == [False, True, True]
        assert open_at(cfg, at(SUN, 23, 59)) and not open_at(cfg, at(SUN + DAY, 0))

    def test_several_sessions(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("09:00-12:00", "13:00-17:00"))
        assert [open_at(cfg, at(TUE, h)) for h in (8, 9, 11, 12, 13, 16, 17)] == [
            False,
            True,
            True,
            False,
            True,
            True,
            False,
        ]

    def test_a_session_across_midnight_belongs_to_its_start_day(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("22:00-02:00",))  # mon..fri evenings
        cases = {
            at(MON, 1): False,  # Sunday's session: Sunday is not a trading day
            at(MON, 21, 59): False,
            at(MON, 22): True,
            at(MON, 23, 59): True,
            at(TUE, 0): True,  # Monday's session, after midnight
            at(TUE, 1, 59): True,
            at(TUE, 2): False,
            at(FRI, 23): True,
            at(SAT, 1): True,  # Friday's session runs into Saturday
            at(SAT, 2): False,
            at(SAT, 23): False,  # Saturday's session: not a trading day
            at(SUN, 1): False,
            at(SUN, 23): False,
        }
        assert {ts: open_at(cfg, ts) for ts in cases} == cases

    def test_a_session_may_end_at_24_00(self) -> None:
        cfg = F.TradingHoursConfig(sessions=("20:00-24:00",))
        assert open_at(cfg, at(THU, 23, 59)) and not open_at(cfg, at(FRI, 0))


# -- stale_data ---------------------------------------------------------------------------


def bar_at(ts: int, index: int = 3) -> Any:
    return SimpleNamespace(ts=ts, index=index, high=0, low=0, close=0, volume=0.0)


class TestStaleData:
    def test_allows_a_fresh_bar(self) -> None:
        check = F.stale_data(F.StaleDataConfig(max_age="1m"))
        assert check(BUY, FakeCtx(now=T0, bars={"X": bar_at(T0)})) is None
        assert check(BUY, FakeCtx(now=T0 + MIN, bars={"X": bar_at(T0)})) is None  # == max_age

    def test_denies_a_stale_bar(self) -> None:
        check = F.stale_data(F.StaleDataConfig(max_age="1m"))
        ctx = FakeCtx(now=T0 + MIN + SEC, bars={"X": bar_at(T0)})
        assert check(BUY, ctx) == Deny("stale", "last bar is 61s old (max 1m)")

    def test_denies_before_the_instruments_first_bar(self) -> None:
        check = F.stale_data(F.StaleDataConfig(max_age="1h"))
        decision = check(BUY, FakeCtx(now=T0, bars={"X": bar_at(0, index=-1)}))
        assert decision is not None and decision.reason == "stale"

    def test_age_is_per_instrument(self) -> None:
        check = F.stale_data(F.StaleDataConfig(max_age="250ms"))
        ctx = FakeCtx(now=T0 + SEC, bars={"X": bar_at(T0 + SEC), "Y": bar_at(T0)})
        assert check(intent(symbol="X"), ctx) is None
        assert check(intent(symbol="Y"), ctx) == Deny("stale", "last bar is 1s old (max 250ms)")


# -- config errors -----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "instruments": [{"symbol": "X", "tick_size": "0.01"}],
    "feed": {"type": "synthetic"},
    "strategies": [{"type": "sma_crossover"}],
}


def problems(*filters: dict[str, Any]) -> list[str]:
    eng = Engine.from_config(
        {**copy.deepcopy(BASE), "filters": list(filters)},
        settings=PluginSettings(builtin_only=True),
    )
    with pytest.raises(ConfigError) as err:
        eng.check()
    return [str(p) for p in err.value.problems]


P = "config.filters[0]"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        # max_spread
        ({"type": "max_spread"}, [f"{P}.max_bps: required key is missing"]),
        ({"type": "max_spread", "max_bps": 0}, [f"{P}.max_bps: must be > 0, got 0.0"]),
        ({"type": "max_spread", "max_bps": -1}, [f"{P}.max_bps: must be > 0, got -1.0"]),
        (
            {"type": "max_spread", "max_bps": "5"},
            [f"{P}.max_bps: expected a number, got a string ('5')"],
        ),
        (
            {"type": "max_spread", "max_bps": 5, "maxbps": 3},
            [f"{P}.maxbps: unknown key (did you mean 'max_bps'?)"],
        ),
        # min_depth
        ({"type": "min_depth"}, [f"{P}.min_size: required key is missing"]),
        ({"type": "min_depth", "min_size": 0}, [f"{P}.min_size: must be > 0, got 0.0"]),
        # min_volume
        (
            {"type": "min_volume", "window": -1, "min_volume": 5},
            [f"{P}.window: must be > 0, got -1"],
        ),
        (
            {"type": "min_volume", "window": 1.5, "min_volume": 0},
            [
                f"{P}.min_volume: must be > 0, got 0.0",
                f"{P}.window: expected an integer, got a float (1.5)",
            ],
        ),
        ({"type": "min_volume", "window": 3}, [f"{P}.min_volume: required key is missing"]),
        # volatility_band
        ({"type": "volatility_band", "window": 0}, [f"{P}.window: must be > 0, got 0"]),
        (
            {"type": "volatility_band", "window": 5, "min": -0.1, "max": 1.5},
            [
                f"{P}.min: must be between 0 and 1, got -0.1",
                f"{P}.max: must be between 0 and 1, got 1.5",
            ],
        ),
        (
            {"type": "volatility_band", "window": 5, "min": 0.5, "max": 0.1},
            [f"{P}: min (0.5) must not exceed max (0.1)"],
        ),
        # rsi_band
        ({"type": "rsi_band", "period": 0}, [f"{P}.period: must be > 0, got 0"]),
        (
            {"type": "rsi_band", "max_buy": 101},
            [f"{P}.max_buy: must be between 0 and 100, got 101.0"],
        ),
        (
            {"type": "rsi_band", "min_sell": -1},
            [f"{P}.min_sell: must be between 0 and 100, got -1.0"],
        ),
        (
            {"type": "rsi_band", "max_buy": "70"},
            [f"{P}.max_buy: expected a number, got a string ('70')"],
        ),
        # trading_hours
        ({"type": "trading_hours"}, [f"{P}.sessions: required key is missing"]),
        (
            {"type": "trading_hours", "sessions": []},
            [f"{P}.sessions: at least one session is required"],
        ),
        (
            {"type": "trading_hours", "sessions": ["09:00-17:00", "9:30-16"]},
            [f"{P}.sessions: expected a session like '09:30-16:00' (UTC), got '9:30-16'"],
        ),
        (
            {"type": "trading_hours", "sessions": ["25:00-26:00"]},
            [f"{P}.sessions: expected a session like '09:30-16:00' (UTC), got '25:00-26:00'"],
        ),
        (
            {"type": "trading_hours", "sessions": ["09:60-10:00"]},
            [f"{P}.sessions: expected a session like '09:30-16:00' (UTC), got '09:60-10:00'"],
        ),
        (
            {"type": "trading_hours", "sessions": ["09:00-17:00"], "days": ["monday"]},
            [f"{P}.days: days must be among mon, tue, wed, thu, fri, sat, sun, got ['monday']"],
        ),
        (
            {"type": "trading_hours", "sessions": ["09:00-17:00"], "days": []},
            [f"{P}.days: days must be among mon, tue, wed, thu, fri, sat, sun, got []"],
        ),
        # stale_data
        ({"type": "stale_data"}, [f"{P}.max_age: required key is missing"]),
        (
            {"type": "stale_data", "max_age": "5 minutes"},
            [f"{P}.max_age: expected an interval like 250ms, 1s, 1m, 4h or 1d, got '5 minutes'"],
        ),
        (
            {"type": "stale_data", "max_age": "0s"},
            [f"{P}.max_age: expected an interval like 250ms, 1s, 1m, 4h or 1d, got '0s'"],
        ),
        (
            {"type": "stale_data", "max_age": 60},
            [f"{P}.max_age: expected a string, got an integer (60)"],
        ),
    ],
    ids=lambda v: v.get("type") if isinstance(v, dict) else "",
)
def test_config_errors_are_reported_by_path(table: dict[str, Any], expected: list[str]) -> None:
    assert problems(table) == expected


def test_config_errors_of_several_filters_are_all_reported() -> None:
    got = problems(
        {"type": "max_spread", "max_bps": 5},
        {"type": "min_volume", "window": -1, "min_volume": 5},
        {"type": "stale_data", "max_age": "soon"},
    )
    assert got == [
        "config.filters[1].window: must be > 0, got -1",
        "config.filters[2].max_age: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'soon'",
    ]


def test_every_bad_rsi_band_limit_is_reported() -> None:
    # the config module collects every problem: both limits are out of range
    got = problems({"type": "rsi_band", "max_buy": 101, "min_sell": -1})
    assert all(p.startswith(P) for p in got)
    assert any("max_buy" in p and "101" in p for p in got)
    assert any("min_sell" in p and "-1" in p for p in got)


def test_a_session_bound_past_24_00_is_refused() -> None:
    (problem,) = problems({"type": "trading_hours", "sessions": ["22:00-24:30"]})
    assert problem == (
        f"{P}.sessions: expected a session like '09:30-16:00' (UTC), got '22:00-24:30'"
    )


@pytest.mark.parametrize(
    ("key", "value"), [("sessions", "09:00-17:00"), ("days", "mon")], ids=["sessions", "days"]
)
def test_a_string_for_an_array_is_reported_as_written(key: str, value: str) -> None:
    table = {"type": "trading_hours", "sessions": ["09:00-17:00"], key: value}
    (problem,) = problems(table)
    assert problem.startswith(f"{P}.{key}: ")
    assert repr(value) in problem  # not split into characters ('0', ['m', 'o', 'n'])


def test_config_classes_validate_when_built_directly() -> None:
    with pytest.raises(ValueError, match="must be > 0, got 0"):
        F.MinVolumeConfig(window=0, min_volume=1)
    with pytest.raises(ValueError, match="at least one session is required"):
        F.TradingHoursConfig(sessions=())
    with pytest.raises(ValueError, match="must be between 0 and 100, got 120"):
        F.RsiBandConfig(min_sell=120)
    with pytest.raises(ValueError, match="expected an interval"):
        F.StaleDataConfig(max_age="1w")


# -- end to end ---------------------------------------------------------------------------

# bid/ask around 100: bar 1 and bar 3 quote 100 bps wide, the others 2 bps
QUOTED = {
    "close": [100.0] * 6,
    "bid": [99.99, 99.5, 99.99, 99.5, 99.99, 99.99],
    "ask": [100.01, 100.5, 100.01, 100.5, 100.01, 100.01],
    "bid_size": [50.0, 50.0, 5.0, 50.0, 50.0, 50.0],
    "ask_size": [50.0, 50.0, 50.0, 50.0, 5.0, 50.0],
}


class TestEndToEnd:
    def test_max_spread_denies_wide_quotes_and_only_allowed_orders_fill(self) -> None:
        steps = {i: [buy()] for i in range(5)}
        result, script = run(
            steps, {"X": QUOTED}, {"filters": [{"type": "max_spread", "max_bps": 5}]}
        )
        assert result.denials_by_reason == {"max_spread.too_wide": 2}
        assert [o is None for o in script.orders] == [False, True, False, True, False]
        assert [d.ts for d in result.denials] == [T0 + MIN, T0 + 3 * MIN]
        assert {d.stage for d in result.denials} == {"filter"}
        assert {d.plugin for d in result.denials} == {"filters"}
        assert len(result.fill_records) == 3
        assert_denials_never_fill(result, script)

    def test_min_depth_checks_the_side_the_order_takes(self) -> None:
        # bar 2: bids thin (sells denied); bar 4: asks thin (buys denied)
        steps = {2: [buy(), sell()], 4: [buy(), sell()]}
        result, script = run(
            steps, {"X": QUOTED}, {"filters": [{"type": "min_depth", "min_size": 10}]}
        )
        assert result.denials_by_reason == {"min_depth.too_thin": 2}
        assert [(d.ts, d.side) for d in result.denials] == [
            (T0 + 2 * MIN, "sell"),
            (T0 + 4 * MIN, "buy"),
        ]
        assert [o is None for o in script.orders] == [False, True, True, False]
        assert_denials_never_fill(result, script)

    @pytest.mark.parametrize(
        "table", [{"type": "max_spread", "max_bps": 5}, {"type": "min_depth", "min_size": 1}]
    )
    def test_quote_filters_fail_closed_on_a_feed_without_quotes(
        self, table: dict[str, Any]
    ) -> None:
        config = {
            "instruments": [{"symbol": "X", "tick_size": "0.01"}],
            "feed": {"type": "synthetic", "bars": 300, "start_price": "100"},
            "strategies": [{"type": "sma_crossover", "fast": 3, "slow": 8}],
            "filters": [table],
        }
        result = Engine.from_config(
            config, settings=PluginSettings(builtin_only=True)
        ).backtest_sync()
        assert list(result.denials_by_reason) == [f"{table['type']}.no_quote"]
        assert len(result.denials) > 0 and not result.fill_records

    def test_min_volume(self) -> None:
        data = {"X": {"close": [100.0] * 6, "volume": [5.0, 0.0, 0.0, 0.0, 5.0, 5.0]}}
        steps = {i: [buy()] for i in range(5)}
        cfg = {"filters": [{"type": "min_volume", "window": 2, "min_volume": 5}]}
        result, script = run(steps, data, cfg)
        # windows: [5], [5,0], [0,0], [0,0], [0,5] -> bars 2 and 3 are short
        assert result.denials_by_reason == {"min_volume.low_volume": 2}
        assert [o is None for o in script.orders] == [False, False, True, True, False]
        assert_denials_never_fill(result, script)

    def test_volatility_band(self) -> None:
        data = {"X": {"close": [100.0, 110.0, 100.0, 110.0, 100.0, 100.0, 100.0, 100.0]}}
        steps = {1: [buy()], 3: [buy()], 6: [buy()]}
        cfg = {"filters": [{"type": "volatility_band", "window": 2, "min": 0.01, "max": 0.09}]}
        result, script = run(steps, data, cfg)
        assert [d.reason for d in result.denials] == [
            "volatility_band.warming_up",  # bar 1: one return
            "volatility_band.too_volatile",  # bar 3: +-ln(1.1)
            "volatility_band.too_calm",  # bar 6: flat
        ]
        assert not result.fill_records
        assert_denials_never_fill(result, script)

    def test_rsi_band(self) -> None:
        data = {"X": {"close": [100.0, 101.0, 102.0, 103.0, 102.0, 101.0, 100.0, 100.0]}}
        steps = {3: [buy(), sell()], 6: [buy(), sell()]}
        cfg = {"filters": [{"type": "rsi_band", "period": 3}]}
        result, script = run(steps, data, cfg)
        assert result.denials_by_reason == {"rsi_band.overbought": 1, "rsi_band.oversold": 1}
        assert [o is None for o in script.orders] == [True, False, False, True]
        assert_denials_never_fill(result, script)
        assert len(result.fill_records) == 2

    def test_trading_hours_on_engine_time(self) -> None:
        # hourly bars from Friday 20:00 to the next Monday 03:00
        start, n = at(FRI, 20), 56
        data = {"X": {"close": [100.0] * n, "ts": [start + k * HOUR for k in range(n)]}}
        next_mon = MON + 7 * DAY
        times = [at(FRI, 21), at(FRI, 23), at(SAT, 1), at(SAT, 22), at(SUN, 23), at(next_mon, 1)]
        steps = {(t - start) // HOUR: [buy()] for t in times}
        cfg = {"filters": [{"type": "trading_hours", "sessions": ["22:00-02:00"]}]}
        result, script = run(steps, data, cfg)
        # Fri 21:00 is before the session; Fri 23:00 and Sat 01:00 are in Friday's
        # session; Sat 22:00 and Sun 23:00 would start weekend sessions; Mon 01:00
        # belongs to Sunday's
        assert [d.ts for d in result.denials] == [
            at(FRI, 21),
            at(SAT, 22),
            at(SUN, 23),
            at(next_mon, 1),
        ]
        assert result.denials_by_reason == {"trading_hours.closed": 4}
        assert [o is None for o in script.orders] == [True, False, False, True, True, True]
        assert len(result.fill_records) == 2
        assert_denials_never_fill(result, script)

    def test_stale_data_with_an_instrument_that_falls_behind(self) -> None:
        # A has a bar every minute; B only at minutes 0 and 5
        data: dict[str, dict[str, Any]] = {
            "A": {"close": [100.0] * 7},
            "B": {"close": [50.0, 50.0], "ts": [T0, T0 + 5 * MIN]},
        }
        steps = {1: [buy(symbol="B")], 3: [buy(symbol="B")], 4: [buy()]}
        cfg = {"filters": [{"type": "stale_data", "max_age": "1m"}]}
        result, script = run(steps, data, cfg, strategy={"instrument": "A"})
        (denial,) = result.denials
        assert (denial.reason, denial.instrument, denial.ts) == (
            "stale_data.stale",
            "B",
            T0 + 3 * MIN,
        )
        assert denial.message == "last bar is 180s old (max 1m)"
        assert [o is None for o in script.orders] == [False, True, False]
        assert sorted(f.instrument for f in result.fill_records) == ["A", "B"]
        assert_denials_never_fill(result, script)

    def test_filters_run_by_priority_and_the_first_denial_wins(self) -> None:
        # bar 3 of a rising path on a Saturday: rsi_band (priority 30) would deny as
        # overbought, but trading_hours (priority 0) runs first
        data = {
            "X": {"close": [100.0, 101.0, 102.0, 103.0], "ts": [at(SAT, 10 + k) for k in range(4)]}
        }
        cfg: dict[str, Any] = {
            "filters": [
                {"type": "rsi_band", "period": 2},
                {"type": "trading_hours", "sessions": ["00:00-24:00"]},
            ]
        }
        result, _ = run({3: [buy()]}, data, cfg)
        assert result.denials_by_reason == {"trading_hours.closed": 1}
        cfg["filters"][1]["days"] = ["sat"]
        result, _ = run({3: [buy()]}, data, cfg)
        assert result.denials_by_reason == {"rsi_band.overbought": 1}

    def test_a_limit_order_is_filtered_like_a_market_order(self) -> None:
        result, script = run(
            {1: [buy(limit="100")], 2: [buy(limit="100")]},
            {"X": QUOTED},
            {"filters": [{"type": "max_spread", "max_bps": 5}]},
        )
        assert result.denials_by_reason == {"max_spread.too_wide": 1}
        assert script.orders[0] is None and script.orders[1].intent.type is OrderType.LIMIT
        assert_denials_never_fill(result, script)
