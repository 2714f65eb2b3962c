"""Built-in plugin ``faulty``: the simulated venue behind a seeded, unreliable link.

For tests and demos only: it shows what the engine does when the network between
it and a venue misbehaves (retries, timeouts, reconciliation, duplicate fills). It
is never chosen unless ``[broker] type = "faulty"``, and every fault is off by
default: with no option set it behaves exactly like ``simulated``.

Its ``submit``, ``cancel``, ``order_status`` and ``snapshot`` are coroutines, as a
real venue client's are, so it runs in paper mode (a backtest refuses async
brokers); fills stay synchronous (the venue matches resting orders on each bar).

Options: every option of ``simulated`` (``fee_bps``, ``maker_fee_bps``,
``slippage_bps``, ``liquidation_fee_bps``, ``state``), and:

``seed`` (int, 0)
    Seeds the faults. Each fault kind draws from its own ``random.Random`` stream,
    once per opportunity, so the same seed injects the same faults in the same
    order, and changing one rate does not reshuffle the others.
``error_rate`` (0..1, 0)
    Probability that a ``submit`` raises :class:`~engine.NetworkError` before the
    order reaches the venue (safe to retry).
``timeout_rate`` (0..1, 0)
    Probability that a ``submit`` hangs: it awaits ``asyncio.sleep(hang)`` and, if
    nobody cancels it first, raises ``NetworkError``. With probability
    ``timeout_after_venue`` the venue *did* receive the order before the hang (the
    dangerous case: the engine does not know the outcome, the venue has the order).
``timeout_after_venue`` (0..1, 0.5)
    See ``timeout_rate``.
``hang`` (interval, ``"1h"``)
    How long a timed-out call hangs: longer than any sane timeout.
``latency`` (interval, ``"0ms"``)
    Added (``asyncio.sleep``) to each call that reaches the network: ``submit``,
    ``cancel``, ``order_status``, ``snapshot``.
``drop_ack_rate`` (0..1, 0)
    Probability that the venue accepts an order but ``order_accepted`` is never
    reported (the order rests and fills as usual).
``duplicate_fill_rate`` (0..1, 0)
    Probability that a fill is reported twice, with the same fill id.
``outages`` (list of ``{start, duration}``, none)
    Intervals of engine time, ``start`` counted from the first bar's time (``"0s"``:
    from the first bar). During one every call (``submit``, ``cancel``,
    ``order_status``, ``snapshot``) raises
    ``NetworkError("venue unreachable (simulated outage)")`` at once (no latency, no
    draw). Outages cover calls only: resting orders still fill on bars and those
    fills are reported as usual. Calls before the first bar are never in an outage.

:attr:`FaultyBroker.injected` counts each fault injected (``error``, ``timeout``,
``timeout_after_venue``, ``drop_ack``, ``duplicate_fill``, ``outage``);
:attr:`FaultyBroker.venue` is the simulated venue itself (its ``order_status`` and
``snapshot`` without faults), for tests to compare with what the engine believes.

Example::

    [broker]
    type = "faulty"
    seed = 7
    timeout_rate = 0.05
    duplicate_fill_rate = 0.1
    outages = [{start = "30m", duration = "5m"}]
"""

from __future__ import annotations

import asyncio
import random
import re
from decimal import Decimal
from typing import Any

import attrs

from engine import (
    Broker,
    Instrument,
    NetworkError,
    Order,
    VenueOrder,
    VenueSnapshot,
    hookimpl,
    interval,
    parse_interval,
)
from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig

OUTAGE_MESSAGE = "venue unreachable (simulated outage)"
#: the fault kinds, each with its own draw stream
KINDS = ("error", "timeout", "timeout_after_venue", "drop_ack", "duplicate_fill")

_ZERO = re.compile(r"^\s*0+\s*(ms|s|m|h|d)?\s*$")


def _nanoseconds(text: str) -> int:
    """An interval that may be zero (``"0ms"``, ``"0s"``...)."""
    return 0 if _ZERO.match(text) else parse_interval(text)


def offset(_inst: object, _attr: object, value: str) -> None:
    """attrs validator: an interval string, zero allowed (``0ms``, ``250ms``, ``1s``...)."""
    try:
        _nanoseconds(value)
    except ValueError:
        raise ValueError(
            f"expected an interval like 0ms, 250ms, 1s, 1m, 4h or 1d, got {value!r}"
        ) from None


def rate(_inst: object, _attr: object, value: float) -> None:
    """attrs validator: a probability, ``0 <= value <= 1``."""
    if not 0 <= value <= 1:
        raise ValueError(f"must be between 0 and 1, got {value:g}")


@attrs.frozen
class Outage:
    """``{start, duration}``: the venue is unreachable from ``start`` (after the
    first bar) for ``duration``."""

    start: str = attrs.field(validator=offset)
    duration: str = attrs.field(validator=interval)


@attrs.frozen
class FaultyConfig(SimulatedConfig):
    """``[broker] type = "faulty"`` options: those of ``simulated`` plus the faults."""

    seed: int = 0
    error_rate: float = attrs.field(default=0.0, validator=rate)
    timeout_rate: float = attrs.field(default=0.0, validator=rate)
    timeout_after_venue: float = attrs.field(default=0.5, validator=rate)
    hang: str = attrs.field(default="1h", validator=interval)
    latency: str = attrs.field(default="0ms", validator=offset)
    drop_ack_rate: float = attrs.field(default=0.0, validator=rate)
    duplicate_fill_rate: float = attrs.field(default=0.0, validator=rate)
    outages: tuple[Outage, ...] = ()


