"""Built-in plugin ``filters``: market-condition filters (pipeline stage 1).

Each filter reads the market as it is at the intent's bar. Filters that need
top-of-book data (``max_spread``, ``min_depth``) use the feed's optional
``bid``/``ask``/``bid_size``/``ask_size`` columns and deny (``no_quote``) when
the feed has none: a check that cannot see what it checks fails closed.

Windows are counted in bars of the intent's instrument, ending at the current
bar; prices in the windows are integer ticks, so ratios are exact per bar.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import attrs

from engine import (
    Deny,
    Filter,
    OrderIntent,
    Side,
    between,
    hookimpl,
    interval,
    parse_interval,
    positive,
)

Check = Callable[[OrderIntent, Any], Deny | None]
BPS = 10_000.0


def _fraction(_inst: object, _attr: object, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"must be between 0 and 1, got {value}")


# -- top of book ----------------------------------------------------------------------


@attrs.frozen
class MaxSpreadConfig:
    """``max_spread``: deny when ``(ask - bid) / mid`` exceeds ``max_bps``."""

    max_bps: float = attrs.field(validator=positive)


def max_spread(config: MaxSpreadConfig) -> Check:
    """Spread of the current bar's top of book, in basis points of the mid."""
    limit = config.max_bps

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        bid = ctx.column(intent.instrument, "bid")
        ask = ctx.column(intent.instrument, "ask")
        if bid is None or ask is None:
            return Deny("no_quote", "the feed has no bid/ask columns")
        mid = (bid + ask) / 2
        spread = (ask - bid) / mid * BPS if mid > 0 else math.inf
        if spread > limit:
            return Deny("too_wide", f"spread {spread:.1f} bps > {limit} bps")
        return None

    return check


@attrs.frozen
class MinDepthConfig:
    """``min_depth``: deny when the size at the touch the order takes is below
    ``min_size`` (asks for a buy, bids for a sell)."""

    min_size: float = attrs.field(validator=positive)


def min_depth(config: MinDepthConfig) -> Check:
    """Top-of-book size on the side the order would take."""
    limit = config.min_size

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        column = "ask_size" if intent.side is Side.BUY else "bid_size"
        size = ctx.column(intent.instrument, column)
        if size is None:
            return Deny("no_quote", f"the feed has no {column} column")
        if size < limit:
            return Deny("too_thin", f"{column} {size:g} < {limit:g}")
        return None

    return check


# -- bars -------------------------------------------------------------------------------


@attrs.frozen
class MinVolumeConfig:
    """``min_volume``: deny when the volume of the last ``window`` bars sums to less
    than ``min_volume``."""

    window: int = attrs.field(validator=positive)
    min_volume: float = attrs.field(validator=positive)


def min_volume(config: MinVolumeConfig) -> Check:
    """Rolling volume over ``window`` bars."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        volume = ctx.window_sum(intent.instrument, "volume", config.window)
        if volume < config.min_volume:
            return Deny(
                "low_volume", f"volume {volume:g} over {config.window} bars < {config.min_volume:g}"
            )
        return None

    return check


def _log_returns(ctx: Any, symbol: str, window: int) -> list[float]:
    closes = ctx.history(symbol, "close", window + 1).tolist()
    return [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]


@attrs.frozen
class VolatilityBandConfig:
    """``volatility_band``: trade only while the standard deviation of the last
    ``window`` one-bar log returns is within ``[min, max]`` (per bar, not annualised)."""

    window: int = attrs.field(validator=positive)
    min: float = attrs.field(default=0.0, validator=_fraction)
    max: float = attrs.field(default=1.0, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")


def volatility_band(config: VolatilityBandConfig) -> Check:
    """Realised volatility band."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        returns = _log_returns(ctx, intent.instrument, config.window)
        if len(returns) < config.window:
            return Deny("warming_up", f"{len(returns)} of {config.window} returns seen")
        mean = sum(returns) / len(returns)
        vol = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
        if vol < config.min:
            return Deny("too_calm", f"volatility {vol:.5f} < {config.min}")
        if vol > config.max:
            return Deny("too_volatile", f"volatility {vol:.5f} > {config.max}")
        return None

    return check


@attrs.frozen
class RsiBandConfig:
    """``rsi_band``: buy only while RSI(``period``) <= ``max_buy``, sell only while it
    is >= ``min_sell`` (no buying overbought, no selling oversold). Simple averages
    of gains and losses over ``period`` bars."""

    period: int = attrs.field(default=14, validator=positive)
    max_buy: float = attrs.field(default=70.0, validator=between(0, 100))
    min_sell: float = attrs.field(default=30.0, validator=between(0, 100))


