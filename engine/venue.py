"""What a venue says about itself, for reconciliation after a restart or a lost call.

A broker may implement (sync or async):

- ``order_status(client_id) -> VenueOrder | None``: the venue's view of one order
  (``None``: the venue never received it). The engine asks after a submit whose
  outcome it does not know (timeout, lost connection).
- ``snapshot() -> VenueSnapshot``: open orders, every fill, and positions. The
  engine asks on start, after replaying its journal, and reconciles.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import field, frozen

from engine.model import Side

__all__ = ["VenueFill", "VenueOrder", "VenueSnapshot"]


@frozen
class VenueOrder:
    """One order as the venue knows it. ``state`` is an
    :class:`~engine.model.OrderState` value (``accepted``, ``filled``...)."""

    client_id: str
    instrument: str
    side: Side
    quantity: Decimal
    filled_quantity: Decimal
    state: str


@frozen
class VenueFill:
    """One execution as the venue recorded it (``ts``: venue time, ns)."""

    fill_id: str
    client_id: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: int


@frozen
class VenueSnapshot:
    """The venue's state: orders not yet terminal, fills (all, or since a time),
    signed positions by instrument."""

    open_orders: tuple[VenueOrder, ...] = ()
    fills: tuple[VenueFill, ...] = ()
    positions: dict[str, Decimal] = field(factory=dict)
    orders: tuple[VenueOrder, ...] = ()  # every order the venue knows, terminal too
