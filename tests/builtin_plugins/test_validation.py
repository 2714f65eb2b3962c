"""Tests of the built-in ``validation`` plugin (pipeline stage 2).

Each rule is tested at unit level (``factory(config)`` gives ``check(intent, ctx)``,
driven with :class:`FakeCtx`) and end to end through ``Engine.backtest_sync()``
with a scripted strategy, where a denial is recorded as ``<rule>.<reason>`` and
never reaches the broker.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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
from engine.builtins import validation as V

D = Decimal
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MIN = 60_000_000_000

X = Instrument("X", D("0.01"), D("0.001"))


def intent(
    side: Side = Side.BUY,
    qty: str = "1",
    symbol: str = "X",
    *,
    limit: str | None = None,
    stop: str | None = None,
    **kw: Any,
) -> OrderIntent:
    kind = OrderType.LIMIT if limit else OrderType.STOP if stop else OrderType.MARKET
    return OrderIntent(
        "s",
        symbol,
        side,
        D(qty),
        kind,
        None if limit is None else D(limit),
        None if stop is None else D(stop),
        **kw,
    )


class FakeCtx:
    """What the validation rules read: instruments, last prices, and whether an
    intent reduces the position (fixed here; the kernel's logic is tested end to end)."""

    def __init__(
        self,
        *instruments: Instrument,
        last: Mapping[str, Decimal | None] | None = None,
        reducing: bool = False,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments or (X,)}
        self.last = last or {}
        self.reducing = reducing
        self.asked_reducing: list[OrderIntent] = []

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def last_price(self, symbol: str) -> Decimal | None:
        return self.last.get(symbol)

    def is_reducing(self, intent: OrderIntent) -> bool:
        self.asked_reducing.append(intent)
        return self.reducing


# -- positive_values ----------------------------------------------------------------------


class TestPositiveValues:
    check = staticmethod(V.positive_values(None))

    @pytest.mark.parametrize(
        "i",
        [intent(), intent(qty="0.001"), intent(limit="100"), intent(stop="0.01")],
        ids=["market", "small", "limit", "stop"],
    )
    def test_allows_positive_values(self, i: OrderIntent) -> None:
        assert self.check(i, FakeCtx()) is None

    @pytest.mark.parametrize("qty", ["0", "-1", "NaN", "Infinity", "-Infinity"])
    def test_denies_a_non_positive_or_non_finite_quantity(self, qty: str) -> None:
        assert self.check(intent(qty=qty), FakeCtx()) == Deny(
            "quantity", f"quantity must be a positive number, got {D(qty)}"
        )

    @pytest.mark.parametrize(
        ("kw", "message"),
        [
            ({"limit": "0"}, "limit price must be a positive number, got 0"),
            ({"limit": "-100"}, "limit price must be a positive number, got -100"),
            ({"limit": "NaN"}, "limit price must be a positive number, got NaN"),
            ({"stop": "-0.01"}, "stop price must be a positive number, got -0.01"),
            ({"stop": "Infinity"}, "stop price must be a positive number, got Infinity"),
            ({"limit": "100", "stop": "0"}, "stop price must be a positive number, got 0"),
        ],
    )
    def test_denies_a_bad_price(self, kw: dict[str, Any], message: str) -> None:
        assert self.check(intent(**kw), FakeCtx()) == Deny("price", message)

    def test_the_quantity_is_checked_first(self) -> None:
        assert self.check(intent(qty="0", limit="-1"), FakeCtx()).reason == "quantity"  # type: ignore[union-attr]


# -- known_instrument ---------------------------------------------------------------------


class TestKnownInstrument:
    def test_allows_a_configured_instrument(self) -> None:
        ctx = FakeCtx(X, Instrument("Y", D("1")))
        assert V.known_instrument(None)(intent(symbol="X"), ctx) is None
        assert V.known_instrument(None)(intent(symbol="Y"), ctx) is None

    def test_denies_an_unknown_instrument(self) -> None:
        assert V.known_instrument(None)(intent(symbol="ETH-USD"), FakeCtx(X)) == Deny(
            "unknown", "unknown instrument 'ETH-USD'"
        )

    def test_symbols_are_case_sensitive(self) -> None:
        assert V.known_instrument(None)(intent(symbol="x"), FakeCtx(X)).reason == "unknown"  # type: ignore[union-attr]


# -- tick_size ------------------------------------------------------------------------------


class TestTickSize:
    check = staticmethod(V.tick_size(None))

    @pytest.mark.parametrize(
        ("tick", "kw"),
        [
            ("0.01", {}),  # a market order has no price to check
            ("0.01", {"limit": "100.01"}),
            ("0.01", {"stop": "100.1"}),
            ("0.01", {"limit": "100.010000"}),  # trailing zeros are still on the grid
            ("0.25", {"limit": "100.75", "stop": "99.5"}),
            ("5", {"limit": "105"}),
        ],
    )
    def test_allows_prices_on_the_grid(self, tick: str, kw: dict[str, Any]) -> None:
        ctx = FakeCtx(Instrument("X", D(tick)))
        assert self.check(intent(**kw), ctx) is None

    @pytest.mark.parametrize(
        ("tick", "kw", "message"),
        [
            ("0.01", {"limit": "100.005"}, "limit price 100.005 is not a multiple of 0.01"),
            ("0.01", {"stop": "99.999"}, "stop price 99.999 is not a multiple of 0.01"),
            ("0.25", {"limit": "100.10"}, "limit price 100.10 is not a multiple of 0.25"),
            (
                "0.25",
                {"limit": "100.25", "stop": "100.3"},
                "stop price 100.3 is not a multiple of 0.25",
            ),
            ("5", {"limit": "103"}, "limit price 103 is not a multiple of 5"),
        ],
    )
    def test_denies_prices_off_the_grid(self, tick: str, kw: dict[str, Any], message: str) -> None:
        ctx = FakeCtx(Instrument("X", D(tick)))
        assert self.check(intent(**kw), ctx) == Deny("off_tick", message)

    def test_uses_the_intents_instrument(self) -> None:
        ctx = FakeCtx(Instrument("X", D("1")), Instrument("Y", D("0.5")))
        assert self.check(intent(symbol="Y", limit="10.5"), ctx) is None
        assert self.check(intent(symbol="X", limit="10.5"), ctx).reason == "off_tick"  # type: ignore[union-attr]


# -- lot_size -------------------------------------------------------------------------------


class TestLotSize:
    check = staticmethod(V.lot_size(None))

    @pytest.mark.parametrize(
        ("lot", "qty"), [("0.001", "1.234"), ("0.001", "0.001"), ("1", "2"), ("100", "300")]
    )
    def test_allows_whole_lots(self, lot: str, qty: str) -> None:
        assert self.check(intent(qty=qty), FakeCtx(Instrument("X", D("0.01"), D(lot)))) is None

    @pytest.mark.parametrize(
        ("lot", "qty"), [("0.001", "0.0015"), ("1", "1.5"), ("100", "250"), ("0.1", "0.05")]
    )
    def test_denies_a_partial_lot(self, lot: str, qty: str) -> None:
        ctx = FakeCtx(Instrument("X", D("0.01"), D(lot)))
        assert self.check(intent(qty=qty, side=Side.SELL), ctx) == Deny(
            "off_lot", f"quantity {qty} is not a multiple of {lot}"
        )


# -- notional -------------------------------------------------------------------------------


class TestNotional:
    band = staticmethod(V.notional(V.NotionalConfig(min=D(50), max=D(500))))
    last = {"X": D("100.00")}

    @pytest.mark.parametrize("qty", ["1", "0.5", "5"])  # 100, 50 (== min), 500 (== max)
    def test_allows_inside_the_band(self, qty: str) -> None:
        assert self.band(intent(qty=qty), FakeCtx(last=self.last)) is None

    def test_denies_too_small(self) -> None:
        assert self.band(intent(qty="0.4"), FakeCtx(last=self.last)) == Deny(
            "too_small", "notional 40.000 < 50"
        )

    def test_denies_too_large(self) -> None:
        assert self.band(intent(qty="5.01", side=Side.SELL), FakeCtx(last=self.last)) == Deny(
            "too_large", "notional 501.0000 > 500"
        )

    def test_values_at_the_limit_then_the_stop_then_the_last_price(self) -> None:
        ctx = FakeCtx(last=self.last)
        assert self.band(intent(qty="1", limit="600"), ctx) == Deny(
            "too_large", "notional 600 > 500"
        )
        assert self.band(intent(qty="1", stop="40"), ctx) == Deny("too_small", "notional 40 < 50")
        assert self.band(intent(qty="1", limit="200", stop="40"), ctx) is None  # limit wins

    def test_applies_the_contract_multiplier(self) -> None:
        fut = Instrument("X", D("0.01"), multiplier=D(10))
        ctx = FakeCtx(fut, last=self.last)
        assert self.band(intent(qty="1"), ctx) == Deny("too_large", "notional 1000.00 > 500")
        assert self.band(intent(qty="0.1"), ctx) is None

    def test_denies_without_a_price(self) -> None:
        assert self.band(intent(), FakeCtx(last={"X": None})) == Deny(
            "no_price", "no price yet to value the order"
        )
        assert self.band(intent(limit="100"), FakeCtx(last={"X": None})) is None

    def test_defaults_have_no_limits(self) -> None:
        check = V.notional(V.NotionalConfig())
        ctx = FakeCtx(last=self.last)
        assert check(intent(qty="0.001"), ctx) is None
        assert check(intent(qty="1000000000"), ctx) is None

    def test_a_min_only_band(self) -> None:
        check = V.notional(V.NotionalConfig(min=D(10)))
        ctx = FakeCtx(last=self.last)
        assert check(intent(qty="1000000"), ctx) is None
        assert check(intent(qty="0.05"), ctx) == Deny("too_small", "notional 5.0000 < 10")


def test_order_price() -> None:
    ctx = FakeCtx(last={"X": D("100.00")})
    assert V.order_price(intent(), ctx) == D("100.00")
    assert V.order_price(intent(limit="99"), ctx) == D("99")
    assert V.order_price(intent(stop="98"), ctx) == D("98")
    assert V.order_price(intent(), FakeCtx()) is None


# -- price_band -----------------------------------------------------------------------------


class TestPriceBand:
    check = staticmethod(V.price_band(V.PriceBandConfig(max_bps=D(100))))
    ctx = FakeCtx(last={"X": D("100.00")})

    @pytest.mark.parametrize(
        "kw",
        [{}, {"limit": "100"}, {"limit": "101"}, {"limit": "99"}, {"stop": "99.5"}],
        ids=["market", "at", "+100bps", "-100bps", "stop"],
    )
    def test_allows_prices_near_the_last(self, kw: dict[str, Any]) -> None:
        assert self.check(intent(**kw), self.ctx) is None

    def test_denies_a_limit_out_of_band(self) -> None:
        assert self.check(intent(limit="101.01"), self.ctx) == Deny(
            "out_of_band", "limit price 101.01 is 101 bps from the last price 100.00"
        )

    def test_denies_a_stop_out_of_band(self) -> None:
        assert self.check(intent(Side.SELL, stop="90", limit="99.5"), self.ctx) == Deny(
            "out_of_band", "stop price 90 is 1000 bps from the last price 100.00"
        )

    def test_a_market_order_needs_no_last_price(self) -> None:
        assert self.check(intent(), FakeCtx()) is None

    def test_denies_a_priced_order_without_a_last_price(self) -> None:
        assert self.check(intent(limit="100"), FakeCtx()) == Deny(
            "no_price", "no last price to compare with"
        )


# -- reduce_only ----------------------------------------------------------------------------


class TestReduceOnly:
    check = staticmethod(V.reduce_only(None))

    def test_allows_a_reducing_reduce_only_intent(self) -> None:
        ctx = FakeCtx(reducing=True)
        i = intent(Side.SELL, reduce_only=True)
        assert self.check(i, ctx) is None
        assert ctx.asked_reducing == [i]

    def test_ignores_intents_that_are_not_reduce_only(self) -> None:
        ctx = FakeCtx(reducing=False)
        assert self.check(intent(), ctx) is None
        assert ctx.asked_reducing == []

    def test_denies_a_reduce_only_intent_that_would_increase(self) -> None:
        assert self.check(intent(reduce_only=True), FakeCtx(reducing=False)) == Deny(
            "would_increase", "reduce-only order would open or increase a position"
        )


# -- config errors -------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "instruments": [{"symbol": "X", "tick_size": "0.01"}],
    "feed": {"type": "synthetic"},
    "strategies": [{"type": "sma_crossover"}],
}
P = "config.validation_rules[0]"


