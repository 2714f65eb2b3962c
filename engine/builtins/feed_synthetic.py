"""Built-in plugin ``synthetic``: a seeded geometric random walk with valid OHLC bars.

Backtests get ``bars`` bars from ``start``; paper runs get an endless stream
stamped with the wall clock, one bar per ``interval``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from engine import Feed, hookimpl, interval, non_negative, parse_interval, positive

if TYPE_CHECKING:
    from engine import BarSeries, FeedContext, Instrument


def _start_ns(text: str) -> int:
    import pandas as pd

    problem = f"expected an ISO-8601 time like 2024-01-01T00:00:00Z, got {text!r}"
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ValueError(problem) from None
    if pd.isna(stamp):
        raise ValueError(problem)
    return int((stamp.tz_convert("UTC") if stamp.tzinfo else stamp).value)


def _check_start(_inst: object, _attr: object, value: str) -> None:
    _start_ns(value)


@attrs.frozen
class SyntheticConfig:
    """``[feed] type = "synthetic"`` options."""

    bars: int = attrs.field(default=10_000, validator=positive)
    start: str = attrs.field(default="2024-01-01T00:00:00Z", validator=_check_start)
    interval: str = attrs.field(default="1m", validator=interval)
    start_price: Decimal = attrs.field(default=Decimal(100), validator=positive)
    drift: float = 0.0
    volatility: float = attrs.field(default=0.002, validator=non_negative)
    seed: int | None = None
    #: > 0 adds bid/ask columns around the close: a spread of about this many bps
    spread_bps: float = attrs.field(default=0.0, validator=non_negative)
    #: > 0 adds bid_size/ask_size columns of about this size
    depth: float = attrs.field(default=0.0, validator=non_negative)


class RandomWalk:
    """Generates consecutive chunks of bars for one instrument."""

    def __init__(
        self, config: SyntheticConfig, instrument: Instrument, seed: int, start_ns: int
    ) -> None:
        import numpy as np  # here, not at import: listing plugins stays fast

        self.config = config
        self.instrument = instrument
        self.rng = np.random.default_rng([seed, zlib.crc32(instrument.symbol.encode())])
        self.step = parse_interval(config.interval)
        self.next_ts = start_ns
        self.log_price = float(np.log(float(config.start_price)))

    def next(self, n: int) -> BarSeries:
        """The next ``n`` bars."""
        import numpy as np

        from engine import BarSeries

        cfg, rng = self.config, self.rng
        tick = float(self.instrument.tick_size)
        log_close = self.log_price + np.cumsum(rng.normal(cfg.drift, cfg.volatility, n))
        log_open = np.concatenate(([self.log_price], log_close[:-1]))
        self.log_price = float(log_close[-1])
        close = np.maximum(np.rint(np.exp(log_close) / tick), 1).astype(np.int64)
        open_ = np.maximum(np.rint(np.exp(log_open) / tick), 1).astype(np.int64)
        wick = np.abs(rng.normal(0.0, cfg.volatility / 2, (2, n)))
        top = np.maximum(open_, close)
        bottom = np.minimum(open_, close)
        high = np.maximum(np.ceil(top * (1 + wick[0])), top).astype(np.int64)
        low = np.clip(np.floor(bottom * (1 - wick[1])), 1, bottom).astype(np.int64)
        volume = np.round(rng.lognormal(3.0, 1.0, n), 3)
        ts = self.next_ts + self.step * np.arange(n, dtype=np.int64)
        self.next_ts = int(ts[-1]) + self.step
        extra = {}
        if cfg.spread_bps > 0:
            half = close * tick * cfg.spread_bps / 20_000 * rng.lognormal(0.0, 0.5, n)
            extra["bid"] = np.round(close * tick - half, 10)
            extra["ask"] = np.round(close * tick + half, 10)
        if cfg.depth > 0:
            extra["bid_size"] = np.round(cfg.depth * rng.lognormal(0.0, 0.7, (n,)), 3)
            extra["ask_size"] = np.round(cfg.depth * rng.lognormal(0.0, 0.7, (n,)), 3)
        return BarSeries(self.instrument, ts, open_, high, low, close, volume, extra)


class SyntheticFeed:
    """The feed object built from :class:`SyntheticConfig`."""

    CHUNK = 64

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config

    def _seed(self, ctx: FeedContext) -> int:
        return ctx.seed if self.config.seed is None else self.config.seed

    def load(self, instrument: Instrument, ctx: FeedContext) -> BarSeries:
        """``bars`` bars from ``start``."""
        start_ns = _start_ns(self.config.start)
        return RandomWalk(self.config, instrument, self._seed(ctx), start_ns).next(self.config.bars)

    def stream(self, instrument: Instrument, ctx: FeedContext) -> Iterator[BarSeries]:
        """Endless bars stamped from now on, one per interval."""
        step = parse_interval(self.config.interval)
        now = time.time_ns()
        walk = RandomWalk(self.config, instrument, self._seed(ctx), now - now % step + step)
        while True:
            yield walk.next(self.CHUNK)


def _build(config: SyntheticConfig) -> SyntheticFeed:
    return SyntheticFeed(config)


@hookimpl
def engine_feeds() -> list[Feed]:
    """The ``synthetic`` feed."""
    return [
        Feed(
            name="synthetic",
            factory=_build,
            config_type=SyntheticConfig,
            description="Seeded geometric random walk with valid OHLC bars.",
        )
    ]
