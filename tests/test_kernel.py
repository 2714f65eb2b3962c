"""The kernel: order pipeline decisions, execution sink, broker fills, event ordering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest
from scripted import Script, buy, sell

from engine import (
    BarSeries,
    Deny,
    Engine,
    ExecutionError,
    Feed,
    Guard,
    Instrument,
    OrderState,
    PluginSettings,
    Reduce,
    Strategy,
    ValidationRule,
    hookimpl,
)

D = Decimal


class Bars:
    """A feed serving fixed OHLC bars (tuples of floats) per symbol."""

    def __init__(
        self, data: dict[str, list[tuple[float, float, float, float]]], start: int = 0
    ) -> None:
        self.data = data
        self.start = start

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        rows = self.data[instrument.symbol]
        ts = [self.start + 60_000_000_000 * k for k in range(len(rows))]
        cols = list(zip(*rows, strict=True))
        return BarSeries.from_arrays(instrument, ts, *cols, [1.0] * len(rows))


def run(
    steps: dict[int, list[Any]],
    bars: dict[str, list[tuple[float, float, float, float]]],
    *,
    extra: Any = None,
    config: dict[str, Any] | None = None,
) -> tuple[Any, Script]:
    script = Script(steps)

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="bars", factory=lambda _: Bars(bars))]

    cfg = {
        "instruments": [{"symbol": s, "tick_size": "0.01"} for s in bars],
        "feed": {"type": "bars"},
        "strategies": [{"type": "script"}],
        **(config or {}),
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    if extra is not None:
        eng.register(extra, "extra")
    return eng.backtest_sync(), script


FLAT = [
    (100.0, 101.0, 99.0, 100.0),
    (102.0, 104.0, 101.0, 103.0),
    (98.0, 99.0, 95.0, 96.0),
    (97.0, 99.0, 96.0, 98.0),
]


class TestSimulatedBroker:
    def test_market_order_fills_at_the_next_open(self) -> None:
        result, script = run({0: [buy()]}, {"X": FLAT})
        (f,) = result.fill_records
        assert f.price == D("102.00") and f.ts == 60_000_000_000
        assert script.fills == [f]

    def test_limit_buy_fills_when_the_range_reaches_it_at_the_limit_or_better(self) -> None:
        result, _ = run({0: [buy(limit="97")]}, {"X": FLAT})
        (f,) = result.fill_records
        assert (f.price, f.ts) == (D("97.00"), 120_000_000_000)  # bar 2 low 95 <= 97, open 98 above
        result, _ = run({1: [buy(limit="99")]}, {"X": FLAT})
        assert result.fill_records[0].price == D("98.00")  # bar 2 gaps below: filled at the open

    def test_stop_sell_triggers_at_the_stop_or_at_the_open_on_a_gap(self) -> None:
        result, _ = run({0: [buy()], 1: [sell(stop="96.5")]}, {"X": FLAT})
        assert [f.price for f in result.fill_records] == [
            D("102.00"),
            D("96.50"),
        ]  # low 95 reaches it
        result, _ = run({0: [buy()], 1: [sell(stop="99")]}, {"X": FLAT})
        assert [f.price for f in result.fill_records] == [
            D("102.00"),
            D("98.00"),
        ]  # opens below: the open

    def test_fees_and_slippage(self) -> None:
        cfg = {"broker": {"type": "simulated", "fee_bps": "10", "slippage_bps": "5"}}
        result, _ = run({0: [buy(2)], 1: [sell(2)]}, {"X": FLAT}, config=cfg)
        entry, exit_ = result.fill_records
        assert entry.price == D("102.06")  # 102 * 1.0005 = 102.051, rounded up to the tick
        assert exit_.price == D("97.95")  # 98 * 0.9995 = 97.951, rounded down
        assert entry.fee == D("102.06") * 2 * D("0.001")
        (trade,) = result.trade_records
        assert trade.pnl == (D("97.95") - D("102.06")) * 2 - entry.fee - exit_.fee

    def test_unfilled_orders_stay_open(self) -> None:
        result, script = run({0: [buy(limit="50")]}, {"X": FLAT})
        (order,) = script.orders
        assert order.state is OrderState.ACCEPTED and not result.fill_records

    def test_cancel_removes_a_resting_order(self) -> None:
        result, script = run({0: [buy(limit="50")], 2: [("cancel_open", (), {})]}, {"X": FLAT})
        order = script.orders[0]
        assert order.state is OrderState.CANCELED
        assert [s for _, s, _ in order.history][-2:] == [
            OrderState.PENDING_CANCEL,
            OrderState.CANCELED,
        ]
        assert not result.fill_records and result.summary()["orders"]["canceled"] == 1


def max_qty_guard(limit: str) -> Any:
    @attrs.frozen
    class Cfg:
        limit: Decimal

    def factory(cfg: Cfg) -> Any:
        def check(intent: Any, ctx: Any) -> Any:
            if intent.quantity > cfg.limit:
                return Reduce(cfg.limit, "capped", f"capped at {cfg.limit}")
            return None

        return check

    class P:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [Guard(name="max_qty", factory=factory, config_type=Cfg)]

    return P()


class TestPipeline:
    def test_denial_is_an_event_and_never_reaches_the_broker(self) -> None:
        class NoSells:
            @hookimpl
            def engine_validation_rules(self) -> list[ValidationRule]:
                def check(intent: Any, ctx: Any) -> Any:
                    return (
                        Deny("no_sells", "sells are off") if intent.side.value == "sell" else None
                    )

                return [ValidationRule(name="no_sells", factory=lambda _: check)]

        result, script = run(
            {0: [buy()], 1: [sell()]},
            {"X": FLAT},
            extra=NoSells(),
            config={"validation_rules": [{"type": "no_sells"}]},
        )
        assert script.orders[1] is None
        assert len(result.fill_records) == 1
        (denial,) = result.denials
        assert (denial.stage, denial.reason, denial.plugin, denial.message) == (
            "validation",
            "no_sells.no_sells",
            "extra",
            "sells are off",
        )
        assert result.denials_by_reason == {"no_sells.no_sells": 1}
        assert result.summary()["orders"]["denied"] == 1

    def test_guard_reduces_quantity(self) -> None:
        result, _ = run(
            {0: [buy(5)]},
            {"X": FLAT},
            extra=max_qty_guard("2"),
            config={"guards": [{"type": "max_qty", "limit": "2"}]},
        )
        assert result.fill_records[0].quantity == D(2)
        (r,) = result.reductions
        assert (r.reason, r.before, r.after) == ("max_qty.capped", D(5), D(2))

    def test_guard_config_errors_are_reported_by_path(self) -> None:
        eng = Engine.from_config(
            {
                "instruments": [{"symbol": "X", "tick_size": "0.01"}],
                "feed": {"type": "synthetic"},
                "strategies": [{"type": "sma_crossover"}],
                "guards": [{"type": "max_qty", "limit": "lots"}],
            },
            settings=PluginSettings(builtin_only=True),
        )
        eng.register(max_qty_guard("1"), "g")
        with pytest.raises(Exception) as err:
            eng.check()
        assert [str(p) for p in err.value.problems] == [  # type: ignore[attr-defined]
            "config.guards[0].limit: expected a decimal number, got 'lots'"
        ]

    def test_a_raising_check_fails_closed(self) -> None:
        class Broken:
            @hookimpl
            def engine_guards(self) -> list[Guard]:
                def check(intent: Any, ctx: Any) -> Any:
                    raise ZeroDivisionError("oops")

                return [Guard(name="broken", factory=lambda _: check)]

        result, _ = run(
            {0: [buy()]}, {"X": FLAT}, extra=Broken(), config={"guards": [{"type": "broken"}]}
        )
        assert not result.fill_records
        assert result.denials[0].reason == "broken.error"
        assert "ZeroDivisionError: oops" in result.denials[0].message

    def test_checks_see_position_price_and_time(self) -> None:
        seen: list[tuple[Any, ...]] = []

        class Spy:
            @hookimpl
            def engine_filters(self) -> list[Any]:
                from engine import Filter

                def check(intent: Any, ctx: Any) -> None:
                    seen.append(
                        (ctx.now, ctx.position("X"), ctx.last_price("X"), len(ctx.open_orders()))
                    )

                return [Filter(name="spy", factory=lambda _: check)]

        run(
            {0: [buy()], 2: [sell()]},
            {"X": FLAT},
            extra=Spy(),
            config={"filters": [{"type": "spy"}]},
        )
        assert seen == [(0, D(0), D("100.00"), 0), (120_000_000_000, D(1), D("96.00"), 0)]


def test_multi_instrument_bars_are_merged_by_time_deterministically() -> None:
    class Two(Bars):
        def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
            offset = {"A": 0, "B": 30_000_000_000}[instrument.symbol]
            s = BarSeries.from_prices(instrument, [100.0, 101.0, 102.0], start_ns=offset)
            return s

    script = Script({})

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="two", factory=lambda _: Two({}))]

    eng = Engine.from_config(
        {
            "instruments": [
                {"symbol": "A", "tick_size": "0.01"},
                {"symbol": "B", "tick_size": "0.01"},
            ],
            "feed": {"type": "two"},
            "strategies": [
                {"type": "script", "instrument": "A", "id": "a"},
                {"type": "script", "instrument": "B", "id": "b"},
            ],
        },
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(Plugin(), "p")
    result = eng.backtest_sync()
    assert result.bars == 6
    assert [(s, i) for s, i, _ in script.bars] == [
        ("A", 0),
        ("B", 0),
        ("A", 1),
        ("B", 1),
        ("A", 2),
        ("B", 2),
    ]
    assert [t for _, _, t in script.bars] == sorted(t for _, _, t in script.bars)


def test_an_async_broker_cannot_run_a_backtest() -> None:
    from engine import Broker

    class AsyncVenue:
        def __init__(self, _: Any) -> None:
            pass

        def bind(self, sink: Any) -> None:
            pass

        async def submit(self, order: Any) -> None:
            pass

        def cancel(self, client_id: str) -> None:
            pass

    class P:
        @hookimpl
        def engine_brokers(self) -> list[Broker]:
            return [Broker(name="async-venue", factory=AsyncVenue, live=True)]

    with pytest.raises(ExecutionError, match="an async broker cannot run in a backtest"):
        run({0: [buy()]}, {"X": FLAT}, extra=P(), config={"broker": {"type": "async-venue"}})


def test_client_order_ids_are_deterministic() -> None:
    _, script = run({0: [buy(), sell()], 1: [buy()]}, {"X": FLAT})
    assert [o.client_id for o in script.orders] == ["script-X-1", "script-X-2", "script-X-3"]


def test_checks_run_in_record_priority_order_not_config_order() -> None:
    calls: list[str] = []

    def make(name: str) -> Any:
        def factory(_: Any) -> Any:
            def check(intent: Any, ctx: Any) -> None:
                calls.append(name)

            return check

        return factory

    class P:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [
                Guard(name="late", factory=make("late"), priority=50),
                Guard(name="early", factory=make("early"), priority=-50),
                Guard(name="middle", factory=make("middle")),
            ]

    config = {"guards": [{"type": "late"}, {"type": "middle"}, {"type": "early"}, {"type": "late"}]}
    run({0: [buy()]}, {"X": FLAT}, extra=P(), config=config)
    assert calls == ["early", "middle", "late", "late"]


def test_on_order_sees_every_state_including_fills() -> None:
    seen: list[str] = []

    class Watch(Script):
        def on_order(self, order: Any) -> None:
            seen.append(order.state.value)

    script = Watch({0: [buy()]})

    class P:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="watch", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="bars", factory=lambda _: Bars({"X": FLAT}))]

    eng = Engine.from_config(
        {
            "instruments": [{"symbol": "X", "tick_size": "0.01"}],
            "feed": {"type": "bars"},
            "strategies": [{"type": "watch"}],
        },
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(P(), "p")
    eng.backtest_sync()
    assert seen == ["submitted", "accepted", "filled"]


def test_async_strategy_callbacks_and_checks_are_refused() -> None:
    from engine import PluginError

    class AsyncBars(Script):
        async def on_bar(self, bar: Any) -> None:  # type: ignore[override]
            pass

    class P:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="async", factory=lambda _: AsyncBars({}))]

        @hookimpl
        def engine_guards(self) -> list[Guard]:
            async def check(intent: Any, ctx: Any) -> None:
                return None

            return [Guard(name="async-guard", factory=lambda _: check)]

    with pytest.raises(PluginError, match="on_bar must be synchronous"):
        run({}, {"X": FLAT}, extra=P(), config={"strategies": [{"type": "async"}]})
    with pytest.raises(PluginError, match=r"must build a plain \(synchronous\) callable"):
        run({}, {"X": FLAT}, extra=P(), config={"guards": [{"type": "async-guard"}]})


class DoubleAck:
    """A faulty venue: acknowledges every order twice."""

    def __init__(self, _: Any) -> None:
        from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig

        self.inner = SimulatedBroker(SimulatedConfig())

    def bind(self, sink: Any) -> None:
        self.sink = sink
        self.inner.bind(sink)

    def submit(self, order: Any) -> None:
        self.inner.submit(order)
        self.sink.order_accepted(order.client_id)  # ACCEPTED -> ACCEPTED: illegal

    def cancel(self, client_id: str) -> None:
        self.inner.cancel(client_id)

    def on_bar(self, instrument: Any, bar: Any) -> None:
        self.inner.on_bar(instrument, bar)

    def resting(self, symbol: str) -> Any:
        return self.inner.resting(symbol)


def double_ack() -> Any:
    from engine import Broker

    class P:
        @hookimpl
        def engine_brokers(self) -> list[Broker]:
            return [Broker(name="double-ack", factory=DoubleAck)]

    return P()


def test_illegal_transitions_raise_in_strict_mode() -> None:
    from engine import IllegalTransition

    with pytest.raises(IllegalTransition, match="illegal order transition ACCEPTED -> ACCEPTED"):
        run(
            {0: [buy()]}, {"X": FLAT}, extra=double_ack(), config={"broker": {"type": "double-ack"}}
        )


def test_illegal_transitions_are_counted_and_logged_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loguru import logger

    monkeypatch.setenv("ENGINE_STRICT_TRANSITIONS", "0")
    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    try:
        result, _ = run(
            {0: [buy()]}, {"X": FLAT}, extra=double_ack(), config={"broker": {"type": "double-ack"}}
        )
    finally:
        logger.remove(sink)
    assert result.summary()["illegal_transitions"] == 1
    assert len(result.fill_records) == 1  # the order still fills: nothing is lost
    assert any("illegal order transition ACCEPTED -> ACCEPTED" in line for line in lines)


def test_a_runtime_guard_that_raises_halts_trading() -> None:
    from engine import RuntimeGuard

    def broken(_: Any) -> Any:
        def evaluate(ctx: Any) -> None:
            raise ZeroDivisionError("oops")

        return evaluate

    class P:
        @hookimpl
        def engine_runtime_guards(self) -> list[RuntimeGuard]:
            return [RuntimeGuard(name="broken", factory=broken)]

    result, script = run(
        {1: [buy()]},
        {"X": FLAT},
        extra=P(),
        config={"runtime_guards": [{"type": "broken", "cadence": "1m"}]},
    )
    (change,) = result.state_changes
    assert (
        change.state.value == "halted" and change.reason == "broken.error: ZeroDivisionError: oops"
    )
    assert script.orders == [None] and result.denials[0].reason == "trading_state.halted"


def test_cancels_bypass_the_pipeline() -> None:
    class DenyAll:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            def deny_after_the_first(intent: Any, ctx: Any) -> Any:
                return Deny("no", "no more orders") if ctx.open_order_count() else None

            return [Guard(name="deny_more", factory=lambda _: deny_after_the_first)]

    result, script = run(
        {0: [buy(limit="50")], 1: [buy()], 2: [("cancel_open", (), {})]},
        {"X": FLAT},
        extra=DenyAll(),
        config={"guards": [{"type": "deny_more"}]},
    )
    first, second = script.orders
    assert second is None and result.denials[0].reason == "deny_more.no"
    assert first.state is OrderState.CANCELED  # the cancel went through regardless


class Misreporting:
    """A venue that never acknowledges, and reports each fill twice (same fill id),
    then once more under a new id: a duplicate and an overfill."""

    def __init__(self, _: Any) -> None:
        self.pending: list[Any] = []

    def bind(self, sink: Any) -> None:
        self.sink = sink

    def submit(self, order: Any) -> None:
        self.pending.append(order)  # no ack

    def cancel(self, client_id: str) -> None:
        pass

    def on_bar(self, instrument: Any, bar: Any) -> None:
        while self.pending:
            order = self.pending.pop()
            qty, price = order.intent.quantity, instrument.price(bar.open)
            self.sink.order_filled(order.client_id, qty, price, D(0), fill_id="F1")
            self.sink.order_filled(order.client_id, qty, price, D(0), fill_id="F1")
            self.sink.order_filled(order.client_id, qty, price, D(0), fill_id="F2")


def misreporting() -> Any:
    from engine import Broker

    class P:
        @hookimpl
        def engine_brokers(self) -> list[Broker]:
            return [Broker(name="misreporting", factory=Misreporting)]

    return P()


def test_duplicate_and_overfilling_reports_are_ignored_and_counted() -> None:
    result, script = run(
        {0: [buy()]}, {"X": FLAT}, extra=misreporting(), config={"broker": {"type": "misreporting"}}
    )
    (fill,) = result.fill_records
    assert fill.fill_id == "F1" and result.portfolio.positions["X"].quantity == D(1)
    (order,) = script.orders
    assert [s.value for _, s, _ in order.history] == ["submitted", "accepted", "filled"]
    assert order.history[1][2] == "implied by a fill"  # the missing ack
    counts = {
        r.label("reason"): r.value for r in result.metrics if r.name == "engine_ignored_fills_total"
    }
    assert counts == {"duplicate": 1.0, "overfill": 1.0}


def test_generated_fill_ids_are_unique_per_order() -> None:
    result, _ = run({0: [buy(2)], 1: [sell(1)], 2: [sell(1)]}, {"X": FLAT})
    ids = [f.fill_id for f in result.fill_records]
    assert len(set(ids)) == 3 and all(i for i in ids)


def test_a_re_derived_intent_returns_the_known_order_and_sends_nothing() -> None:
    import asyncio

    from engine import OrderIntent, Side

    eng = Engine.from_config(
        {
            "instruments": [{"symbol": "X", "tick_size": "0.01"}],
            "feed": {"type": "synthetic", "bars": 10},
            "strategies": [{"type": "sma_crossover"}],
        },
        settings=PluginSettings(builtin_only=True),
    )
    kernel: Any = asyncio.run(eng._build("backtest")).kernel
    sent: list[str] = []
    kernel._broker_submit = lambda order: sent.append(order.client_id)
    intent = OrderIntent("s", "X", Side.BUY, D(1))
    kernel.adopt_order("s-X-1", intent)  # as a journal replay does
    kernel._seq.clear()  # ... and as a restart resets the sequence to the last whole bar
    assert kernel.submit(intent) is kernel.orders["s-X-1"]
    assert sent == []
    assert kernel.submit(intent).client_id == "s-X-2" and sent == ["s-X-2"]