def problems(*rules: dict[str, Any]) -> list[str]:
    eng = Engine.from_config(
        {**copy.deepcopy(BASE), "validation_rules": list(rules)},
        settings=PluginSettings(builtin_only=True),
    )
    with pytest.raises(ConfigError) as err:
        eng.check()
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    "name", ["positive_values", "known_instrument", "tick_size", "lot_size", "reduce_only"]
)
def test_rules_without_options_refuse_options(name: str) -> None:
    assert problems({"type": name, "strict": True}) == [
        f"{P}: validation rule {name!r} takes no options, got strict"
    ]
    assert problems({"type": name, "b": 1, "a": 2}) == [
        f"{P}: validation rule {name!r} takes no options, got a, b"
    ]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"type": "notional", "min": -1}, [f"{P}.min: must be >= 0, got -1"]),
        (
            {"type": "notional", "max": -5},
            [f"{P}.max: must be >= 0, got -5", f"{P}: max (-5) must not be below min (0)"],
        ),
        (
            {"type": "notional", "min": 100, "max": 10},
            [f"{P}: max (10) must not be below min (100)"],
        ),
        ({"type": "notional", "min": "abc"}, [f"{P}.min: expected a decimal number, got 'abc'"]),
        ({"type": "notional", "max": "inf"}, [f"{P}.max: expected a finite number, got 'inf'"]),
        ({"type": "notional", "mni": 5}, [f"{P}.mni: unknown key (did you mean 'min'?)"]),
        ({"type": "price_band"}, [f"{P}.max_bps: required key is missing"]),
        ({"type": "price_band", "max_bps": 0}, [f"{P}.max_bps: must be > 0, got 0"]),
        ({"type": "price_band", "max_bps": "-2.5"}, [f"{P}.max_bps: must be > 0, got -2.5"]),
        (
            {"type": "price_band", "max_bps": "x"},
            [f"{P}.max_bps: expected a decimal number, got 'x'"],
        ),
    ],
)
def test_config_errors_are_reported_by_path(table: dict[str, Any], expected: list[str]) -> None:
    assert problems(table) == expected


