"""Check a journal's consistency: :func:`verify`.

One pass, in sequence order, keeping per-order state only (never the whole journal):

* sequence numbers start at 1 (or ``first``) and have no gaps or repeats;
* stored blocks (:class:`~engine.journal.codec.RawBlock`) pass their CRC and hold
  the records their range says; every record (decoded from a block, or a
  :class:`~engine.journal.codec.RawEntry`) holds a JSON object;
* every kind is one of the table in :mod:`engine.journal`;
* ``order`` and ``denied`` entries use a client id once; ``cancel``, ``event`` and
  ``fill`` entries name a known client id;
* orders move as the kernel moves them, and every move is legal in
  :data:`engine.model.ORDER_TRANSITIONS`: an ``order`` entry is SUBMITTED (written
  as it leaves for the venue), a ``denied`` one DENIED; ``event`` entries carry the
  venue's ACCEPTED, REJECTED, CANCELED or EXPIRED; ``cancel`` moves an accepted or
  partially filled order to PENDING_CANCEL; a fill implies ACCEPTED and moves to
  PARTIALLY_FILLED or FILLED;
* fills have a positive quantity, never reuse a fill id, never come for a closed
  order and never exceed the order's quantity in total (the kernel ignores such
  fills, so they are not counted either).

Each problem names the record: ``record 57 (fill ABC-BTC-USD-3): ...``, or the
block: ``records 50-60 (block): CRC mismatch, the block is damaged``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from engine.journal import Entry
from engine.journal.codec import KINDS, RawBlock, RawEntry, json_type
from engine.model import ORDER_TRANSITIONS, TERMINAL_ORDER_STATES, OrderState

__all__ = ["verify"]

#: the states an ``event`` entry may carry (the venue's reports)
_VENUE_EVENTS = frozenset(
    {OrderState.ACCEPTED, OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED}
)


@attrs.define
class _Order:
    seq: int
    state: OrderState
    quantity: Decimal | None
    filled: Decimal = Decimal(0)


def _label(seq: int, kind: str, ref: str) -> str:
    return f"record {seq} ({kind} {ref})" if ref else f"record {seq} ({kind})"


def _quantity(value: Any) -> Decimal | None:
    """A positive decimal from a JSON value (a string, or a number), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        q = Decimal(str(value))
    except InvalidOperation:
        return None
    return q if q.is_finite() and q > 0 else None


def verify(entries: Iterable[Entry | RawEntry | RawBlock], *, first: int = 1) -> list[str]:
    """Every problem found in ``entries`` (empty: consistent). Pass
    :class:`RawBlock` values (``SqliteJournal.raw_entries()``) to check CRCs too."""
    check = _Checker(first)
    for item in entries:
        if isinstance(item, RawBlock):
            check.block(item)
        else:
            check.record(item.seq, item.kind, item.ref, item.data)
    return check.problems


