"""Multi-step operations: a bracket order (entry, take-profit, stop-loss) or a batch
of orders, placed as one operation with compensation.

Placing: each leg goes through the order pipeline in turn. When a leg is denied, or
the venue rejects one before every leg is accepted, the legs already placed are
cancelled and the operation is ``rolled_back`` (with the reason); otherwise it is
``placed``. A placed bracket is one-cancels-other: when the take-profit or the
stop-loss fills, the other is cancelled (``completed``); if the entry ends unfilled,
both exits are cancelled.

Journaled step by step (``op`` entries: ``begin`` with the legs, ``leg`` per placed
order, then ``placed``, ``rolled_back`` or ``completed``), so an operation a crash
interrupted is compensated on restart: its open legs are cancelled and it is
recorded as rolled back (:meth:`OperationBook.compensate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from engine.model import Order, OrderIntent, OrderState, OrderType, Side

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["Operation", "OperationBook"]

_FAILED = (OrderState.DENIED, OrderState.REJECTED)


@attrs.define
class Operation:
    """One multi-step operation and what became of it."""

    id: str
    kind: str  # "bracket" or "batch"
    strategy: str
    intents: list[OrderIntent]
    legs: list[str] = attrs.Factory(list)  # client ids of the legs placed, in order
    state: str = "placing"  # placing, placed, rolled_back, completed
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Placed (or completed): every leg is at the venue."""
        return self.state in ("placed", "completed")