def test_config_errors_of_several_rules_are_all_reported() -> None:
    assert problems(
        {"type": "positive_values"},
        {"type": "notional", "min": -1},
        {"type": "price_band", "max_bps": 0},
        {"type": "tick_siz"},
    ) == [
        "config.validation_rules[1].min: must be >= 0, got -1",
        "config.validation_rules[2].max_bps: must be > 0, got 0",
        "config.validation_rules[3].type: unknown validation rule type 'tick_siz'"
        " (did you mean 'tick_size'?); available: positive_values, known_instrument,"
        " lot_size, tick_size, notional, price_band, reduce_only, all_of, any_of, not",
    ]


def test_decimal_options_accept_strings_ints_and_floats() -> None:
    eng = Engine.from_config(
        {
            **copy.deepcopy(BASE),
            "validation_rules": [
                {"type": "notional", "min": "10.5", "max": 1000},
                {"type": "price_band", "max_bps": 2.5},
            ],
        },
        settings=PluginSettings(builtin_only=True),
    )
    notional, band = eng.check().components["validation_rules"]
    assert notional.options == V.NotionalConfig(min=D("10.5"), max=D(1000))
    assert band.options == V.PriceBandConfig(max_bps=D("2.5"))


# -- end to end ---------------------------------------------------------------------------


