"""examples/risk_demo.toml: what the pipeline and the runtime guards refuse, and
that refusing keeps losses where the config says."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import Engine, OrderState, TradingState

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400_000_000_000


@pytest.fixture(scope="module")
def result() -> Any:
    return Engine.from_config(ROOT / "examples" / "risk_demo.toml").backtest_sync()


def test_the_report_lists_denials_by_reason(result: Any) -> None:
    reasons = result.denials_by_reason
    assert sum(reasons.values()) == len(result.denials) > 100
    assert {"trading_state.reducing", "trading_state.halted", "max_spread.too_wide"} <= set(reasons)
    summary = result.summary()
    assert sum(summary["denials_by_stage"].values()) == len(result.denials)
    assert set(summary["denials_by_stage"]) == {"trading_state", "filter"} | (
        set(summary["denials_by_stage"]) & {"validation", "guard"}
    )
    assert summary["denials_by_plugin"]["engine"] == sum(
        n for r, n in reasons.items() if r.startswith("trading_state.")
    )
    rows = dict(result.report_rows())
    assert rows["orders denied"] == str(len(result.denials))
    for reason, count in reasons.items():
        assert rows[f"  denied: {reason}"] == str(count)
    # denied intents never reached the broker
    denied = {d.client_id for d in result.denials}
    assert not denied & {f.client_id for f in result.fill_records}
    assert all(result.orders[c].state is OrderState.DENIED for c in denied)


def test_daily_loss_never_breached_by_more_than_one_orders_worth(result: Any) -> None:
    limit, max_position, costs_bps = (
        1500.0,
        2.0,
        3.0,
    )  # from the config: limit, max_position, fee + slippage
    series = result.series["BTC-USD"]
    close, open_ = series.prices("close"), series.prices("open")
    day = result.curve.ts // DAY
    tripped = 0
    for d in np.unique(day):
        m = day == d
        pnl = result.curve.equity[m] - result.curve.equity[m][0]
        c, o = close[m], open_[m]
        # one order's worth: the largest position moving one bar (close to close, or a
        # gap to the next open where the flatten order fills), plus what closing costs
        one_order = max_position * (np.abs(np.diff(c)).max() + np.abs(o[1:] - c[:-1]).max())
        one_order += max_position * c.max() * costs_bps / 10_000
        assert pnl.min() >= -(limit + one_order), f"day {d}: {pnl.min():.2f}"
        tripped += pnl.min() <= -limit
    assert tripped >= 1  # the limit was really reached, and held
    halts = [c for c in result.state_changes if c.reason.startswith("daily_loss.limit")]
    assert halts and all(c.state is TradingState.HALTED for c in halts)


def test_after_the_drawdown_guard_trips_only_reducing_orders_are_sent(result: Any) -> None:
    changes = result.state_changes
    assert any(c.reason.startswith("drawdown.reduce") for c in changes)
    # periods not ACTIVE: orders created after a change and up to the next one were
    # checked in that state (a change happens after its bar's events)
    periods = []
    for k, c in enumerate(changes):
        if c.state is not TradingState.ACTIVE:
            end = changes[k + 1].ts if k + 1 < len(changes) else 2**63
            periods.append((c.ts, end))
    assert periods
    position = Decimal(0)
    checked = 0
    for fill in result.fill_records:
        signed = fill.quantity if fill.side.value == "buy" else -fill.quantity
        order = result.orders[fill.client_id]
        if any(start < order.created_ts <= end for start, end in periods):
            assert abs(position + signed) < abs(position), fill
            checked += 1
        position += signed
    sent_in_periods = [
        o
        for o in result.orders.values()
        if o.state is not OrderState.DENIED and any(s < o.created_ts <= e for s, e in periods)
    ]
    assert len(sent_in_periods) == checked >= 1  # not vacuous: reducing orders did go out