class OperationBook:
    """The operations of one kernel, and the order listener that drives them."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.operations: dict[str, Operation] = {}
        self._seq: dict[str, int] = {}
        self._of_leg: dict[str, Operation] = {}
        self._hooked: set[str] = set()

    # -- placing -------------------------------------------------------------------------

    def place(
        self,
        kind: str,
        strategy: str,
        intents: Sequence[OrderIntent],
        submit: Callable[[OrderIntent], Order | None],
    ) -> Operation:
        """Place ``intents`` as one operation through ``submit`` (the strategy's)."""
        n = self._seq[strategy] = self._seq.get(strategy, 0) + 1
        op_id = f"op-{strategy}-{n}"
        known = self.operations.get(op_id)
        if known is not None:  # derived again after a restart (or during warm-up)
            return known
        op = self.operations[op_id] = Operation(op_id, kind, strategy, list(intents))
        self._hook(strategy)
        self._journal(op, "begin", legs=[_intent_json(i) for i in intents], kind=kind)
        for intent in intents:
            order = submit(intent)
            if order is None:
                self.roll_back(op, f"leg {len(op.legs) + 1} denied")
                return op
            op.legs.append(order.client_id)
            self._of_leg[order.client_id] = op
            self._journal(op, "leg", client_id=order.client_id)
            if order.state in _FAILED:  # rejected at once by a synchronous venue
                self.roll_back(op, f"leg {len(op.legs)} rejected")
                return op
        self._check_placed(op)
        return op

    def roll_back(self, op: Operation, reason: str) -> None:
        """Cancel every open leg; the operation is rolled back."""
        if op.state in ("rolled_back", "completed"):
            return
        op.state, op.reason = "rolled_back", reason
        self._journal(op, "rolled_back", reason=reason)
        for cid in op.legs:
            order = self.kernel.orders.get(cid)
            if order is not None and order.is_open:
                self.kernel.cancel(cid)

    def _check_placed(self, op: Operation) -> None:
        if op.state != "placing" or len(op.legs) < len(op.intents):
            return
        orders = [self.kernel.orders[cid] for cid in op.legs]
        if all(o.state is not OrderState.SUBMITTED for o in orders):
            op.state = "placed"
            self._journal(op, "placed")

    # -- driving -------------------------------------------------------------------------

    def _hook(self, strategy: str) -> None:
        if strategy in self._hooked:
            return
        self._hooked.add(strategy)
        listeners = self.kernel._order_listeners
        downstream = listeners.get(strategy)

        def on_order(order: Order) -> None:
            op = self._of_leg.get(order.client_id)
            if op is not None:
                self._on_leg(op, order)
            if downstream is not None:
                downstream(order)

        listeners[strategy] = on_order

    def _on_leg(self, op: Operation, order: Order) -> None:
        if op.state == "placing":
            if order.state in _FAILED:
                self.roll_back(op, f"leg {op.legs.index(order.client_id) + 1} rejected")
            else:
                self._check_placed(op)
            return
        if op.kind != "bracket" or op.state != "placed" or len(op.legs) != 3:
            return
        entry, take, stop = op.legs
        if order.client_id in (take, stop) and order.state is OrderState.FILLED:
            other = stop if order.client_id == take else take
            op.state = "completed"
            self._journal(op, "completed", by=order.client_id)
            self._cancel(other)
        elif (
            order.client_id == entry and not order.is_open and order.state is not OrderState.FILLED
        ):
            op.state = "completed"
            self._journal(op, "completed", by=entry)
            self._cancel(take)
            self._cancel(stop)

    def _cancel(self, client_id: str) -> None:
        order = self.kernel.orders.get(client_id)
        if order is not None and order.is_open:
            self.kernel.cancel(client_id)

    # -- journal and restart --------------------------------------------------------------

    def _journal(self, op: Operation, step: str, **data: Any) -> None:
        recorder = self.kernel.journal
        if recorder is not None:
            recorder.store.append(self.kernel.now, "op", op.id, {"step": step, **data})

    def restore(self, op_id: str, step: str, data: dict[str, Any]) -> None:
        """Replay one ``op`` journal entry."""
        from engine.journal.replay import intent_of

        if step == "begin":
            strategy = op_id.removeprefix("op-").rsplit("-", 1)[0]
            intents = [intent_of(leg) for leg in data["legs"]]
            self.operations[op_id] = Operation(op_id, data["kind"], strategy, intents)
            n = int(op_id.rsplit("-", 1)[1])
            self._seq[strategy] = max(self._seq.get(strategy, 0), n)
            self._hook(strategy)
            return
        op = self.operations[op_id]
        if step == "leg":
            op.legs.append(data["client_id"])
            self._of_leg[data["client_id"]] = op
        elif step in ("placed", "rolled_back", "completed"):
            op.state, op.reason = step, data.get("reason", "")

    def compensate(self) -> list[Operation]:
        """After a restart: roll back every operation a crash left half placed."""
        interrupted = [op for op in self.operations.values() if op.state == "placing"]
        for op in interrupted:
            self.roll_back(op, "interrupted by a restart: compensated")
        return interrupted

    def sequences(self) -> dict[str, int]:
        """Each strategy's operation counter (restored to the last whole bar on restart)."""
        return dict(self._seq)

    def reset_sequences(self, sequences: dict[str, int]) -> None:
        """Set the counters (see :meth:`sequences`)."""
        self._seq = dict(sequences)


def bracket_intents(
    strategy: str,
    symbol: str,
    side: Side,
    quantity: Decimal,
    take_profit: Decimal,
    stop_loss: Decimal,
    limit: Decimal | None,
) -> list[OrderIntent]:
    """Entry, take-profit (a limit on the other side) and stop-loss (a stop on the
    other side); both exits reduce-only."""
    exit_side = Side.SELL if side is Side.BUY else Side.BUY
    entry_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return [
        OrderIntent(strategy, symbol, side, quantity, entry_type, limit, tag="bracket:entry"),
        OrderIntent(
            strategy,
            symbol,
            exit_side,
            quantity,
            OrderType.LIMIT,
            take_profit,
            reduce_only=True,
            tag="bracket:take_profit",
        ),
        OrderIntent(
            strategy,
            symbol,
            exit_side,
            quantity,
            OrderType.STOP,
            None,
            stop_loss,
            reduce_only=True,
            tag="bracket:stop_loss",
        ),
    ]


def _intent_json(intent: OrderIntent) -> dict[str, Any]:
    from engine.journal.recorder import intent_data

    return intent_data(intent)
