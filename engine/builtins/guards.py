"""Built-in plugin ``guards``: is an intent within risk? (pipeline stage 3).

A guard allows, denies, or reduces the quantity to what fits (rounded down to
whole lots). Open orders count as reserved, in the worst case: a limit is checked
against the position the account would have if this order and every open order on
its side filled, while open orders on the other side, which may never fill, do not
make room.
Exposure-reducing intents always pass the loss and drawdown guards, so a
strategy can still get out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from engine import (
    Deny,
    Guard,
    OrderIntent,
    Reduce,
    Side,
    between,
    hookimpl,
    interval,
    parse_interval,
    positive,
)
from engine.builtins.validation import order_price

Check = Callable[[OrderIntent, Any], Deny | Reduce | None]
ZERO = Decimal(0)


def _signed(intent: OrderIntent) -> Decimal:
    return intent.quantity if intent.side is Side.BUY else -intent.quantity


def _lots(quantity: Decimal, lot: Decimal) -> Decimal:
    """``quantity`` rounded down to whole lots (never below zero)."""
    return max(ZERO, (quantity // lot) * lot)


def _fit(
    intent: OrderIntent, allowed: Decimal, ctx: Any, code: str, why: str
) -> Deny | Reduce | None:
    """Pass when ``allowed`` covers the intent, reduce to it when it is a positive
    number of lots, deny otherwise."""
    if allowed >= intent.quantity:
        return None
    fitted = _lots(allowed, ctx.instrument(intent.instrument).lot_size)
    if fitted <= 0:
        return Deny(code, why)
    return Reduce(fitted, code, f"reduced to {fitted}: {why}")


def _capacity(current: Decimal, direction: int, limit: Decimal) -> Decimal:
    """Largest quantity that keeps ``|current + direction * q| <= limit``."""
    if current * direction >= 0:  # adding to the position (or flat)
        return limit - abs(current)
    return abs(current) + limit  # through zero to the other side


# -- position and exposure ---------------------------------------------------------------


@attrs.frozen
class MaxPositionConfig:
    """``max_position``: the absolute position per instrument (``instrument`` to
    apply to one only), open orders included, stays within ``limit``."""

    limit: Decimal = attrs.field(validator=positive)
    instrument: str | None = None


def max_position(config: MaxPositionConfig) -> Check:
    """Position limit per instrument."""

    limit = config.limit

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        symbol = intent.instrument
        if config.instrument is not None and symbol != config.instrument:
            if config.instrument not in ctx.instruments:  # a typo must not turn it off
                return Deny("unknown_instrument", f"no instrument {config.instrument!r}")
            return None
        # open orders on the intent's side count as filled, the others as not
        current = ctx.position(symbol) + ctx.reserved(symbol, side=intent.side)
        buy = intent.side is Side.BUY
        after = current + intent.quantity if buy else current - intent.quantity
        if -limit <= after <= limit:  # the common case: well within the limit
            return None
        room = _capacity(current, 1 if buy else -1, limit)
        return _fit(intent, room, ctx, "limit", f"position limit {config.limit} (now {current})")

    return check


def _exposure_room(
    intent: OrderIntent,
    ctx: Any,
    max_gross: Decimal | None,
    max_net: Decimal | None,
    strategy: str | None = None,
) -> tuple[Decimal, str]:
    """The largest quantity of the intent that keeps gross and net exposure within
    the limits, or that does not increase them (an order may close a position and
    open the other side: gross exposure falls, then rises). Open orders on the
    intent's side count as filled; those on the other side as not."""
    symbol = intent.instrument
    mark = ctx.last_price(symbol)
    if mark is None:
        return ZERO, "no price to value the order"
    unit = mark * ctx.instrument(symbol).multiplier
    gross, net_long, net_short = ctx.exposure(strategy)
    held = ctx.position(symbol) if strategy is None else ctx.strategy_position(strategy, symbol)
    buys = ctx.reserved(symbol, strategy, Side.BUY)
    sells = ctx.reserved(symbol, strategy, Side.SELL)
    buying = intent.side is Side.BUY
    direction = 1 if buying else -1
    x = held + (buys if buying else sells)  # position if this side's open orders fill
    other_side = abs(held + (sells if buying else buys))
    room = intent.quantity
    why = ""
    if max_gross is not None:
        other = gross - max(abs(held + buys), abs(held + sells)) * unit
        bound = max((max_gross - other) / unit, abs(x), other_side)
        fits = _capacity(x, direction, bound)
        if fits < room:
            after = other + max(abs(x + direction * intent.quantity), other_side) * unit
            room, why = fits, f"gross exposure {after:.2f} > {max_gross}"
    if max_net is not None:
        net = net_long if buying else net_short
        other = net - x * unit
        bound = max(max_net, abs(net)) / unit
        fits = (bound - other / unit) - x if buying else x + bound + other / unit
        if fits < room:
            after = other + (x + direction * intent.quantity) * unit
            room, why = fits, f"net exposure {after:.2f} beyond +/-{max_net}"
    return room, why


