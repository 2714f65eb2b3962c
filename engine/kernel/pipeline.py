"""The order pipeline: filters -> validation rules -> guards, compiled once.

Each stage is an ordered tuple of plain callables ``check(intent, ctx)``
returning ``None`` (allow), :class:`~engine.records.Deny` or, for guards,
:class:`~engine.records.Reduce`. A check that raises fails closed: the intent is
denied with reason ``<name>.error``. A denial is an event (:class:`Denial`),
never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import attrs
from attrs import frozen
from loguru import logger

from engine.kernel.context import BarView
from engine.model import Instrument, Order, OrderIntent, Portfolio
from engine.records import Allow, Deny, Reduce

__all__ = ["STAGES", "CompiledCheck", "Denial", "OrderPipeline", "PipelineContext", "Reduction"]

#: Pipeline stages in the order they run, with the config section that feeds each.
STAGES = (("filter", "filters"), ("validation", "validation_rules"), ("guard", "guards"))


class PipelineContext(Protocol):
    """What a check may ask about the world. Read-only by convention."""

    @property
    def now(self) -> int:
        """Current time in nanoseconds (the bar's time in a backtest)."""
        ...

    @property
    def portfolio(self) -> Portfolio:
        """The account."""
        ...

    def instrument(self, symbol: str) -> Instrument:
        """The instrument ``symbol``."""
        ...

    def position(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        ...

    def last_price(self, symbol: str) -> Decimal | None:
        """Last close seen for ``symbol`` (``None`` before the first bar)."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders not yet in a terminal state."""
        ...

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """Every configured instrument by symbol."""
        ...

    def bar(self, symbol: str) -> BarView:
        """The current bar of ``symbol`` (prices in ticks)."""
        ...

    def history(self, symbol: str, column: str, n: int) -> Any:
        """The last ``n`` values of a column up to the current bar (numpy array)."""
        ...

    def window_sum(self, symbol: str, column: str, n: int) -> float:
        """Sum of the last ``n`` values of a column (O(1) in a backtest)."""
        ...

    def column(self, symbol: str, name: str) -> float | None:
        """The current value of an optional column (``bid``, ``ask``...)."""
        ...

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        """One strategy's signed position."""
        ...

    def reserved(self, symbol: str, strategy: str | None = None, side: Any = None) -> Decimal:
        """Signed quantity open orders still reserve (one side's only, with ``side``)."""
        ...

    def open_order_count(self) -> int:
        """How many orders are open."""
        ...

    def orders_since(self, ts: int) -> int:
        """Orders sent to the broker at or after ``ts``."""
        ...

    def equity(self) -> Decimal:
        """Equity at the last closes (a sample for drawdown and daily PnL)."""
        ...

    def drawdown(self) -> float:
        """Fraction below the sampled equity peak."""
        ...

    def daily_pnl(self) -> Decimal:
        """Equity minus the first sample of the UTC day."""
        ...

    def exposure(self, strategy: str | None = None) -> tuple[Decimal, Decimal, Decimal]:
        """(gross, net if open buys fill, net if open sells fill), worst case."""
        ...

    def margin_ratio(self) -> Decimal:
        """Maintenance margin over equity."""
        ...

    def liquidation_price(
        self, symbol: str, add: tuple[Decimal, Decimal] | None = None
    ) -> Decimal | None:
        """Liquidation price of the position (after a hypothetical fill with ``add``)."""
        ...

    def is_reducing(self, intent: OrderIntent) -> bool:
        """True when the intent only reduces the account's position."""
        ...


@frozen
class Denial:
    """An intent refused by the pipeline. ``reason`` is namespaced: ``<check>.<code>``."""

    ts: int
    client_id: str
    strategy: str
    instrument: str
    side: str
    quantity: Decimal
    stage: str
    check: str
    plugin: str
    reason: str
    message: str


@frozen
class Reduction:
    """A guard shrank an intent's quantity."""

    ts: int
    client_id: str
    check: str
    plugin: str
    reason: str
    before: Decimal
    after: Decimal


class CompiledCheck(NamedTuple):
    """One check of one stage, with its provenance."""

    stage: str
    name: str
    plugin: str
    check: Any


class OrderPipeline:
    """Runs an intent through every stage; holds the denial and reduction events."""

    def __init__(self, checks: Sequence[CompiledCheck]) -> None:
        self.checks = tuple(checks)
        self.denials: list[Denial] = []
        self.reductions: list[Reduction] = []

    def __len__(self) -> int:
        return len(self.checks)

    def evaluate(
        self, intent: OrderIntent, client_id: str, ctx: PipelineContext
    ) -> OrderIntent | Denial:
        """The (possibly reduced) intent to submit, or the :class:`Denial`."""
        for stage, name, plugin, check in self.checks:
            try:
                decision = check(intent, ctx)
            except Exception as exc:  # risk checks fail closed
                logger.exception("check {} ({}) raised; denying the order", name, plugin)
                decision = Deny("error", f"{type(exc).__name__}: {exc}")
            if decision is None or type(decision) is Allow:
                continue
            if type(decision) is Reduce and stage == "guard":
                qty = decision.quantity
                if not (0 < qty < intent.quantity):
                    decision = Deny(
                        "bad_reduce", f"reduce to {qty} is not between 0 and {intent.quantity}"
                    )
                else:
                    self.reductions.append(
                        Reduction(
                            ctx.now,
                            client_id,
                            name,
                            plugin,
                            f"{name}.{decision.reason}",
                            intent.quantity,
                            qty,
                        )
                    )
                    intent = attrs.evolve(intent, quantity=qty)
                    continue
            if type(decision) is not Deny:
                decision = Deny("bad_decision", f"{stage} check returned {decision!r}")
            denial = Denial(
                ts=ctx.now,
                client_id=client_id,
                strategy=intent.strategy,
                instrument=intent.instrument,
                side=intent.side.value,
                quantity=intent.quantity,
                stage=stage,
                check=name,
                plugin=plugin,
                reason=f"{name}.{decision.reason}",
                message=decision.message,
            )
            self.denials.append(denial)
            return denial
        return intent
