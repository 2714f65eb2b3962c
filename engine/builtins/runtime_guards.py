"""Built-in plugin ``runtime_guards``: conditions evaluated on a cadence that move
the trading state (ACTIVE -> REDUCING -> HALTED). The engine applies hysteresis
(``[trading] resume_after``) on the way back; with ``flatten = true`` in a
guard's table the engine also closes every position when that guard trips."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from engine import RuntimeDecision, RuntimeGuard, hookimpl, interval, parse_interval, positive

Evaluate = Callable[[Any], RuntimeDecision | None]


def _ordered(low_name: str, high_name: str) -> Callable[[Any], None]:
    def check(self: Any) -> None:
        low, high = getattr(self, low_name), getattr(self, high_name)
        if low is not None and high is not None and low > high:
            raise ValueError(f"{low_name} ({low}) must not exceed {high_name} ({high})")

    return check


def _optional_fraction(_inst: object, _attr: object, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ValueError(f"must be between 0 and 1, got {value}")


@attrs.frozen
class Thresholds:
    """REDUCING from ``reduce_at``, HALTED from ``halt_at`` (either or both)."""

    reduce_at: float | None = attrs.field(default=None, validator=_optional_fraction)
    halt_at: float | None = attrs.field(default=None, validator=_optional_fraction)

    def __attrs_post_init__(self) -> None:
        if self.reduce_at is None and self.halt_at is None:
            raise ValueError("set reduce_at, halt_at or both")
        _ordered("reduce_at", "halt_at")(self)

    def decide(
        self, value: float, shown: str, limit: Callable[[float], str]
    ) -> RuntimeDecision | None:
        """The decision for ``value`` (``shown`` and ``limit`` format the message)."""
        if self.halt_at is not None and value >= self.halt_at:
            return RuntimeDecision("halted", "halt", f"{shown} >= {limit(self.halt_at)}")
        if self.reduce_at is not None and value >= self.reduce_at:
            return RuntimeDecision("reducing", "reduce", f"{shown} >= {limit(self.reduce_at)}")
        return None


@attrs.frozen
class DrawdownConfig(Thresholds):
    """``drawdown``: REDUCING from ``reduce_at``, HALTED from ``halt_at`` (fractions
    of the peak of sampled equity)."""


def drawdown(config: DrawdownConfig) -> Evaluate:
    """Drawdown from the equity peak."""

    def evaluate(ctx: Any) -> RuntimeDecision | None:
        dd = ctx.drawdown()
        return config.decide(dd, f"drawdown {dd:.2%}", lambda x: f"{x:.2%}")

    return evaluate


@attrs.frozen
class DailyLossConfig:
    """``daily_loss``: HALTED once equity is ``limit`` below its first sample of the
    UTC day (``state = "reducing"`` to only reduce instead)."""

    limit: Decimal = attrs.field(validator=positive)
    state: str = attrs.field(
        default="halted", validator=attrs.validators.in_(("reducing", "halted"))
    )


def daily_loss(config: DailyLossConfig) -> Evaluate:
    """Daily loss limit."""

    def evaluate(ctx: Any) -> RuntimeDecision | None:
        pnl = ctx.daily_pnl()
        if pnl <= -config.limit:
            return RuntimeDecision(config.state, "limit", f"daily PnL {pnl:.2f} <= -{config.limit}")
        return None

    return evaluate


@attrs.frozen
class StaleDataConfig:
    """``stale_data``: HALTED while any instrument's last bar is older than
    ``max_age``: engine time against the newest bar in a backtest, the wall clock
    in paper and live runs (``wall_clock = true``)."""

    max_age: str = attrs.field(validator=interval)
    wall_clock: bool = False


def stale_data(config: StaleDataConfig) -> Evaluate:
    """Data freshness."""
    limit = parse_interval(config.max_age)

    def evaluate(ctx: Any) -> RuntimeDecision | None:
        now = time.time_ns() if config.wall_clock else ctx.now
        for symbol in ctx.instruments:
            bar = ctx.bar(symbol)
            if bar.index < 0:
                return RuntimeDecision("halted", "stale", f"{symbol}: no bar yet")
            age = now - bar.ts
            if age > limit:
                return RuntimeDecision(
                    "halted", "stale", f"{symbol}: last bar {age / 1e9:.0f}s old"
                )
        return None

    return evaluate


@attrs.frozen
class MarginRatioConfig(Thresholds):
    """``margin_ratio``: maintenance margin over equity; REDUCING from ``reduce_at``,
    HALTED from ``halt_at`` (1.0 is liquidation)."""


def margin_ratio(config: MarginRatioConfig) -> Evaluate:
    """Distance to liquidation, account-wide."""

    def evaluate(ctx: Any) -> RuntimeDecision | None:
        ratio = float(ctx.margin_ratio())
        return config.decide(ratio, f"margin ratio {ratio:.2f}", str)

    return evaluate


@attrs.frozen
class KillSwitchConfig:
    """``kill_switch``: HALTED while ``engaged`` or while the file ``file`` exists
    (touch it to stop trading, remove it to resume after ``resume_after``)."""

    engaged: bool = False
    file: str | None = None


def kill_switch(config: KillSwitchConfig) -> Evaluate:
    """Manual stop."""

    def evaluate(ctx: Any) -> RuntimeDecision | None:
        if config.engaged or (config.file is not None and os.path.exists(config.file)):
            return RuntimeDecision("halted", "engaged", "the kill switch is engaged")
        return None

    return evaluate


@hookimpl
def engine_runtime_guards() -> list[RuntimeGuard]:
    """The built-in runtime guards."""
    return [
        RuntimeGuard(name="drawdown", factory=drawdown, config_type=DrawdownConfig),
        RuntimeGuard(name="daily_loss", factory=daily_loss, config_type=DailyLossConfig),
        RuntimeGuard(name="stale_data", factory=stale_data, config_type=StaleDataConfig),
        RuntimeGuard(name="margin_ratio", factory=margin_ratio, config_type=MarginRatioConfig),
        RuntimeGuard(
            name="kill_switch",
            factory=kill_switch,
            config_type=KillSwitchConfig,
            cadence_seconds=1.0,
        ),
    ]