def _optional_positive(_inst: object, _attr: object, value: Decimal | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"must be > 0, got {value}")


@attrs.frozen
class MaxExposureConfig:
    """``max_exposure``: gross and/or net notional across all strategies and
    instruments, open orders reserved."""

    max_gross: Decimal | None = attrs.field(default=None, validator=_optional_positive)
    max_net: Decimal | None = attrs.field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        if self.max_gross is None and self.max_net is None:
            raise ValueError("set max_gross, max_net or both")


def max_exposure(config: MaxExposureConfig) -> Check:
    """Account-wide exposure limits."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        room, why = _exposure_room(intent, ctx, config.max_gross, config.max_net)
        return _fit(intent, room, ctx, "limit", why)

    return check


@attrs.frozen
class MaxOrderNotionalConfig:
    """``max_order_notional``: one order's notional at most ``limit``."""

    limit: Decimal = attrs.field(validator=positive)


def max_order_notional(config: MaxOrderNotionalConfig) -> Check:
    """Order size cap in quote currency."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        price = order_price(intent, ctx)
        if price is None:
            return Deny("no_price", "no price to value the order")
        unit = price * ctx.instrument(intent.instrument).multiplier
        if intent.quantity * unit <= config.limit:  # no division in the common case
            return None
        return _fit(
            intent, config.limit / unit, ctx, "limit", f"order notional above {config.limit}"
        )

    return check


@attrs.frozen
class StrategyBudgetConfig:
    """``strategy_budget``: each listed strategy's gross exposure (its own fills and
    open orders) stays within its budget, so strategies sharing an account never
    take each other's capital. ``default`` applies to strategies not listed."""

    budgets: dict[str, Decimal] = attrs.Factory(dict)
    default: Decimal | None = attrs.field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        bad = [name for name, value in self.budgets.items() if value <= 0]
        if bad:
            raise ValueError(f"budgets must be > 0: {', '.join(bad)}")


def strategy_budget(config: StrategyBudgetConfig) -> Check:
    """Per-strategy capital."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        budget = config.budgets.get(intent.strategy, config.default)
        if budget is None:
            return None
        room, why = _exposure_room(intent, ctx, budget, None, strategy=intent.strategy)
        return _fit(intent, room, ctx, "over_budget", f"{intent.strategy}: {why}")

    return check


@attrs.frozen
class LeverageConfig:
    """``leverage``: gross exposure after the order at most ``max_leverage`` x equity."""

    max_leverage: Decimal = attrs.field(validator=positive)


def leverage(config: LeverageConfig) -> Check:
    """Account leverage limit."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | Reduce | None:
        equity = ctx.equity()
        if equity <= 0:
            return None if ctx.is_reducing(intent) else Deny("no_equity", f"equity is {equity}")
        room, why = _exposure_room(intent, ctx, config.max_leverage * equity, None)
        return _fit(intent, room, ctx, "too_high", f"leverage above {config.max_leverage}x: {why}")

    return check


# -- losses ------------------------------------------------------------------------------


@attrs.frozen
class DailyLossConfig:
    """``daily_loss``: once equity is ``limit`` below its first sample of the UTC
    day, only exposure-reducing intents pass."""

    limit: Decimal = attrs.field(validator=positive)


def daily_loss(config: DailyLossConfig) -> Check:
    """Daily loss limit."""
    floor = -config.limit

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        pnl = ctx.daily_pnl()
        if pnl <= floor and not ctx.is_reducing(intent):
            return Deny("limit_reached", f"daily PnL {pnl:.2f} <= -{config.limit}")
        return None

    return check


@attrs.frozen
class MaxDrawdownConfig:
    """``max_drawdown``: once sampled equity is ``limit`` (a fraction) below its peak,
    only exposure-reducing intents pass."""

    limit: float = attrs.field(validator=[positive, between(0.0, 1.0)])


def max_drawdown(config: MaxDrawdownConfig) -> Check:
    """Drawdown limit."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        dd = ctx.drawdown()
        if dd >= config.limit and not ctx.is_reducing(intent):
            return Deny("limit_reached", f"drawdown {dd:.2%} >= {config.limit:.2%}")
        return None

    return check


# -- order flow --------------------------------------------------------------------------


@attrs.frozen
class OrderRateConfig:
    """``order_rate``: at most ``max_orders`` sent to the broker per ``per``."""

    max_orders: int = attrs.field(validator=positive)
    per: str = attrs.field(default="1m", validator=interval)


def order_rate(config: OrderRateConfig) -> Check:
    """Orders per time window (engine time)."""
    window = parse_interval(config.per)

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        sent = ctx.orders_since(ctx.now - window + 1)
        if sent >= config.max_orders:
            return Deny(
                "too_fast", f"{sent} orders in the last {config.per} (max {config.max_orders})"
            )
        return None

    return check


@attrs.frozen
class MaxOpenOrdersConfig:
    """``max_open_orders``: at most ``limit`` orders open at once (all strategies)."""

    limit: int = attrs.field(validator=positive)


def max_open_orders(config: MaxOpenOrdersConfig) -> Check:
    """Open order count."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        count = ctx.open_order_count()
        if count >= config.limit:
            return Deny("too_many", f"{count} orders open (max {config.limit})")
        return None

    return check


