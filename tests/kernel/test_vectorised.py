"""The vectorised mode (``[backtest] vectorised``) visits only the bars where
something can happen, and must give exactly the bar-by-bar run's results: trades,
fills, denials, trading states, metrics and the report. Checked on several
strategies (built-in SMA long-only and long/short, a random trader with limit and
stop orders and cancels, a strategy marking a boolean mask), seeds, risk set-ups
(guards that bind, runtime guards moving the trading state, hourly metrics) and a
perpetual with liquidations."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import pytest

from engine import BarSeries, DataError, Engine, Strategy, hookimpl
from engine.results import RunResult

RISK: dict[str, Any] = {
    "guards": [
        {"type": "max_position", "limit": "2"},
        {"type": "order_rate", "max_orders": 3, "per": "1h"},
        {"type": "daily_loss", "limit": "40"},
    ],
    "filters": [{"type": "min_volume", "window": 5, "min_volume": 1}],
    "runtime_guards": [
        {"type": "drawdown", "reduce_at": 0.0005, "halt_at": 0.001, "cadence": "7m"}
    ],
    "trading": {"resume_after": "30m"},
    "metrics": {"interval": "1h"},
    "metrics_stores": [{"type": "memory"}],
}


#: metrics of the machine, not of the run
MACHINE = {
    "engine_process_cpu_seconds_total",
    "engine_process_rss_bytes",
    "engine_event_loop_lag_seconds",
}


@attrs.frozen
class TraderConfig:
    """Options of ``random_trader``."""

    seed: int = 0
    mask: bool = False


class RandomTrader:
    """Acts on a seeded random set of bars: market, limit and stop orders of both
    sides, and cancels of what is open. ``mask``: returns a boolean mask instead of
    indices."""

    def __init__(self, config: TraderConfig) -> None:
        self.seed = config.seed
        self.mask = config.mask
        self.active: set[int] = set()
        self.rng = random.Random(self.seed)

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def prepare(self, series: BarSeries) -> Any:
        rng = random.Random(self.seed)
        n = len(series)
        self.active = {rng.randrange(n) for _ in range(n // 15)}
        if self.mask:
            marked = np.zeros(n, dtype=bool)
            marked[sorted(self.active)] = True
            return marked
        return sorted(self.active)

    def on_bar(self, bar: Any) -> None:
        if bar.index not in self.active:
            return
        r = self.rng.random()
        price = Decimal(bar.close) * bar.instrument.tick_size
        if r < 0.15 and self.ctx.open_order_count():
            for order in self.ctx.open_orders():
                self.ctx.cancel(order)
        elif r < 0.45:
            self.ctx.buy(Decimal("0.5"))
        elif r < 0.7:
            self.ctx.sell(Decimal("0.5"))
        elif r < 0.85:
            self.ctx.buy(Decimal("0.3"), limit=(price * Decimal("0.999")).quantize(Decimal("0.01")))
        else:
            self.ctx.sell(Decimal("0.3"), stop=(price * Decimal("0.998")).quantize(Decimal("0.01")))


class Plugin:
    """Registers ``random_trader``."""

    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="random_trader", factory=RandomTrader, config_type=TraderConfig)]


def comparable(result: RunResult) -> dict[str, Any]:
    """Everything a run produced, in comparable form (not its timing)."""
    summary = {k: v for k, v in result.summary().items() if k != "elapsed_seconds"}
    return {
        "summary": summary,
        "fills": [
            (f.ts, f.client_id, f.side, f.quantity, f.price, f.fee) for f in result.fill_records
        ],
        "trades": result.trades.to_dict("records"),
        "denials": [(d.ts, d.client_id, d.check, d.reason) for d in result.denials],
        "states": [(s.ts, s.state, s.reason) for s in result.state_changes],
        "orders": {k: (o.state, o.filled_quantity) for k, o in result.orders.items()},
        "metrics": sorted(
            (m.name, m.labels, m.value) for m in result.metrics if m.name not in MACHINE
        ),
        "liquidations": [(x.ts, x.price) for x in result.liquidations],
        "equity": result.curve.equity.tolist(),
    }


def run_both(
    make_engine: Callable[..., Engine], config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], RunResult]:
    out = []
    for vectorised in (False, True):
        cfg = copy.deepcopy(config) | {"backtest": {"vectorised": vectorised}}
        engine = make_engine(cfg)
        engine.register(Plugin(), "random-trader")
        out.append(engine.backtest_sync())
    return comparable(out[0]), comparable(out[1]), out[0]


def base(bars: int, seed: int, strategy: dict[str, Any]) -> dict[str, Any]:
    return {
        "engine": {"name": "vec", "initial_cash": "10000", "seed": seed},
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "bars": bars, "start_price": "100", "volatility": 0.002},
        "broker": {"type": "simulated", "fee_bps": "2"},
        "strategies": [strategy],
    }


STRATEGIES = [
    {"type": "sma_crossover", "fast": 5, "slow": 20},
    {"type": "sma_crossover", "fast": 3, "slow": 11, "allow_short": True},
    {"type": "random_trader", "seed": 7},
    {"type": "random_trader", "seed": 11, "mask": True},
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: f"{s['type']}-{s.get('seed', '')}")
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("risk", [False, True], ids=["plain", "risk"])
def test_vectorised_run_equals_bar_by_bar(
    make_engine: Callable[..., Engine], strategy: dict[str, Any], seed: int, risk: bool
) -> None:
    config = base(3000, seed, strategy) | (copy.deepcopy(RISK) if risk else {})
    bar_by_bar, vectorised, result = run_both(make_engine, config)
    assert result.fill_records  # something happened
    if risk:
        assert result.metrics and len(result.metrics) > 10
    assert vectorised == bar_by_bar


def test_risk_set_up_binds_so_the_comparison_means_something(
    make_engine: Callable[..., Engine],
) -> None:
    config = base(3000, 2, STRATEGIES[2]) | copy.deepcopy(RISK)
    bar_by_bar, vectorised, result = run_both(make_engine, config)
    assert vectorised == bar_by_bar
    assert result.denials and {s.state.value for s in result.state_changes} >= {"reducing"}


def test_perpetual_liquidations_are_identical(make_engine: Callable[..., Engine]) -> None:
    config = base(4000, 5, {"type": "random_trader", "seed": 3})
    config["instruments"] = [
        {
            "symbol": "BTC-PERP",
            "tick_size": "0.01",
            "lot_size": "0.001",
            "kind": "perpetual",
            "initial_margin": "0.02",
            "maintenance_margin": "0.01",
            "funding_rate": "0.0001",
        }
    ]
    config["engine"]["initial_cash"] = "3"
    config["feed"]["volatility"] = 0.01
    bar_by_bar, vectorised, result = run_both(make_engine, config)
    assert vectorised == bar_by_bar
    assert result.funding_payments and result.liquidations


def test_vectorised_visits_fewer_bars(make_engine: Callable[..., Engine]) -> None:
    seen: dict[bool, int] = {}
    original = RandomTrader.on_bar
    for vectorised in (False, True):
        cfg = base(3000, 1, {"type": "random_trader", "seed": 7})
        cfg["backtest"] = {"vectorised": vectorised}
        engine = make_engine(cfg)
        engine.register(Plugin(), "random-trader")
        calls = 0

        def counting(self: RandomTrader, bar: Any) -> None:
            nonlocal calls
            calls += 1
            original(self, bar)

        RandomTrader.on_bar = counting  # type: ignore[method-assign]
        try:
            engine.backtest_sync()
        finally:
            RandomTrader.on_bar = original  # type: ignore[method-assign]
        seen[vectorised] = calls
    assert seen[False] == 3000
    assert seen[True] < 3000 // 2


def test_a_bad_mask_names_the_strategy(make_engine: Callable[..., Engine]) -> None:
    class Bad(RandomTrader):
        def prepare(self, series: BarSeries) -> Any:
            return [0, len(series) + 5]

    class P:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="bad", factory=Bad, config_type=TraderConfig)]

    cfg = base(500, 1, {"type": "bad", "id": "mine"}) | {"backtest": {"vectorised": True}}
    engine = make_engine(cfg)
    engine.register(P(), "bad")
    with pytest.raises(DataError, match=r"strategies\.mine.*outside 0\.\.499"):
        engine.backtest_sync()


@pytest.mark.parametrize("chunk", [1, 5, 64, 0])
def test_merged_runs_do_not_depend_on_the_chunk_size(
    make_engine: Callable[..., Engine], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several instruments merged by time, stepped event by event: any chunk size
    (events sharing a timestamp are never split) gives the same run."""
    import engine.kernel.loops as loops

    config = base(900, 4, {"type": "random_trader", "seed": 5, "instrument": "A"})
    config["instruments"] = [
        {"symbol": s, "tick_size": "0.01", "lot_size": "0.001"} for s in ("A", "B", "C")
    ]
    config["strategies"] += [
        {"type": "sma_crossover", "fast": 3, "slow": 9, "instrument": "B", "id": "b"},
        {"type": "random_trader", "seed": 9, "instrument": "C", "id": "c", "mask": True},
    ]
    config |= copy.deepcopy(RISK)
    expected, _, result = run_both(make_engine, config)
    assert {f.instrument for f in result.fill_records} == {"A", "B", "C"}
    if chunk:
        monkeypatch.setattr(loops, "CHUNK", chunk)
        original = loops.backtest_chunks

        def small(*args: Any, **kwargs: Any) -> Any:
            return original(*args, **{**kwargs, "chunk": chunk})

        monkeypatch.setattr("engine.engine.backtest_chunks", small)
    bar_by_bar, vectorised, _ = run_both(make_engine, config)
    assert bar_by_bar == expected and vectorised == expected
