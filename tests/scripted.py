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
