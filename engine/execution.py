"""Calls to an asynchronous venue, through the resilience policy.

In paper and live runs an asynchronous broker is wrapped in a :class:`GuardedVenue`:
``submit``, ``cancel``, ``order_status`` and ``snapshot`` go through the broker
plugin's :class:`~engine.resilience.ResiliencePolicy` (bulkhead, rate limit, circuit
breaker, retries for idempotent calls, per-attempt timeout). Submission is retried
only when the venue deduplicates client order ids (the broker record says so).

No order is left in doubt: a submit that failed before leaving (circuit open,
bulkhead full, rate limited) is rejected here; one whose outcome is unknown
(timeout, lost connection) is settled by asking the venue for the order
(``order_status``): unknown there -> rejected, known -> its state is applied.
While the venue cannot be asked, such orders wait in :attr:`GuardedVenue.unsettled`
and are settled when the breaker closes again, and at the end of the run.

An open breaker moves trading to ``on_breaker_open`` (halted or reducing); while it
is open :meth:`GuardedVenue.probe` makes the single half-open trial call once the
reset time has passed, so trading resumes without waiting for an order.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.errors import BulkheadFull, CircuitOpen, RateLimited
from engine.model import Order, OrderState
from engine.resilience import BreakerState, ResiliencePolicy
from engine.venue import VenueOrder

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["GuardedVenue", "is_async_broker"]

_NOT_SENT = (CircuitOpen, BulkheadFull, RateLimited)


class GuardedVenue:
    """A broker object whose venue calls go through ``policy`` (see the module doc)."""

    def __init__(self, venue: Any, policy: ResiliencePolicy, *, deduplicates: bool) -> None:
        self.venue = venue
        self.policy = policy
        self.deduplicates = deduplicates
        self.sink: Any = None
        #: orders whose submit outcome is unknown until the venue can be asked
        self.unsettled: dict[str, Order] = {}
        self.probes = 0

    def __getattr__(self, name: str) -> Any:  # on_bar, resting...: the venue's own
        return getattr(self.venue, name)

    def bind(self, sink: Any) -> None:
        """Receive the kernel's execution sink (and pass it to the venue)."""
        self.sink = sink
        self.venue.bind(sink)

    async def submit(self, order: Order) -> None:
        """Send ``order``; settle it if the outcome is unknown."""
        try:
            await self.policy.call(self.venue.submit, order, idempotent=self.deduplicates)
        except _NOT_SENT as exc:
            self._reject(order, f"not sent: {exc}")
        except Exception as exc:
            logger.warning(
                "submit of {} failed ({}: {}); asking the venue",
                order.client_id,
                type(exc).__name__,
                exc,
            )
            await self._settle(order, f"{type(exc).__name__}: {exc}")

    async def cancel(self, client_id: str) -> None:
        """Cancel at the venue (idempotent: retried)."""
        try:
            await self.policy.call(self.venue.cancel, client_id, idempotent=True)
        except Exception as exc:
            logger.warning("cancel of {} failed: {}: {}", client_id, type(exc).__name__, exc)

    async def order_status(self, client_id: str) -> VenueOrder | None:
        """The venue's view of one order (idempotent: retried)."""
        result: VenueOrder | None = await self.policy.call(
            self.venue.order_status, client_id, idempotent=True
        )
        return result

    async def snapshot(self) -> Any:
        """The venue's orders, fills and positions (idempotent: retried)."""
        return await self.policy.call(self.venue.snapshot, idempotent=True)

    def _reject(self, order: Order, reason: str) -> None:
        if order.state is OrderState.SUBMITTED:
            self.sink.order_rejected(order.client_id, reason)

    async def _settle(self, order: Order, error: str) -> None:
        if order.state is not OrderState.SUBMITTED:
            return  # the venue already told us (an ack or a fill arrived meanwhile)
        if not hasattr(self.venue, "order_status"):
            self.unsettled[order.client_id] = order
            logger.error(
                "order {} is in doubt and {} cannot be asked", order.client_id, self.policy.name
            )
            return
        try:
            known = await self.order_status(order.client_id)
        except Exception as exc:
            self.unsettled[order.client_id] = order
            logger.warning(
                "order {} stays in doubt: {}: {}", order.client_id, type(exc).__name__, exc
            )
            return
        self.unsettled.pop(order.client_id, None)
        self._apply(order, known, error)

    def _apply(self, order: Order, known: VenueOrder | None, error: str) -> None:
        if order.state is not OrderState.SUBMITTED:
            return
        cid = order.client_id
        if known is None:
            self.sink.order_rejected(cid, f"submit failed and the venue does not know it: {error}")
            return
        state = OrderState(known.state)
        if state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.FILLED):
            self.sink.order_accepted(cid)  # its fills come (or came) as fills
        elif state is OrderState.REJECTED:
            self.sink.order_rejected(cid, "rejected at the venue")
        elif state is OrderState.CANCELED:
            self.sink.order_canceled(cid, "canceled at the venue")
        elif state is OrderState.EXPIRED:
            self.sink.order_expired(cid)

    async def settle_all(self) -> int:
        """Ask the venue about every order still in doubt; returns how many remain."""
        for cid, order in list(self.unsettled.items()):
            await self._settle(order, "outcome unknown")
            if order.state is not OrderState.SUBMITTED:
                self.unsettled.pop(cid, None)
        return len(self.unsettled)

    async def probe(self) -> bool:
        """The half-open trial when the breaker's reset time has passed; True when it
        closed the breaker."""
        breaker = self.policy.breaker
        if breaker.state is not BreakerState.OPEN or breaker.retry_after > 0:
            return False
        self.probes += 1
        target = getattr(self.venue, "snapshot", None) or getattr(self.venue, "order_status", None)
        if target is None:
            return False
        args: tuple[Any, ...] = (
            () if target is getattr(self.venue, "snapshot", None) else ("probe",)
        )
        try:
            await self.policy.call(target, *args, idempotent=False)
        except Exception as exc:
            logger.info(
                "breaker {} trial failed: {}: {}", self.policy.name, type(exc).__name__, exc
            )
            return False
        return _state_of(breaker) is BreakerState.CLOSED  # the trial may have closed it

    async def watch(self, kernel: Kernel, every: float = 0.01) -> None:
        """Background task of a paper/live run: probe an open breaker, settle orders in
        doubt once it is closed."""
        while True:
            await asyncio.sleep(every)
            if self.policy.breaker.state is BreakerState.OPEN:
                await self.probe()
            elif self.unsettled and self.policy.breaker.state is BreakerState.CLOSED:
                with contextlib.suppress(Exception):
                    await self.settle_all()


def is_async_broker(broker: Any) -> bool:
    """True when ``broker.submit`` is a coroutine function (a network venue)."""
    import inspect

    return inspect.iscoroutinefunction(getattr(broker, "submit", None))


def _state_of(breaker: Any) -> BreakerState:
    state: BreakerState = breaker.state
    return state
