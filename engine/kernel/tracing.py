"""Order tracing: a correlation id that follows an order from the bar that made it
to its fill, on JSON-ready log lines (``[logging] trace_orders = true``).

The id is ``<instrument>-<bar index>`` of the bar whose event produced the intent.
Lines (DEBUG, ``extra``: ``cid``, ``event`` and details): ``bar`` (once per bar that
produced an intent), ``intent``, ``decision`` (allowed, reduced or denied with its
reason), ``submit`` and ``fill``. Installed by wrapping the kernel's ``submit`` and
``order_filled`` on the instance: with tracing off nothing on the order path changes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from engine.model import Order, OrderIntent

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["install_order_tracing"]


def install_order_tracing(kernel: Kernel) -> None:
    """Make ``kernel`` log every order's path with a correlation id."""
    submit = kernel.submit
    filled = kernel.order_filled
    cids: dict[str, str] = {}
    bars_logged: set[str] = set()

    def traced_submit(intent: OrderIntent, *, checked: bool = True) -> Order | None:
        view = kernel.streams[intent.instrument].view
        cid = f"{intent.instrument}-{view.index}"
        log = logger.bind(cid=cid)
        if cid not in bars_logged:
            bars_logged.add(cid)
            log.bind(event="bar", ts=view.ts, close=str(view.record().close)).debug(
                "bar {} close {}", cid, view.record().close
            )
        log.bind(
            event="intent",
            strategy=intent.strategy,
            side=intent.side.value,
            quantity=str(intent.quantity),
            order_type=intent.type.value,
        ).debug(
            "intent {} {} {} {}",
            intent.strategy,
            intent.side.value,
            intent.quantity,
            intent.instrument,
        )
        denials = len(kernel.pipeline.denials)
        order = submit(intent, checked=checked)
        if order is None:
            reason = (
                kernel.pipeline.denials[-1].reason if len(kernel.pipeline.denials) > denials else ""
            )
            log.bind(event="decision", outcome="denied", reason=reason).debug(
                "decision denied: {}", reason
            )
            return None
        cids[order.client_id] = cid
        reduced = order.intent.quantity != intent.quantity
        outcome = "reduced" if reduced else "allowed"
        log.bind(event="decision", outcome=outcome, client_id=order.client_id).debug(
            "decision {} {}", outcome, order.client_id
        )
        log.bind(event="submit", client_id=order.client_id).debug("submit {}", order.client_id)
        return order

    def traced_filled(client_id: str, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        filled(client_id, quantity, price, fee)
        logger.bind(
            cid=cids.get(client_id, ""),
            event="fill",
            client_id=client_id,
            quantity=str(quantity),
            price=str(price),
            fee=str(fee),
        ).debug("fill {} {} at {}", client_id, quantity, price)

    kernel.submit = traced_submit  # type: ignore[method-assign]
    kernel.order_filled = traced_filled  # type: ignore[method-assign]
