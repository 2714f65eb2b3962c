"""Composing pipeline checks without code: ``all_of``, ``any_of``, ``not``, and
scoping a check to some strategies.

A child's denial keeps its own name in the reason (``max_position.limit``); the
pipeline then namespaces it with the combinator's (``any_of.max_position.limit``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from engine.records import Allow, Deny, Reduce

__all__ = ["Check", "compose", "scoped"]

Check = Callable[[Any, Any], Any]


def _named(name: str, decision: Deny | Reduce) -> Deny | Reduce:
    return attrs.evolve(decision, reason=f"{name}.{decision.reason}")


def all_of(children: Sequence[tuple[str, Check]]) -> Check:
    """Passes when every child passes; reductions apply in turn; the first denial wins."""

    def check(intent: Any, ctx: Any) -> Any:
        reduced: Reduce | None = None
        for name, child in children:
            decision = child(intent, ctx)
            if decision is None or type(decision) is Allow:
                continue
            if type(decision) is Reduce:
                if not 0 < decision.quantity < intent.quantity:
                    return Deny(
                        f"{name}.bad_reduce",
                        f"reduce to {decision.quantity} is not between 0 and {intent.quantity}",
                    )
                reduced = _named(name, decision)  # type: ignore[assignment]
                intent = attrs.evolve(intent, quantity=decision.quantity)
                continue
            return _named(name, decision) if type(decision) is Deny else decision
        return reduced

    return check


def any_of(children: Sequence[tuple[str, Check]]) -> Check:
    """Passes when any child passes outright; else the largest reduction; else denies
    with every child's reason."""

    def check(intent: Any, ctx: Any) -> Any:
        reasons: list[str] = []
        best: Reduce | None = None
        for name, child in children:
            decision = child(intent, ctx)
            if decision is None or type(decision) is Allow:
                return None
            if type(decision) is Reduce:
                if best is None or decision.quantity > best.quantity:
                    best = _named(name, decision)  # type: ignore[assignment]
                continue
            reasons.append(f"{name}.{getattr(decision, 'reason', decision)}")
        if best is not None:
            return best
        return Deny("none_passed", "every alternative denied: " + ", ".join(reasons))

    return check


def negate(children: Sequence[tuple[str, Check]]) -> Check:
    """Passes when its child denies; denies when the child passes."""
    ((name, child),) = children

    def check(intent: Any, ctx: Any) -> Any:
        decision = child(intent, ctx)
        if decision is None or type(decision) is Allow or type(decision) is Reduce:
            return Deny(name, f"{name} passed, and this check requires it not to")
        return None

    return check


_COMBINATORS: dict[str, Callable[[Sequence[tuple[str, Check]]], Check]] = {
    "all_of": all_of,
    "any_of": any_of,
    "not": negate,
}


def compose(kind: str, children: Sequence[tuple[str, Check]]) -> Check:
    """The check for combinator ``kind`` (``all_of``, ``any_of``, ``not``)."""
    return _COMBINATORS[kind](children)


def scoped(check: Check, strategies: Sequence[str]) -> Check:
    """``check`` for intents of ``strategies`` only; other intents pass."""
    ids = frozenset(strategies)

    def only(intent: Any, ctx: Any) -> Any:
        return check(intent, ctx) if intent.strategy in ids else None

    return only
