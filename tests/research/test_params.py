"""The --grid parser (property tests) and how parameter paths address the config."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import ConfigError
from engine.research.params import (
    address,
    apply_params,
    grid,
    parse_param,
    parse_params,
    random_draws,
)

ints = st.integers(min_value=-1000, max_value=1000)
steps = st.integers(min_value=1, max_value=50)


@given(low=ints, span=st.integers(min_value=0, max_value=400), step=steps)
def test_an_integer_range_with_a_step_is_every_step_up_to_the_end(
    low: int, span: int, step: int
) -> None:
    high = low + span
    spec = parse_param(f"strategy.fast={low}..{high}:{step}")
    values = spec.choices()
    assert values == tuple(range(low, high + 1, step))
    assert all(type(v) is int for v in values)


@given(
    low=st.decimals(min_value=-100, max_value=100, places=2),
    count=st.integers(min_value=1, max_value=40),
    step=st.decimals(min_value=Decimal("0.01"), max_value=10, places=2),
)
def test_a_decimal_range_is_computed_exactly(low: Decimal, count: int, step: Decimal) -> None:
    high = low + step * (count - 1)
    spec = parse_param(f"broker.fee_bps={low}..{high}:{step}")
    values = spec.choices()
    assert len(values) == count
    assert [Decimal(repr(v)) for v in values] == [
        Decimal(float(low + k * step).__repr__()) for k in range(count)
    ]
    assert values[-1] == float(high)


scalars = st.one_of(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32).filter(lambda f: f != int(f)),
    st.booleans(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
        lambda s: s not in ("true", "false")
    ),
)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


@given(values=st.lists(scalars, min_size=1, max_size=8))
def test_a_list_keeps_its_values_types_and_order(values: list[Any]) -> None:
    spec = parse_param("strategy.slow=" + ",".join(_text(v) for v in values))
    assert spec.choices() == tuple(values)
    assert [type(v) for v in spec.choices()] == [type(v) for v in values]


@given(text=st.text(max_size=30))
def test_any_text_either_parses_or_raises_a_config_error_naming_the_path(text: str) -> None:
    try:
        spec = parse_param(f"strategy.fast={text}")
    except ConfigError as exc:
        assert all(p.where == "strategy.fast" for p in exc.problems)
    else:
        assert spec.path == "strategy.fast"


@given(
    a=st.lists(ints, min_size=1, max_size=5, unique=True),
    b=st.lists(ints, min_size=1, max_size=5, unique=True),
)
def test_the_grid_is_the_product_with_the_last_parameter_fastest(
    a: list[int], b: list[int]
) -> None:
    specs = parse_params({"strategy.fast": a, "strategy.slow": b})
    combos = grid(specs)
    assert combos == [{"strategy.fast": x, "strategy.slow": y} for x in a for y in b]


@given(n=st.integers(min_value=1, max_value=30), seed=st.integers(min_value=0, max_value=10**6))
def test_random_draws_are_distinct_reproducible_and_in_the_grid(n: int, seed: int) -> None:
    specs = [parse_param("strategy.fast=1..12"), parse_param("strategy.slow=20,30,40")]
    draws = random_draws(specs, n, seed)
    assert draws == random_draws(specs, n, seed)
    full = grid(specs)
    assert len(draws) == min(n, len(full))
    assert all(d in full for d in draws)
    assert len({tuple(d.values()) for d in draws}) == len(draws)


def test_random_draws_from_a_continuous_range_stay_inside_it() -> None:
    specs = [parse_param("feed.volatility=0.001..0.004")]
    draws = random_draws(specs, 50, 3)
    assert len(draws) == 50
    assert all(0.001 <= d["feed.volatility"] <= 0.004 for d in draws)
    assert len({d["feed.volatility"] for d in draws}) == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy.fast=5..1", "strategy.fast: empty range '5..1': the start is above the end"),
        ("strategy.fast=1..5:0", "strategy.fast: the step must be > 0, got 0"),
        (
            "strategy.fast=",
            "strategy.fast: no values given (expected a..b:step, a list v1,v2 or a value)",
        ),
        ("strategy.fast=1,,2", "strategy.fast: empty item in the list '1,,2'"),
        ("fast=1", "fast: expected SECTION.KEY (a key inside a config section)"),
        (
            "strategy..fast=1",
            "strategy..fast: expected a dotted path of config keys like strategy.fast, strategies[0].fast or feed.bars",
        ),
        ("5..10", "--grid '5..10': expected PATH=VALUES, e.g. strategy.fast=5..20:5 or slow=20,30"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_param(text)
    assert str(info.value) == message


def test_a_real_range_without_a_step_cannot_be_a_grid_axis() -> None:
    with pytest.raises(ConfigError, match="needs a step in a grid"):
        grid([parse_param("feed.volatility=0.001..0.004")])


CONFIG: dict[str, Any] = {
    "engine": {"seed": 1},
    "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01"}],
    "feed": {"type": "synthetic"},
    "strategies": [
        {"type": "sma_crossover", "id": "trend", "fast": 5},
        {"type": "sma_crossover", "id": "swing", "fast": 3},
    ],
    "guards": [{"type": "max_position", "limit": "2"}],
}


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("feed.bars", ["feed", "bars"]),
        ("engine.seed", ["engine", "seed"]),
        ("broker.fee_bps", ["broker", "fee_bps"]),
        ("strategies[1].slow", ["strategies", 1, "slow"]),
        ("strategies.swing.slow", ["strategies", 1, "slow"]),
        ("strategy.trend.fast", ["strategies", 0, "fast"]),
        ("guards.limit", ["guards", 0, "limit"]),
        ("guards.max_position.limit", ["guards", 0, "limit"]),
        ("instruments.BTC-USD.lot_size", ["instruments", 0, "lot_size"]),
    ],
)
def test_paths_address_config_keys(path: str, keys: list[Any]) -> None:
    assert address(CONFIG, path) == keys


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "strategy.fast",
            "strategy.fast: config.strategies has 2 tables; choose one by index or by id, type or"
            " symbol: strategies[0] (trend/sma_crossover), strategies[1] (swing/sma_crossover)",
        ),
        (
            "strategies.sma_crossover.fast",
            "strategies.sma_crossover.fast: 2 tables of config.strategies are named"
            " 'sma_crossover'; address one by index: strategies[N].fast",
        ),
        (
            "strategies[5].fast",
            "strategies[5].fast: config.strategies has 2 table(s); index 5 is out of range",
        ),
        ("feed[0].bars", "feed[0].bars: config.feed is not an array of tables"),
        ("sweep.workers", "sweep.workers: the [sweep] section cannot be swept"),
    ],
)
def test_paths_that_name_nothing_say_why(path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        address(CONFIG, path)
    assert str(info.value) == message


def test_apply_params_sets_values_on_a_copy() -> None:
    out = apply_params(
        CONFIG, {"strategies.swing.slow": 40, "feed.bars": 100, "broker.fee_bps": "2"}
    )
    assert out["strategies"][1]["slow"] == 40
    assert out["feed"] == {"type": "synthetic", "bars": 100}
    assert out["broker"] == {"fee_bps": "2"}
    assert "slow" not in CONFIG["strategies"][1] and "bars" not in CONFIG["feed"]
