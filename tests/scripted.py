"""A scripted strategy for tests: ``{bar index: [step, ...]}`` where a step is
``(method, args, kwargs)`` called on the strategy's context (``buy``, ``sell``,
``order``, ``submit``...), ``("call", (fn,), {})`` to call ``fn(ctx)``, or
``("cancel_open", (), {})`` to cancel the strategy's open orders. It records the
bars it saw, what each intent returned, its fills and its position after each."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Step = tuple[str, tuple[Any, ...], dict[str, Any]]


class Script:
    """Runs its steps bar by bar and records what happened."""

    def __init__(self, steps: dict[int, list[Step]], symbol: str | None = None) -> None:
        self.steps = steps
        self.symbol = symbol
        self.bars: list[tuple[str, int, int]] = []
        self.orders: list[Any] = []
        self.fills: list[Any] = []
        self.positions: list[Decimal] = []

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        self.bars.append((bar.instrument.symbol, bar.index, bar.ts))
        for method, args, kwargs in self.steps.get(bar.index, []):
            if method == "call":
                args[0](self.ctx)
            elif method == "cancel_open":
                for order in self.ctx.open_orders():
                    self.ctx.cancel(order)
            else:
                self.orders.append(getattr(self.ctx, method)(*args, **kwargs))

    def on_fill(self, fill: Any) -> None:
        self.fills.append(fill)
        self.positions.append(self.ctx.position(fill.instrument))

    def denied(self) -> list[bool]:
        """For each intent, whether it was denied."""
        return [o is None for o in self.orders]


def buy(q: Any = 1, **kw: Any) -> Step:
    """A market (or, with ``limit=``/``stop=``, limit or stop) buy step."""
    return ("buy", (q,), kw)


def sell(q: Any = 1, **kw: Any) -> Step:
    """A sell step."""
    return ("sell", (q,), kw)


class RecordingSink:
    """Stands in for the kernel's execution sink: records what a broker reports, in
    order; knows the instruments and engine time (``now``, settable)."""

    def __init__(self, *instruments: Any) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.events: list[tuple[Any, ...]] = []
        self.now = 0

    def instrument(self, symbol: str) -> Any:
        return self.instruments[symbol]

    def position(self, symbol: str) -> Decimal:
        return Decimal(0)

    def order_accepted(self, client_id: str) -> None:
        self.events.append(("accepted", client_id))

    def order_rejected(self, client_id: str, reason: str) -> None:
        self.events.append(("rejected", client_id, reason))

    def order_filled(
        self, client_id: str, qty: Decimal, price: Decimal, fee: Decimal, fill_id: str | None = None
    ) -> None:
        self.events.append(("filled", client_id, qty, price, fee, fill_id))

    def order_canceled(self, client_id: str, reason: str = "") -> None:
        self.events.append(("canceled", client_id, reason))

    def order_expired(self, client_id: str) -> None:
        self.events.append(("expired", client_id))

    def kinds(self) -> list[str]:
        """The kind of each event, in order."""
        return [e[0] for e in self.events]

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        """The events of one kind."""
        return [e for e in self.events if e[0] == kind]
