"""The kernel: one deterministic event path, bar -> strategies -> pipeline -> broker
-> order events and fills -> portfolio.

Backtest and paper/live loops differ only in *when* they call a stream's bar
runner (:meth:`Kernel.runner`): the backtest runs it over chunks of columns as
fast as possible, the paper loop over each bar when it arrives on the real
clock. Everything the runner does, and everything after it, is shared.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Sequence, Sized
from decimal import Decimal
from typing import Any

import numpy as np
from loguru import logger

from engine.data import BarSeries
from engine.errors import ExecutionError
from engine.kernel.context import BarView, StrategyContext
from engine.kernel.pipeline import Denial, OrderPipeline
from engine.model import (
    TERMINAL_ORDER_STATES,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderState,
    Portfolio,
)

__all__ = ["Kernel", "Stream"]

_ALWAYS = (True,)  # a non-empty sized object: "always call the broker"


def _ignore_bar(instrument: Instrument, bar: BarView) -> None:
    """Stands in for a broker without ``on_bar``."""


def _fan_out(callbacks: tuple[Callable[[BarView], Any], ...]) -> Callable[[BarView], Any]:
    """One callable for a stream's strategies (the callback itself when there is one)."""
    if len(callbacks) == 1:
        return callbacks[0]

    def each(bar: BarView) -> None:
        for callback in callbacks:
            callback(bar)

    return each


class Stream:
    """One instrument's view, strategies and, in paper/live runs, its bar history
    (Python lists grown in place; a backtest hands the handler chunks instead)."""

    __slots__ = ("close", "high", "instrument", "low", "open", "strategies", "ts", "view", "volume")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.view = BarView(instrument)
        self.strategies: list[Any] = []
        self.ts: list[int] = []
        self.open: list[int] = []
        self.high: list[int] = []
        self.low: list[int] = []
        self.close: list[int] = []
        self.volume: list[float] = []

    def columns(self) -> tuple[list[int], list[int], list[int], list[int], list[int], list[float]]:
        """The growing history lists (paper/live), in handler order."""
        return self.ts, self.open, self.high, self.low, self.close, self.volume

    def append(self, series: BarSeries, k: int) -> None:
        """Append bar ``k`` of ``series`` to the history lists."""
        self.ts.append(int(series.ts[k]))
        self.open.append(int(series.open[k]))
        self.high.append(int(series.high[k]))
        self.low.append(int(series.low[k]))
        self.close.append(int(series.close[k]))
        self.volume.append(float(series.volume[k]))

    def __len__(self) -> int:
        return len(self.ts)

    def to_series(self) -> BarSeries:
        """The bars seen so far as a columnar :class:`BarSeries`."""
        i64 = np.int64
        return BarSeries(
            self.instrument,
            np.asarray(self.ts, dtype=i64),
            np.asarray(self.open, dtype=i64),
            np.asarray(self.high, dtype=i64),
            np.asarray(self.low, dtype=i64),
            np.asarray(self.close, dtype=i64),
            np.asarray(self.volume, dtype=np.float64),
        )


