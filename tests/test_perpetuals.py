"""Perpetual futures: margin, funding and liquidation against hand-computed figures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import BarSeries, Engine, Feed, PluginSettings, Strategy, hookimpl

D = Decimal
HOUR = 3_600_000_000_000
ROOT = Path(__file__).resolve().parents[1]


class Script:
    """Buys 2 on bar 0, sells 0.4 on bar 10."""

    def __init__(self, _: Any) -> None:
        self.fills: list[Any] = []

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        if bar.index == 0:
            self.ctx.buy("2")
        elif bar.index == 10:
            self.ctx.sell("0.4")

    def on_fill(self, fill: Any) -> None:
        self.fills.append(fill)


FLAT = (25000.0, 25000.0, 25000.0, 25000.0)
BARS = (
    [FLAT] * 8
    + [(25000.0, 25500.0, 25000.0, 25500.0)]  # 08:00, funding marked at 25,500
    + [(24000.0, 24100.0, 21000.0, 21500.0)]  # 09:00, low 21,000: liquidation
    + [(21500.0, 21500.0, 21500.0, 21500.0)] * 6  # 10:00 to 15:00; short fills at 11:00
    + [(21000.0, 21000.0, 21000.0, 21000.0)] * 2  # 16:00 funding marked at 21,000
)


class Fixed:
    def __init__(self, _: Any) -> None:
        pass

    def load(self, instrument: Any, ctx: Any) -> BarSeries:
        ts = [
            1_704_067_200_000_000_000 + HOUR * k for k in range(len(BARS))
        ]  # 2024-01-01 00:00 UTC
        o, h, lo, c = zip(*BARS, strict=True)
        return BarSeries.from_arrays(instrument, ts, o, h, lo, c, [100.0] * len(BARS))


def run(strategy: type = Script) -> Any:
    """Backtest ``strategy`` on the fixed bars: 10,000 cash, BTC-PERP at 5x."""

    class P:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=strategy)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="fixed", factory=Fixed)]

    eng = Engine.from_config(
        {
            "engine": {"initial_cash": "10000"},
            "instruments": [
                {
                    "symbol": "BTC-PERP",
                    "tick_size": "0.1",
                    "lot_size": "0.001",
                    "kind": "perpetual",
                    "initial_margin": "0.2",
                    "maintenance_margin": "0.05",
                    "funding_interval": "8h",
                    "funding_rate": "0.0001",
                }
            ],
            "feed": {"type": "fixed"},
            "broker": {"type": "simulated", "fee_bps": "4", "liquidation_fee_bps": "50"},
            "strategies": [{"type": "script"}],
        },
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(P(), "p")
    return eng.backtest_sync()


def test_a_five_times_long_is_funded_then_liquidated_as_computed_by_hand() -> None:
    r = run()
    entry, liquidation, short = r.fill_records
    # 2 BTC at 25,000 = 50,000 notional on 10,000: 5x; initial margin 10,000 fits exactly
    assert (entry.side.value, entry.quantity, entry.price, entry.fee) == (
        "buy",
        D(2),
        D(25000),
        D("20.0000"),
    )
    # 08:00 funding: longs pay 2 * 25,500 * 0.0001 = 5.10
    first = r.funding_payments[0]
    assert (first.ts - 1_704_067_200_000_000_000) // HOUR == 8
    assert (first.quantity, first.mark, first.amount) == (D(2), D(25500), D("-5.1000"))
    # cash 10,000 - 20 - 5.10 = 9,974.90; liquidation price
    # (2 * 25,000 - 9,974.90) / (2 * (1 - 0.05)) = 40,025.10 / 1.9 = 21,065.8421...
    (liq,) = r.liquidations
    assert abs(liq.liquidation_price - D("40025.10") / D("1.9")) < D("1e-20")
    # the 09:00 bar reaches 21,000: the first tick at or below 21,065.84 is 21,065.8
    assert (liq.side, liq.quantity, liq.price) == ("sell", D(2), D("21065.8"))
    assert liq.fee == D("2") * D("21065.8") * D("0.005") == D("210.6580")
    assert liquidation.price == D("21065.8") and liquidation.fee == liq.fee
    # the round trip: 2 * (21,065.8 - 25,000) - 20 - 210.658 = -8,099.058
    (trade,) = r.trade_records[:1]
    assert trade.pnl == D("-8099.058")
    # afterwards: short 0.4 at 21,500 (initial margin 1,720 fits the remaining equity)
    assert (short.side.value, short.quantity, short.price, short.fee) == (
        "sell",
        D("0.4"),
        D(21500),
        D("3.44000"),
    )
    # 16:00 funding: shorts receive 0.4 * 21,000 * 0.0001 = 0.84
    second = r.funding_payments[1]
    assert (second.quantity, second.mark, second.amount) == (D("-0.4"), D(21000), D("0.84000"))
    # cash: 10,000 - 20 - 5.10 - 7,868.4 - 210.658 - 3.44 + 0.84 = 1,893.242
    assert r.portfolio.cash == D("1893.242")
    assert r.portfolio.funding == D("-4.26")
    # equity = cash + unrealised PnL of the short marked at the last close (21,000)
    assert r.final_equity == D("1893.242") + D("0.4") * (D(21500) - D(21000))
    assert any(a.title == "BTC-PERP position liquidated" for a in r.alerts)


def test_the_perp_demo_figures_agree_with_an_independent_replay() -> None:
    r = Engine.from_config(ROOT / "examples" / "perp_demo.toml").backtest_sync()
    assert {t.direction for t in r.trade_records} == {"long", "short"}
    assert r.liquidations and r.funding_payments
    series = r.series["BTC-PERP"]
    closes = dict(zip(series.ts.tolist(), series.close.tolist(), strict=True))
    mmr = D("0.05")
    for pay in r.funding_payments:
        assert pay.ts % (8 * HOUR) == 0
        held = sum(
            (f.quantity if f.side.value == "buy" else -f.quantity)
            for f in r.fill_records
            if f.ts <= pay.ts
        )
        assert pay.quantity == held and pay.mark == D(closes[pay.ts]) * D("0.1")
        assert pay.amount == -held * pay.mark * D("0.0001")
    for liq in r.liquidations:
        # cash just before: initial + realised PnL - fees + funding, all before the liquidation
        before = [f for f in r.fill_records if f.ts < liq.ts]
        realized = sum((t.pnl + t.fees for t in r.trade_records if t.exit_ts < liq.ts), D(0))
        cash = D(10000) + realized - sum((f.fee for f in before), D(0))
        cash += sum((p.amount for p in r.funding_payments if p.ts < liq.ts), D(0))
        q = sum(((f.quantity if f.side.value == "buy" else -f.quantity) for f in before), D(0))
        (opening,) = [t for t in r.trade_records if t.exit_ts == liq.ts]
        cost = q * opening.entry_price
        expected = (cost - cash) / (q - mmr * abs(q))
        assert abs(liq.liquidation_price - expected) < D("1e-12")
        if q > 0:
            assert liq.price <= liq.liquidation_price
        else:
            assert liq.price >= liq.liquidation_price


def test_the_venue_rejects_what_the_margin_cannot_carry() -> None:
    class Greedy(Script):
        def on_bar(self, bar: Any) -> None:
            if bar.index == 0:
                self.ctx.buy("2.5")  # 62,500 notional on 10,000: 12,500 initial margin

    result = run(Greedy)
    (order,) = result.orders.values()
    assert order.state.value == "rejected"
    assert (
        order.history[-1][2]
        == "insufficient margin: 12500.00 initial margin needed, equity 10000.00"
    )
    assert not result.fill_records
