"""What a strategy sees: a reused bar view and its context (orders, position, time)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.kernel.operations import Operation, bracket_intents
from engine.model import ZERO, Bar, Instrument, Order, OrderIntent, OrderType, Portfolio, Side

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["BarView", "StrategyContext"]


class BarView:
    """The current bar of one instrument, **reused** from bar to bar.

    Prices are integer ticks (``ctx.price(bar.close)`` gives the exact Decimal);
    ``ts`` is nanoseconds since the epoch; ``index`` is the bar's position in the
    instrument's series. Keep :meth:`record` (a frozen :class:`~engine.model.Bar`),
    not the view itself, if you need the bar later.
    """

    __slots__ = ("close", "high", "index", "instrument", "low", "open", "ts", "volume")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.index = -1
        self.ts = 0
        self.open = self.high = self.low = self.close = 0
        self.volume = 0.0

    def record(self) -> Bar:
        """This bar as an exact, immutable record."""
        p = self.instrument.price
        return Bar(
            self.instrument.symbol,
            self.ts,
            p(self.open),
            p(self.high),
            p(self.low),
            p(self.close),
            Decimal(repr(self.volume)),
        )

    def __repr__(self) -> str:
        return (
            f"BarView({self.instrument.symbol} #{self.index} ts={self.ts} o={self.open} "
            f"h={self.high} l={self.low} c={self.close} v={self.volume})"
        )


def _decimal(value: Decimal | int | str | float) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class StrategyContext:
    """A strategy's handle on the engine: place orders, read position and time.

    Given to the strategy's ``on_start(ctx)``. Orders go through the order
    pipeline; a denied order returns ``None`` and the denial is in the report.
    """

    def __init__(self, kernel: Kernel, strategy_id: str, instrument: Instrument) -> None:
        self._kernel = kernel
        self.id = strategy_id
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.log = logger.bind(strategy=strategy_id)
        self._submit: Callable[[OrderIntent], Order | None] = kernel.submit

    @property
    def now(self) -> int:
        """Current engine time in nanoseconds (the bar's time in a backtest)."""
        return self._kernel.now

    @property
    def metrics(self) -> Any:
        """The run's :class:`~engine.metrics.Metrics`: ``ctx.metrics.counter("x").inc()``."""
        return self._kernel.metrics

    @property
    def portfolio(self) -> Portfolio:
        """The account (cash, positions, trades)."""
        return self._kernel.portfolio

    def position(self, symbol: str | None = None) -> Decimal:
        """Signed quantity this strategy's fills add up to (default: its instrument).
        Several strategies may share an account: each sees its own position."""
        return self._kernel.strategy_positions.get((self.id, symbol or self.symbol), ZERO)

    def account_position(self, symbol: str | None = None) -> Decimal:
        """Signed quantity the whole account holds (all strategies)."""
        return self._kernel.portfolio.positions[symbol or self.symbol].quantity

    def open_orders(self) -> list[Order]:
        """This strategy's orders that are not yet in a terminal state."""
        return self._kernel.open_orders_of(self.id)

    def open_order_count(self) -> int:
        """How many of this strategy's orders are open (cheaper than the list)."""
        return len(self._kernel._open_by_strategy[self.id])

    def price(self, ticks: int) -> Decimal:
        """The exact price of ``ticks`` ticks of this strategy's instrument."""
        return ticks * self.instrument.tick_size

    def ticks(self, price: Decimal | int | str | float) -> int:
        """Ticks of a price on this instrument's grid (rounded to the nearest tick)."""
        return int((_decimal(price) / self.instrument.tick_size).to_integral_value())

    def submit(self, intent: OrderIntent) -> Order | None:
        """Send an intent through the pipeline; the order, or ``None`` when denied."""
        return self._submit(intent)

    def order(
        self,
        side: Side,
        quantity: Decimal | int | str | float,
        *,
        limit: Decimal | int | str | float | None = None,
        stop: Decimal | int | str | float | None = None,
        reduce_only: bool = False,
        tag: str = "",
        symbol: str | None = None,
    ) -> Order | None:
        """Place an order: market by default, limit with ``limit``, stop with ``stop``."""
        kind = (
            OrderType.LIMIT
            if limit is not None
            else OrderType.STOP
            if stop is not None
            else OrderType.MARKET
        )
        intent = OrderIntent(
            strategy=self.id,
            instrument=symbol or self.symbol,
            side=side,
            quantity=_decimal(quantity),
            type=kind,
            limit_price=None if limit is None else _decimal(limit),
            stop_price=None if stop is None else _decimal(stop),
            reduce_only=reduce_only,
            tag=tag,
        )
        return self._submit(intent)

    def buy(self, quantity: Decimal | int | str | float, **kwargs: Any) -> Order | None:
        """Buy ``quantity`` (see :meth:`order`); a plain market buy takes a short cut."""
        if kwargs:
            return self.order(Side.BUY, quantity, **kwargs)
        q = quantity if type(quantity) is Decimal else _decimal(quantity)
        return self._submit(OrderIntent(self.id, self.symbol, Side.BUY, q))

    def sell(self, quantity: Decimal | int | str | float, **kwargs: Any) -> Order | None:
        """Sell ``quantity`` (see :meth:`order`); a plain market sell takes a short cut."""
        if kwargs:
            return self.order(Side.SELL, quantity, **kwargs)
        q = quantity if type(quantity) is Decimal else _decimal(quantity)
        return self._submit(OrderIntent(self.id, self.symbol, Side.SELL, q))

    def bracket(
        self,
        side: Side,
        quantity: Decimal | int | str | float,
        *,
        take_profit: Decimal | int | str | float,
        stop_loss: Decimal | int | str | float,
        limit: Decimal | int | str | float | None = None,
    ) -> Operation:
        """Entry (market, or limit at ``limit``), take-profit and stop-loss placed as
        one operation: if a leg is refused the others are cancelled (rolled back);
        once placed, the exit that fills first cancels the other. See
        :mod:`engine.kernel.operations`."""
        intents = bracket_intents(
            self.id,
            self.symbol,
            side,
            _decimal(quantity),
            _decimal(take_profit),
            _decimal(stop_loss),
            None if limit is None else _decimal(limit),
        )
        return self._kernel.operations.place("bracket", self.id, intents, self._submit)

    def batch(self, intents: list[OrderIntent]) -> Operation:
        """Place ``intents`` as one operation: all placed, or none left open (the
        placed ones are cancelled when one is refused)."""
        return self._kernel.operations.place("batch", self.id, intents, self._submit)

    def cancel(self, order: Order | str) -> None:
        """Ask the broker to cancel an open order (cancels bypass risk checks)."""
        self._kernel.cancel(order if isinstance(order, str) else order.client_id)
