"""Built-in plugin ``simulated``: a venue simulated against bars.

Market orders fill at the next bar's open; limit orders when the bar trades
through the limit (at the open if it gaps past it); stop orders when the bar
reaches the stop (at the open on a gap). Fees in basis points of notional;
slippage in basis points, against the trader and rounded to the tick. Like real
venues it deduplicates client order ids.

Perpetual futures: an order that adds exposure is rejected when the account's
initial margin after it would exceed its equity; an open position is liquidated
when a bar reaches its liquidation price (at that price, or at the open when the
bar gaps through it), paying ``liquidation_fee_bps``.
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
    liquidation_fee_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)


#: Kept in a symbol's resting list while a perpetual position is open, so the kernel
#: keeps showing this broker the symbol's bars (to watch for liquidation).
_WATCH: Any = ("liquidation watch",)


class SimulatedBroker:
    """Fills orders against bars; reports through the kernel's execution sink."""

    def __init__(self, config: SimulatedConfig) -> None:
        self.config = config
        self.taker = config.fee_bps / BPS
        self.maker = (
            config.fee_bps if config.maker_fee_bps is None else config.maker_fee_bps
        ) / BPS
        self.slippage = config.slippage_bps / BPS
        self.liquidation_fee = config.liquidation_fee_bps / BPS
        self.sink: Any = None
        #: symbol -> (portfolio version, liquidation price, its ticks) for one position
        self._liquidation_cache: dict[str, tuple[int, Decimal | None, int]] = {}
        self._is_perpetual: dict[str, bool] = {}
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
        perpetual = self._is_perpetual.get(intent.instrument)
        if perpetual is None:
            perpetual = self._perpetual(intent.instrument)
        if perpetual:
            reason = self._margin_problem(order)
            if reason:
                self.sink.order_rejected(cid, reason)
                return
        self.sink.order_accepted(cid)
        resting = self._resting.get(intent.instrument)
        if resting is None:
            resting = self.resting(intent.instrument)
        resting.append((order, limit, stop))

    def _perpetual(self, symbol: str) -> bool:
        known = self._is_perpetual.get(symbol)
        if known is None:
            known = self._is_perpetual[symbol] = self.sink.instrument(symbol).is_perpetual
        return known

    def _margin_problem(self, order: Order) -> str:
        """Why a perpetual order that opens exposure cannot be margined ('' if it can).
        A reversal (long to short) opens its whole new side."""
        intent = order.intent
        inst = self.sink.instrument(intent.instrument)
        held = self.sink.position(intent.instrument)
        after = held + (intent.quantity if intent.side is Side.BUY else -intent.quantity)
        reverses = after * held < 0
        if not reverses and abs(after) <= abs(held):
            return ""  # only reduces
        marks = self.sink.marks()
        price = intent.limit_price or intent.stop_price or marks.get(intent.instrument)
        if price is None:
            return ""
        portfolio = self.sink.portfolio
        rate = price * inst.multiplier * inst.initial_margin
        required = portfolio.initial_margin(marks) + (abs(after) - abs(held)) * rate
        equity = portfolio.equity(marks)
        if required > equity:
            return f"insufficient margin: {required:.2f} initial margin needed, equity {equity:.2f}"
        return ""

    def resting(self, symbol: str) -> list[tuple[Order, int, int]]:
        """Orders resting on ``symbol``; the same list object for the whole run,
        so the kernel can skip ``on_bar`` while it is empty."""
        return self._resting.setdefault(symbol, [])

    def cancel(self, client_id: str) -> None:
        """Cancel a resting order."""
        for resting in self._resting.values():
            for k, item in enumerate(resting):
                if item is not _WATCH and item[0].client_id == client_id:
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
        """Fill what this bar can fill (orders placed during it wait for the next
        bar); then, for a perpetual position, liquidate it if the bar reaches its
        liquidation price."""
        resting = self.resting(instrument.symbol)
        if not resting:
            return
        batch = resting[:]
        resting.clear()
        waiting = []
        for item in batch:
            if item is _WATCH:
                continue  # re-added below while a perpetual position is open
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
            price = ticks * instrument.tick_size
            if taker and self.slippage:
                price = instrument.price(
                    instrument.round_ticks(price * (1 + self.slippage * side.sign), side)
                )
            qty = order.intent.quantity - order.filled_quantity
            rate = self.taker if taker else self.maker
            fee = price * qty * instrument.multiplier * rate if rate else rate
            self.sink.order_filled(order.client_id, qty, price, fee)
        resting[:0] = waiting
        if instrument.is_perpetual:
            self._watch_liquidation(instrument, bar, resting)

    def _liquidation(self, instrument: Instrument) -> tuple[Decimal | None, int]:
        """The position's liquidation price and its ticks (rounded against the
        trader), cached while the account holds just this position and nothing
        changed its cash or lots."""
        portfolio = self.sink.portfolio
        symbol = instrument.symbol
        cached = self._liquidation_cache.get(symbol)
        alone = sum(1 for p in portfolio.positions.values() if p.quantity) == 1
        if cached is not None and alone and cached[0] == portfolio.version:
            return cached[1], cached[2]
        price = self.sink.liquidation_price(symbol)
        held = self.sink.position(symbol)
        # first tick at which the account is liquidatable: at or below the price for a
        # long (rounded down), at or above it for a short (rounded up)
        closing = Side.SELL if held > 0 else Side.BUY
        ticks = -1 if price is None else instrument.round_ticks(price, closing)
        self._liquidation_cache[symbol] = (portfolio.version, price, ticks)
        return price, ticks

    def _watch_liquidation(self, instrument: Instrument, bar: BarView, resting: list[Any]) -> None:
        held = self.sink.position(instrument.symbol)
        if held:
            price, ticks = self._liquidation(instrument)
            if price is not None and ticks > 0:
                if held > 0 and bar.low <= ticks:
                    fill = min(bar.open, ticks)
                elif held < 0 and bar.high >= ticks:
                    fill = max(bar.open, ticks)
                else:
                    fill = -1
                if fill > 0:
                    at = instrument.price(fill)
                    fee = abs(held) * at * instrument.multiplier * self.liquidation_fee
                    self.sink.liquidate(instrument.symbol, at, fee, price)
                    held = self.sink.position(instrument.symbol)
        watching = _WATCH in resting
        if held and not watching:
            resting.append(_WATCH)
        elif not held and watching:
            resting.remove(_WATCH)


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
