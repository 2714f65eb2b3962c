"""Report statistics against hand-computed values."""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from engine import Instrument, Portfolio, RunResult, Trade
from engine.builtins.performance import YEAR_NS, compute
from engine.results import EquityCurve

DAY = 86_400 * 10**9


def result_with(
    equity: list[float], invested: list[bool], trades: list[Trade], step: int = DAY
) -> RunResult:
    inst = Instrument("X", Decimal("0.01"))
    portfolio = Portfolio(Decimal(str(equity[0])), {"X": inst})
    portfolio.cash = Decimal(str(equity[-1]))
    portfolio.trades = trades
    curve = EquityCurve(
        np.arange(len(equity), dtype=np.int64) * step,
        np.asarray(equity, dtype=float),
        np.asarray(invested),
    )
    return RunResult(
        "backtest",
        "t",
        len(equity),
        [],
        trades,
        {},
        [],
        [],
        portfolio,
        curve,
        {},
        0.0,
        {},
        Counter(),
    )


def trade(pnl: str) -> Trade:
    d = Decimal
    return Trade("X", "s", "long", d(1), 0, d(1), 1, d(1), d(0), d(pnl))


def test_statistics_match_hand_computed_values() -> None:
    equity = [100.0, 110.0, 99.0, 108.9]
    stats = compute(
        result_with(equity, [False, True, True, False], [trade("10"), trade("-1"), trade("0")])
    )
    returns = np.array([0.1, -0.1, 0.1])
    per_year = YEAR_NS / DAY
    assert stats["total_return"] == pytest.approx(0.089)
    assert stats["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert stats["win_rate"] == pytest.approx(1 / 3)
    assert stats["exposure"] == pytest.approx(0.5)
    assert stats["trades"] == 3
    assert stats["sharpe"] == pytest.approx(returns.mean() / returns.std() * math.sqrt(per_year))
    downside = math.sqrt((0.1**2) / 3)
    assert stats["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(per_year))
    years = 3 * DAY / YEAR_NS
    assert stats["cagr"] == pytest.approx(1.089 ** (1 / years) - 1)


def test_short_runs_and_flat_curves_report_not_applicable() -> None:
    stats = compute(result_with([100.0, 100.0, 100.0], [False] * 3, [], step=10**9))
    assert (
        math.isnan(stats["cagr"]) and math.isnan(stats["sharpe"]) and math.isnan(stats["win_rate"])
    )
    assert stats["total_return"] == 0.0 and stats["max_drawdown"] == 0.0


def test_annualised_figures_need_a_day_of_data() -> None:
    minute = 60 * 10**9
    stats = compute(result_with([100.0, 101.0, 99.0, 102.0], [True] * 4, [], step=minute))
    assert (
        math.isnan(stats["cagr"]) and math.isnan(stats["sharpe"]) and math.isnan(stats["sortino"])
    )
    assert stats["total_return"] == pytest.approx(0.02)