class Kernel:
    """Holds the run's state and implements the broker's execution sink."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        portfolio: Portfolio,
        pipeline: OrderPipeline,
        broker: Any,
        broker_name: str = "broker",
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.portfolio = portfolio
        self.pipeline = pipeline
        self.broker = broker
        self.broker_name = broker_name
        self.streams = {i.symbol: Stream(i) for i in instruments}
        #: the view of the bar being processed: the kernel's clock reads its ``ts``
        self._clock: BarView = next(iter(self.streams.values())).view
        self.orders: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.order_counts: Counter[OrderState] = Counter()
        self.illegal_transitions = 0
        self._seq: dict[str, int] = {}
        self._open_by_strategy: dict[str, dict[str, Order]] = {}
        self._fill_listeners: dict[str, Callable[[Fill], Any]] = {}
        self._order_listeners: dict[str, Callable[[Order], Any]] = {}
        self._spawn: Callable[[Any], None] | None = None
        broker.bind(self)
        self._broker_on_bar = getattr(broker, "on_bar", None)
        self._broker_submit = broker.submit

    @property
    def now(self) -> int:
        """Engine time in nanoseconds: the timestamp of the bar being processed."""
        return self._clock.ts

    # -- wiring ----------------------------------------------------------------------

    def add_strategy(self, strategy_id: str, symbol: str, strategy: Any) -> StrategyContext:
        """Attach a strategy instance to an instrument's stream; returns its context."""
        ctx = StrategyContext(self, strategy_id, self.instruments[symbol])
        self.streams[symbol].strategies.append(strategy)
        self._open_by_strategy[strategy_id] = {}
        on_fill = getattr(strategy, "on_fill", None)
        if on_fill is not None:
            self._fill_listeners[strategy_id] = on_fill
        on_order = getattr(strategy, "on_order", None)
        if on_order is not None:
            self._order_listeners[strategy_id] = on_order
        return ctx

    def set_spawner(self, spawn: Callable[[Any], None] | None) -> None:
        """How to run awaitables returned by an async broker (paper/live loops)."""
        self._spawn = spawn

    def runner(
        self,
        symbol: str,
        columns: tuple[list[int], list[int], list[int], list[int], list[int], list[float]]
        | None = None,
        offset: int = 0,
    ) -> Callable[[int, int], None]:
        """The bar runner of one stream: ``run(start, stop)`` processes rows
        ``start:stop`` of ``columns`` (ts, open, high, low, close, volume), row
        ``j`` being bar ``offset + j`` of the instrument. Without ``columns`` the
        stream's own growing history is used (paper/live).

        This is the hot path, shared by every loop: for each bar it fills the
        reused view, lets the broker match resting orders against the bar, then
        calls each strategy's ``on_bar``.
        """
        st = self.streams[symbol]
        view = st.view
        ts, o, h, lo, c, v = columns if columns is not None else st.columns()
        inst = st.instrument
        kernel = self
        shared_clock = len(self.streams) > 1
        self._clock = view
        # Specialise once, so the loop body below is the same for every set-up.
        broker_on_bar = self._broker_on_bar or _ignore_bar
        resting_of = getattr(self.broker, "resting", None)
        if self._broker_on_bar is None:
            resting: Sized = ()  # nothing to match, ever
        elif resting_of is None:
            resting = _ALWAYS  # the broker wants every bar
        else:
            resting = resting_of(symbol)  # a live list: empty means nothing to match
        on_bar = _fan_out(tuple(s.on_bar for s in st.strategies))

        def run(start: int, stop: int) -> None:
            if shared_clock:
                kernel._clock = view
            i = offset + start
            for t, op, hi, lw, cl, vo in zip(
                ts[start:stop],
                o[start:stop],
                h[start:stop],
                lo[start:stop],
                c[start:stop],
                v[start:stop],
                strict=True,
            ):
                view.index = i
                view.ts = t
                view.open = op
                view.high = hi
                view.low = lw
                view.close = cl
                view.volume = vo
                i += 1
                if resting:
                    broker_on_bar(inst, view)
                on_bar(view)

        return run

    # -- queries (PipelineContext) ---------------------------------------------------------

    def instrument(self, symbol: str) -> Instrument:
        """The instrument ``symbol``."""
        return self.instruments[symbol]

    def position(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        return self.portfolio.positions[symbol].quantity

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

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders not yet terminal, optionally for one instrument."""
        out = [o for d in self._open_by_strategy.values() for o in d.values()]
        return out if symbol is None else [o for o in out if o.intent.instrument == symbol]

    def open_orders_of(self, strategy_id: str) -> list[Order]:
        """One strategy's open orders."""
        return list(self._open_by_strategy[strategy_id].values())

    # -- order path ----------------------------------------------------------------------

    def _transition(self, order: Order, state: OrderState, reason: str = "") -> bool:
        try:
            order.transition(state, self.now, reason)
        except Exception as exc:
            self.illegal_transitions += 1
            logger.error("order {}: {}", order.client_id, exc)
            return False
        counts = self.order_counts
        counts[state] = counts.get(state, 0) + 1
        if state in TERMINAL_ORDER_STATES:
            self._open_by_strategy.get(order.intent.strategy, {}).pop(order.client_id, None)
        listener = self._order_listeners.get(order.intent.strategy)
        if listener is not None:
            listener(order)
        return True

    def submit(self, intent: OrderIntent) -> Order | None:
        """Run an intent through the pipeline and, if allowed, to the broker.

        Client order ids are deterministic: ``<strategy>-<instrument>-<sequence>``.
        Returns the order, or ``None`` when the pipeline denied it.
        """
        key = intent.strategy
        seq = self._seq[key] = self._seq.get(key, 0) + 1
        client_id = f"{key}-{intent.instrument}-{seq}"
        decided = (
            self.pipeline.evaluate(intent, client_id, self) if self.pipeline.checks else intent
        )
        if isinstance(decided, Denial):
            order = Order(client_id, intent, self.now)
            self.orders[client_id] = order
            self._transition(order, OrderState.DENIED, decided.reason)
            return None
        order = Order(client_id, decided, self.now)
        self.orders[client_id] = order
        self._open_by_strategy.setdefault(key, {})[client_id] = order
        self._transition(order, OrderState.SUBMITTED)
        result = self._broker_submit(order)
        if result is not None and inspect.isawaitable(result):
            if self._spawn is None:
                if inspect.iscoroutine(result):
                    result.close()
                raise ExecutionError(
                    "an async broker cannot run in a backtest; use a synchronous simulated broker",
                    plugin=self.broker_name,
                )
            self._spawn(result)
        return order

    def cancel(self, client_id: str) -> None:
        """Request cancellation of an open order (no risk checks)."""
        order = self.orders.get(client_id)
        if order is None or not order.is_open:
            return
        result = self.broker.cancel(client_id)
        if result is not None and inspect.isawaitable(result) and self._spawn is not None:
            self._spawn(result)

    # -- execution sink (called by the broker) ----------------------------------------------

    def _order(self, client_id: str) -> Order | None:
        order = self.orders.get(client_id)
        if order is None:
            logger.error("broker {} reported unknown order {}", self.broker_name, client_id)
        return order

    def order_accepted(self, client_id: str) -> None:
        """The venue accepted the order."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.ACCEPTED)

    def order_rejected(self, client_id: str, reason: str) -> None:
        """The venue rejected the order."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.REJECTED, reason)

    def order_canceled(self, client_id: str, reason: str = "") -> None:
        """The order was canceled (by request or by the venue)."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.CANCELED, reason)

    def order_expired(self, client_id: str) -> None:
        """The order expired."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.EXPIRED)

    def order_filled(self, client_id: str, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        """The venue executed ``quantity`` at ``price``, charging ``fee``."""
        order = self._order(client_id)
        if order is None:
            return
        intent = order.intent
        fill = Fill(
            client_id,
            intent.strategy,
            intent.instrument,
            intent.side,
            quantity,
            price,
            fee,
            self.now,
        )
        self.fills.append(fill)
        self.portfolio.apply_fill(fill)
        try:
            order.record_fill(quantity, price, self.now)
        except Exception as exc:
            self.illegal_transitions += 1
            logger.error("order {}: {}", client_id, exc)
        else:
            self.order_counts[order.state] += 1
            if not order.is_open:
                self._open_by_strategy.get(intent.strategy, {}).pop(client_id, None)
            on_order = self._order_listeners.get(intent.strategy)
            if on_order is not None:
                on_order(order)
        listener = self._fill_listeners.get(intent.strategy)
        if listener is not None:
            listener(fill)