class Flat:
    """A feed of flat bars at ``price``."""

    def __init__(self, price: float, n: int) -> None:
        self.price, self.n = price, n

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        prices = [self.price] * self.n
        ts = [T0 + MIN * k for k in range(self.n)]
        return BarSeries.from_arrays(instrument, ts, prices, prices, prices, prices, [1.0] * self.n)


def run(
    steps: dict[int, list[Any]],
    rules: list[dict[str, Any]],
    *,
    instrument: dict[str, Any] | None = None,
    bars: int = 6,
) -> tuple[Any, Script]:
    script = Script(steps)

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="flat", factory=lambda _: Flat(100.0, bars))]

    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01", **(instrument or {})}],
        "feed": {"type": "flat"},
        "strategies": [{"type": "script"}],
        "validation_rules": copy.deepcopy(rules),
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    return eng.backtest_sync(), script


def assert_denials_never_fill(result: Any, script: Script) -> None:
    denied = {d.client_id for d in result.denials}
    assert not denied & {f.client_id for f in result.fill_records}
    assert script.orders.count(None) == len(result.denials)
    assert {d.stage for d in result.denials} <= {"validation"}


E2E_CASES = [
    ({"type": "positive_values"}, buy(1), buy(0), "positive_values.quantity"),
    (
        {"type": "positive_values"},
        buy(1, limit="100.5"),
        buy(1, limit="-99"),
        "positive_values.price",
    ),
    (
        {"type": "known_instrument"},
        buy(1, symbol="X"),
        buy(1, symbol="NOPE"),
        "known_instrument.unknown",
    ),
    (
        {"type": "tick_size"},
        buy(1, limit="100.01"),
        buy(1, limit="100.005"),
        "tick_size.off_tick",
    ),
    ({"type": "notional", "min": 50, "max": 500}, buy(2), buy(6), "notional.too_large"),
    ({"type": "notional", "min": 50, "max": 500}, buy(2), buy(0.4), "notional.too_small"),
    (
        {"type": "price_band", "max_bps": 50},
        buy(1, limit="100.5"),
        buy(1, limit="100.51"),
        "price_band.out_of_band",
    ),
    ({"type": "reduce_only"}, buy(1), sell(1, reduce_only=True), "reduce_only.would_increase"),
]


