"""Built-in plugin ``simulated``: a venue simulated against bars.

Market orders fill at the next bar's open; limit orders when the bar trades
through the limit (at the open if it gaps past it); stop orders when the bar
reaches the stop (at the open on a gap). Fees in basis points of notional;
slippage in basis points, against the trader and rounded to the tick. Like real
venues it deduplicates client order ids.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from engine import BarView, Broker, Instrument, Order, OrderType, Side, hookimpl, non_negative

BPS = Decimal(10_000)


@attrs.frozen
class SimulatedConfig:
    """``[broker] type = "simulated"`` options."""

    fee_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)
    maker_fee_bps: Decimal | None = attrs.field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    slippage_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)


class SimulatedBroker:
    """Fills orders against bars; reports through the kernel's execution sink."""

    def __init__(self, config: SimulatedConfig) -> None:
        self.config = config
        self.taker = config.fee_bps / BPS
        self.maker = (
            config.fee_bps if config.maker_fee_bps is None else config.maker_fee_bps
        ) / BPS
        self.slippage = config.slippage_bps / BPS
        self.sink: Any = None
        self._seen: set[str] = set()
        self._resting: dict[str, list[tuple[Order, int, int]]] = {}

    def bind(self, sink: Any) -> None:
        """Receive the engine's execution sink."""
        self.sink = sink

    def submit(self, order: Order) -> None:
        """Accept (or reject) an order; it rests until a bar can fill it."""
        cid = order.client_id
        if cid in self._seen:
            self.sink.order_rejected(cid, "duplicate client order id")
            return
        self._seen.add(cid)
        intent = order.intent
        limit = stop = -1
        if intent.type is OrderType.LIMIT:
            inst = self.sink.instrument(intent.instrument)
            if intent.limit_price is None:
                self.sink.order_rejected(cid, "limit order without a limit price")
                return
            limit = inst.round_ticks(intent.limit_price, intent.side.opposite)
        elif intent.type is OrderType.STOP:
            inst = self.sink.instrument(intent.instrument)
            if intent.stop_price is None:
                self.sink.order_rejected(cid, "stop order without a stop price")
                return
            stop = inst.round_ticks(intent.stop_price, intent.side)
        self.sink.order_accepted(cid)
        self.resting(intent.instrument).append((order, limit, stop))

    def resting(self, symbol: str) -> list[tuple[Order, int, int]]:
        """Orders resting on ``symbol``; the same list object for the whole run,
        so the kernel can skip ``on_bar`` while it is empty."""
        return self._resting.setdefault(symbol, [])

    def cancel(self, client_id: str) -> None:
        """Cancel a resting order."""
        for resting in self._resting.values():
            for k, (order, _, _) in enumerate(resting):
                if order.client_id == client_id:
                    del resting[k]
                    self.sink.order_canceled(client_id, "canceled by request")
                    return

    def _match(self, side: Side, limit: int, stop: int, bar: BarView) -> tuple[int, bool] | None:
        """(fill price in ticks, is taker) or None when the bar does not fill it."""
        o, h, lo = bar.open, bar.high, bar.low
        if limit >= 0:
            if side is Side.BUY:
                return ((o, False) if o <= limit else (limit, False)) if lo <= limit else None
            return ((o, False) if o >= limit else (limit, False)) if h >= limit else None
        if stop >= 0:
            if side is Side.BUY:
                return ((o, True) if o >= stop else (stop, True)) if h >= stop else None
            return ((o, True) if o <= stop else (stop, True)) if lo <= stop else None
        return o, True

    def on_bar(self, instrument: Instrument, bar: BarView) -> None:
        """Fill what this bar can fill; orders placed during it wait for the next bar."""
        resting = self.resting(instrument.symbol)
        if not resting:
            return
        batch = resting[:]
        resting.clear()
        waiting = []
        for item in batch:
            order, limit, stop = item
            side = order.intent.side
            if limit < 0 and stop < 0:  # market: the open, as a taker
                ticks, taker = bar.open, True
            else:
                matched = self._match(side, limit, stop, bar)
                if matched is None:
                    waiting.append(item)
                    continue
                ticks, taker = matched
            price = instrument.price(ticks)
            if taker and self.slippage:
                price = instrument.price(
                    instrument.round_ticks(price * (1 + self.slippage * side.sign), side)
                )
            qty = order.remaining
            rate = self.taker if taker else self.maker
            fee = price * qty * instrument.multiplier * rate if rate else rate
            self.sink.order_filled(order.client_id, qty, price, fee)
        resting[:0] = waiting


def _build(config: SimulatedConfig) -> SimulatedBroker:
    return SimulatedBroker(config)


@hookimpl
def engine_brokers() -> list[Broker]:
    """The ``simulated`` broker."""
    return [
        Broker(
            name="simulated",
            factory=_build,
            config_type=SimulatedConfig,
            live=False,
            deduplicates=True,
            description="Fills against bars: market at next open, limit/stop when crossed.",
        )
    ]
