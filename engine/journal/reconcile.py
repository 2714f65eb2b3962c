"""Reconciliation: after a restart (journal replayed), compare the engine's orders,
fills and positions with what the venue says, and act on every difference.

Each difference is a :class:`Finding`. Plugins decide what to do with it through
``engine_reconciliation_policies`` (the first policy, by priority, that returns an
:class:`Action` wins); otherwise :func:`default_action` does. Every action the engine
takes is journaled like any other event (fills, order events); the outcome is one
``reconcile`` entry. Trading stays halted (or reducing) until reconciliation passes:
it fails when a finding's action is ``HALT`` (by default: a position mismatch left
after the missed fills are applied).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from engine.aio import maybe_await
from engine.model import OrderIntent, OrderState, OrderType
from engine.venue import VenueOrder, VenueSnapshot

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["Action", "Finding", "Reconciliation", "default_action", "reconcile"]

#: the strategy id under which orders the engine did not place are tracked
EXTERNAL = "external"


class Action(Enum):
    """What to do about a finding."""

    APPLY = "apply"  # take the venue's word: apply its fill or order state
    ADOPT = "adopt"  # track an order the engine did not place (strategy "external")
    CANCEL = "cancel"  # cancel it at the venue
    RESUBMIT = "resubmit"  # send again with the same client id (venues that deduplicate)
    REJECT = "reject"  # mark it rejected here: the venue never had it
    IGNORE = "ignore"  # report only
    HALT = "halt"  # report, and keep trading halted


@attrs.frozen
class Finding:
    """One difference between the journal and the venue.

    ``kind``: ``missed_fill`` (the venue filled, the journal did not record it),
    ``external_order`` (the venue has an order the journal does not), ``lost_order``
    (the journal has an open order the venue never received), ``venue_state`` (the
    venue moved an open order on: accepted, canceled, rejected, expired),
    ``closed_here`` (open at the venue, terminal here), ``position_mismatch``.
    """

    kind: str
    detail: str
    client_id: str = ""
    instrument: str = ""
    venue: Any = None


@attrs.frozen
class Reconciliation:
    """What reconciliation found and did; ``passed`` unless an action was ``HALT``."""

    findings: tuple[tuple[Finding, Action], ...]

    @property
    def passed(self) -> bool:
        """No finding left trading halted."""
        return all(action is not Action.HALT for _, action in self.findings)

    def counts(self) -> dict[str, int]:
        """Findings by kind."""
        out: dict[str, int] = {}
        for finding, _ in self.findings:
            out[finding.kind] = out.get(finding.kind, 0) + 1
        return out

    def lines(self) -> list[str]:
        """One human line per finding."""
        return [
            f"{f.kind} {f.client_id or f.instrument}: {f.detail} -> {a.value}"
            for f, a in self.findings
        ]


def default_action(finding: Finding, *, deduplicates: bool) -> Action:
    """The engine's own policy."""
    return {
        "missed_fill": Action.APPLY,
        "external_order": Action.ADOPT,
        "lost_order": Action.RESUBMIT if deduplicates else Action.REJECT,
        "venue_state": Action.APPLY,
        "closed_here": Action.CANCEL,
        "position_mismatch": Action.HALT,
    }.get(finding.kind, Action.HALT)


class _Decider:
    def __init__(self, policies: Sequence[Any], deduplicates: bool) -> None:
        self.policies = policies
        self.deduplicates = deduplicates

    def __call__(self, finding: Finding) -> Action:
        for policy in self.policies:
            try:
                action = policy.decide(finding)
            except Exception:
                logger.exception("reconciliation policy {} failed; next one decides", policy.name)
                continue
            if action is not None:
                return Action(action)
        return default_action(finding, deduplicates=self.deduplicates)


def _external_intent(v: VenueOrder) -> OrderIntent:
    return OrderIntent(EXTERNAL, v.instrument, v.side, v.quantity, OrderType.MARKET, tag="external")