class _Link:
    """What the venue reports, on its way to the engine: drops acks and repeats
    fills as drawn; everything else passes through."""

    def __init__(self, broker: FaultyBroker, sink: Any) -> None:
        self._broker = broker
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    def order_accepted(self, client_id: str) -> None:
        if self._broker._fires("drop_ack", self._broker.config.drop_ack_rate):
            return
        self._sink.order_accepted(client_id)

    def order_filled(
        self,
        client_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        fill_id: str | None = None,
    ) -> None:
        self._sink.order_filled(client_id, quantity, price, fee, fill_id)
        if self._broker._fires("duplicate_fill", self._broker.config.duplicate_fill_rate):
            self._sink.order_filled(client_id, quantity, price, fee, fill_id)


class _Resting:
    """The venue's resting list as the kernel sees it: never empty until the first
    bar was seen (it dates the outages), then empty exactly when the venue's is."""

    __slots__ = ("_broker", "_items")

    def __init__(self, broker: FaultyBroker, items: list[Any]) -> None:
        self._broker = broker
        self._items = items

    def __len__(self) -> int:
        return len(self._items) if self._broker.origin is not None else 1


class FaultyBroker:
    """The simulated venue (:attr:`venue`) behind seeded network faults."""

    def __init__(self, config: FaultyConfig) -> None:
        self.config = config
        self.venue = SimulatedBroker(config)
        seed = config.seed
        self._draws = {kind: random.Random(f"{seed}:{kind}") for kind in KINDS}
        #: faults injected so far, by kind
        self.injected: dict[str, int] = dict.fromkeys((*KINDS, "outage"), 0)
        self._latency = _nanoseconds(config.latency) / 1e9
        self._hang = parse_interval(config.hang) / 1e9
        self._outages = [
            (_nanoseconds(o.start), _nanoseconds(o.start) + parse_interval(o.duration))
            for o in config.outages
        ]
        #: engine time of the first bar seen (outages are counted from it)
        self.origin: int | None = None
        self.sink: Any = None
        self._resting: dict[str, _Resting] = {}

    # -- faults ----------------------------------------------------------------------------

    def _fires(self, kind: str, probability: float) -> bool:
        """One draw from ``kind``'s stream: True (and counted) when the fault fires."""
        fired = self._draws[kind].random() < probability
        if fired:
            self.injected[kind] += 1
        return fired

    def in_outage(self) -> bool:
        """True while engine time is inside a configured outage."""
        if self.origin is None or not self._outages:
            return False
        elapsed = self.sink.now - self.origin
        return any(start <= elapsed < end for start, end in self._outages)

    async def _reach(self) -> None:
        """The way to the venue: an outage fails at once; otherwise the latency."""
        if self.in_outage():
            self.injected["outage"] += 1
            raise NetworkError(OUTAGE_MESSAGE, broker="faulty")
        if self._latency:
            await asyncio.sleep(self._latency)

    # -- broker protocol ---------------------------------------------------------------------

    def bind(self, sink: Any) -> None:
        """Receive the engine's sink; the venue reports through the faulty link."""
        self.sink = sink
        self.venue.bind(_Link(self, sink))

    async def submit(self, order: Order) -> None:
        """Send an order, subject to outages, latency, errors and timeouts. Each
        call that gets through the outage check draws once from the ``error``,
        ``timeout`` and ``timeout_after_venue`` streams, whatever the rates."""
        await self._reach()
        error = self._draws["error"].random() < self.config.error_rate
        timeout = self._draws["timeout"].random() < self.config.timeout_rate
        after = self._draws["timeout_after_venue"].random() < self.config.timeout_after_venue
        if error:
            self.injected["error"] += 1
            raise NetworkError("simulated network error", broker="faulty", order=order.client_id)
        if timeout:
            self.injected["timeout"] += 1
            if after:
                self.injected["timeout_after_venue"] += 1
                self.venue.submit(order)
            await asyncio.sleep(self._hang)
            raise NetworkError(
                "simulated timeout: no response", broker="faulty", order=order.client_id
            )
        self.venue.submit(order)

    async def cancel(self, client_id: str) -> None:
        """Cancel a resting order (outages and latency apply)."""
        await self._reach()
        self.venue.cancel(client_id)

    async def order_status(self, client_id: str) -> VenueOrder | None:
        """The venue's view of one order (outages and latency apply)."""
        await self._reach()
        return self.venue.order_status(client_id)

    async def snapshot(self) -> VenueSnapshot:
        """The venue's state (outages and latency apply)."""
        await self._reach()
        return self.venue.snapshot()

    def on_bar(self, instrument: Instrument, bar: Any) -> None:
        """Date the outages from the first bar; let the venue match this one."""
        if self.origin is None:
            self.origin = bar.ts
        self.venue.on_bar(instrument, bar)

    def resting(self, symbol: str) -> _Resting:
        """The venue's resting orders on ``symbol`` (see :class:`_Resting`)."""
        view = self._resting.get(symbol)
        if view is None:
            view = self._resting[symbol] = _Resting(self, self.venue.resting(symbol))
        return view

    def close(self) -> None:
        """Close the venue's state file, if any."""
        self.venue.close()


def _build(config: FaultyConfig) -> FaultyBroker:
    return FaultyBroker(config)


@hookimpl
def engine_brokers() -> list[Broker]:
    """The ``faulty`` broker."""
    return [
        Broker(
            name="faulty",
            factory=_build,
            config_type=FaultyConfig,
            live=False,
            deduplicates=True,
            description="The simulated venue behind seeded network faults (tests and demos).",
        )
    ]
