"""Built-in runtime guards (engine/builtins/runtime_guards.py): decisions against a
small fake context, trading-state changes in end-to-end backtests (REDUCING lets
only exposure-reducing orders reach the broker, HALTED none), flatten, and
config errors by path."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scripted import Script, buy, sell

from engine import (
    BarSeries,
    ConfigError,
    Engine,
    Feed,
    Instrument,
    OrderState,
    PluginSettings,
    RuntimeDecision,
    Severity,
    Strategy,
    TradingState,
    hookimpl,
)
from engine.builtins import runtime_guards as rg

D = Decimal
MIN = 60_000_000_000
DAY = 86_400_000_000_000
A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED

# -- helpers: scripted strategies on fixed bars -------------------------------------------

Step = tuple[str, tuple[Any, ...], dict[str, Any]]
Row = tuple[float, ...]


class Bars:
    """Fixed OHLC rows per symbol, one minute apart from ``start``."""

    def __init__(self, data: dict[str, list[Row]], start: int = 0) -> None:
        self.data, self.start = data, start

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        rows = self.data[instrument.symbol]
        ts = [self.start + MIN * k for k in range(len(rows))]
        o, h, lo, c = ([r[k] for r in rows] for k in range(4))
        return BarSeries.from_arrays(instrument, ts, o, h, lo, c, [1.0] * len(rows))


def flat(*prices: float) -> list[Row]:
    return [(p, p, p, p) for p in prices]


def backtest(
    scripts: dict[str, Script],
    bars: dict[str, list[Row]],
    *,
    config: dict[str, Any] | None = None,
    instruments: list[dict[str, Any]] | None = None,
    start: int = 0,
) -> Any:
    queue = iter(scripts.values())

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: next(queue))]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="bars", factory=lambda _: Bars(bars, start))]

    cfg = {
        "instruments": instruments or [{"symbol": s, "tick_size": "0.01"} for s in bars],
        "feed": {"type": "bars"},
        "strategies": [
            {"type": "script", "id": sid, **({"instrument": s.symbol} if s.symbol else {})}
            for sid, s in scripts.items()
        ],
        **(config or {}),
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    return eng.backtest_sync()


def run(steps: dict[int, list[Step]], bars: dict[str, list[Row]], **kw: Any) -> tuple[Any, Script]:
    script = Script(steps)
    return backtest({"script": script}, bars, **kw), script


def call(fn: Callable[[Any], Any]) -> Step:
    return ("call", (fn,), {})


def changes(result: Any) -> list[tuple[float, TradingState, TradingState, str, str]]:
    """(minutes, from, to, reason, source) of every trading-state change."""
    return [(c.ts / MIN, c.previous, c.state, c.reason, c.source) for c in result.state_changes]


def denials(result: Any) -> list[tuple[str, str, Decimal, str]]:
    return [(d.reason, d.side, d.quantity, d.message) for d in result.denials]


def fills(result: Any) -> list[tuple[str, Decimal, Decimal, float]]:
    return [(f.side.value, f.quantity, f.price, f.ts / MIN) for f in result.fill_records]


def problems(item: dict[str, Any], extra: dict[str, Any] | None = None) -> list[str]:
    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic"},
        "strategies": [{"type": "sma_crossover"}],
        "runtime_guards": [item],
        **(extra or {}),
    }
    with pytest.raises(ConfigError) as err:
        Engine.from_config(cfg, settings=PluginSettings(builtin_only=True)).check()
    return [str(p) for p in err.value.problems]


def settings(
    runtime: list[dict[str, Any]], resume: str = "10m", cash: str = "10000"
) -> dict[str, Any]:
    return {
        "engine": {"initial_cash": cash},
        "runtime_guards": runtime,
        "trading": {"resume_after": resume},
    }


class Ctx:
    """What runtime guards ask of ``ctx``."""

    def __init__(
        self,
        *,
        drawdown: float = 0.0,
        daily_pnl: Any = "0",
        margin_ratio: Any = "0",
        now: int = 0,
        bars: dict[str, Any] | None = None,
    ) -> None:
        self._drawdown = drawdown
        self._daily_pnl = D(daily_pnl)
        self._margin_ratio = D(margin_ratio)
        self.now = now
        self._bars = bars or {}
        self.instruments = dict.fromkeys(self._bars)

    def drawdown(self) -> float:
        return self._drawdown

    def daily_pnl(self) -> Decimal:
        return self._daily_pnl

    def margin_ratio(self) -> Decimal:
        return self._margin_ratio

    def bar(self, symbol: str) -> Any:
        return self._bars[symbol]


def seen(ts: int, index: int = 5) -> Any:
    return SimpleNamespace(index=index, ts=ts)


NO_BAR = SimpleNamespace(index=-1, ts=0)


def test_records_and_default_cadences() -> None:
    records = {r.name: r for r in rg.engine_runtime_guards()}
    assert set(records) == {"drawdown", "daily_loss", "stale_data", "margin_ratio", "kill_switch"}
    assert records["kill_switch"].cadence_seconds == 1.0
    assert {records[n].cadence_seconds for n in records if n != "kill_switch"} == {60.0}


# -- drawdown ------------------------------------------------------------------------------


class TestDrawdown:
    evaluate = staticmethod(rg.drawdown(rg.DrawdownConfig(reduce_at=0.01, halt_at=0.03)))

    def test_none_below_the_thresholds(self) -> None:
        assert self.evaluate(Ctx(drawdown=0.0)) is None
        assert self.evaluate(Ctx(drawdown=0.0099)) is None
        only_halt = rg.drawdown(rg.DrawdownConfig(halt_at=0.03))
        assert only_halt(Ctx(drawdown=0.02)) is None

    def test_reducing_then_halted(self) -> None:
        assert self.evaluate(Ctx(drawdown=0.01)) == RuntimeDecision(
            "reducing", "reduce", "drawdown 1.00% >= 1.00%"
        )
        assert self.evaluate(Ctx(drawdown=0.034)) == RuntimeDecision(
            "halted", "halt", "drawdown 3.40% >= 3.00%"
        )
        only_reduce = rg.drawdown(rg.DrawdownConfig(reduce_at=0.01))
        assert only_reduce(Ctx(drawdown=0.5)) == RuntimeDecision(
            "reducing", "reduce", "drawdown 50.00% >= 1.00%"
        )

    def test_end_to_end_reducing_halted_and_back_after_resume_after(self) -> None:
        # 10 bought at 100 with 10000: at 90 equity is 9900 (1% down): REDUCING.
        # Selling 4 at 90 leaves 6 and 9360 cash; at 50 equity is 9660 (3.4%): HALTED.
        # Back at 100 equity is 9960 (0.4%) from minute 7: ACTIVE 10 minutes later.
        closes = [100, 100, 90, 90, 90, 50, 50, *[100] * 13]
        result, script = run(
            {0: [buy(10)], 3: [buy(1), sell(4), sell(7)], 6: [sell(1)], 18: [buy(1)]},
            {"X": flat(*closes)},
            config=settings(
                [{"type": "drawdown", "reduce_at": 0.01, "halt_at": 0.03, "cadence": "1m"}]
            ),
        )
        assert changes(result) == [
            (2, A, R, "drawdown.reduce: drawdown 1.00% >= 1.00%", "drawdown"),
            (5, R, H, "drawdown.halt: drawdown 3.40% >= 3.00%", "drawdown"),
            (17, H, A, "all runtime guards pass", "engine"),
        ]
        assert denials(result) == [
            (
                "trading_state.reducing",
                "buy",
                D(1),
                "trading is reducing (drawdown.reduce: drawdown 1.00% >= 1.00%)",
            ),
            # 7 more after the 4 already on their way would take the long of 10 short
            (
                "trading_state.reducing",
                "sell",
                D(7),
                "trading is reducing (drawdown.reduce: drawdown 1.00% >= 1.00%)",
            ),
            # HALTED: not even a reducing order
            (
                "trading_state.halted",
                "sell",
                D(1),
                "trading is halted (drawdown.halt: drawdown 3.40% >= 3.00%)",
            ),
        ]
        assert {(d.stage, d.check, d.plugin) for d in result.denials} == {
            ("trading_state", "trading_state", "engine")
        }
        # only the reducing sell reached the broker while trading was not ACTIVE
        assert fills(result) == [
            ("buy", D(10), D(100), 1),
            ("sell", D(4), D(90), 4),
            ("buy", D(1), D(100), 19),
        ]
        assert [o is None for o in script.orders] == [False, True, False, True, True, False]
        assert sum(o.state is OrderState.DENIED for o in result.orders.values()) == 3
        trading = [(a.severity, a.title) for a in result.alerts if a.title.startswith("trading")]
        assert trading == [
            (Severity.WARNING, "trading active -> reducing"),
            (Severity.CRITICAL, "trading reducing -> halted"),
            (Severity.INFO, "trading halted -> active"),
        ]
        assert [c["to"] for c in result.summary()["trading_state_changes"]] == [
            "reducing",
            "halted",
            "active",
        ]

    def test_flatten_cancels_open_orders_and_closes_positions(self) -> None:
        result, script = run(
            {0: [buy(10), buy(1, limit="50")], 3: [buy(1)]},
            {"X": flat(100, 100, 90, 90, 90)},
            config=settings(
                [{"type": "drawdown", "reduce_at": 0.01, "cadence": "1m", "flatten": True}]
            ),
        )
        assert changes(result) == [
            (2, A, R, "drawdown.reduce: drawdown 1.00% >= 1.00%", "drawdown")
        ]
        resting = script.orders[1]
        assert resting.state is OrderState.CANCELED
        # the engine's own reduce-only market order fills at the next open
        assert fills(result) == [("buy", D(10), D(100), 1), ("sell", D(10), D(90), 3)]
        closing = result.orders[result.fill_records[1].client_id]
        assert closing.intent.reduce_only and closing.created_ts == 2 * MIN
        assert result.portfolio.position("X") == 0
        assert [d.reason for d in result.denials] == ["trading_state.reducing"]

    def test_without_flatten_positions_are_kept(self) -> None:
        result, _ = run(
            {0: [buy(10)]},
            {"X": flat(100, 100, 90, 90, 90)},
            config=settings([{"type": "drawdown", "reduce_at": 0.01, "cadence": "1m"}]),
        )
        assert len(result.state_changes) == 1
        assert result.portfolio.position("X") == 10 and len(result.fill_records) == 1

    def test_config_errors(self) -> None:
        assert problems({"type": "drawdown"}) == [
            "config.runtime_guards[0]: set reduce_at, halt_at or both"
        ]
        assert problems({"type": "drawdown", "reduce_at": 0}) == [
            "config.runtime_guards[0].reduce_at: must be between 0 and 1, got 0.0"
        ]
        assert problems({"type": "drawdown", "halt_at": 1.5}) == [
            "config.runtime_guards[0].halt_at: must be between 0 and 1, got 1.5"
        ]
        assert problems({"type": "drawdown", "reduce_at": 0.5, "halt_at": 0.2}) == [
            "config.runtime_guards[0]: reduce_at (0.5) must not exceed halt_at (0.2)"
        ]
        assert problems({"type": "drawdown", "reduce_at": 0.1, "cadence": "often"}) == [
            "config.runtime_guards[0].cadence: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'often'"
        ]
        assert problems({"type": "drawdown", "reduce_at": 0.1, "flatten": "yes"}) == [
            "config.runtime_guards[0].flatten: expected true or false, got a string ('yes')"
        ]
        assert problems(
            {"type": "drawdown", "reduce_at": 0.1}, {"trading": {"resume_after": "never"}}
        ) == [
            "config.trading.resume_after: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'never'"
        ]


# -- daily_loss ----------------------------------------------------------------------------


class TestDailyLoss:
    def test_none_above_the_limit(self) -> None:
        evaluate = rg.daily_loss(rg.DailyLossConfig(limit=D(100)))
        assert evaluate(Ctx(daily_pnl="-99.99")) is None
        assert evaluate(Ctx(daily_pnl="500")) is None

    def test_halted_or_reducing_at_the_limit(self) -> None:
        evaluate = rg.daily_loss(rg.DailyLossConfig(limit=D(100)))
        assert evaluate(Ctx(daily_pnl="-100")) == RuntimeDecision(
            "halted", "limit", "daily PnL -100.00 <= -100"
        )
        reducing = rg.daily_loss(rg.DailyLossConfig(limit=D(100), state="reducing"))
        assert reducing(Ctx(daily_pnl="-250.5")) == RuntimeDecision(
            "reducing", "limit", "daily PnL -250.50 <= -100"
        )

    def test_end_to_end_halted(self) -> None:
        result, _ = run(
            {0: [buy(10)], 3: [sell(1), buy(1)]},
            {"X": flat(100, 100, 90, 90, 90)},
            config=settings([{"type": "daily_loss", "limit": "100", "cadence": "1m"}]),
        )
        assert changes(result) == [
            (2, A, H, "daily_loss.limit: daily PnL -100.00 <= -100", "daily_loss")
        ]
        assert [d.reason for d in result.denials] == ["trading_state.halted"] * 2
        assert len(result.fill_records) == 1

    def test_end_to_end_reducing(self) -> None:
        result, _ = run(
            {0: [buy(10)], 3: [sell(1), buy(1)]},
            {"X": flat(100, 100, 90, 90, 90)},
            config=settings(
                [{"type": "daily_loss", "limit": "100", "state": "reducing", "cadence": "1m"}]
            ),
        )
        assert changes(result) == [
            (2, A, R, "daily_loss.limit: daily PnL -100.00 <= -100", "daily_loss")
        ]
        assert denials(result) == [
            (
                "trading_state.reducing",
                "buy",
                D(1),
                "trading is reducing (daily_loss.limit: daily PnL -100.00 <= -100)",
            )
        ]
        assert fills(result) == [("buy", D(10), D(100), 1), ("sell", D(1), D(90), 4)]

    def test_a_new_utc_day_resumes_after_resume_after(self) -> None:
        start = DAY - 5 * MIN  # bar 5 is at midnight
        result, script = run(
            {0: [buy(10)], 6: [buy(1)], 7: [buy(1)], 8: [buy(1)]},
            {"X": flat(100, 100, 90, 90, 90, 90, 90, 90, 90)},
            start=start,
            config=settings([{"type": "daily_loss", "limit": "100", "cadence": "1m"}], resume="2m"),
        )
        assert [(c.ts, c.state, c.reason) for c in result.state_changes] == [
            (DAY - 3 * MIN, H, "daily_loss.limit: daily PnL -100.00 <= -100"),
            (DAY + 2 * MIN, A, "all runtime guards pass"),
        ]
        # at a bar strategies act before the runtime guards are evaluated: the buys
        # of minutes 1 and 2 are denied, the one of minute 3 reaches the broker
        assert [(d.ts, d.reason) for d in result.denials] == [
            (DAY + MIN, "trading_state.halted"),
            (DAY + 2 * MIN, "trading_state.halted"),
        ]
        assert script.orders[-1] is not None and script.orders[-1].state is OrderState.ACCEPTED

    def test_config_errors(self) -> None:
        assert problems({"type": "daily_loss", "limit": "0"}) == [
            "config.runtime_guards[0].limit: must be > 0, got 0"
        ]
        assert problems({"type": "daily_loss"}) == [
            "config.runtime_guards[0].limit: required key is missing"
        ]

    def test_a_bad_state_is_reported_readably(self) -> None:
        (problem,) = problems({"type": "daily_loss", "limit": "10", "state": "active"})
        assert problem.startswith("config.runtime_guards[0].state: ")
        assert "'active'" in problem and "reducing" in problem and "halted" in problem
        # a user-facing sentence, not the repr of the validator's exception arguments
        assert "Attribute(" not in problem and "validator" not in problem


# -- stale_data ----------------------------------------------------------------------------


class TestStaleData:
    evaluate = staticmethod(rg.stale_data(rg.StaleDataConfig(max_age="5m")))

    def test_none_while_every_instrument_is_fresh(self) -> None:
        now = 100 * MIN
        assert self.evaluate(Ctx(now=now, bars={"A": seen(now), "B": seen(now - 5 * MIN)})) is None

    def test_halted_when_one_is_older_than_max_age_or_has_no_bar(self) -> None:
        now = 100 * MIN
        ctx = Ctx(now=now, bars={"A": seen(now), "B": seen(now - 5 * MIN - 10**9)})
        assert self.evaluate(ctx) == RuntimeDecision("halted", "stale", "B: last bar 301s old")
        decided = self.evaluate(Ctx(now=now, bars={"A": seen(now), "B": NO_BAR}))
        assert decided is not None and (decided.state, decided.reason) == ("halted", "stale")
        assert decided.message.startswith("B: ")

    def test_wall_clock(self) -> None:
        evaluate = rg.stale_data(rg.StaleDataConfig(max_age="1m", wall_clock=True))
        fresh = Ctx(now=0, bars={"A": seen(time.time_ns() - 10**9)})
        assert evaluate(fresh) is None
        old = Ctx(now=10**30, bars={"A": seen(time.time_ns() - 2 * MIN)})  # engine time unused
        decided = evaluate(old)
        assert decided is not None and (decided.state, decided.reason) == ("halted", "stale")

    def test_end_to_end_an_instrument_whose_bars_stop(self) -> None:
        # B's last bar is at minute 2: at minute 8 it is 6 minutes (360 s) old
        scripts = {"a": Script({9: [buy(1)]}, "A"), "b": Script({}, "B")}
        result = backtest(
            scripts,
            {"A": flat(*[100] * 12), "B": flat(100, 100, 100)},
            config=settings(
                [{"type": "stale_data", "max_age": "5m", "cadence": "1m"}], resume="1m"
            ),
        )
        last = changes(result)[-1]
        assert last == (8, A, H, "stale_data.stale: B: last bar 360s old", "stale_data")
        assert denials(result) == [
            (
                "trading_state.halted",
                "buy",
                D(1),
                "trading is halted (stale_data.stale: B: last bar 360s old)",
            )
        ]

    def test_end_to_end_aligned_bars_are_never_stale(self) -> None:
        # both instruments have a bar every minute, at the same times: nothing is
        # ever older than 5 minutes, so trading stays ACTIVE from the first bar
        scripts = {"a": Script({1: [buy(1)]}, "A"), "b": Script({1: [buy(1)]}, "B")}
        result = backtest(
            scripts,
            {"A": flat(*[100] * 4), "B": flat(*[50] * 4)},
            config=settings([{"type": "stale_data", "max_age": "5m", "cadence": "1m"}]),
        )
        assert result.state_changes == []
        assert not result.denials and len(result.fill_records) == 2

    def test_config_errors(self) -> None:
        assert problems({"type": "stale_data"}) == [
            "config.runtime_guards[0].max_age: required key is missing"
        ]
        assert problems({"type": "stale_data", "max_age": "5 minutes"}) == [
            "config.runtime_guards[0].max_age: expected an interval like 250ms, 1s, 1m, 4h or 1d, got '5 minutes'"
        ]


# -- margin_ratio --------------------------------------------------------------------------

PERP = {
    "symbol": "BTC-PERP",
    "tick_size": "0.1",
    "kind": "perpetual",
    "initial_margin": "0.2",
    "maintenance_margin": "0.05",
    "funding_interval": "8h",
    "funding_rate": "0.0001",
}


class TestMarginRatio:
    evaluate = staticmethod(rg.margin_ratio(rg.MarginRatioConfig(reduce_at=0.25, halt_at=0.4)))

    def test_none_below_the_thresholds(self) -> None:
        assert self.evaluate(Ctx(margin_ratio="0")) is None
        assert self.evaluate(Ctx(margin_ratio="0.2499")) is None
        only_halt = rg.margin_ratio(rg.MarginRatioConfig(halt_at=0.4))
        assert only_halt(Ctx(margin_ratio="0.3")) is None

    def test_reducing_then_halted(self) -> None:
        assert self.evaluate(Ctx(margin_ratio="0.3")) == RuntimeDecision(
            "reducing", "reduce", "margin ratio 0.30 >= 0.25"
        )
        assert self.evaluate(Ctx(margin_ratio="0.5")) == RuntimeDecision(
            "halted", "halt", "margin ratio 0.50 >= 0.4"
        )
        assert self.evaluate(Ctx(margin_ratio="Infinity")) == RuntimeDecision(
            "halted", "halt", "margin ratio inf >= 0.4"
        )

    def test_end_to_end_with_a_perpetual(self) -> None:
        # long 400 at 100 on 10000 (initial margin 8000). At 90: maintenance
        # 0.05 * 400 * 90 = 1800 over equity 10000 - 4000 = 6000 -> 0.30: REDUCING.
        # At 84: 1680 / (10000 - 6400) = 0.47: HALTED.
        result, script = run(
            {0: [buy(400)], 3: [buy(1), sell(100)], 4: [sell(1)]},
            {"BTC-PERP": flat(100, 100, 90, 84, 84, 84)},
            instruments=[PERP],
            config=settings(
                [{"type": "margin_ratio", "reduce_at": 0.25, "halt_at": 0.4, "cadence": "1m"}]
            ),
        )
        assert changes(result) == [
            (2, A, R, "margin_ratio.reduce: margin ratio 0.30 >= 0.25", "margin_ratio"),
            (3, R, H, "margin_ratio.halt: margin ratio 0.47 >= 0.4", "margin_ratio"),
        ]
        assert [(d.reason, d.side, d.quantity) for d in result.denials] == [
            ("trading_state.reducing", "buy", D(1)),
            ("trading_state.halted", "sell", D(1)),
        ]
        assert fills(result) == [("buy", D(400), D(100), 1), ("sell", D(100), D(84), 4)]
        assert script.positions == [D(400), D(300)]
        # realised (84 - 100) * 100 only: a perpetual's cash moves by PnL, not notional
        assert result.portfolio.cash == D(10000) - 1600
        assert not result.liquidations

    def test_config_errors(self) -> None:
        assert problems({"type": "margin_ratio"}) == [
            "config.runtime_guards[0]: set reduce_at, halt_at or both"
        ]
        assert problems({"type": "margin_ratio", "reduce_at": 0.9, "halt_at": 0.5}) == [
            "config.runtime_guards[0]: reduce_at (0.9) must not exceed halt_at (0.5)"
        ]
        assert problems({"type": "margin_ratio", "halt_at": 1.2}) == [
            "config.runtime_guards[0].halt_at: must be between 0 and 1, got 1.2"
        ]


# -- kill_switch ---------------------------------------------------------------------------


class TestKillSwitch:
    def test_none_when_not_engaged(self, tmp_path: Path) -> None:
        assert rg.kill_switch(rg.KillSwitchConfig())(Ctx()) is None
        assert rg.kill_switch(rg.KillSwitchConfig(file=str(tmp_path / "STOP")))(Ctx()) is None

    def test_halted_while_engaged_or_the_file_exists(self, tmp_path: Path) -> None:
        engaged = RuntimeDecision("halted", "engaged", "the kill switch is engaged")
        assert rg.kill_switch(rg.KillSwitchConfig(engaged=True))(Ctx()) == engaged
        stop = tmp_path / "STOP"
        evaluate = rg.kill_switch(rg.KillSwitchConfig(file=str(stop)))
        stop.touch()
        assert evaluate(Ctx()) == engaged
        stop.unlink()
        assert evaluate(Ctx()) is None

    def test_end_to_end_touch_to_stop_remove_to_resume(self, tmp_path: Path) -> None:
        stop = tmp_path / "STOP"
        result, script = run(
            {
                0: [buy(2)],
                1: [call(lambda _: stop.touch())],
                2: [sell(1)],
                3: [call(lambda _: stop.unlink())],
                4: [buy(1)],
                6: [buy(1)],
            },
            {"X": flat(*[100] * 8)},
            config=settings([{"type": "kill_switch", "file": str(stop)}], resume="2m"),
        )
        assert changes(result) == [
            (1, A, H, "kill_switch.engaged: the kill switch is engaged", "kill_switch"),
            (5, H, A, "all runtime guards pass", "engine"),
        ]
        assert [(d.reason, d.side) for d in result.denials] == [
            ("trading_state.halted", "sell"),
            ("trading_state.halted", "buy"),
        ]
        assert fills(result) == [("buy", D(2), D(100), 1), ("buy", D(1), D(100), 7)]
        assert [o is None for o in script.orders] == [False, True, True, False]

    def test_engaged_from_the_start(self) -> None:
        result, _ = run(
            {0: [buy(1)], 1: [buy(1)]},
            {"X": flat(100, 100, 100)},
            config=settings([{"type": "kill_switch", "engaged": True}]),
        )
        # evaluated after the first bar's strategies: the first order got through
        assert changes(result) == [
            (0, A, H, "kill_switch.engaged: the kill switch is engaged", "kill_switch")
        ]
        assert [d.reason for d in result.denials] == ["trading_state.halted"]

    def test_config_errors(self) -> None:
        assert problems({"type": "kill_switch", "engaged": "perhaps"}) == [
            "config.runtime_guards[0].engaged: expected true or false, got a string ('perhaps')"
        ]
        assert problems({"type": "kill_switch", "file": ["a"]}) == [
            "config.runtime_guards[0].file: expected a string, got a list (['a'])"
        ]


# -- several runtime guards: the most severe request wins ---------------------------------


def test_the_most_severe_request_wins() -> None:
    result, _ = run(
        {0: [buy(10)]},
        {"X": flat(100, 100, 90, 90)},
        config=settings(
            [
                {"type": "drawdown", "reduce_at": 0.01, "cadence": "1m"},
                {"type": "daily_loss", "limit": "100", "cadence": "1m"},
            ]
        ),
    )
    assert changes(result) == [
        (2, A, H, "daily_loss.limit: daily PnL -100.00 <= -100", "daily_loss")
    ]
