"""What checks and runtime guards may ask the kernel: the read-only side of
:class:`~engine.kernel.pipeline.PipelineContext`.

Equity is marked at the last close of each instrument. Drawdown and daily PnL
are measured on equity *sampled* whenever a check or a runtime guard asks for
it (so a runtime guard on a one-minute cadence samples every minute); the
peak and the start-of-day equity come from those samples. A UTC day starts at
midnight.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.model import ZERO, Instrument, Order, OrderIntent, Portfolio, Side

if TYPE_CHECKING:
    from engine.kernel.context import BarView
    from engine.kernel.core import Stream
    from engine.kernel.trading import TradingStateMachine

__all__ = ["DAY_NS", "KernelQueries"]

DAY_NS = 86_400_000_000_000


class KernelQueries:
    """Read-only questions about the account and the market, asked by checks."""

    instruments: dict[str, Instrument]
    portfolio: Portfolio
    streams: dict[str, Stream]
    trading: TradingStateMachine
    _open_by_strategy: dict[str, dict[str, Order]]
    _submitted: list[int]
    _open: dict[str, Order]
    _clock: BarView
    strategy_positions: dict[tuple[str, str], Decimal]

    @property
    def now(self) -> int:
        """Engine time in nanoseconds."""
        raise NotImplementedError

    def _init_queries(self) -> None:
        self.peak_equity: Decimal | None = None
        self._day = -1
        self.day_start_equity = ZERO
        self._equity_key: tuple[int, int, int] = (0, -1, -1)
        self._equity = ZERO

    # -- market -----------------------------------------------------------------------

    def instrument(self, symbol: str) -> Instrument:
        """The instrument ``symbol``."""
        return self.instruments[symbol]

    def bar(self, symbol: str) -> BarView:
        """The current (last seen) bar of ``symbol``."""
        return self.streams[symbol].view

    def last_price(self, symbol: str) -> Decimal | None:
        """Last close seen for ``symbol``."""
        view = self.streams[symbol].view
        return None if view.index < 0 else self.instruments[symbol].price(view.close)

    def marks(self) -> dict[str, Decimal]:
        """Last close of every instrument that has had a bar."""
        out = {}
        for symbol in self.instruments:
            price = self.last_price(symbol)
            if price is not None:
                out[symbol] = price
        return out

    def history(self, symbol: str, column: str, n: int) -> np.ndarray[Any, Any]:
        """The last ``n`` values of ``column`` up to the current bar (fewer at the
        start): prices in ticks, ``volume``, or an optional column."""
        return self.streams[symbol].history(column, n)

    def window_sum(self, symbol: str, column: str, n: int) -> float:
        """Sum of the last ``n`` values of ``column`` (``volume``, a price column in
        ticks, or an optional column) up to the current bar; O(1) in a backtest."""
        return self.streams[symbol].window_sum(column, n)

    def column(self, symbol: str, name: str) -> float | None:
        """The current bar's value of an optional column (``bid``, ``ask``,
        ``bid_size``, ``ask_size``, ``funding_rate``); ``None`` if the feed has none."""
        values = self.streams[symbol].history(name, 1)
        return float(values[-1]) if len(values) else None

    # -- account ------------------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        return self.portfolio.positions[symbol].quantity

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        """Signed quantity that ``strategy``'s fills add up to in ``symbol``."""
        return self.strategy_positions.get((strategy, symbol), ZERO)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders not yet terminal, optionally for one instrument."""
        out = list(self._open.values())
        return out if symbol is None else [o for o in out if o.intent.instrument == symbol]

    def open_order_count(self) -> int:
        """How many orders are open (all strategies and instruments)."""
        return len(self._open)

    def reserved(
        self, symbol: str, strategy: str | None = None, side: Side | None = None
    ) -> Decimal:
        """Signed quantity still to fill on open orders (all strategies or one; both
        sides or, with ``side``, only that side's orders: a risk limit counts the
        orders that could add to the position, not those that may never fill)."""
        total = ZERO
        for o in self._open.values():
            intent = o.intent
            if intent.instrument != symbol or (side is not None and intent.side is not side):
                continue
            if strategy is None or intent.strategy == strategy:
                total += o.remaining if intent.side is Side.BUY else -o.remaining
        return total

    def equity(self) -> Decimal:
        """Equity at the last closes; also a sample for drawdown and daily PnL.
        Computed once per event and account change (checks of one intent share it)."""
        clock = self._clock
        key = (id(clock), clock.index, self.portfolio.version)
        if key == self._equity_key:
            return self._equity
        portfolio = self.portfolio
        value = portfolio.cash  # plus what held positions add, at the current closes
        for symbol, pos in portfolio.positions.items():
            q = pos.quantity
            if q:
                inst = pos.instrument
                mark = self.streams[symbol].view.close * inst.tick_size
                if inst.is_perpetual:
                    value += pos.unrealized_pnl(mark)
                else:
                    value += q * mark * inst.multiplier
        self._equity_key, self._equity = key, value
        if self.peak_equity is None or value > self.peak_equity:
            self.peak_equity = value
        day = clock.ts // DAY_NS
        if day != self._day:
            self._day = day
            self.day_start_equity = value
        return value

    def drawdown(self) -> float:
        """Fraction below the peak of sampled equity (0.0 at a peak)."""
        value = self.equity()
        peak = self.peak_equity
        return float((peak - value) / peak) if peak and peak > 0 else 0.0

    def daily_pnl(self) -> Decimal:
        """Equity now minus equity at the first sample of this UTC day."""
        value = self.equity()
        return value - self.day_start_equity

    def exposure(self, strategy: str | None = None) -> tuple[Decimal, Decimal, Decimal]:
        """Notional exposure at the last closes, open orders counted in the worst case
        (an order may fill, its opposite may not): ``(gross, net if every open buy
        fills, net if every open sell fills)``; one strategy's with ``strategy``."""
        gross = net_long = net_short = ZERO
        for symbol, price in self.marks().items():
            unit = price * self.instrument(symbol).multiplier
            held = (
                self.position(symbol)
                if strategy is None
                else self.strategy_position(strategy, symbol)
            )
            buys = self.reserved(symbol, strategy, Side.BUY)
            sells = self.reserved(symbol, strategy, Side.SELL)
            gross += max(abs(held + buys), abs(held + sells)) * unit
            net_long += (held + buys) * unit
            net_short += (held + sells) * unit
        return gross, net_long, net_short

    def margin_ratio(self) -> Decimal:
        """Maintenance margin over equity (see :meth:`Portfolio.margin_ratio`)."""
        return self.portfolio.margin_ratio(self.marks())

    def liquidation_price(
        self, symbol: str, add: tuple[Decimal, Decimal] | None = None
    ) -> Decimal | None:
        """Where the position in ``symbol`` would be liquidated (cross margin); with
        ``add=(signed quantity, price)``, after such a fill."""
        return self.portfolio.liquidation_price(symbol, self.marks(), add)

    def is_reducing(self, intent: OrderIntent) -> bool:
        """True when the intent only reduces the position in its instrument, counting
        open orders that already reduce it."""
        held = self.position(intent.instrument)
        if not held or (held > 0) == (intent.side is Side.BUY):
            return False
        pending = self.reserved(intent.instrument)
        already = -pending if held > 0 else pending  # open orders on the reducing side
        return intent.quantity + max(already, ZERO) <= abs(held)

    def orders_since(self, ts: int) -> int:
        """Orders sent to the broker at or after ``ts`` (for rate limits)."""
        return len(self._submitted) - bisect.bisect_left(self._submitted, ts)

    @property
    def trading_state(self) -> Any:
        """The current :class:`~engine.kernel.trading.TradingState`."""
        return self.trading.state
