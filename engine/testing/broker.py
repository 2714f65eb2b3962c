"""A scriptable broker for tests: the engine's own simulated venue, plus rejects,
partial fills, latency and injected network faults.

:class:`FakeBroker` is what the ``fake_broker`` fixture returns. It registers a
broker record (``[broker] type = "fake"``) whose every run gets a fresh venue:

* matching, prices, fees and slippage are those of the built-in ``simulated``
  venue (market orders fill at the next bar's open, limit and stop orders when a
  bar reaches them); :meth:`FakeBroker.configure` passes its options
  (``fee_bps``, ``slippage_bps``...);
* :meth:`FakeBroker.reject` rejects the orders a predicate picks (all of them, or
  the next ``times``);
* :meth:`FakeBroker.partial_fills` splits each fill into parts, in proportion to
  weights: the first part is reported when the venue fills the order, each
  further part on a following bar of the instrument, at the same price; the
  order is PARTIALLY_FILLED in between and can be cancelled;
* :meth:`FakeBroker.latency` holds each order for a span of engine time before
  the venue sees it: it fills at the open of the first bar after
  ``created + latency``. Engine time, so backtests and paper runs behave alike;
* :meth:`FakeBroker.faults` puts the built-in ``faulty`` broker in between
  (seeded network errors, timeouts, dropped acks, duplicate fills, outages,
  wall-clock latency). Its calls are coroutines, as a network venue's are, so a
  broker with faults runs in paper runs only (a backtest refuses async brokers).

Everything the venue reported to the engine is in :attr:`FakeBroker.events`, in
order: ``("accepted", id)``, ``("rejected", id, reason)``, ``("filled", id,
quantity, price, fee, fill_id)``, ``("canceled", id, reason)``, ``("expired", id)``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from engine.errors import ConfigError, Problem

if TYPE_CHECKING:
    from engine.model import Instrument, Order
    from engine.records import Broker
    from engine.testing.harness import EngineHarness

__all__ = ["FakeBroker"]

Predicate = Callable[["Order"], bool]


@attrs.frozen
class _Rejection:
    when: Predicate | None
    times: int | None
    reason: str


@attrs.frozen
class _Partial:
    weights: tuple[Decimal, ...]
    when: Predicate | None


def _decimal(value: Any) -> Decimal:
    return (
        value
        if isinstance(value, Decimal)
        else Decimal(repr(value) if isinstance(value, float) else str(value))
    )


class FakeBroker:
    """The script of a fake venue; each run of the engine gets a fresh venue built
    from it (see the module doc). Scripting methods return the broker, so they chain."""

    def __init__(self, harness: EngineHarness, *, name: str = "fake") -> None:
        self.harness = harness
        #: the record name (``[broker] type``)
        self.name = name
        self._options: dict[str, Any] = {}
        self._faults: dict[str, Any] | None = None
        self._latency_ns = 0
        self._rejections: list[_Rejection] = []
        self._partials: list[_Partial] = []
        #: the venue of each run, oldest first
        self.runs: list[_FakeVenue] = []
        harness.use("simulated")

    # -- scripting --------------------------------------------------------------------

    def configure(self, **options: Any) -> FakeBroker:
        """Options of the simulated venue: ``fee_bps``, ``maker_fee_bps``,
        ``slippage_bps``, ``liquidation_fee_bps`` (checked when a run is built)."""
        self._options.update(
            {k: str(v) if isinstance(v, Decimal) else v for k, v in options.items()}
        )
        return self

    def reject(
        self,
        *,
        when: Predicate | None = None,
        times: int | None = None,
        reason: str = "rejected by the fake broker",
    ) -> FakeBroker:
        """Reject the orders ``when(order)`` picks (default: every order), at most
        ``times`` of them per run (default: no limit)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self._rejections.append(_Rejection(when, times, reason))
        return self

    def partial_fills(self, *weights: Any, when: Predicate | None = None) -> FakeBroker:
        """Split each fill of the orders ``when`` picks (default: all) into parts in
        proportion to ``weights`` (``0.5, 0.5`` or ``1, 1, 2``), rounded down to
        the lot size (the last part takes the rest); one part per bar."""
        parts = tuple(_decimal(w) for w in weights)
        if len(parts) < 2 or any(p <= 0 for p in parts):
            raise ValueError(f"give two or more positive weights, got {weights!r}")
        total = sum(parts)
        self._partials.append(_Partial(tuple(p / total for p in parts), when))
        return self

    def latency(self, delay: str | int) -> FakeBroker:
        """Hold each order ``delay`` of engine time (``"5m"``, or nanoseconds)
        before the venue sees it."""
        if isinstance(delay, str):
            from engine.config import parse_interval

            self._latency_ns = parse_interval(delay)
        else:
            if delay < 0:
                raise ValueError(f"latency must be >= 0, got {delay}")
            self._latency_ns = delay
        return self

    def faults(self, **options: Any) -> FakeBroker:
        """Inject network faults through the built-in ``faulty`` broker; ``options``
        are its own: ``seed``, ``error_rate``, ``timeout_rate``,
        ``timeout_after_venue``, ``hang``, ``latency`` (wall clock),
        ``drop_ack_rate``, ``duplicate_fill_rate``, ``outages``. Paper runs only."""
        self.harness.use("faults")
        self._faults = {**(self._faults or {}), **options}
        return self

    # -- the record and its runs ------------------------------------------------------

    def record(self) -> Broker:
        """The :class:`~engine.Broker` record serving this fake venue."""
        from engine.records import Broker

        return Broker(
            name=self.name,
            factory=self._build,
            deduplicates=True,
            description="Scriptable fake venue over the simulated one (engine.testing).",
        )

    def _build(self, _config: Any) -> _FakeVenue:
        from engine.config import structure

        inner_type = "simulated" if self._faults is None else "faulty"
        if self._faults is not None and self._latency_ns:
            raise ConfigError(
                [
                    Problem(
                        "fake_broker",
                        "latency() holds orders in engine time and cannot be combined with"
                        " faults(); use faults(latency=...) for wall-clock latency",
                    )
                ]
            )
        record = self.harness.plugins.records("engine_brokers")[inner_type]
        options = {**self._options, **(self._faults or {})}
        config, problems = structure(options, record.config_type, f"fake_broker.{inner_type}")
        if problems:
            raise ConfigError(problems)
        inner = record.factory(config)
        venue = _FakeVenue(self, inner) if self._faults is None else _AsyncFakeVenue(self, inner)
        self.runs.append(venue)
        return venue

    # -- what happened (in the last run) ----------------------------------------------

    def _last(self) -> _FakeVenue | None:
        return self.runs[-1] if self.runs else None

    @property
    def events(self) -> list[tuple[Any, ...]]:
        """What the venue reported to the engine in the last run, in order."""
        last = self._last()
        return [] if last is None else last.events

    @property
    def submitted(self) -> list[Order]:
        """The orders the broker received in the last run, in order."""
        last = self._last()
        return [] if last is None else last.submitted

    @property
    def venue(self) -> Any:
        """The last run's inner venue (the simulated one, or the faulty one)."""
        last = self._last()
        return None if last is None else last.inner

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected in the last run, by kind (empty without faults)."""
        last = self._last()
        return dict(getattr(last.inner, "injected", {})) if last is not None else {}

    def kinds(self) -> list[str]:
        """The kind of each event of the last run, in order."""
        return [e[0] for e in self.events]

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        """The events of one kind in the last run."""
        return [e for e in self.events if e[0] == kind]

    def __repr__(self) -> str:
        return f"FakeBroker({self.name!r}, runs={len(self.runs)})"


class _Link:
    """What the inner venue reports, on its way to the engine: recorded, and fills
    split into parts when a partial-fill rule picks the order."""

    def __init__(self, venue: _FakeVenue, sink: Any) -> None:
        self._venue = venue
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    def order_accepted(self, client_id: str) -> None:
        self._venue.events.append(("accepted", client_id))
        self._sink.order_accepted(client_id)

    def order_rejected(self, client_id: str, reason: str) -> None:
        self._venue.events.append(("rejected", client_id, reason))
        self._sink.order_rejected(client_id, reason)

    def order_canceled(self, client_id: str, reason: str = "") -> None:
        self._venue.events.append(("canceled", client_id, reason))
        self._sink.order_canceled(client_id, reason)

    def order_expired(self, client_id: str) -> None:
        self._venue.events.append(("expired", client_id))
        self._sink.order_expired(client_id)

    def order_filled(
        self,
        client_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        fill_id: str | None = None,
    ) -> None:
        parts = self._venue._split(client_id, quantity, price, fee, fill_id)
        self.report_fill(client_id, *parts[0])
        if len(parts) > 1:
            self._venue._parts[client_id] = parts[1:]

    def report_fill(
        self, client_id: str, quantity: Decimal, price: Decimal, fee: Decimal, fill_id: str | None
    ) -> None:
        self._venue.events.append(("filled", client_id, quantity, price, fee, fill_id))
        self._sink.order_filled(client_id, quantity, price, fee, fill_id)


_Part = tuple[Decimal, Decimal, Decimal, "str | None"]


class _FakeVenue:
    """One run's venue: the script applied around the inner (simulated) venue."""

    def __init__(self, script: FakeBroker, inner: Any) -> None:
        self.script = script
        self.inner = inner
        self.sink: Any = None
        self.link: _Link | None = None
        self.events: list[tuple[Any, ...]] = []
        self.submitted: list[Order] = []
        self._orders: dict[str, Order] = {}
        self._used = [0] * len(script._rejections)
        self._held: list[tuple[int, Order]] = []
        self._parts: dict[str, list[_Part]] = {}
        self._seen_fills: set[str] = set()

    def bind(self, sink: Any) -> None:
        """Receive the engine's execution sink; the inner venue reports through the link."""
        self.sink = sink
        self.link = _Link(self, sink)
        self.inner.bind(self.link)

    # -- the script -------------------------------------------------------------------

    def _rejection(self, order: Order) -> str | None:
        for k, rule in enumerate(self.script._rejections):
            if rule.times is not None and self._used[k] >= rule.times:
                continue
            if rule.when is None or rule.when(order):
                self._used[k] += 1
                return rule.reason
        return None

    def _receive(self, order: Order) -> bool:
        """Record the order; False (and reported) when the script rejects it."""
        self.submitted.append(order)
        self._orders[order.client_id] = order
        reason = self._rejection(order)
        if reason is None:
            return True
        assert self.link is not None
        self.link.order_rejected(order.client_id, reason)
        return False

    def _split(
        self, client_id: str, quantity: Decimal, price: Decimal, fee: Decimal, fill_id: str | None
    ) -> list[_Part]:
        order = self._orders.get(client_id)
        duplicate = fill_id is not None and fill_id in self._seen_fills
        if fill_id is not None:
            self._seen_fills.add(fill_id)
        rule = None
        if order is not None:
            rule = next((p for p in self.script._partials if p.when is None or p.when(order)), None)
        if rule is None:
            return [(quantity, price, fee, fill_id)]
        lot = self.sink.instrument(order.intent.instrument).lot_size  # type: ignore[union-attr]
        sizes: list[Decimal] = []
        left = quantity
        for weight in rule.weights[:-1]:
            size = min((quantity * weight / lot).to_integral_value(ROUND_FLOOR) * lot, left)
            if size > 0:
                sizes.append(size)
                left -= size
        if left > 0:
            sizes.append(left)
        base = fill_id or client_id
        fees = [fee * s / quantity for s in sizes[:-1]]
        fees.append(fee - sum(fees, Decimal(0)))
        parts: list[_Part] = [
            (s, price, f, f"{base}.{k + 1}")
            for k, (s, f) in enumerate(zip(sizes, fees, strict=True))
        ]
        return parts[:1] if duplicate else parts

    def _next_parts(self, symbol: str) -> None:
        """Report one more part of each partially filled order on ``symbol``."""
        assert self.link is not None
        for client_id in list(self._parts):
            if self._orders[client_id].intent.instrument != symbol:
                continue
            rest = self._parts[client_id]
            self.link.report_fill(client_id, *rest.pop(0))
            if not rest:
                del self._parts[client_id]

    def _release(self, symbol: str, ts: int) -> list[Order]:
        """Held orders on ``symbol`` whose latency has passed at ``ts``."""
        due = [o for t, o in self._held if t < ts and o.intent.instrument == symbol]
        if due:
            self._held = [(t, o) for t, o in self._held if o not in due]
        return due

    def _cancel_here(self, client_id: str) -> bool:
        """Cancel an order held by the script (latency, remaining parts)."""
        assert self.link is not None
        for t, order in self._held:
            if order.client_id == client_id:
                self._held.remove((t, order))
                self.link.order_canceled(client_id, "canceled by request")
                return True
        if self._parts.pop(client_id, None) is not None:
            self.link.order_canceled(client_id, "canceled by request")
            return True
        return False

    # -- the broker protocol ----------------------------------------------------------

    def submit(self, order: Order) -> None:
        """Reject, hold (latency) or pass the order to the venue."""
        if not self._receive(order):
            return
        if self.script._latency_ns:
            self._held.append((order.created_ts + self.script._latency_ns, order))
            return
        self.inner.submit(order)

    def cancel(self, client_id: str) -> None:
        """Cancel an order (held, partly reported, or resting at the venue)."""
        if not self._cancel_here(client_id):
            self.inner.cancel(client_id)

    def on_bar(self, instrument: Instrument, bar: Any) -> None:
        """Report due parts, release due orders, then let the venue match the bar."""
        symbol = instrument.symbol
        if self._parts:
            self._next_parts(symbol)
        if self._held:
            for order in self._release(symbol, bar.ts):
                self.inner.submit(order)
        self.inner.on_bar(instrument, bar)

    def order_status(self, client_id: str) -> Any:
        """The inner venue's view of one order."""
        return self.inner.order_status(client_id)

    def snapshot(self) -> Any:
        """The inner venue's snapshot."""
        return self.inner.snapshot()

    def close(self) -> None:
        """Close the inner venue."""
        self.inner.close()


class _AsyncFakeVenue(_FakeVenue):
    """The venue with faults: the calls to it are coroutines (paper runs)."""

    async def submit(self, order: Order) -> None:  # type: ignore[override]
        """Reject, or send through the faulty link."""
        if self._receive(order):
            await self.inner.submit(order)

    async def cancel(self, client_id: str) -> None:  # type: ignore[override]
        """Cancel (outages and latency apply at the venue)."""
        if not self._cancel_here(client_id):
            await self.inner.cancel(client_id)

    async def order_status(self, client_id: str) -> Any:
        """The venue's view of one order (faults apply)."""
        return await self.inner.order_status(client_id)

    async def snapshot(self) -> Any:
        """The venue's snapshot (faults apply)."""
        return await self.inner.snapshot()
