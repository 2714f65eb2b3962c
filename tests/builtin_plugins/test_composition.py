"""Composing pipeline checks in config: ``all_of``, ``any_of``, ``not`` and the
per-check ``strategies`` scope.

The combinators are driven through real backtests configured with TOML-shaped
dicts (built-in filters and validation rules as children), and their decision
logic directly through :mod:`engine.kernel.compose`. A child's denial keeps its
own name (``max_spread.too_wide``); the pipeline namespaces it with the
combinator's (``all_of.max_spread.too_wide``).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from scripted import Script

from engine import (
    BarSeries,
    ConfigError,
    Deny,
    Engine,
    Feed,
    Instrument,
    OrderIntent,
    PluginSettings,
    Reduce,
    Side,
    Strategy,
    hookimpl,
)
from engine.kernel import compose as C

D = Decimal
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z, a Monday
MIN = 60_000_000_000

SPREAD = {"type": "max_spread", "max_bps": 5}
DEPTH = {"type": "min_depth", "min_size": 10}

# bar k: (spread ok?, depth ok?) = 0: (yes, yes), 1: (no, yes), 2: (yes, no), 3: (no, no);
# bars 4 and 5 are good so that allowed orders fill
QUOTED = {
    "close": [100.0] * 6,
    "bid": [99.99, 99.5, 99.99, 99.5, 99.99, 99.99],
    "ask": [100.01, 100.5, 100.01, 100.5, 100.01, 100.01],
    "bid_size": [50.0, 50.0, 5.0, 5.0, 50.0, 50.0],
    "ask_size": [50.0, 50.0, 5.0, 5.0, 50.0, 50.0],
}
EVERY_CASE: dict[int, list[Any]] = {k: [("buy", (1,), {})] for k in range(4)}


class Table:
    """A feed of fixed columns: ``close`` (also open/high/low) and extra columns."""

    def __init__(self, data: dict[str, list[float]]) -> None:
        self.data = data

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        cols = dict(self.data)
        close = cols.pop("close")
        ts = [T0 + MIN * k for k in range(len(close))]
        return BarSeries.from_arrays(
            instrument, ts, close, close, close, close, [1.0] * len(close), extra=cols
        )


def _returning(obj: Any) -> Any:
    return lambda _: obj


def engine_for(
    config: dict[str, Any],
    scripts: dict[str, Script],
    strategies: list[dict[str, Any]] | None = None,
) -> Engine:
    """An engine over :data:`QUOTED` with one strategy type per script (named by
    its key) and ``config`` (filters, validation rules...) added."""

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name=n, factory=_returning(s)) for n, s in scripts.items()]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="table", factory=lambda _: Table(QUOTED))]

    cfg = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "table"},
        "strategies": strategies or [{"type": name} for name in scripts],
        **copy.deepcopy(config),
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    return eng


def run(config: dict[str, Any], steps: dict[int, list[Any]] = EVERY_CASE) -> tuple[Any, Script]:
    script = Script(steps)
    return engine_for(config, {"script": script}).backtest_sync(), script


def assert_denials_never_fill(result: Any) -> None:
    denied = {d.client_id for d in result.denials}
    assert denied and not denied & {f.client_id for f in result.fill_records}


# -- all_of / any_of / not in a backtest ----------------------------------------------------


class TestAllOf:
    def test_passes_only_when_every_child_passes(self) -> None:
        result, script = run({"filters": [{"type": "all_of", "checks": [SPREAD, DEPTH]}]})
        assert script.denied() == [False, True, True, True]
        assert len(result.fill_records) == 1
        assert_denials_never_fill(result)

    def test_the_first_denying_child_names_the_reason(self) -> None:
        result, _ = run({"filters": [{"type": "all_of", "checks": [SPREAD, DEPTH]}]})
        assert [d.reason for d in result.denials] == [
            "all_of.max_spread.too_wide",
            "all_of.min_depth.too_thin",
            "all_of.max_spread.too_wide",  # both deny: the first child in config order
        ]
        assert result.denials[0].message == "spread 100.0 bps > 5.0 bps"
        assert {(d.stage, d.check, d.plugin) for d in result.denials} == {
            ("filter", "all_of", "engine")
        }

    def test_children_run_in_config_order(self) -> None:
        result, _ = run({"filters": [{"type": "all_of", "checks": [DEPTH, SPREAD]}]})
        assert [d.reason for d in result.denials] == [
            "all_of.max_spread.too_wide",
            "all_of.min_depth.too_thin",
            "all_of.min_depth.too_thin",
        ]


class TestAnyOf:
    def test_passes_when_any_child_passes(self) -> None:
        result, script = run({"filters": [{"type": "any_of", "checks": [SPREAD, DEPTH]}]})
        assert script.denied() == [False, False, False, True]
        assert len(result.fill_records) == 3
        assert_denials_never_fill(result)

    def test_denies_with_every_childs_reason(self) -> None:
        result, _ = run({"filters": [{"type": "any_of", "checks": [SPREAD, DEPTH]}]})
        (denial,) = result.denials
        assert result.denials_by_reason == {"any_of.none_passed": 1}
        assert denial.ts == T0 + 3 * MIN
        assert denial.message == (
            "every alternative denied: max_spread.too_wide, min_depth.too_thin"
        )

    def test_a_single_child(self) -> None:
        result, _ = run({"filters": [{"type": "any_of", "checks": [DEPTH]}]})
        assert result.denials_by_reason == {"any_of.none_passed": 2}
        assert result.denials[0].message == "every alternative denied: min_depth.too_thin"


class TestNot:
    def test_denies_when_its_child_passes(self) -> None:
        result, script = run({"filters": [{"type": "not", "check": SPREAD}]})
        assert script.denied() == [True, False, True, False]
        assert result.denials_by_reason == {"not.max_spread": 2}
        assert result.denials[0].message == "max_spread passed, and this check requires it not to"
        assert_denials_never_fill(result)

    def test_a_raising_child_fails_closed(self) -> None:
        # max_spread raises on an instrument the kernel does not know: under `not`
        # that must still deny, never turn into a pass
        steps = {0: [("buy", (1,), {"symbol": "NOPE"})]}
        result, _ = run({"filters": [{"type": "not", "check": SPREAD}]}, steps)
        (denial,) = result.denials
        assert denial.reason == "not.error" and "KeyError" in denial.message
        assert not result.fill_records


class TestNesting:
    def test_nested_combinators_chain_their_names(self) -> None:
        config = {
            "filters": [
                {
                    "type": "all_of",
                    "checks": [
                        {"type": "any_of", "checks": [SPREAD, DEPTH]},
                        {"type": "not", "check": {"type": "max_spread", "max_bps": 1}},
                    ],
                }
            ]
        }
        result, script = run(config)
        # bar 0: any_of passes, spread 2 bps > 1 so `not` passes -> allowed
        # bar 1, 2: any_of passes, `not` passes; bar 3: any_of denies
        assert script.denied() == [False, False, False, True]
        assert result.denials_by_reason == {"all_of.any_of.none_passed": 1}

    def test_a_nested_not_denial(self) -> None:
        config = {
            "filters": [
                {"type": "all_of", "checks": [{"type": "not", "check": DEPTH}]},
            ]
        }
        result, script = run(config)
        assert script.denied() == [True, True, False, False]
        assert result.denials_by_reason == {"all_of.not.min_depth": 2}

    def test_combinators_run_before_plain_checks(self) -> None:
        config = {
            "filters": [
                {"type": "min_depth", "min_size": 10},
                {"type": "all_of", "checks": [SPREAD]},
            ]
        }
        result, _ = run(config)
        # bar 3 fails both: the combinator runs first
        assert [d.reason for d in result.denials] == [
            "all_of.max_spread.too_wide",
            "min_depth.too_thin",
            "all_of.max_spread.too_wide",
        ]

    def test_validation_rules_compose_too(self) -> None:
        config = {
            "validation_rules": [
                {
                    "type": "any_of",
                    "checks": [
                        {"type": "notional", "max": 500},
                        {"type": "price_band", "max_bps": 10},
                    ],
                }
            ]
        }
        steps = {0: [("buy", (10,), {}), ("buy", (10,), {"limit": "100.05"}), ("buy", (1,), {})]}
        result, script = run(config, steps)
        # the first two are over 500 notional, but price_band passes them (a market
        # order has no price to band; 100.05 is 5 bps away): any_of passes them all
        assert script.denied() == [False, False, False]
        config["validation_rules"][0]["type"] = "all_of"
        result, script = run(config, steps)
        assert script.denied() == [True, True, False]
        assert result.denials_by_reason == {"all_of.notional.too_large": 2}
        assert {d.stage for d in result.denials} == {"validation"}


# -- strategies scope --------------------------------------------------------------------------


def two_strategies(
    config: dict[str, Any],
    steps: dict[int, list[Any]] = EVERY_CASE,
    strategies: list[dict[str, Any]] | None = None,
) -> tuple[Any, Script, Script]:
    alpha, beta = Script(steps), Script(steps)
    eng = engine_for(config, {"alpha": alpha, "beta": beta}, strategies)
    return eng.backtest_sync(), alpha, beta


class TestScope:
    def test_a_scoped_check_applies_only_to_its_strategies(self) -> None:
        result, alpha, beta = two_strategies({"filters": [{**SPREAD, "strategies": ["alpha"]}]})
        assert alpha.denied() == [False, True, False, True]
        assert beta.denied() == [False] * 4
        assert {d.strategy for d in result.denials} == {"alpha"}
        assert result.denials_by_reason == {"max_spread.too_wide": 2}
        assert_denials_never_fill(result)

    def test_an_unscoped_check_applies_to_every_strategy(self) -> None:
        result, alpha, beta = two_strategies({"filters": [SPREAD]})
        assert alpha.denied() == beta.denied() == [False, True, False, True]
        assert result.denials_by_reason == {"max_spread.too_wide": 4}

    def test_several_strategies_in_a_scope(self) -> None:
        _, alpha, beta = two_strategies({"filters": [{**SPREAD, "strategies": ["alpha", "beta"]}]})
        assert alpha.denied() == beta.denied() == [False, True, False, True]

    def test_a_scope_names_configured_ids(self) -> None:
        strategies = [{"type": "alpha", "id": "fast"}, {"type": "beta", "id": "slow"}]
        result, alpha, beta = two_strategies(
            {"filters": [{**DEPTH, "strategies": ["slow"]}]}, strategies=strategies
        )
        assert alpha.denied() == [False] * 4
        assert beta.denied() == [False, False, True, True]
        assert {d.strategy for d in result.denials} == {"slow"}

    def test_a_scoped_combinator(self) -> None:
        config = {
            "filters": [{"type": "any_of", "checks": [SPREAD, DEPTH], "strategies": ["beta"]}]
        }
        result, alpha, beta = two_strategies(config)
        assert alpha.denied() == [False] * 4
        assert beta.denied() == [False, False, False, True]
        assert result.denials_by_reason == {"any_of.none_passed": 1}

    def test_a_scoped_child_passes_other_strategies(self) -> None:
        # for beta the scoped-out child passes, so any_of passes outright
        config = {
            "filters": [{"type": "any_of", "checks": [{**SPREAD, "strategies": ["alpha"]}, DEPTH]}]
        }
        result, alpha, beta = two_strategies(config)
        assert alpha.denied() == [False, False, False, True]
        assert beta.denied() == [False] * 4
        # and inside all_of it simply does not apply to beta
        config["filters"][0]["type"] = "all_of"
        result, alpha, beta = two_strategies(config)
        assert alpha.denied() == [False, True, True, True]
        assert beta.denied() == [False, False, True, True]
        assert result.denials_by_reason == {
            "all_of.max_spread.too_wide": 2,
            "all_of.min_depth.too_thin": 3,
        }

    def test_a_scoped_validation_rule(self) -> None:
        steps = {0: [("sell", (1,), {"reduce_only": True})]}
        config = {"validation_rules": [{"type": "reduce_only", "strategies": ["beta"]}]}
        result, alpha, beta = two_strategies(config, steps)
        assert alpha.denied() == [False] and beta.denied() == [True]
        assert result.denials_by_reason == {"reduce_only.would_increase": 1}

    def test_scope_keys_round_trip_through_the_config_dump(self) -> None:
        filters = [
            {"type": "any_of", "checks": [{**SPREAD, "strategies": ["alpha"]}, DEPTH]},
            {"type": "not", "check": DEPTH, "strategies": ["beta"]},
        ]
        eng = engine_for({"filters": filters}, {"alpha": Script({}), "beta": Script({})})
        dumped = eng.check().dump()["filters"]
        assert dumped == [
            {
                "type": "any_of",
                "checks": [
                    {"type": "max_spread", "strategies": ["alpha"], "max_bps": 5.0},
                    {"type": "min_depth", "min_size": 10.0},
                ],
            },
            {
                "type": "not",
                "strategies": ["beta"],
                "check": {"type": "min_depth", "min_size": 10.0},
            },
        ]


# -- config errors ---------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "instruments": [{"symbol": "X", "tick_size": "0.01"}],
    "feed": {"type": "synthetic"},
    "strategies": [{"type": "sma_crossover"}],
}
P = "config.filters[0]"
FILTERS = "stale_data, trading_hours, max_spread, min_depth, min_volume, rsi_band, volatility_band"


def problems(section: str, *items: dict[str, Any]) -> list[str]:
    eng = Engine.from_config(
        {**copy.deepcopy(BASE), section: list(items)}, settings=PluginSettings(builtin_only=True)
    )
    with pytest.raises(ConfigError) as err:
        eng.check()
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"type": "any_of"}, [f"{P}.checks: expected a non-empty array of tables of filters"]),
        ({"type": "all_of"}, [f"{P}.checks: expected a non-empty array of tables of filters"]),
        (
            {"type": "all_of", "checks": []},
            [f"{P}.checks: expected a non-empty array of tables of filters"],
        ),
        (
            {"type": "any_of", "checks": SPREAD},
            [f"{P}.checks: expected a non-empty array of tables of filters"],
        ),
        (
            {"type": "any_of", "checks": ["max_spread"]},
            [f"{P}.checks[0]: expected a table describing a filter"],
        ),
        (
            {"type": "all_of", "checks": [SPREAD, {"type": "max_sprd", "max_bps": 5}]},
            [
                f"{P}.checks[1].type: unknown filter type 'max_sprd' (did you mean"
                f" 'max_spread'?); available: {FILTERS}, all_of, any_of, not"
            ],
        ),
        (
            {"type": "all_of", "checks": [{"type": "max_spread", "max_bps": -5}, {"max_bps": 5}]},
            [
                f"{P}.checks[0].max_bps: must be > 0, got -5.0",
                f"{P}.checks[1].type: required key is missing (available: {FILTERS})",
            ],
        ),
        (
            {"type": "any_of", "checks": [{"type": "any_of", "checks": [{"type": "zzz"}]}]},
            [
                f"{P}.checks[0].checks[0].type: unknown filter type 'zzz'; available:"
                f" {FILTERS}, all_of, any_of, not"
            ],
        ),
        (
            {"type": "any_of", "checks": [SPREAD], "max_bps": 3},
            [f"{P}: 'any_of' takes only 'checks' and 'strategies', got max_bps"],
        ),
        ({"type": "not"}, [f"{P}.check: expected a table of filters"]),
        (
            {"type": "not", "checks": [SPREAD]},
            [
                f"{P}.check: expected a table of filters",
                f"{P}: 'not' takes only 'check' and 'strategies', got checks",
            ],
        ),
        ({"type": "not", "check": [SPREAD]}, [f"{P}.check: expected a table describing a filter"]),
        (
            {"type": "not", "check": {"type": "min_depth", "min_size": 0}},
            [f"{P}.check.min_size: must be > 0, got 0.0"],
        ),
        (
            {"type": "not", "check": SPREAD, "strategies": [1]},
            [f"{P}.strategies[0]: expected a string, got an integer (1)"],
        ),
    ],
)
def test_combinator_config_errors(table: dict[str, Any], expected: list[str]) -> None:
    assert problems("filters", table) == expected


def test_children_of_a_validation_combinator_are_validation_rules() -> None:
    got = problems(
        "validation_rules", {"type": "all_of", "checks": [{"type": "positive_values"}, SPREAD]}
    )
    assert got == [
        "config.validation_rules[0].checks[1].type: unknown validation rule type 'max_spread';"
        " available: positive_values, known_instrument, lot_size, tick_size, notional,"
        " price_band, reduce_only, all_of, any_of, not"
    ]


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({**SPREAD, "strategies": ["nope"]}, f"{P}.strategies"),
        ({"type": "any_of", "checks": [DEPTH], "strategies": ["nope"]}, f"{P}.strategies"),
        (
            {"type": "any_of", "checks": [{**DEPTH, "strategies": ["nope"]}]},
            f"{P}.checks[0].strategies",
        ),
    ],
)
def test_an_unknown_strategy_in_a_scope_is_reported_by_path(
    table: dict[str, Any], path: str
) -> None:
    eng = engine_for({"filters": [table]}, {"alpha": Script({}), "beta": Script({})})
    with pytest.raises(ConfigError) as err:
        eng.backtest_sync()
    assert [str(p) for p in err.value.problems] == [
        f"{path}: unknown strategy id(s) nope; configured: alpha, beta"
    ]


def test_a_string_scope_is_reported_as_written() -> None:
    # `strategies = "alpha"` (a string, not an array) must not be split into the
    # ids 'a', 'h', 'l', 'p'
    eng = engine_for({"filters": [{**SPREAD, "strategies": "alpha"}]}, {"alpha": Script({})})
    with pytest.raises(ConfigError) as err:
        eng.check()
        eng.backtest_sync()
    (problem,) = (str(p) for p in err.value.problems)
    assert problem.startswith(f"{P}.strategies: ")
    assert "'alpha'" in problem


# -- the decision logic ---------------------------------------------------------------------

INTENT = OrderIntent("s", "X", Side.BUY, D(10))


def allow(intent: Any, ctx: Any) -> None:
    return None


def deny(reason: str) -> Any:
    return lambda intent, ctx: Deny(reason, f"{reason}!")


def cap(qty: int) -> Any:
    def check(intent: Any, ctx: Any) -> Any:
        return Reduce(D(qty), "cap", f"to {qty}") if intent.quantity > qty else None

    return check


def boom(intent: Any, ctx: Any) -> None:
    raise RuntimeError("boom")


class TestDecisions:
    def test_all_of(self) -> None:
        assert C.compose("all_of", [("a", allow), ("b", allow)])(INTENT, None) is None
        assert C.compose("all_of", [("a", allow), ("b", deny("x")), ("c", deny("y"))])(
            INTENT, None
        ) == Deny("b.x", "x!")

    def test_all_of_applies_reductions_in_turn(self) -> None:
        seen: list[Decimal] = []

        def spy(intent: Any, ctx: Any) -> None:
            seen.append(intent.quantity)

        check = C.compose("all_of", [("a", cap(7)), ("b", spy), ("c", cap(4)), ("d", spy)])
        assert check(INTENT, None) == Reduce(D(4), "c.cap", "to 4")
        assert seen == [D(7), D(4)]
        assert C.compose("all_of", [("a", cap(7)), ("b", deny("x"))])(INTENT, None) == Deny(
            "b.x", "x!"
        )

    def test_any_of(self) -> None:
        assert C.compose("any_of", [("a", deny("x")), ("b", allow)])(INTENT, None) is None
        assert C.compose("any_of", [("a", deny("x")), ("b", deny("y"))])(INTENT, None) == Deny(
            "none_passed", "every alternative denied: a.x, b.y"
        )

    def test_any_of_takes_the_largest_reduction_unless_a_child_passes(self) -> None:
        check = C.compose("any_of", [("a", cap(3)), ("b", deny("x")), ("c", cap(6))])
        assert check(INTENT, None) == Reduce(D(6), "c.cap", "to 6")
        assert C.compose("any_of", [("a", cap(3)), ("b", allow)])(INTENT, None) is None

    def test_any_of_stops_at_the_first_pass(self) -> None:
        assert C.compose("any_of", [("a", allow), ("b", boom)])(INTENT, None) is None

    def test_not(self) -> None:
        assert C.compose("not", [("a", deny("x"))])(INTENT, None) is None
        assert C.compose("not", [("a", allow)])(INTENT, None) == Deny(
            "a", "a passed, and this check requires it not to"
        )
        assert C.compose("not", [("a", cap(3))])(INTENT, None) == Deny(
            "a", "a passed, and this check requires it not to"
        )

    def test_a_raising_child_propagates_so_the_pipeline_fails_closed(self) -> None:
        for kind in ("all_of", "any_of", "not"):
            with pytest.raises(RuntimeError, match="boom"):
                C.compose(kind, [("a", boom)])(INTENT, None)

    def test_scoped(self) -> None:
        check = C.scoped(deny("x"), ["s", "t"])
        assert check(INTENT, None) == Deny("x", "x!")
        assert check(OrderIntent("u", "X", Side.BUY, D(1)), None) is None
