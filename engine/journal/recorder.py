"""Journaling a kernel: every order, decision, order event, fill, trading-state
change, funding payment and liquidation is appended to the journal before it takes
effect, and committed before anything leaves the process.

Installed by wrapping kernel methods on the instance (like order tracing): with no
journal nothing on the order path changes. Effects the kernel derives from a
journaled action (the fills of a liquidation) are not journaled again: replaying the
action reproduces them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.journal import JournalStore
from engine.model import Order, OrderIntent, OrderState, OrderType, Side

if TYPE_CHECKING:
    from engine.kernel.core import Kernel
    from engine.kernel.pipeline import Denial
    from engine.kernel.trading import StateChange

__all__ = ["JournalRecorder", "intent_data"]


#: enum values by member (a dict lookup is much cheaper than ``Enum.value``)
_VALUE: dict[Any, str] = {m: m.value for e in (Side, OrderType, OrderState) for m in e}


def intent_data(intent: OrderIntent) -> dict[str, Any]:
    """An intent's fields, JSON-ready (the inverse is :func:`engine.journal.replay.intent_of`)."""
    limit, stop = intent.limit_price, intent.stop_price
    return {
        "strategy": intent.strategy,
        "instrument": intent.instrument,
        "side": _VALUE[intent.side],
        "quantity": str(intent.quantity),
        "type": _VALUE[intent.type],
        "limit": None if limit is None else str(limit),
        "stop": None if stop is None else str(stop),
        "reduce_only": intent.reduce_only,
        "tag": intent.tag,
    }


class JournalRecorder:
    """Appends a kernel's events to ``store``. ``durable``: commit before every
    order leaves for the venue and after every bar (paper and live); otherwise the
    loop commits at the end of each chunk of bars (backtests)."""

    def __init__(self, kernel: Kernel, store: JournalStore, *, durable: bool) -> None:
        self.kernel = kernel
        self.store = store
        self.durable = durable
        self._nested = 0  # >0 inside a journaled action whose effects replay derives

    def _append(self, kind: str, ref: str, data: dict[str, Any]) -> None:
        if not self._nested:
            self.store.append(self.kernel._clock.ts, kind, ref, data)

    def record_config(self, name: str, config: dict[str, Any]) -> None:
        """The config baseline (first entry of a run)."""
        self.store.append(self.kernel.now, "config", name, config)
        self.store.commit()

    def record_bar(self, symbol: str, index: int) -> None:
        """Bar ``index`` of ``symbol`` was processed completely (paper and live)."""
        self.store.append(self.kernel.now, "bar", symbol, {"index": index})
        self.store.commit()

    def install(self) -> None:
        """Wrap the kernel's mutating entry points."""
        k = self.kernel
        append = self._append
        store = self.store
        durable = self.durable
        broker_submit = k._broker_submit
        deny = k._deny
        cancel = k.cancel
        accepted, rejected = k.order_accepted, k.order_rejected
        canceled, expired = k.order_canceled, k.order_expired
        filled = k.order_filled
        liquidate = k.liquidate
        trading_move = k.trading._move
        apply_funding = k.portfolio.apply_funding
        reductions = k.pipeline.reductions

        def journaled_submit(order: Order) -> Any:
            data = intent_data(order.intent)
            if reductions and reductions[-1].client_id == order.client_id:
                r = reductions[-1]
                data["reduction"] = {
                    "check": r.check,
                    "plugin": r.plugin,
                    "reason": r.reason,
                    "before": str(r.before),
                }
            append("order", order.client_id, data)
            if durable and not self._nested:
                store.commit()  # write-ahead: journaled before the venue sees it
            return broker_submit(order)

        def journaled_deny(intent: OrderIntent, client_id: str, denial: Denial) -> None:
            data = intent_data(intent)
            data.update(
                stage=denial.stage,
                check=denial.check,
                plugin=denial.plugin,
                reason=denial.reason,
                message=denial.message,
            )
            append("denied", client_id, data)
            deny(intent, client_id, denial)

        def journaled_cancel(client_id: str) -> None:
            order = k.orders.get(client_id)
            if order is not None and order.is_open:
                append("cancel", client_id, {})
                if durable and not self._nested:
                    store.commit()
            cancel(client_id)

        store_append = store.append

        def event(sink: Any, state: OrderState) -> Any:
            value = state.value

            def journaled(client_id: str, *args: Any) -> None:
                if not self._nested:
                    reason = str(args[0]) if args else ""
                    store_append(
                        k._clock.ts, "event", client_id, {"state": value, "reason": reason}
                    )
                sink(client_id, *args)

            return journaled

        def journaled_fill(
            client_id: str,
            quantity: Decimal,
            price: Decimal,
            fee: Decimal,
            fill_id: str | None = None,
        ) -> None:
            if not self._nested:
                store_append(
                    k._clock.ts,
                    "fill",
                    client_id,
                    {
                        "fill_id": fill_id,
                        "quantity": str(quantity),
                        "price": str(price),
                        "fee": str(fee),
                    },
                )
            filled(client_id, quantity, price, fee, fill_id)

        def journaled_liquidate(
            symbol: str, price: Decimal, fee: Decimal, liquidation_price: Decimal
        ) -> None:
            append(
                "liquidation",
                symbol,
                {"price": str(price), "fee": str(fee), "liquidation_price": str(liquidation_price)},
            )
            self._nested += 1
            try:
                liquidate(symbol, price, fee, liquidation_price)
            finally:
                self._nested -= 1

        def journaled_move(state: Any, ts: int, reason: str, source: str) -> StateChange:
            append(
                "state",
                source,
                {"previous": k.trading.state.value, "state": state.value, "reason": reason},
            )
            return trading_move(state, ts, reason, source)

        def journaled_funding(symbol: str, mark: Decimal, rate: Decimal) -> Decimal:
            append("funding", symbol, {"mark": str(mark), "rate": str(rate)})
            return apply_funding(symbol, mark, rate)

        k._broker_submit = journaled_submit
        k._deny = journaled_deny  # type: ignore[method-assign]
        k.cancel = journaled_cancel  # type: ignore[method-assign]
        k.order_accepted = event(accepted, OrderState.ACCEPTED)  # type: ignore[method-assign]
        k.order_rejected = event(rejected, OrderState.REJECTED)  # type: ignore[method-assign]
        k.order_canceled = event(canceled, OrderState.CANCELED)  # type: ignore[method-assign]
        k.order_expired = event(expired, OrderState.EXPIRED)  # type: ignore[method-assign]
        k.order_filled = journaled_fill  # type: ignore[method-assign]
        k.liquidate = journaled_liquidate  # type: ignore[method-assign]
        k.trading._move = journaled_move  # type: ignore[method-assign]
        k.portfolio.apply_funding = journaled_funding  # type: ignore[method-assign]
        k.journal = self