async def reconcile(
    kernel: Kernel,
    broker: Any,
    *,
    deduplicates: bool,
    policies: Iterable[Any] = (),
    in_flight: Iterable[str] = (),
) -> Reconciliation:
    """Compare and act (see the module docstring). ``broker`` must have ``snapshot()``.
    ``in_flight``: client ids journaled after the last complete bar (their bar is
    processed again after the restart)."""
    in_flight = set(in_flight)
    decide = _Decider(list(policies), deduplicates)
    snapshot: VenueSnapshot = await maybe_await(broker.snapshot())
    done: list[tuple[Finding, Action]] = []
    venue_orders = {o.client_id: o for o in (*snapshot.orders, *snapshot.open_orders)}

    def act(finding: Finding) -> Action:
        action = decide(finding)
        done.append((finding, action))
        return action

    # 1. orders the venue has and the journal does not
    for cid, v in venue_orders.items():
        if cid in kernel.orders:
            continue
        if cid.startswith("liquidation:"):  # the venue's side of a liquidation the
            continue  # engine journaled itself (its own orders and fills)
        finding = Finding(
            "external_order", f"{v.side.value} {v.quantity} {v.state}", cid, v.instrument, v
        )
        action = act(finding)
        if action is Action.ADOPT:
            kernel.adopt_order(cid, _external_intent(v), "external (found at the venue)")
            kernel.order_accepted(cid)
            if OrderState(v.state) in _TERMINAL - {OrderState.FILLED}:
                _apply_state(kernel, cid, OrderState.ACCEPTED, OrderState(v.state))
        elif action is Action.CANCEL and OrderState(v.state) not in _TERMINAL:
            await maybe_await(broker.cancel(cid))
    # 2. fills the venue made that the journal does not have
    applied = {f.fill_id for f in kernel.fills}
    for f in snapshot.fills:
        if f.fill_id in applied or f.client_id not in kernel.orders:
            continue
        finding = Finding(
            "missed_fill", f"{f.side.value} {f.quantity} at {f.price}", f.client_id, f.instrument, f
        )
        if act(finding) is Action.APPLY:
            clock = kernel._clock
            now, clock.ts = clock.ts, f.ts  # the fill as it happened
            try:
                kernel.order_filled(f.client_id, f.quantity, f.price, f.fee, f.fill_id)
            finally:
                clock.ts = now
    # 3. orders open here: what does the venue say?
    for order in kernel.open_orders():
        known = venue_orders.get(order.client_id)
        if known is None:
            finding = Finding(
                "lost_order",
                "the venue never received it",
                order.client_id,
                order.intent.instrument,
            )
            action = act(finding)
            if action is Action.RESUBMIT and order.client_id in in_flight:
                # its bar is processed again: sent when the strategy derives it again,
                # at the moment it was first decided
                kernel.resend_when_derived(order.client_id)
            elif action is Action.RESUBMIT:
                await maybe_await(broker.submit(order))
            elif action is Action.REJECT:
                kernel.order_rejected(order.client_id, "lost: the venue never received it")
            continue
        state = OrderState(known.state)
        if state is order.state or (
            state in (OrderState.FILLED, OrderState.PARTIALLY_FILLED)  # fills applied above
        ):
            continue
        finding = Finding(
            "venue_state",
            f"{order.state.value} here, {state.value} at the venue",
            order.client_id,
            order.intent.instrument,
            known,
        )
        if act(finding) is Action.APPLY:
            _apply_state(kernel, order.client_id, order.state, state)
    # 4. open at the venue, closed here
    for cid, v in venue_orders.items():
        mine = kernel.orders.get(cid)
        if mine is None or mine.is_open or OrderState(v.state) in _TERMINAL:
            continue
        finding = Finding(
            "closed_here", f"{mine.state.value} here, {v.state} at the venue", cid, v.instrument, v
        )
        if act(finding) is Action.CANCEL:
            await maybe_await(broker.cancel(cid))
    # 5. positions
    for symbol in sorted(set(snapshot.positions) | set(kernel.portfolio.positions)):
        here = kernel.position(symbol)
        there = snapshot.positions.get(symbol, Decimal(0))
        if here != there:
            act(Finding("position_mismatch", f"{here} here, {there} at the venue", "", symbol))
    result = Reconciliation(tuple(done))
    if kernel.journal is not None:
        kernel.journal.store.append(
            kernel.now,
            "reconcile",
            "",
            {"passed": result.passed, "findings": result.lines()},
        )
        kernel.journal.store.commit()
    return result


_TERMINAL = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
)


def _apply_state(kernel: Kernel, client_id: str, here: OrderState, there: OrderState) -> None:
    if there is OrderState.ACCEPTED and here is OrderState.SUBMITTED:
        kernel.order_accepted(client_id)
    elif there is OrderState.CANCELED:
        kernel.order_canceled(client_id, "canceled at the venue")
    elif there is OrderState.REJECTED:
        kernel.order_rejected(client_id, "rejected at the venue")
    elif there is OrderState.EXPIRED:
        kernel.order_expired(client_id)
