"""Built-in plugin ``performance``: the report's statistics.

Returns are per bar of the merged timeline; annualisation uses calendar time
(bars per year inferred from the median bar spacing), as for 24/7 markets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engine import Analyzer, hookimpl

if TYPE_CHECKING:
    from engine import RunResult

YEAR_NS = 365.25 * 86_400 * 1e9
#: Below one day of data annualised figures (CAGR, Sharpe, Sortino) mean nothing:
#: they are reported as n/a.
MIN_ANNUALISED_YEARS = 1 / 365.25


def compute(result: RunResult) -> dict[str, Any]:
    """Total return, CAGR, Sharpe, Sortino, max drawdown, win rate, exposure, trades."""
    import numpy as np  # here, not at import: listing plugins stays fast

    curve = result.curve
    equity = curve.equity
    trades = result.trade_records
    initial = float(result.portfolio.initial_cash)
    final = float(result.final_equity)
    stats: dict[str, Any] = {
        "total_return": final / initial - 1.0,
        "cagr": math.nan,
        "sharpe": math.nan,
        "sortino": math.nan,
        "max_drawdown": float(curve.drawdown.min()) if len(equity) else 0.0,
        "win_rate": (sum(1 for t in trades if t.pnl > 0) / len(trades)) if trades else math.nan,
        "exposure": float(curve.invested.mean()) if len(equity) else 0.0,
        "trades": len(trades),
    }
    years = float(curve.ts[-1] - curve.ts[0]) / YEAR_NS if len(equity) > 2 else 0.0
    if years >= MIN_ANNUALISED_YEARS:
        if final > 0:
            growth = math.log(final / initial) / years
            stats["cagr"] = math.expm1(growth) if growth < 700 else math.inf
        returns = np.diff(equity) / equity[:-1]
        per_year = YEAR_NS / float(np.median(np.diff(curve.ts)))
        std = float(returns.std())
        mean = float(returns.mean())
        if std > 0:
            stats["sharpe"] = mean / std * math.sqrt(per_year)
        downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            stats["sortino"] = mean / downside * math.sqrt(per_year)
    return stats


@hookimpl
def engine_analyzers() -> list[Analyzer]:
    """The ``performance`` analyzer."""
    return [
        Analyzer(
            name="performance", compute=compute, description="Return, risk and trade statistics."
        )
    ]
