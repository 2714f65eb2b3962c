"""Built-in guards (engine/builtins/guards.py): unit checks against a small fake
context, end-to-end backtests with scripted strategies on fixed bars, config
errors by path, and property tests that denied intents never reach the broker
and that positions stay within the limits."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import Script, buy, sell

from engine import (
    BarSeries,
    Broker,
    ConfigError,
    Deny,
    Engine,
    Feed,
    Instrument,
    InstrumentKind,
    OrderIntent,
    OrderState,
    OrderType,
    PluginSettings,
    Portfolio,
    Reduce,
    Side,
    Strategy,
    hookimpl,
)
from engine.builtins import guards as g
from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig
from engine.kernel.queries import KernelQueries

D = Decimal
MIN = 60_000_000_000
DAY = 86_400_000_000_000

# -- helpers: scripted strategies on fixed bars -------------------------------------------

Step = tuple[str, tuple[Any, ...], dict[str, Any]]


Row = tuple[float, ...]


class Bars:
    """Fixed OHLC(V) rows per symbol, one minute apart from ``start``; optional
    extra columns (bid, ask...) per symbol."""

    def __init__(
        self,
        data: dict[str, list[Row]],
        start: int = 0,
        extra: dict[str, dict[str, list[float]]] | None = None,
    ) -> None:
        self.data, self.start, self.extra = data, start, extra or {}

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        rows = self.data[instrument.symbol]
        ts = [self.start + MIN * k for k in range(len(rows))]
        o, h, lo, c = ([r[k] for r in rows] for k in range(4))
        v = [r[4] if len(r) > 4 else 1.0 for r in rows]
        return BarSeries.from_arrays(
            instrument, ts, o, h, lo, c, v, extra=self.extra.get(instrument.symbol)
        )


def flat(*prices: float) -> list[Row]:
    """Bars that open, trade and close at one price each."""
    return [(p, p, p, p) for p in prices]


def backtest(
    scripts: dict[str, Script],
    bars: dict[str, list[Row]],
    *,
    config: dict[str, Any] | None = None,
    instruments: list[dict[str, Any]] | None = None,
    start: int = 0,
    extra: dict[str, dict[str, list[float]]] | None = None,
    plugins: tuple[Any, ...] = (),
) -> Any:
    queue = iter(scripts.values())

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: next(queue))]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="bars", factory=lambda _: Bars(bars, start, extra))]

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
    for k, plugin in enumerate(plugins):
        eng.register(plugin, f"extra-{k}")
    return eng.backtest_sync()


def run(steps: dict[int, list[Step]], bars: dict[str, list[Row]], **kw: Any) -> tuple[Any, Script]:
    script = Script(steps)
    return backtest({"script": script}, bars, **kw), script


def call(fn: Callable[[Any], Any]) -> Step:
    return ("call", (fn,), {})


def cash(amount: str) -> dict[str, Any]:
    return {"engine": {"initial_cash": amount}}


def denials(result: Any) -> list[tuple[str, str, Decimal, str]]:
    return [(d.reason, d.side, d.quantity, d.message) for d in result.denials]


def reductions(result: Any) -> list[tuple[str, Decimal, Decimal]]:
    return [(r.reason, r.before, r.after) for r in result.reductions]


def fills(result: Any) -> list[tuple[str, Decimal, Decimal, int]]:
    return [(f.side.value, f.quantity, f.price, f.ts // MIN) for f in result.fill_records]


def problems(item: dict[str, Any], section: str = "guards") -> list[str]:
    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic"},
        "strategies": [{"type": "sma_crossover"}],
        section: [item],
    }
    with pytest.raises(ConfigError) as err:
        Engine.from_config(cfg, settings=PluginSettings(builtin_only=True)).check()
    return [str(p) for p in err.value.problems]


def check_ok(item: dict[str, Any]) -> None:
    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic"},
        "strategies": [{"type": "sma_crossover"}],
        "guards": [item],
    }
    Engine.from_config(cfg, settings=PluginSettings(builtin_only=True)).check()


# -- helpers: a fake check context --------------------------------------------------------

SPOT = Instrument("X", D("0.01"))
PERP = Instrument(
    "P",
    D("0.1"),
    kind=InstrumentKind.PERPETUAL,
    initial_margin=D("0.2"),
    maintenance_margin=D("0.05"),
)


class FakeCtx:
    """What the guards ask of ``ctx``, from plain values (a real Portfolio for
    positions and liquidation prices when given one)."""

    def __init__(
        self,
        *,
        instruments: tuple[Instrument, ...] = (SPOT,),
        positions: dict[str, Any] | None = None,
        reserved: dict[str, Any] | None = None,
        strategy_positions: dict[tuple[str, str], Any] | None = None,
        strategy_reserved: dict[tuple[str, str], Any] | None = None,
        prices: dict[str, Any] | None = None,
        equity: Any = "10000",
        drawdown: float = 0.0,
        daily_pnl: Any = "0",
        now: int = 0,
        submitted: tuple[int, ...] = (),
        open_orders: int = 0,
        bar: Any = None,
        columns: dict[str, float] | None = None,
        portfolio: Portfolio | None = None,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self._positions = {k: D(v) for k, v in (positions or {}).items()}
        self._reserved = {k: D(v) for k, v in (reserved or {}).items()}
        self._strategy_positions = {k: D(v) for k, v in (strategy_positions or {}).items()}
        self._strategy_reserved = {k: D(v) for k, v in (strategy_reserved or {}).items()}
        self._prices = {k: D(v) for k, v in (prices or {}).items()}
        self._equity = D(equity)
        self._drawdown = drawdown
        self._daily_pnl = D(daily_pnl)
        self.now = now
        self._submitted = sorted(submitted)
        self._open = [object()] * open_orders
        self._bar = bar
        self._columns = columns or {}
        self.portfolio = portfolio
        self.liquidation_calls: list[tuple[str, Any]] = []

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def position(self, symbol: str) -> Decimal:
        if self.portfolio is not None:
            return self.portfolio.position(symbol)
        return self._positions.get(symbol, D(0))

    def reserved(
        self, symbol: str, strategy: str | None = None, side: Side | None = None
    ) -> Decimal:
        if strategy is not None:
            total = self._strategy_reserved.get((strategy, symbol), D(0))
        else:
            total = self._reserved.get(symbol, D(0))
        # the fake holds one signed amount per symbol: open orders of a single side
        if side is Side.BUY:
            return max(total, D(0))
        if side is Side.SELL:
            return min(total, D(0))
        return total

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        return self._strategy_positions.get((strategy, symbol), D(0))

    # the engine's own definition, computed from this fake's answers above
    exposure = KernelQueries.exposure

    def marks(self) -> dict[str, Decimal]:
        return dict(self._prices)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol)

    def equity(self) -> Decimal:
        return self._equity

    def drawdown(self) -> float:
        return self._drawdown

    def daily_pnl(self) -> Decimal:
        return self._daily_pnl

    def orders_since(self, ts: int) -> int:
        return len(self._submitted) - bisect.bisect_left(self._submitted, ts)

    def open_orders(self, symbol: str | None = None) -> list[Any]:
        return list(self._open)

    def open_order_count(self) -> int:
        return len(self._open)

    def bar(self, symbol: str) -> Any:
        return self._bar or SimpleNamespace(index=-1, ts=0, high=0, low=0, close=0, volume=0.0)

    def column(self, symbol: str, name: str) -> float | None:
        return self._columns.get(name)

    def liquidation_price(self, symbol: str, add: Any = None) -> Decimal | None:
        self.liquidation_calls.append((symbol, add))
        assert self.portfolio is not None
        return self.portfolio.liquidation_price(symbol, self.marks(), add)

    def is_reducing(self, intent: OrderIntent) -> bool:  # as KernelQueries.is_reducing
        held = self.position(intent.instrument)
        if not held or (held > 0) == (intent.side is Side.BUY):
            return False
        pending = self.reserved(intent.instrument)
        already = -pending if held > 0 else pending
        return intent.quantity + max(already, D(0)) <= abs(held)


def intent(
    side: str = "buy",
    qty: Any = 1,
    symbol: str = "X",
    *,
    strategy: str = "s",
    limit: Any = None,
    stop: Any = None,
) -> OrderIntent:
    kind = OrderType.LIMIT if limit is not None else OrderType.STOP if stop else OrderType.MARKET
    return OrderIntent(
        strategy,
        symbol,
        Side(side),
        D(qty),
        kind,
        None if limit is None else D(limit),
        None if stop is None else D(stop),
    )


# -- kill_switch ----------------------------------------------------------------------------


class TestKillSwitch:
    def test_allows_when_not_engaged(self, tmp_path: Path) -> None:
        check = g.kill_switch(g.KillSwitchConfig(file=str(tmp_path / "STOP")))
        assert check(intent("buy", 5), FakeCtx()) is None
        assert g.kill_switch(g.KillSwitchConfig())(intent("sell", 5), FakeCtx()) is None

    def test_engaged_denies_all_but_reducing_intents(self) -> None:
        check = g.kill_switch(g.KillSwitchConfig(engaged=True))
        deny = Deny("engaged", "the kill switch is engaged")
        assert check(intent("buy", 1), FakeCtx()) == deny
        long3 = FakeCtx(positions={"X": 3})
        assert check(intent("buy", 1), long3) == deny  # adds
        assert check(intent("sell", 4), long3) == deny  # through zero: not only reducing
        assert check(intent("sell", 3), long3) is None  # closes
        assert check(intent("sell", 2), FakeCtx(positions={"X": 3}, reserved={"X": -2})) == deny

    def test_the_file_engages_it_while_it_exists(self, tmp_path: Path) -> None:
        stop = tmp_path / "STOP"
        check = g.kill_switch(g.KillSwitchConfig(file=str(stop)))
        stop.touch()
        assert check(intent(), FakeCtx()) == Deny("engaged", "the kill switch is engaged")
        stop.unlink()
        assert check(intent(), FakeCtx()) is None

    def test_end_to_end_with_the_file(self, tmp_path: Path) -> None:
        stop = tmp_path / "STOP"
        result, script = run(
            {
                0: [buy(2)],
                1: [call(lambda _: stop.touch())],
                2: [buy(1), sell(1), sell(5)],
                3: [call(lambda _: stop.unlink()), buy(1)],
            },
            {"X": flat(100, 100, 100, 100, 100)},
            config={"guards": [{"type": "kill_switch", "file": str(stop)}]},
        )
        assert denials(result) == [
            ("kill_switch.engaged", "buy", D(1), "the kill switch is engaged"),
            ("kill_switch.engaged", "sell", D(5), "the kill switch is engaged"),
        ]
        assert {(d.stage, d.check, d.plugin) for d in result.denials} == {
            ("guard", "kill_switch", "guards")
        }
        assert fills(result) == [
            ("buy", D(2), D(100), 1),
            ("sell", D(1), D(100), 3),
            ("buy", D(1), D(100), 4),
        ]
        assert [o is None for o in script.orders] == [False, True, False, True, False]

    def test_engaged_from_the_start_nothing_trades(self) -> None:
        result, _ = run(
            {0: [buy(1), sell(1)]},
            {"X": flat(100, 100)},
            config={"guards": [{"type": "kill_switch", "engaged": True}]},
        )
        assert result.denials_by_reason == {"kill_switch.engaged": 2}
        assert not result.fill_records

    def test_config_errors(self) -> None:
        assert problems({"type": "kill_switch", "engaged": "maybe"}) == [
            "config.guards[0].engaged: expected true or false, got a string ('maybe')"
        ]
        assert problems({"type": "kill_switch", "file": 3}) == [
            "config.guards[0].file: expected a string, got an integer (3)"
        ]
        assert problems({"type": "kill_switch", "bogus": 1}) == [
            "config.guards[0].bogus: unknown key; known keys: engaged, file"
        ]


# -- daily_loss ----------------------------------------------------------------------------


class TestDailyLoss:
    def test_allows_above_the_limit(self) -> None:
        check = g.daily_loss(g.DailyLossConfig(limit=D(100)))
        assert check(intent(), FakeCtx(daily_pnl="-99.99")) is None
        assert check(intent(), FakeCtx(daily_pnl="250")) is None

    def test_denies_at_the_limit_unless_reducing(self) -> None:
        check = g.daily_loss(g.DailyLossConfig(limit=D(100)))
        assert check(intent(), FakeCtx(daily_pnl="-100")) == Deny(
            "limit_reached", "daily PnL -100.00 <= -100"
        )
        short = FakeCtx(daily_pnl="-150.5", positions={"X": -2})
        assert check(intent("sell", 1), short) == Deny("limit_reached", "daily PnL -150.50 <= -100")
        assert check(intent("buy", 2), short) is None  # covers the short

    def test_end_to_end(self) -> None:
        # 10 bought at 100; at 95 equity is 9000 + 950 = 9950: 50 down on the day
        result, _ = run(
            {0: [buy(10)], 2: [buy(1), sell(3)]},
            {"X": flat(100, 100, 95, 95, 95)},
            config={**cash("10000"), "guards": [{"type": "daily_loss", "limit": "50"}]},
        )
        assert denials(result) == [
            ("daily_loss.limit_reached", "buy", D(1), "daily PnL -50.00 <= -50")
        ]
        assert fills(result) == [("buy", D(10), D(100), 1), ("sell", D(3), D(95), 3)]

    def test_a_new_utc_day_starts_from_its_first_sample(self) -> None:
        result, _ = run(
            {0: [buy(10)], 2: [buy(1)], 3: [buy(1)]},  # bar 3 is at midnight
            {"X": flat(100, 100, 95, 95, 95)},
            start=DAY - 3 * MIN,
            config={**cash("10000"), "guards": [{"type": "daily_loss", "limit": "50"}]},
        )
        assert result.denials_by_reason == {"daily_loss.limit_reached": 1}
        assert result.denials[0].ts == DAY - MIN
        assert [(f.quantity, f.ts) for f in result.fill_records] == [
            (D(10), DAY - 2 * MIN),
            (D(1), DAY + MIN),
        ]

    def test_config_errors(self) -> None:
        assert problems({"type": "daily_loss", "limit": "-1"}) == [
            "config.guards[0].limit: must be > 0, got -1"
        ]
        assert problems({"type": "daily_loss"}) == [
            "config.guards[0].limit: required key is missing"
        ]


# -- max_drawdown --------------------------------------------------------------------------


class TestMaxDrawdown:
    def test_allows_below_the_limit(self) -> None:
        check = g.max_drawdown(g.MaxDrawdownConfig(limit=0.05))
        assert check(intent(), FakeCtx(drawdown=0.0499)) is None
        assert check(intent(), FakeCtx(drawdown=0.0)) is None

    def test_denies_at_the_limit_unless_reducing(self) -> None:
        check = g.max_drawdown(g.MaxDrawdownConfig(limit=0.05))
        assert check(intent(), FakeCtx(drawdown=0.05)) == Deny(
            "limit_reached", "drawdown 5.00% >= 5.00%"
        )
        long5 = FakeCtx(drawdown=0.2, positions={"X": 5})
        assert check(intent("sell", 5), long5) is None
        assert check(intent("sell", 6), long5) == Deny("limit_reached", "drawdown 20.00% >= 5.00%")

    def test_end_to_end(self) -> None:
        # 50 bought at 100 (cash 5000); at 90 equity is 9500: 5% below the 10000 peak
        result, _ = run(
            {0: [buy(50)], 2: [buy(1), sell(10)]},
            {"X": flat(100, 100, 90, 90, 90)},
            config={**cash("10000"), "guards": [{"type": "max_drawdown", "limit": 0.05}]},
        )
        assert denials(result) == [
            ("max_drawdown.limit_reached", "buy", D(1), "drawdown 5.00% >= 5.00%")
        ]
        assert fills(result) == [("buy", D(50), D(100), 1), ("sell", D(10), D(90), 3)]

    def test_config_errors(self) -> None:
        assert problems({"type": "max_drawdown", "limit": 1.5}) == [
            "config.guards[0].limit: must be between 0.0 and 1.0, got 1.5"
        ]
        assert problems({"type": "max_drawdown", "limit": "x"}) == [
            "config.guards[0].limit: expected a number, got a string ('x')"
        ]


# -- order_rate ----------------------------------------------------------------------------


class TestOrderRate:
    def test_allows_below_the_rate(self) -> None:
        check = g.order_rate(g.OrderRateConfig(max_orders=2, per="1m"))
        assert check(intent(), FakeCtx(now=10 * MIN, submitted=(10 * MIN,))) is None
        # an order exactly one window ago has left the window
        assert check(intent(), FakeCtx(now=10 * MIN, submitted=(9 * MIN, 10 * MIN))) is None

    def test_denies_at_the_rate(self) -> None:
        check = g.order_rate(g.OrderRateConfig(max_orders=2, per="1m"))
        ctx = FakeCtx(now=10 * MIN, submitted=(9 * MIN + 1, 10 * MIN))
        assert check(intent(), ctx) == Deny("too_fast", "2 orders in the last 1m (max 2)")

    def test_end_to_end(self) -> None:
        steps = {0: [buy(), buy(), buy()], 1: [buy()], 2: [buy()]}
        result, script = run(
            steps,
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "order_rate", "max_orders": 2}]},
        )
        assert denials(result) == [
            ("order_rate.too_fast", "buy", D(1), "2 orders in the last 1m (max 2)")
        ]
        assert [o is None for o in script.orders] == [False, False, True, False, False]
        result, script = run(
            steps,
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "order_rate", "max_orders": 2, "per": "2m"}]},
        )
        assert [d.message for d in result.denials] == ["2 orders in the last 2m (max 2)"] * 2
        assert [o is None for o in script.orders] == [False, False, True, True, False]

    def test_config_errors(self) -> None:
        assert problems({"type": "order_rate", "max_orders": 0}) == [
            "config.guards[0].max_orders: must be > 0, got 0"
        ]
        assert problems({"type": "order_rate", "max_orders": 3, "per": "soon"}) == [
            "config.guards[0].per: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'soon'"
        ]


# -- max_open_orders -----------------------------------------------------------------------


class TestMaxOpenOrders:
    def test_allows_below_the_limit(self) -> None:
        check = g.max_open_orders(g.MaxOpenOrdersConfig(limit=2))
        assert check(intent(), FakeCtx(open_orders=1)) is None

    def test_denies_at_the_limit(self) -> None:
        check = g.max_open_orders(g.MaxOpenOrdersConfig(limit=2))
        assert check(intent(), FakeCtx(open_orders=2)) == Deny("too_many", "2 orders open (max 2)")

    def test_end_to_end(self) -> None:
        result, script = run(
            {
                0: [buy(1, limit="50"), buy(1, limit="50"), buy(1, limit="50")],
                1: [("cancel_open", (), {})],
                2: [buy(1, limit="50"), buy(1)],
            },
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "max_open_orders", "limit": 2}]},
        )
        assert denials(result) == [
            ("max_open_orders.too_many", "buy", D(1), "2 orders open (max 2)")
        ]
        states = [None if o is None else o.state for o in script.orders]
        assert states == [
            OrderState.CANCELED,
            OrderState.CANCELED,
            None,
            OrderState.ACCEPTED,
            OrderState.FILLED,
        ]

    def test_config_errors(self) -> None:
        assert problems({"type": "max_open_orders", "limit": 0}) == [
            "config.guards[0].limit: must be > 0, got 0"
        ]
        assert problems({"type": "max_open_orders", "limit": "two"}) == [
            "config.guards[0].limit: expected an integer, got a string ('two')"
        ]


# -- max_order_notional --------------------------------------------------------------------


class TestMaxOrderNotional:
    def test_allows_within_the_limit(self) -> None:
        check = g.max_order_notional(g.MaxOrderNotionalConfig(limit=D(1000)))
        assert check(intent("buy", 10), FakeCtx(prices={"X": 100})) is None
        assert check(intent("sell", 20, limit="50"), FakeCtx(prices={"X": 100})) is None

    def test_reduces_to_whole_lots_or_denies(self) -> None:
        check = g.max_order_notional(g.MaxOrderNotionalConfig(limit=D(1000)))
        assert check(intent("buy", 15), FakeCtx(prices={"X": 100})) == Reduce(
            D(10), "limit", "reduced to 10: order notional above 1000"
        )
        # valued at the limit price: 1000 / 200 = 5
        assert check(intent("buy", 6, limit="200"), FakeCtx(prices={"X": 100})) == Reduce(
            D(5), "limit", "reduced to 5: order notional above 1000"
        )
        # 1000 / 30 = 33.333..., rounded down to lots of 0.001
        fine = Instrument("X", D("0.01"), D("0.001"))
        decided = check(intent("buy", 40), FakeCtx(instruments=(fine,), prices={"X": 30}))
        assert decided == Reduce(
            D("33.333"), "limit", "reduced to 33.333: order notional above 1000"
        )
        # a multiplier of 10: one contract at 100 is worth 1000
        big = Instrument("X", D("0.01"), multiplier=D(10))
        decided = check(intent("buy", 2), FakeCtx(instruments=(big,), prices={"X": 100}))
        assert decided == Reduce(D(1), "limit", "reduced to 1: order notional above 1000")
        small = g.max_order_notional(g.MaxOrderNotionalConfig(limit=D(50)))
        assert small(intent("buy", 1), FakeCtx(prices={"X": 100})) == Deny(
            "limit", "order notional above 50"
        )
        assert check(intent("buy", 1), FakeCtx()) == Deny("no_price", "no price to value the order")

    def test_end_to_end(self) -> None:
        result, _ = run(
            {0: [buy(15), buy(6, limit="200")]},
            {"X": flat(100, 100)},
            config={"guards": [{"type": "max_order_notional", "limit": "1000"}]},
        )
        assert reductions(result) == [
            ("max_order_notional.limit", D(15), D(10)),
            ("max_order_notional.limit", D(6), D(5)),
        ]
        assert [(f.quantity, f.price) for f in result.fill_records] == [
            (D(10), D(100)),
            (D(5), D(100)),
        ]
        result, _ = run(
            {0: [buy(1)]},
            {"X": flat(100, 100)},
            config={"guards": [{"type": "max_order_notional", "limit": "50"}]},
        )
        assert denials(result) == [
            ("max_order_notional.limit", "buy", D(1), "order notional above 50")
        ]
        assert not result.fill_records

    def test_config_errors(self) -> None:
        assert problems({"type": "max_order_notional", "limit": "0"}) == [
            "config.guards[0].limit: must be > 0, got 0"
        ]


# -- max_position --------------------------------------------------------------------------


class TestMaxPosition:
    check = staticmethod(g.max_position(g.MaxPositionConfig(limit=D(2))))

    def test_allows_within_the_limit(self) -> None:
        assert self.check(intent("buy", 1), FakeCtx(positions={"X": 1})) is None
        assert self.check(intent("sell", 4), FakeCtx(positions={"X": 2})) is None  # 2 -> -2
        assert self.check(intent("buy", 2), FakeCtx(positions={"X": -2}, reserved={"X": 2})) is None

    def test_reduces_to_the_room_left(self) -> None:
        assert self.check(intent("buy", 3), FakeCtx(positions={"X": 1})) == Reduce(
            D(1), "limit", "reduced to 1: position limit 2 (now 1)"
        )
        assert self.check(intent("sell", 6), FakeCtx(positions={"X": 2})) == Reduce(
            D(4), "limit", "reduced to 4: position limit 2 (now 2)"
        )
        lots = Instrument("X", D("0.01"), D("0.5"))
        check = g.max_position(g.MaxPositionConfig(limit=D("1.2")))
        assert check(intent("buy", 2), FakeCtx(instruments=(lots,))) == Reduce(
            D("1.0"), "limit", "reduced to 1.0: position limit 1.2 (now 0)"
        )

    def test_denies_when_full_counting_open_orders(self) -> None:
        assert self.check(intent("buy", 1), FakeCtx(positions={"X": 2})) == Deny(
            "limit", "position limit 2 (now 2)"
        )
        ctx = FakeCtx(positions={"X": 1}, reserved={"X": 1})
        assert self.check(intent("buy", 1), ctx) == Deny("limit", "position limit 2 (now 2)")
        ctx = FakeCtx(positions={"X": -1}, reserved={"X": -1})
        assert self.check(intent("sell", 1), ctx) == Deny("limit", "position limit 2 (now -2)")

    def test_only_the_configured_instrument(self) -> None:
        check = g.max_position(g.MaxPositionConfig(limit=D(2), instrument="Y"))
        other = Instrument("Y", D("0.01"))
        ctx = FakeCtx(instruments=(SPOT, other), positions={"X": 2, "Y": 2})
        assert check(intent("buy", 5, "X"), ctx) is None
        assert check(intent("buy", 5, "Y"), ctx) == Deny("limit", "position limit 2 (now 2)")

    def test_end_to_end(self) -> None:
        result, script = run(
            {0: [buy(1), buy(5), buy(1)], 2: [sell(6)]},
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "max_position", "limit": "2"}]},
        )
        assert reductions(result) == [
            ("max_position.limit", D(5), D(1)),
            ("max_position.limit", D(6), D(4)),
        ]
        assert denials(result) == [("max_position.limit", "buy", D(1), "position limit 2 (now 2)")]
        assert script.positions == [D(1), D(2), D(-2)]
        assert result.orders["script-X-3"].state is OrderState.DENIED

    def test_end_to_end_per_instrument(self) -> None:
        scripts = {"x": Script({0: [buy(5)]}, "X"), "y": Script({0: [buy(5)]}, "Y")}
        result = backtest(
            scripts,
            {"X": flat(100, 100), "Y": flat(50, 50)},
            config={"guards": [{"type": "max_position", "limit": "2", "instrument": "X"}]},
        )
        assert reductions(result) == [("max_position.limit", D(5), D(2))]
        assert {(f.instrument, f.quantity) for f in result.fill_records} == {
            ("X", D(2)),
            ("Y", D(5)),
        }

    def test_config_errors(self) -> None:
        assert problems({"type": "max_position", "limit": "-1"}) == [
            "config.guards[0].limit: must be > 0, got -1"
        ]
        assert problems({"type": "max_position", "limit": "lots"}) == [
            "config.guards[0].limit: expected a decimal number, got 'lots'"
        ]
        assert problems({"type": "max_position"}) == [
            "config.guards[0].limit: required key is missing"
        ]
        check_ok({"type": "max_position", "limit": "0.5", "instrument": "X"})


# -- strategy_budget -----------------------------------------------------------------------


class TestStrategyBudget:
    check = staticmethod(g.strategy_budget(g.StrategyBudgetConfig(budgets={"a": D(300)})))

    def test_allows_within_the_budget_and_unbudgeted_strategies(self) -> None:
        ctx = FakeCtx(prices={"X": 100}, positions={"X": 9}, strategy_positions={("a", "X"): 1})
        assert self.check(intent("buy", 2, strategy="a"), ctx) is None  # only a's 1 counts
        assert self.check(intent("buy", 50, strategy="b"), ctx) is None  # no budget, no default

    def test_reduces_or_denies_over_the_budget(self) -> None:
        ctx = FakeCtx(prices={"X": 100}, strategy_positions={("a", "X"): 1})
        assert self.check(intent("buy", 3, strategy="a"), ctx) == Reduce(
            D(2), "over_budget", "reduced to 2: a: gross exposure 400.00 > 300"
        )
        ctx = FakeCtx(
            prices={"X": 100},
            strategy_positions={("a", "X"): 2},
            strategy_reserved={("a", "X"): 1},
        )
        assert self.check(intent("buy", 1, strategy="a"), ctx) == Deny(
            "over_budget", "a: gross exposure 400.00 > 300"
        )
        default = g.strategy_budget(g.StrategyBudgetConfig(default=D(100)))
        assert default(intent("sell", 2, strategy="b"), FakeCtx(prices={"X": 100})) == Reduce(
            D(1), "over_budget", "reduced to 1: b: gross exposure 200.00 > 100"
        )

    def test_end_to_end_strategies_do_not_share_budgets(self) -> None:
        scripts = {"a": Script({0: [buy(5)], 2: [buy(1)]}), "b": Script({0: [buy(5)], 2: [buy(5)]})}
        result = backtest(
            scripts,
            {"X": flat(100, 100, 100, 100)},
            config={
                "guards": [{"type": "strategy_budget", "budgets": {"a": "300"}, "default": "1000"}]
            },
        )
        assert reductions(result) == [("strategy_budget.over_budget", D(5), D(3))]
        assert result.reductions[0].client_id == "a-X-1"
        assert denials(result) == [
            ("strategy_budget.over_budget", "buy", D(1), "a: gross exposure 400.00 > 300")
        ]
        assert [(f.strategy, f.quantity) for f in result.fill_records] == [
            ("a", D(3)),
            ("b", D(5)),
            ("b", D(5)),
        ]

    def test_config_errors(self) -> None:
        assert problems({"type": "strategy_budget", "budgets": {"a": "-5"}}) == [
            "config.guards[0]: budgets must be > 0: a"
        ]
        assert problems({"type": "strategy_budget", "default": "0"}) == [
            "config.guards[0].default: must be > 0, got 0"
        ]
        assert problems({"type": "strategy_budget", "budgets": {"a": "x"}}) == [
            "config.guards[0].budgets['a']: expected a decimal number, got 'x'"
        ]


# -- max_exposure --------------------------------------------------------------------------


class TestMaxExposure:
    gross = staticmethod(g.max_exposure(g.MaxExposureConfig(max_gross=D(500))))

    def test_allows_within_the_limits(self) -> None:
        assert self.gross(intent("buy", 3), FakeCtx(prices={"X": 100}, positions={"X": 2})) is None
        # reducing passes even when the account is over the limit
        over = FakeCtx(prices={"X": 100}, positions={"X": 8})
        assert self.gross(intent("sell", 3), over) is None
        net = g.max_exposure(g.MaxExposureConfig(max_net=D(300)))
        y = Instrument("Y", D("0.01"))
        hedged = FakeCtx(
            instruments=(SPOT, y), prices={"X": 100, "Y": 50}, positions={"X": 2, "Y": -4}
        )
        assert net(intent("buy", 2), hedged) is None  # net 0 -> 200

    def test_reduces_or_denies_over_the_gross_limit(self) -> None:
        ctx = FakeCtx(prices={"X": 100}, positions={"X": 2})
        assert self.gross(intent("buy", 4), ctx) == Reduce(
            D(3), "limit", "reduced to 3: gross exposure 600.00 > 500"
        )
        ctx = FakeCtx(prices={"X": 100}, positions={"X": 2}, reserved={"X": 3})
        assert self.gross(intent("buy", 1), ctx) == Deny("limit", "gross exposure 600.00 > 500")
        y = Instrument("Y", D("0.01"))
        both = FakeCtx(
            instruments=(SPOT, y), prices={"X": 100, "Y": 50}, positions={"X": 2, "Y": -4}
        )
        assert self.gross(intent("buy", 2), both) == Reduce(
            D(1), "limit", "reduced to 1: gross exposure 600.00 > 500"
        )

    def test_reduces_over_the_net_limit_either_side(self) -> None:
        net = g.max_exposure(g.MaxExposureConfig(max_net=D(300)))
        assert net(intent("sell", 5), FakeCtx(prices={"X": 100})) == Reduce(
            D(3), "limit", "reduced to 3: net exposure -500.00 beyond +/-300"
        )
        assert net(intent("buy", 1), FakeCtx(prices={"X": 100}, positions={"X": 3})) == Deny(
            "limit", "net exposure 400.00 beyond +/-300"
        )
        assert net(intent("buy", 1), FakeCtx()) == Deny("limit", "no price to value the order")

    def test_an_order_through_zero_is_reduced_to_what_fits_not_denied(self) -> None:
        # long 1 at 100, gross limit 150: selling 2 ends short 1 (gross 100) and
        # selling 2.5 ends at gross 150, so a sell of 3 fits once reduced to 2 lots.
        check = g.max_exposure(g.MaxExposureConfig(max_gross=D(150)))
        decided = check(intent("sell", 3), FakeCtx(prices={"X": 100}, positions={"X": 1}))
        assert isinstance(decided, Reduce), decided
        assert (decided.quantity, decided.reason) == (D(2), "limit")

    def test_end_to_end(self) -> None:
        result, script = run(
            {0: [buy(3), buy(4)], 2: [buy(1), sell(2)]},
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "max_exposure", "max_gross": "500"}]},
        )
        assert reductions(result) == [("max_exposure.limit", D(4), D(2))]
        assert denials(result) == [
            ("max_exposure.limit", "buy", D(1), "gross exposure 600.00 > 500")
        ]
        assert script.positions == [D(3), D(5), D(3)]
        result, _ = run(
            {0: [sell(5)]},
            {"X": flat(100, 100)},
            config={"guards": [{"type": "max_exposure", "max_net": "300"}]},
        )
        assert reductions(result) == [("max_exposure.limit", D(5), D(3))]

    def test_end_to_end_through_zero(self) -> None:
        result, script = run(
            {0: [buy(1)], 2: [sell(3)]},
            {"X": flat(100, 100, 100, 100)},
            config={"guards": [{"type": "max_exposure", "max_gross": "150"}]},
        )
        assert not result.denials, result.denials
        assert script.positions == [D(1), D(-1)]

    def test_config_errors(self) -> None:
        assert problems({"type": "max_exposure"}) == [
            "config.guards[0]: set max_gross, max_net or both"
        ]
        assert problems({"type": "max_exposure", "max_gross": "-1"}) == [
            "config.guards[0].max_gross: must be > 0, got -1"
        ]
        assert problems({"type": "max_exposure", "max_net": "0"}) == [
            "config.guards[0].max_net: must be > 0, got 0"
        ]


# -- leverage ------------------------------------------------------------------------------


class TestLeverage:
    check = staticmethod(g.leverage(g.LeverageConfig(max_leverage=D(2))))

    def test_allows_within_the_leverage(self) -> None:
        assert self.check(intent("buy", 20), FakeCtx(prices={"X": 100}, equity="1000")) is None

    def test_reduces_or_denies_above_it(self) -> None:
        assert self.check(intent("buy", 25), FakeCtx(prices={"X": 100}, equity="1000")) == Reduce(
            D(20), "too_high", "reduced to 20: leverage above 2x: gross exposure 2500.00 > 2000"
        )
        full = FakeCtx(prices={"X": 100}, equity="1000", positions={"X": 20})
        assert self.check(intent("buy", 1), full) == Deny(
            "too_high", "leverage above 2x: gross exposure 2100.00 > 2000"
        )

    def test_no_equity_only_lets_reducing_intents_through(self) -> None:
        broke = FakeCtx(prices={"X": 100}, equity="0", positions={"X": 5})
        assert self.check(intent("buy", 1), broke) == Deny("no_equity", "equity is 0")
        assert self.check(intent("sell", 2), broke) is None
        assert self.check(intent("sell", 1), FakeCtx(prices={"X": 100}, equity="-5")) == Deny(
            "no_equity", "equity is -5"
        )

    def test_end_to_end(self) -> None:
        # equity 10000 and 2x: at most 20000 of gross exposure, 200 at 100
        result, script = run(
            {0: [buy(250)], 2: [buy(1)]},
            {"X": flat(100, 100, 100, 100)},
            config={**cash("10000"), "guards": [{"type": "leverage", "max_leverage": "2"}]},
        )
        assert reductions(result) == [("leverage.too_high", D(250), D(200))]
        assert denials(result) == [
            (
                "leverage.too_high",
                "buy",
                D(1),
                "leverage above 2x: gross exposure 20100.00 > 20000.00",
            )
        ]
        assert script.positions == [D(200)]

    def test_config_errors(self) -> None:
        assert problems({"type": "leverage", "max_leverage": "0"}) == [
            "config.guards[0].max_leverage: must be > 0, got 0"
        ]


# -- slippage ------------------------------------------------------------------------------


def bar(high: int = 10100, low: int = 9900, close: int = 10000, volume: float = 10.0) -> Any:
    """A bar in ticks of 0.01: by default range 2/100 = 200 bps."""
    return SimpleNamespace(index=3, ts=0, high=high, low=low, close=close, volume=volume)


class TestSlippage:
    def test_allows_a_cheap_order_and_any_limit_order(self) -> None:
        check = g.slippage(g.SlippageConfig(max_bps=150.0))
        # half the range (100 bps) + range x 1/10 of the volume (20 bps) = 120 bps
        assert check(intent("buy", 1), FakeCtx(bar=bar())) is None
        assert check(intent("buy", 1000, limit="100"), FakeCtx(bar=bar())) is None
        assert check(intent("buy", 1000, limit="100"), FakeCtx()) is None  # no bar needed

    def test_denies_a_costly_order(self) -> None:
        check = g.slippage(g.SlippageConfig(max_bps=100.0))
        assert check(intent("buy", 1), FakeCtx(bar=bar())) == Deny(
            "too_costly", "estimated impact 120.0 bps > 100.0"
        )
        # stop orders are estimated too; the volume share is capped at 1: 100 + 200
        assert check(intent("sell", 50, stop="99"), FakeCtx(bar=bar())) == Deny(
            "too_costly", "estimated impact 300.0 bps > 100.0"
        )
        assert check(intent("buy", 1), FakeCtx(bar=bar(volume=0.0))) == Deny(
            "too_costly", "estimated impact 300.0 bps > 100.0"
        )
        assert check(intent("buy", 1), FakeCtx()) == Deny("no_price", "no bar to estimate from")

    def test_uses_the_quoted_spread_when_the_feed_has_one(self) -> None:
        quoted = {"bid": 99.9, "ask": 100.1}  # half spread 0.1 / 100 = 10 bps
        assert (
            g.slippage(g.SlippageConfig(max_bps=35.0))(
                intent("buy", 1), FakeCtx(bar=bar(), columns=quoted)
            )
            is None
        )
        assert g.slippage(g.SlippageConfig(max_bps=25.0))(
            intent("buy", 1), FakeCtx(bar=bar(), columns=quoted)
        ) == Deny("too_costly", "estimated impact 30.0 bps > 25.0")

    def test_end_to_end(self) -> None:
        rows = [(100.0, 101.0, 99.0, 100.0, 10.0)] * 3
        result, script = run(
            {0: [buy(1), buy(5), buy(5, limit="101")]},
            {"X": rows},
            config={"guards": [{"type": "slippage", "max_bps": 150}]},
        )
        assert denials(result) == [
            ("slippage.too_costly", "buy", D(5), "estimated impact 200.0 bps > 150.0")
        ]
        assert [o is None for o in script.orders] == [False, True, False]
        # with a 2 bps quoted spread the same order costs 1 + 100 bps
        result, _ = run(
            {0: [buy(5)]},
            {"X": rows},
            extra={"X": {"bid": [99.99] * 3, "ask": [100.01] * 3}},
            config={"guards": [{"type": "slippage", "max_bps": 150}]},
        )
        assert not result.denials and len(result.fill_records) == 1

    def test_config_errors(self) -> None:
        assert problems({"type": "slippage", "max_bps": 0}) == [
            "config.guards[0].max_bps: must be > 0, got 0.0"
        ]
        assert problems({"type": "slippage"}) == [
            "config.guards[0].max_bps: required key is missing"
        ]


# -- liquidation_distance ------------------------------------------------------------------


def perp_book(cash: str = "10000") -> tuple[Portfolio, FakeCtx]:
    portfolio = Portfolio(D(cash), {"P": PERP})
    return portfolio, FakeCtx(instruments=(PERP,), prices={"P": 100}, portfolio=portfolio)


class TestLiquidationDistance:
    def test_allows_far_from_liquidation_and_spot_and_reducing_intents(self) -> None:
        # flat, 10000 of equity: long 500 at 100 liquidates at
        # (500*100 - 10000) / (500 - 0.05*500) = 40000/475 = 84.21, 15.79% away
        portfolio, ctx = perp_book()
        check = g.liquidation_distance(g.LiquidationDistanceConfig(min_distance=0.15))
        assert check(intent("buy", 500, "P"), ctx) is None
        assert ctx.liquidation_calls == [("P", (D(500), D(100)))]
        # a small long is never liquidated (no positive price)
        assert check(intent("buy", 50, "P"), ctx) is None
        assert check(intent("buy", 10**6), FakeCtx(prices={"X": 100})) is None  # spot
        from engine import Fill

        portfolio.apply_fill(Fill("c", "s", "P", Side.BUY, D(500), D(100), D(0), 0))
        strict = g.liquidation_distance(g.LiquidationDistanceConfig(min_distance=0.99))
        assert strict(intent("sell", 100, "P"), ctx) is None  # reducing

    def test_denies_too_close_to_liquidation(self) -> None:
        _, ctx = perp_book()
        check = g.liquidation_distance(g.LiquidationDistanceConfig(min_distance=0.16))
        assert check(intent("buy", 500, "P"), ctx) == Deny(
            "too_close", "liquidation at 84.21 would be 15.79% away (min 16.00%)"
        )
        # short 500 at 100: (-50000 - 10000) / (-500 - 25) = 114.29, 14.29% away
        check = g.liquidation_distance(g.LiquidationDistanceConfig(min_distance=0.15))
        assert check(intent("sell", 500, "P"), ctx) == Deny(
            "too_close", "liquidation at 114.29 would be 14.29% away (min 15.00%)"
        )
        # valued at the limit price: long 500 at 90 -> (45000 - 10000) / 475 = 73.68, 18.13%
        assert check(intent("buy", 500, "P", limit="90"), ctx) is None
        no_price = FakeCtx(instruments=(PERP,), portfolio=Portfolio(D(1), {"P": PERP}))
        assert check(intent("buy", 1, "P"), no_price) == Deny(
            "no_price", "no price to value the order"
        )

    def test_config_errors(self) -> None:
        assert problems({"type": "liquidation_distance", "min_distance": 2}) == [
            "config.guards[0].min_distance: must be between 0.0 and 1.0, got 2.0"
        ]
        assert problems({"type": "liquidation_distance", "min_distance": -0.1}) == [
            "config.guards[0].min_distance: must be between 0.0 and 1.0, got -0.1"
        ]


# -- perpetuals end to end: leverage and liquidation_distance ------------------------------

PERP_CONFIG = {
    "symbol": "BTC-PERP",
    "tick_size": "0.1",
    "kind": "perpetual",
    "initial_margin": "0.2",
    "maintenance_margin": "0.05",
    "funding_interval": "8h",
    "funding_rate": "0.0001",
}


def perp_run(
    steps: dict[int, list[Step]], rows: list[Row], guards: list[dict[str, Any]]
) -> tuple[Any, Script]:
    return run(
        steps,
        {"BTC-PERP": rows},
        instruments=[PERP_CONFIG],
        config={**cash("10000"), "guards": guards},
    )


class TestPerpetualGuardsEndToEnd:
    def test_leverage_reduces_then_liquidation_distance_checks_the_reduced_order(self) -> None:
        guards = [
            {"type": "leverage", "max_leverage": "3"},
            {"type": "liquidation_distance", "min_distance": 0.25},
        ]
        # leverage 3 on 10000: 30000 of notional, 300 at 100. Long 300 at 100 then
        # liquidates at (30000 - 10000) / (300 * 0.95) = 20000/285 = 70.18 (29.82% away).
        result, script = perp_run({0: [buy(500)], 2: [buy(10)]}, flat(100, 100, 100, 100), guards)
        assert reductions(result) == [("leverage.too_high", D(500), D(300))]
        assert denials(result) == [
            (
                "leverage.too_high",
                "buy",
                D(10),
                "leverage above 3x: gross exposure 31000.00 > 30000.0",
            )
        ]
        assert script.positions == [D(300)]
        # perpetual: cash moves only by realised PnL and fees
        assert result.portfolio.cash == D(10000)
        liq = result.portfolio.liquidation_price("BTC-PERP", result.final_marks)
        assert liq == D(20000) / D(285)
        # at a 30% minimum distance the reduced order is too close
        guards[1]["min_distance"] = 0.3
        result, script = perp_run({0: [buy(500)], 1: [buy(200)]}, flat(100, 100, 100), guards)
        assert reductions(result) == [("leverage.too_high", D(500), D(300))]
        assert denials(result) == [
            (
                "liquidation_distance.too_close",
                "buy",
                D(300),
                "liquidation at 70.18 would be 29.82% away (min 30.00%)",
            )
        ]
        # 200 long liquidates at (20000 - 10000) / 190 = 52.63, 47.37% away: allowed
        assert script.positions == [D(200)]

    def test_liquidation_distance_and_the_liquidation_at_the_computed_price(self) -> None:
        guards = [{"type": "liquidation_distance", "min_distance": 0.15}]
        rows = [*flat(100, 100, 100), (90.0, 90.0, 84.0, 85.0), *flat(85)]
        result, script = perp_run({0: [buy(500)], 2: [buy(100)]}, rows, guards)
        # 500 long: liquidation at 40000/475 = 84.21 (15.79% away) is allowed;
        # 600 long: (60000 - 10000) / 570 = 87.72 (12.28% away) is not; the guard
        # denies before the venue would reject it for margin (12000 > 10000).
        assert denials(result) == [
            (
                "liquidation_distance.too_close",
                "buy",
                D(100),
                "liquidation at 87.72 would be 12.28% away (min 15.00%)",
            )
        ]
        assert script.positions[0] == D(500)
        assert result.portfolio.position("BTC-PERP") == 0
        (liq,) = result.liquidations
        assert liq.liquidation_price == D(40000) / D(475)
        # the first 0.1 tick at which the long is liquidatable is 84.2 (at or below
        # 84.21); the bar opens above it and trades down to 84
        assert (liq.side, liq.quantity, liq.price, liq.ts) == ("sell", D(500), D("84.2"), 3 * MIN)
        assert result.portfolio.cash == D(10000) + (D("84.2") - D(100)) * 500


# -- config problems are reported together, by path ------------------------------------------


def test_every_guard_problem_is_reported_at_once() -> None:
    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic"},
        "strategies": [{"type": "sma_crossover"}],
        "guards": [
            {"type": "max_position", "limit": "-1"},
            {"type": "order_rate", "max_orders": 0, "per": "soon"},
            {"type": "kill_switch"},
        ],
    }
    with pytest.raises(ConfigError) as err:
        Engine.from_config(cfg, settings=PluginSettings(builtin_only=True)).check()
    assert sorted(str(p) for p in err.value.problems) == [
        "config.guards[0].limit: must be > 0, got -1",
        "config.guards[1].max_orders: must be > 0, got 0",
        "config.guards[1].per: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'soon'",
    ]


def test_guards_are_registered_cheap_stops_first() -> None:
    records = {r.name: r for r in g.engine_guards()}
    assert set(records) == {
        "kill_switch",
        "daily_loss",
        "max_drawdown",
        "order_rate",
        "max_open_orders",
        "max_order_notional",
        "max_position",
        "strategy_budget",
        "max_exposure",
        "leverage",
        "liquidation_distance",
        "slippage",
    }
    assert records["kill_switch"].priority < records["daily_loss"].priority
    assert records["order_rate"].priority < records["max_position"].priority
    assert records["max_position"].priority < records["max_exposure"].priority
    assert records["leverage"].priority < records["liquidation_distance"].priority


# -- properties --------------------------------------------------------------------------------


class SpyBroker(SimulatedBroker):
    """The simulated venue, recording every order that reaches it."""

    def __init__(self) -> None:
        super().__init__(SimulatedConfig())
        self.received: list[str] = []

    def submit(self, order: Any) -> None:
        self.received.append(order.client_id)
        super().submit(order)


def spy_plugin(spy: SpyBroker) -> Any:
    class P:
        @hookimpl
        def engine_brokers(self) -> list[Broker]:
            return [Broker(name="spy", factory=lambda _: spy)]

    return P()


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 6)), min_size=1, max_size=3
)
PLANS = st.lists(ACTIONS, min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(1, 5),
    plan=PLANS,
    closes=st.lists(st.integers(90, 110), min_size=7, max_size=7),
)
def test_denied_intents_never_reach_the_broker_and_positions_stay_within_the_limit(
    limit: int, plan: list[list[tuple[str, int]]], closes: list[int]
) -> None:
    spy = SpyBroker()
    steps = {k: [(side, (qty,), {}) for side, qty in actions] for k, actions in enumerate(plan)}
    result, script = run(
        steps,
        {"X": flat(*closes)},
        config={
            "broker": {"type": "spy"},
            "guards": [{"type": "max_position", "limit": str(limit)}],
        },
        plugins=(spy_plugin(spy),),
    )
    wanted = [(side, D(qty)) for actions in plan for side, qty in actions]
    assert len(script.orders) == len(wanted)
    filled_ids = {f.client_id for f in result.fill_records}
    denied = set()
    for n, ((side, qty), returned) in enumerate(zip(wanted, script.orders, strict=True), 1):
        order = result.orders[f"script-X-{n}"]
        assert order.intent.side.value == side
        if returned is None:
            assert order.state is OrderState.DENIED
            assert order.client_id not in filled_ids
            denied.add(order.client_id)
        else:
            assert returned is order
            assert order.state in (OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.FILLED)
            assert 0 < order.intent.quantity <= qty
    assert spy.received == [o.client_id for o in script.orders if o is not None]
    assert not denied & set(spy.received)
    assert filled_ids <= set(spy.received)
    assert sorted(d.client_id for d in result.denials) == sorted(denied)
    assert {d.reason for d in result.denials} <= {"max_position.limit"}
    # after every fill the position is within the limit (seen by on_fill, and replayed)
    assert all(abs(p) <= limit for p in script.positions)
    held = D(0)
    for f in result.fill_records:
        held += f.quantity if f.side is Side.BUY else -f.quantity
        assert abs(held) <= limit


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_gross=st.sampled_from([100, 250, 500, 800]),
    limit=st.none() | st.integers(1, 6),
    plan=PLANS,
)
def test_gross_exposure_never_exceeds_the_limit_after_a_fill(
    max_gross: int, limit: int | None, plan: list[list[tuple[str, int]]]
) -> None:
    guards: list[dict[str, Any]] = [{"type": "max_exposure", "max_gross": str(max_gross)}]
    if limit is not None:
        guards.append({"type": "max_position", "limit": str(limit)})
    steps = {k: [(side, (qty,), {}) for side, qty in actions] for k, actions in enumerate(plan)}
    result, script = run(steps, {"X": flat(*[100] * 7)}, config={"guards": guards})
    assert len(script.positions) == len(result.fill_records)
    for held in script.positions:
        assert abs(held) * 100 <= max_gross
        if limit is not None:
            assert abs(held) <= limit


class TestOpenOrdersOnTheOtherSide:
    """An opposite open order may never fill: it must not make room for more."""

    def test_a_resting_sell_does_not_let_a_buy_past_the_position_limit(self) -> None:
        # long 2 (the limit); a sell limit far away rests; then a buy of 4 is tried
        steps = {0: [buy(2)], 2: [sell(2, limit="500")], 3: [buy(4)]}
        result, script = run(
            steps,
            {"X": flat(*[100.0] * 6)},
            config={"guards": [{"type": "max_position", "limit": "2"}]},
        )
        assert script.orders[2] is None
        assert result.denials[-1].reason == "max_position.limit"
        assert max(abs(p) for p in script.positions) <= 2

    def test_a_resting_sell_does_not_make_room_under_max_exposure(self) -> None:
        steps = {0: [buy(2)], 2: [sell(2, limit="500")], 3: [buy(1)]}
        result, script = run(
            steps,
            {"X": flat(*[100.0] * 6)},
            config={"guards": [{"type": "max_exposure", "max_gross": "250"}]},
        )
        assert script.orders[2] is None and result.denials[-1].reason == "max_exposure.limit"

    def test_same_side_open_orders_still_count(self) -> None:
        steps = {0: [buy(1, limit="50")], 1: [buy(2)]}  # the resting buy could fill
        result, _ = run(
            steps,
            {"X": flat(*[100.0] * 4)},
            config={"guards": [{"type": "max_position", "limit": "2"}]},
        )
        reduced = result.reductions[0]
        assert (reduced.before, reduced.after) == (Decimal(2), Decimal(1))