@attrs.frozen
class SlippageConfig:
    """``slippage``: deny market and stop orders whose estimated impact exceeds
    ``max_bps``. Estimate: half the spread (from bid/ask when the feed has them,
    else half the bar's range) plus the bar's range times the order's share of the
    bar's volume (capped at 1)."""

    max_bps: float = attrs.field(validator=positive)


def slippage(config: SlippageConfig) -> Check:
    """Impact estimate against the book or the bar."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        if intent.limit_price is not None:
            return None  # a limit order caps its own price
        bar = ctx.bar(intent.instrument)
        if bar.index < 0 or bar.close <= 0:
            return Deny("no_price", "no bar to estimate from")
        range_bps = (bar.high - bar.low) / bar.close * 10_000
        bid = ctx.column(intent.instrument, "bid")
        ask = ctx.column(intent.instrument, "ask")
        if bid is not None and ask is not None and bid + ask > 0:
            half_spread = (ask - bid) / (ask + bid) * 10_000
        else:
            half_spread = range_bps / 2
        share = min(1.0, float(intent.quantity) / bar.volume) if bar.volume > 0 else 1.0
        estimate = half_spread + range_bps * share
        if estimate > config.max_bps:
            return Deny("too_costly", f"estimated impact {estimate:.1f} bps > {config.max_bps}")
        return None

    return check


@attrs.frozen
class LiquidationDistanceConfig:
    """``liquidation_distance``: for perpetuals, after the order the liquidation
    price stays at least ``min_distance`` (a fraction of the price) away."""

    min_distance: float = attrs.field(validator=between(0.0, 1.0))


def liquidation_distance(config: LiquidationDistanceConfig) -> Check:
    """Distance to liquidation after the order."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        inst = ctx.instrument(intent.instrument)
        if not inst.is_perpetual or ctx.is_reducing(intent):
            return None
        price = order_price(intent, ctx)
        if price is None:
            return Deny("no_price", "no price to value the order")
        liquidation = ctx.liquidation_price(intent.instrument, (_signed(intent), price))
        if liquidation is None:
            return None
        distance = float(abs(price - liquidation) / price)
        if distance < config.min_distance:
            return Deny(
                "too_close",
                f"liquidation at {liquidation:.2f} would be {distance:.2%} away"
                f" (min {config.min_distance:.2%})",
            )
        return None

    return check


@attrs.frozen
class KillSwitchConfig:
    """``kill_switch``: while ``engaged`` is true or the file ``file`` exists, only
    exposure-reducing intents pass."""

    engaged: bool = False
    file: str | None = None


def kill_switch(config: KillSwitchConfig) -> Check:
    """Manual stop."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        engaged = config.engaged or (config.file is not None and os.path.exists(config.file))
        if engaged and not ctx.is_reducing(intent):
            return Deny("engaged", "the kill switch is engaged")
        return None

    return check


@hookimpl
def engine_guards() -> list[Guard]:
    """The built-in guards: cheap stops first, then limits."""
    return [
        Guard(name="kill_switch", factory=kill_switch, config_type=KillSwitchConfig, priority=-100),
        Guard(name="daily_loss", factory=daily_loss, config_type=DailyLossConfig, priority=-50),
        Guard(
            name="max_drawdown", factory=max_drawdown, config_type=MaxDrawdownConfig, priority=-50
        ),
        Guard(name="order_rate", factory=order_rate, config_type=OrderRateConfig, priority=-40),
        Guard(
            name="max_open_orders",
            factory=max_open_orders,
            config_type=MaxOpenOrdersConfig,
            priority=-40,
        ),
        Guard(
            name="max_order_notional",
            factory=max_order_notional,
            config_type=MaxOrderNotionalConfig,
            priority=0,
        ),
        Guard(
            name="max_position", factory=max_position, config_type=MaxPositionConfig, priority=10
        ),
        Guard(
            name="strategy_budget",
            factory=strategy_budget,
            config_type=StrategyBudgetConfig,
            priority=20,
        ),
        Guard(
            name="max_exposure", factory=max_exposure, config_type=MaxExposureConfig, priority=30
        ),
        Guard(name="leverage", factory=leverage, config_type=LeverageConfig, priority=30),
        Guard(
            name="liquidation_distance",
            factory=liquidation_distance,
            config_type=LiquidationDistanceConfig,
            priority=40,
        ),
        Guard(name="slippage", factory=slippage, config_type=SlippageConfig, priority=50),
    ]
