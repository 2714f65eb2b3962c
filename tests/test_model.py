"""Domain model: instruments, the order state machine, FIFO positions, portfolio accounting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    Fill,
    IllegalTransition,
    Instrument,
    Order,
    OrderIntent,
    OrderState,
    Portfolio,
    Side,
)
from engine.model import ORDER_TRANSITIONS, TERMINAL_ORDER_STATES

D = Decimal
BTC = Instrument("BTC-USD", tick_size=D("0.01"), lot_size=D("0.001"))


def fill(
    side: Side, qty: str | Decimal, price: str | Decimal, fee: str | Decimal = "0", ts: int = 0
) -> Fill:
    return Fill("c", "s", "BTC-USD", side, D(qty), D(price), D(fee), ts)


class TestInstrument:
    def test_ticks_round_trip_exactly(self) -> None:
        assert BTC.to_ticks(D("101.25")) == 10125
        assert BTC.price(10125) == D("101.25")

    def test_off_grid_price_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="not a multiple of tick size"):
            BTC.to_ticks(D("101.255"))

    def test_round_ticks_goes_against_the_trader(self) -> None:
        assert BTC.round_ticks(D("101.251"), Side.BUY) == 10126
        assert BTC.round_ticks(D("101.259"), Side.SELL) == 10125
        assert BTC.round_ticks(D("101.25"), Side.BUY) == 10125

    def test_lot_multiple(self) -> None:
        assert BTC.is_lot_multiple(D("0.005"))
        assert not BTC.is_lot_multiple(D("0.0005"))


class TestOrderStateMachine:
    def order(self) -> Order:
        return Order("c1", OrderIntent("s", "BTC-USD", Side.BUY, D(2)), created_ts=0)

    def test_full_lifecycle_with_partial_fills(self) -> None:
        o = self.order()
        o.transition(OrderState.SUBMITTED, 1)
        o.transition(OrderState.ACCEPTED, 2)
        o.record_fill(D(1), D(100), 3)
        assert o.state is OrderState.PARTIALLY_FILLED and o.remaining == D(1)
        o.record_fill(D(1), D(102), 4)
        assert o.state is OrderState.FILLED
        assert o.average_price == D(101)
        assert not o.is_open
        assert [s for _, s, _ in o.history] == [
            OrderState.SUBMITTED,
            OrderState.ACCEPTED,
            OrderState.PARTIALLY_FILLED,
            OrderState.FILLED,
        ]

    def test_cancel_path(self) -> None:
        o = self.order()
        for s in (
            OrderState.SUBMITTED,
            OrderState.ACCEPTED,
            OrderState.PENDING_CANCEL,
            OrderState.CANCELED,
        ):
            o.transition(s, 0)
        assert not o.is_open

    @pytest.mark.parametrize(
        ("path", "bad"),
        [
            ([], OrderState.FILLED),
            ([OrderState.DENIED], OrderState.SUBMITTED),
            ([OrderState.SUBMITTED, OrderState.REJECTED], OrderState.ACCEPTED),
            ([OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.FILLED], OrderState.CANCELED),
        ],
    )
    def test_illegal_transitions_raise(self, path: list[OrderState], bad: OrderState) -> None:
        o = self.order()
        for s in path:
            o.transition(s, 0)
        with pytest.raises(IllegalTransition, match=f"-> {bad.name}"):
            o.transition(bad, 0)

    def test_terminal_states(self) -> None:
        assert {s.name for s in TERMINAL_ORDER_STATES} == {
            "DENIED",
            "REJECTED",
            "FILLED",
            "CANCELED",
            "EXPIRED",
        }
        for s in TERMINAL_ORDER_STATES:
            assert ORDER_TRANSITIONS.is_terminal(s)


class TestPosition:
    def test_fifo_partial_close_and_flip(self) -> None:
        p = Portfolio(D(1000), {"BTC-USD": BTC})
        p.apply_fill(fill(Side.BUY, "1", "100", "0.1", ts=1))
        p.apply_fill(fill(Side.BUY, "1", "110", "0.1", ts=2))
        trades = p.apply_fill(fill(Side.SELL, "3", "120", "0.3", ts=3))
        # closes 100 then 110 (FIFO), then opens a 1-unit short at 120
        assert [(t.entry_price, t.quantity) for t in trades] == [(D(100), D(1)), (D(110), D(1))]
        assert trades[0].pnl == D(20) - D("0.1") - D("0.1")
        assert trades[1].pnl == D(10) - D("0.1") - D("0.1")
        pos = p.positions["BTC-USD"]
        assert pos.quantity == D(-1) and pos.average_price == D(120)
        cover = p.apply_fill(fill(Side.BUY, "1", "115", "0.1", ts=4))
        assert cover[0].direction == "short"
        assert cover[0].pnl == D(5) - D("0.1") - D("0.1")
        assert pos.quantity == 0 and not pos.lots

    def test_exact_single_lot_close(self) -> None:
        p = Portfolio(D(1000), {"BTC-USD": BTC})
        p.apply_fill(fill(Side.SELL, "2", "50", "0.05"))
        (t,) = p.apply_fill(fill(Side.BUY, "2", "40", "0.04"))
        assert t.direction == "short" and t.pnl == D(20) - D("0.09") and t.fees == D("0.09")


prices = st.integers(min_value=1, max_value=10_000_000).map(lambda t: t * BTC.tick_size)
quantities = st.integers(min_value=1, max_value=5_000).map(lambda n: n * BTC.lot_size)
fee_bps = st.integers(min_value=0, max_value=50)
fills = st.lists(
    st.tuples(st.sampled_from(Side), quantities, prices, fee_bps), min_size=1, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(fills, prices)
def test_accounting_identities_hold_after_every_fill(
    seq: list[tuple[Side, Decimal, Decimal, int]], mark: Decimal
) -> None:
    p = Portfolio(D(100_000), {"BTC-USD": BTC})
    cash = D(100_000)
    position = D(0)
    for k, (side, qty, price, bps) in enumerate(seq):
        fee = price * qty * bps / 10_000
        p.apply_fill(Fill(f"c{k}", "s", "BTC-USD", side, qty, price, fee, k))
        signed = qty if side is Side.BUY else -qty
        cash -= signed * price + fee
        position += signed
        marks = {"BTC-USD": mark}
        # cash and position agree with an independent running total
        assert p.cash == cash
        assert p.positions["BTC-USD"].quantity == position
        # equity is cash plus the value of the position ...
        assert p.equity(marks) == cash + position * mark
        # ... and also initial cash plus realised and unrealised PnL, minus fees
        assert p.equity(marks) == p.initial_cash + p.realized_pnl - p.fees + p.unrealized_pnl(marks)
        # the sum of closed round trips' PnL plus the entry fees still held by open
        # lots equals realised PnL minus all fees paid
        open_fees = sum((lot.fee for lot in p.positions["BTC-USD"].lots), D(0))
        assert sum((t.pnl for t in p.trades), D(0)) - open_fees == p.realized_pnl - p.fees


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(Side), quantities, prices, prices, fee_bps, fee_bps)
def test_round_trip_pnl_is_price_difference_times_quantity_minus_fees(
    side: Side, qty: Decimal, entry: Decimal, exit_: Decimal, bps_in: int, bps_out: int
) -> None:
    p = Portfolio(D(1_000_000), {"BTC-USD": BTC})
    fee_in = entry * qty * bps_in / 10_000
    fee_out = exit_ * qty * bps_out / 10_000
    p.apply_fill(Fill("a", "s", "BTC-USD", side, qty, entry, fee_in, 1))
    (trade,) = p.apply_fill(Fill("b", "s", "BTC-USD", side.opposite, qty, exit_, fee_out, 2))
    direction = 1 if side is Side.BUY else -1
    expected = (exit_ - entry) * qty * direction - fee_in - fee_out
    assert trade.pnl == expected
    assert p.cash - p.initial_cash == expected
    assert p.positions["BTC-USD"].quantity == 0