class _Checker:
    """The state of one pass: per-order state, fill ids, the last sequence number."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.problems: list[str] = []
        self.orders: dict[str, _Order] = {}
        self.fill_ids: dict[str, int] = {}
        self.previous: int | None = None

    def block(self, block: RawBlock) -> None:
        """A stored block: its CRC, its payload, then each of its records."""
        if not block.crc_ok:
            self.problems.append(f"{block.label}: CRC mismatch, the block is damaged")
        try:
            records = block.decode()
        except ValueError as exc:
            self.problems.append(f"{block.label}: unreadable ({exc})")
            self._sequence(block.first_seq, block.label)
            self.previous = max(self.previous or 0, block.first_seq, block.last_seq)
            return
        for seq, _ts, kind, ref, data in records:
            self.record(seq, kind, ref, data)

    def _sequence(self, seq: int, label: str) -> None:
        previous = self.previous
        expected = self.first if previous is None else previous + 1
        if previous is not None and seq <= previous:
            self.problems.append(f"{label}: out of sequence (after record {previous})")
        elif seq != expected:
            missing = (
                f"record {expected}" if seq == expected + 1 else f"records {expected}-{seq - 1}"
            )
            self.problems.append(f"{label}: {missing} missing before it")
        self.previous = seq if previous is None else max(previous, seq)

    def record(self, seq: int, kind: str, ref: str, data: Any) -> None:
        """One record, in the order of the journal."""
        problems = self.problems
        label = _label(seq, kind, ref)
        self._sequence(seq, label)
        if not isinstance(data, dict):
            problems.append(f"{label}: data is not a JSON object (a JSON {json_type(data)})")
            return
        if kind not in KINDS:
            problems.append(f"{label}: unknown kind {kind!r}")
            return

        orders = self.orders
        if kind in ("order", "denied"):
            known = orders.get(ref)
            if known is not None:
                problems.append(f"{label}: duplicate client id (first used in record {known.seq})")
                return
            quantity = _quantity(data.get("quantity"))
            if quantity is None:
                problems.append(f"{label}: quantity {data.get('quantity')!r} is not positive")
            # an order entry is written as the order leaves for the venue (SUBMITTED)
            state = OrderState.SUBMITTED if kind == "order" else OrderState.DENIED
            orders[ref] = _Order(seq, state, quantity)
            return
        if kind not in ("cancel", "event", "fill"):
            return
        order = orders.get(ref)
        if order is None:
            problems.append(f"{label}: {kind} for an unknown client id (no order before it)")
            return
        if kind == "cancel":
            if order.state in TERMINAL_ORDER_STATES:
                problems.append(f"{label}: cancel of an order already {order.state.value}")
            elif order.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED):
                problems.extend(_transition(label, order, OrderState.PENDING_CANCEL))
        elif kind == "event":
            try:
                state = OrderState(data.get("state"))
            except ValueError:
                problems.append(f"{label}: unknown order state {data.get('state')!r}")
                return
            if state not in _VENUE_EVENTS:
                problems.append(f"{label}: {state.value} is not an order event")
                return
            problems.extend(_transition(label, order, state))
        else:
            problems.extend(_fill(label, seq, data, order, self.fill_ids))


def _fill(
    label: str, seq: int, data: dict[str, Any], order: _Order, fill_ids: dict[str, int]
) -> list[str]:
    """Account a fill as the kernel does: a duplicate fill id, a fill of a closed order
    or beyond the order's quantity is reported (and not counted)."""
    fill_id = data.get("fill_id")
    if fill_id is not None:
        first = fill_ids.get(str(fill_id))
        if first is not None:
            return [f"{label}: duplicate fill id {fill_id!r} (first in record {first})"]
        fill_ids[str(fill_id)] = seq
    quantity = _quantity(data.get("quantity"))
    if quantity is None:
        return [f"{label}: quantity {data.get('quantity')!r} is not positive"]
    if order.state in TERMINAL_ORDER_STATES:
        return [f"{label}: fill of an order already {order.state.value}"]
    total = order.filled + quantity
    if order.quantity is not None and total > order.quantity:
        return [
            f"{label}: fills total {total}, more than the order's quantity {order.quantity}"
            f" (record {order.seq})"
        ]
    problems = []
    if order.state is OrderState.SUBMITTED:  # an execution implies the venue accepted it
        problems.extend(_transition(label, order, OrderState.ACCEPTED))
    order.filled = total
    done = order.quantity is not None and total >= order.quantity
    problems.extend(
        _transition(label, order, OrderState.FILLED if done else OrderState.PARTIALLY_FILLED)
    )
    return problems


def _transition(label: str, order: _Order, state: OrderState) -> list[str]:
    """Move ``order`` to ``state`` (as the journal says), reporting an illegal move."""
    src = order.state
    order.state = state
    if state in ORDER_TRANSITIONS.allowed(src):
        return []
    allowed = sorted(s.value for s in ORDER_TRANSITIONS.allowed(src))
    then = f"allowed: {', '.join(allowed)}" if allowed else f"{src.value} is terminal"
    return [f"{label}: illegal order transition {src.value} -> {state.value} ({then})"]