def rsi(closes: list[int]) -> float | None:
    """RSI of consecutive closes (simple averages); ``None`` without enough data."""
    gains = losses = 0
    for a, b in itertools.pairwise(closes):
        if b > a:
            gains += b - a
        else:
            losses += a - b
    if len(closes) < 2:
        return None
    if not losses:
        return 100.0 if gains else 50.0
    return 100.0 - 100.0 / (1.0 + gains / losses)


def rsi_band(config: RsiBandConfig) -> Check:
    """RSI band by side."""

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        closes = ctx.history(intent.instrument, "close", config.period + 1).tolist()
        if len(closes) < config.period + 1:
            seen = max(0, len(closes) - 1)
            return Deny("warming_up", f"{seen} of {config.period} price changes seen")
        value = rsi(closes)
        assert value is not None
        if intent.side is Side.BUY and value > config.max_buy:
            return Deny("overbought", f"RSI {value:.1f} > {config.max_buy}")
        if intent.side is Side.SELL and value < config.min_sell:
            return Deny("oversold", f"RSI {value:.1f} < {config.min_sell}")
        return None

    return check


# -- time -------------------------------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _session(text: str) -> tuple[int, int]:
    """Minutes since midnight of ``"HH:MM-HH:MM"`` (the end may be past midnight)."""
    try:
        start, end = text.split("-")
        minutes = []
        for part in (start, end):
            hh, mm = part.strip().split(":")
            if (
                not (0 <= int(hh) <= 23 or (int(hh) == 24 and int(mm) == 0))
                or not 0 <= int(mm) < 60
            ):
                raise ValueError
            minutes.append(int(hh) * 60 + int(mm))
    except ValueError:
        raise ValueError(f"expected a session like '09:30-16:00' (UTC), got {text!r}") from None
    return minutes[0], minutes[1]


def _sessions(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("at least one session is required")
    for text in value:
        _session(text)


def _days(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    bad = [d for d in value if d not in _DAYS]
    if bad or not value:
        raise ValueError(f"days must be among {', '.join(_DAYS)}, got {list(value)}")


@attrs.frozen
class TradingHoursConfig:
    """``trading_hours``: trade only inside ``sessions`` (UTC, ``"HH:MM-HH:MM"``,
    a session may cross midnight) on ``days``."""

    sessions: tuple[str, ...] = attrs.field(validator=_sessions)
    days: tuple[str, ...] = attrs.field(default=_DAYS[:5], validator=_days)


def trading_hours(config: TradingHoursConfig) -> Check:
    """A session calendar on engine time."""
    spans = [_session(s) for s in config.sessions]
    days = {_DAYS.index(d) for d in config.days}

    cache = [-1, False]  # (minute since the epoch, open?): one lookup per minute

    def open_at(ts: int) -> bool:
        minute = ts // 60_000_000_000  # integer arithmetic: floored, never rounded
        if minute != cache[0]:
            of_day = minute % 1440
            day = (minute // 1440 + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
            is_open = False
            for start, end in spans:
                if start <= end:
                    is_open = day in days and start <= of_day < end
                else:  # crosses midnight: belongs to the day it starts on
                    is_open = (day in days and of_day >= start) or (
                        (day - 1) % 7 in days and of_day < end
                    )
                if is_open:
                    break
            cache[0], cache[1] = minute, is_open
        return bool(cache[1])

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        if not open_at(ctx.now):
            return Deny("closed", "outside the trading sessions")
        return None

    return check


@attrs.frozen
class StaleDataConfig:
    """``stale_data``: deny when the intent's instrument has had no bar for
    ``max_age`` (engine time: with several instruments, one can fall behind)."""

    max_age: str = attrs.field(validator=interval)


def stale_data(config: StaleDataConfig) -> Check:
    """Age of the instrument's last bar."""
    limit = parse_interval(config.max_age)

    def check(intent: OrderIntent, ctx: Any) -> Deny | None:
        bar = ctx.bar(intent.instrument)
        if bar.index < 0:
            return Deny("stale", "no bar seen yet")
        age = ctx.now - bar.ts
        if age > limit:
            return Deny("stale", f"last bar is {age / 1e9:.0f}s old (max {config.max_age})")
        return None

    return check


@hookimpl
def engine_filters() -> list[Filter]:
    """The built-in filters."""
    return [
        Filter(name="max_spread", factory=max_spread, config_type=MaxSpreadConfig, priority=10),
        Filter(name="min_depth", factory=min_depth, config_type=MinDepthConfig, priority=10),
        Filter(name="min_volume", factory=min_volume, config_type=MinVolumeConfig, priority=20),
        Filter(
            name="volatility_band",
            factory=volatility_band,
            config_type=VolatilityBandConfig,
            priority=30,
        ),
        Filter(name="rsi_band", factory=rsi_band, config_type=RsiBandConfig, priority=30),
        Filter(
            name="trading_hours", factory=trading_hours, config_type=TradingHoursConfig, priority=0
        ),
        Filter(name="stale_data", factory=stale_data, config_type=StaleDataConfig, priority=0),
    ]