@pytest.mark.parametrize(
    ("rule", "passing", "failing", "reason"), E2E_CASES, ids=[c[3] for c in E2E_CASES]
)
def test_a_rule_in_a_backtest(
    rule: dict[str, Any], passing: Any, failing: Any, reason: str
) -> None:
    result, script = run({0: [failing, passing]}, [rule])
    assert result.denials_by_reason == {reason: 1}
    (denial,) = result.denials
    assert (denial.stage, denial.plugin, denial.ts) == ("validation", "validation", T0)
    assert script.orders[0] is None and script.orders[1] is not None
    assert len(result.fill_records) == 1
    assert result.fill_records[0].client_id == script.orders[1].client_id
    assert_denials_never_fill(result, script)


def test_lot_size_in_a_backtest() -> None:
    result, script = run(
        {0: [buy("0.15"), buy("0.2")]}, [{"type": "lot_size"}], instrument={"lot_size": "0.1"}
    )
    assert result.denials_by_reason == {"lot_size.off_lot": 1}
    assert result.denials[0].message == "quantity 0.15 is not a multiple of 0.1"
    assert [f.quantity for f in result.fill_records] == [D("0.2")]
    assert_denials_never_fill(result, script)


def test_notional_uses_the_instruments_multiplier_in_a_backtest() -> None:
    rules = [{"type": "notional", "max": 500}]
    result, script = run({0: [buy(1), buy(5)]}, rules, instrument={"multiplier": "5"})
    assert result.denials_by_reason == {"notional.too_large": 1}
    assert result.denials[0].message == "notional 2500.00 > 500"  # 5 x 100.00 x 5
    assert len(result.fill_records) == 1
    assert_denials_never_fill(result, script)


def test_reduce_only_counts_the_position_and_open_reducing_orders() -> None:
    steps = {
        0: [buy(2)],  # fills at bar 1: long 2
        2: [
            sell(3, reduce_only=True),  # would flip to short 1
            sell(1, limit="200", reduce_only=True),  # rests (limit far above): reduces 1
            sell(1, reduce_only=True),  # 1 + 1 resting <= 2: still reducing
            sell(1, reduce_only=True),  # 1 + 2 resting > 2: would increase
            buy(1, reduce_only=True),  # a buy adds to a long
        ],
    }
    result, script = run(steps, [{"type": "reduce_only"}])
    assert result.denials_by_reason == {"reduce_only.would_increase": 3}
    assert [o is None for o in script.orders] == [False, True, False, False, True, True]
    assert [(f.side.value, f.quantity) for f in result.fill_records] == [
        ("buy", D(2)),
        ("sell", D(1)),
    ]
    assert_denials_never_fill(result, script)


def test_all_rules_together_in_priority_order() -> None:
    # configured in reverse: structural rules still run first
    rules: list[dict[str, Any]] = [
        {"type": "reduce_only"},
        {"type": "price_band", "max_bps": 100},
        {"type": "notional", "min": 50, "max": 500},
        {"type": "lot_size"},
        {"type": "tick_size"},
        {"type": "known_instrument"},
        {"type": "positive_values"},
    ]
    steps = {
        0: [
            buy(0, symbol="NOPE"),  # positive_values before known_instrument
            buy(1, symbol="NOPE", limit="1.001"),  # known_instrument before tick_size
            buy("0.15", limit="0.001"),  # lot_size and tick_size tie on priority: by name
            buy("0.2", limit="0.001"),  # tick_size before notional and price_band
            buy("0.3"),  # notional: 30 < 50
            buy(1, limit="90"),  # price_band: 1000 bps
            sell(1, reduce_only=True),  # flat: would open a short
            buy(2, limit="100.5"),  # passes everything
        ]
    }
    result, script = run(steps, rules, instrument={"lot_size": "0.1"})
    assert [d.reason for d in result.denials] == [
        "positive_values.quantity",
        "known_instrument.unknown",
        "lot_size.off_lot",
        "tick_size.off_tick",
        "notional.too_small",
        "price_band.out_of_band",
        "reduce_only.would_increase",
    ]
    assert [f.quantity for f in result.fill_records] == [D(2)]
    assert_denials_never_fill(result, script)


def test_an_unknown_instrument_fails_closed_without_known_instrument() -> None:
    result, script = run({0: [buy(1, symbol="NOPE", limit="1")]}, [{"type": "tick_size"}])
    (denial,) = result.denials
    assert denial.reason == "tick_size.error" and "KeyError" in denial.message
    assert not result.fill_records
    assert_denials_never_fill(result, script)
