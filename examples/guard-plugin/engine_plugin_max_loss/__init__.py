"""A guard in one function plus one hook implementation.

``max_loss_per_trade``: an order with a stop price may lose at most ``limit``
(quantity x distance to the stop); bigger orders are reduced to fit, orders
without a stop pass through.

    [[guards]]
    type = "max_loss_per_trade"
    limit = "250"
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from engine import Deny, Guard, OrderIntent, Reduce, hookimpl, positive


@attrs.frozen
class MaxLossConfig:
    """Options of ``max_loss_per_trade`` (validated; errors are reported by path)."""

    limit: Decimal = attrs.field(validator=positive)


def max_loss_per_trade(config: MaxLossConfig) -> Any:
    """Built once per run; the returned check runs for every intent."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        if intent.stop_price is None:
            return None
        last = ctx.last_price(intent.instrument)
        if last is None:
            return Deny("no_price", "no last price to measure the stop distance")
        risk_per_unit = abs(last - intent.stop_price) * ctx.instrument(intent.instrument).multiplier
        if risk_per_unit == 0 or intent.quantity * risk_per_unit <= config.limit:
            return None
        lot = ctx.instrument(intent.instrument).lot_size
        fitted = (config.limit / risk_per_unit // lot) * lot
        if fitted <= 0:
            return Deny("too_risky", f"even one lot risks more than {config.limit}")
        return Reduce(fitted, "too_risky", f"{intent.quantity} would risk more than {config.limit}")

    return check


@hookimpl
def engine_guards() -> list[Guard]:
    """Register the guard under the name used in config."""
    return [Guard(name="max_loss_per_trade", factory=max_loss_per_trade, config_type=MaxLossConfig)]
