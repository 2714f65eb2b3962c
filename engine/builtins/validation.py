"""Built-in plugin ``validation``: is an intent well formed? (pipeline stage 2)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from engine import Deny, OrderIntent, ValidationRule, hookimpl, positive

Check = Callable[[OrderIntent, Any], Deny | None]


def _prices(intent: OrderIntent) -> list[tuple[str, Decimal]]:
    return [
        (name, value)
        for name, value in (("limit", intent.limit_price), ("stop", intent.stop_price))
        if value is not None
    ]


def positive_values(config: None) -> Check:
    """``positive_values``: quantity and limit/stop prices finite and > 0."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        q = intent.quantity
        if not q.is_finite() or q <= 0:
            return Deny("quantity", f"quantity must be a positive number, got {q}")
        for name, value in _prices(intent):
            if not value.is_finite() or value <= 0:
                return Deny("price", f"{name} price must be a positive number, got {value}")
        return None

    return check


def known_instrument(config: None) -> Check:
    """``known_instrument``: the instrument is configured."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        if intent.instrument not in ctx.instruments:
            return Deny("unknown", f"unknown instrument {intent.instrument!r}")
        return None

    return check


def tick_size(config: None) -> Check:
    """``tick_size``: limit and stop prices are multiples of the tick size."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        tick = ctx.instrument(intent.instrument).tick_size
        for name, value in _prices(intent):
            if value % tick:
                return Deny("off_tick", f"{name} price {value} is not a multiple of {tick}")
        return None

    return check


def lot_size(config: None) -> Check:
    """``lot_size``: the quantity is a whole number of lots."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        inst = ctx.instrument(intent.instrument)
        if not inst.is_lot_multiple(intent.quantity):
            return Deny(
                "off_lot", f"quantity {intent.quantity} is not a multiple of {inst.lot_size}"
            )
        return None

    return check


def _nonneg(_inst: object, _attr: object, value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"must be >= 0, got {value}")


@attrs.frozen
class NotionalConfig:
    """``notional``: ``min`` <= quantity x price <= ``max`` (price: the limit or stop
    price, else the last close)."""

    min: Decimal = attrs.field(default=Decimal(0), validator=_nonneg)
    max: Decimal | None = attrs.field(default=None, validator=_nonneg)

    def __attrs_post_init__(self) -> None:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) must not be below min ({self.min})")


def order_price(intent: OrderIntent, ctx: Any) -> Decimal | None:
    """The price an intent is valued at: its limit or stop price, else the last close."""
    return intent.limit_price or intent.stop_price or ctx.last_price(intent.instrument)


def notional(config: NotionalConfig) -> Check:
    """Min and max notional of one order."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        price = order_price(intent, ctx)
        if price is None:
            return Deny("no_price", "no price yet to value the order")
        value = intent.quantity * price * ctx.instrument(intent.instrument).multiplier
        if value < config.min:
            return Deny("too_small", f"notional {value} < {config.min}")
        if config.max is not None and value > config.max:
            return Deny("too_large", f"notional {value} > {config.max}")
        return None

    return check


@attrs.frozen
class PriceBandConfig:
    """``price_band`` (fat finger): a limit or stop price within ``max_bps`` of the
    last close."""

    max_bps: Decimal = attrs.field(validator=positive)


def price_band(config: PriceBandConfig) -> Check:
    """Limit/stop price distance from the last close."""
    limit = config.max_bps

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        prices = _prices(intent)
        if not prices:
            return None
        last = ctx.last_price(intent.instrument)
        if last is None:
            return Deny("no_price", "no last price to compare with")
        for name, value in prices:
            distance = abs(value - last) / last * 10_000
            if distance > limit:
                return Deny(
                    "out_of_band",
                    f"{name} price {value} is {distance:.0f} bps from the last price {last}",
                )
        return None

    return check


def reduce_only(config: None) -> Check:
    """``reduce_only``: a reduce-only intent must only reduce the position."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        if intent.reduce_only and not ctx.is_reducing(intent):
            return Deny("would_increase", "reduce-only order would open or increase a position")
        return None

    return check


@hookimpl
def engine_validation_rules() -> list[ValidationRule]:
    """The built-in validation rules (structural ones first)."""
    return [
        ValidationRule(name="positive_values", factory=positive_values, priority=-30),
        ValidationRule(name="known_instrument", factory=known_instrument, priority=-20),
        ValidationRule(name="tick_size", factory=tick_size, priority=-10),
        ValidationRule(name="lot_size", factory=lot_size, priority=-10),
        ValidationRule(name="notional", factory=notional, config_type=NotionalConfig),
        ValidationRule(name="price_band", factory=price_band, config_type=PriceBandConfig),
        ValidationRule(name="reduce_only", factory=reduce_only),
    ]
