"""Replaying a journal into a kernel: the portfolio, every order with its history,
the trading state and the order sequences are rebuilt through the kernel's own
code paths (the same fill rules, the same state machine), without calling a venue.

Used on restart (then the venue is reconciled, see :mod:`engine.journal.reconcile`)
and by ``engine journal replay``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from engine.errors import JournalError
from engine.journal import Entry
from engine.kernel.pipeline import Denial, Reduction
from engine.kernel.trading import TradingState
from engine.model import OrderIntent, OrderState, OrderType, Side

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["ReplayState", "intent_of", "replay"]


def intent_of(data: dict[str, Any]) -> OrderIntent:
    """The intent journaled by :func:`engine.journal.recorder.intent_data`."""
    return OrderIntent(
        data["strategy"],
        data["instrument"],
        Side(data["side"]),
        Decimal(data["quantity"]),
        OrderType(data["type"]),
        None if data.get("limit") is None else Decimal(data["limit"]),
        None if data.get("stop") is None else Decimal(data["stop"]),
        bool(data.get("reduce_only", False)),
        data.get("tag", ""),
    )


@attrs.define
class ReplayState:
    """What a replay found besides the kernel's state."""

    #: the first ``config`` entry's data (raw config, base folder, source)
    baseline: dict[str, Any] | None = None
    #: last bar processed completely, per instrument (paper and live journals)
    bars: dict[str, int] = attrs.Factory(dict)
    #: each strategy's order sequence as of the last complete bar
    sequences: dict[str, int] = attrs.Factory(dict)
    #: each strategy's operation counter as of the last complete bar
    operation_sequences: dict[str, int] = attrs.Factory(dict)
    #: client ids journaled after the last complete bar (their bar is processed again)
    in_flight: list[str] = attrs.Factory(list)
    last_seq: int = 0
    entries: int = 0
    last_ts: int = 0


class _Silent:
    """Stands in for the venue while replaying: nothing leaves the process."""

    def submit(self, order: Any) -> None:
        pass

    def cancel(self, client_id: str) -> None:
        pass


def replay(entries: Iterable[Entry], kernel: Kernel) -> ReplayState:
    """Apply ``entries`` to ``kernel`` (fresh, built from the same config)."""
    state = ReplayState()
    broker, kernel.broker = kernel.broker, _Silent()
    clock = kernel._clock
    try:
        for entry in entries:
            if entry.seq != state.last_seq + 1:
                raise JournalError(
                    f"journal record {entry.seq} follows record {state.last_seq}:"
                    " records are missing"
                )
            state.last_seq = entry.seq
            state.entries += 1
            state.last_ts = entry.ts
            clock.ts = entry.ts
            try:
                _apply(kernel, entry, state)
            except JournalError:
                raise
            except Exception as exc:
                raise JournalError(
                    f"journal record {entry.seq} ({entry.kind} {entry.ref}) cannot be replayed:"
                    f" {type(exc).__name__}: {exc}"
                ) from exc
    finally:
        kernel.broker = broker
    return state


def _apply(kernel: Kernel, entry: Entry, state: ReplayState) -> None:
    kind, ref, data = entry.kind, entry.ref, entry.data
    if kind == "order":
        intent = intent_of(data)
        reduced = data.get("reduction")
        if reduced is not None:
            kernel.pipeline.reductions.append(
                Reduction(
                    entry.ts,
                    ref,
                    reduced["check"],
                    reduced["plugin"],
                    reduced["reason"],
                    Decimal(reduced["before"]),
                    intent.quantity,
                )
            )
        kernel.adopt_order(ref, intent)
        state.in_flight.append(ref)
    elif kind == "denied":
        intent = intent_of(data)
        denial = Denial(
            ts=entry.ts,
            client_id=ref,
            strategy=intent.strategy,
            instrument=intent.instrument,
            side=intent.side.value,
            quantity=intent.quantity,
            stage=data["stage"],
            check=data["check"],
            plugin=data["plugin"],
            reason=data["reason"],
            message=data["message"],
        )
        kernel.pipeline.denials.append(denial)
        kernel._note_sequence(ref, intent.strategy)
        kernel._deny(intent, ref, denial)
        state.in_flight.append(ref)
    elif kind == "event":
        target = OrderState(data["state"])
        if target is OrderState.ACCEPTED:
            kernel.order_accepted(ref)
        elif target is OrderState.REJECTED:
            kernel.order_rejected(ref, data.get("reason", ""))
        elif target is OrderState.CANCELED:
            kernel.order_canceled(ref, data.get("reason", ""))
        elif target is OrderState.EXPIRED:
            kernel.order_expired(ref)
        else:
            raise JournalError(f"journal record {entry.seq}: unexpected order event {target.value}")
    elif kind == "cancel":
        kernel.cancel(ref)
    elif kind == "fill":
        kernel.order_filled(
            ref,
            Decimal(data["quantity"]),
            Decimal(data["price"]),
            Decimal(data["fee"]),
            data.get("fill_id"),
        )
    elif kind == "state":
        kernel.trading._move(TradingState(data["state"]), entry.ts, data["reason"], ref)
    elif kind == "funding":
        kernel.replay_funding(ref, Decimal(data["mark"]), Decimal(data["rate"]))
    elif kind == "liquidation":
        kernel.liquidate(
            ref, Decimal(data["price"]), Decimal(data["fee"]), Decimal(data["liquidation_price"])
        )
    elif kind == "bar":
        state.bars[ref] = int(data["index"])
        state.sequences = dict(kernel._seq)
        state.operation_sequences = kernel.operations.sequences()
        state.in_flight = []
    elif kind == "config":
        if state.baseline is None:
            state.baseline = data
    elif kind == "op":
        kernel.operations.restore(ref, data["step"], data)
    elif kind == "reconcile":
        pass  # informational
    else:
        raise JournalError(f"journal record {entry.seq}: unknown kind {kind!r}")
