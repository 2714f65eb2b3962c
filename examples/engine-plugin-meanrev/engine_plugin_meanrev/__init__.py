"""``meanrev``: mean reversion with Bollinger bands, as a third-party strategy plugin.

Over the last ``window`` closes it computes the mean and the (population) standard
deviation. Flat, it buys ``quantity`` when a bar closes below the lower band
(``mean - k * std``); long, it sells the whole position when a bar closes above
the exit level: the mean (``exit = "mean"``, the default) or the upper band
(``exit = "upper"``). Long only.

Backtests call :meth:`MeanReversion.prepare` with the whole series, and the bands
are computed once with numpy; paper and live runs compute them bar by bar. Both
use the same float64 formula on the same exact integer sums of ticks, so they take
the same decisions on the same bars.

Config::

    [[strategies]]
    type = "meanrev"
    window = 20        # closes in the bands (>= 2)
    k = 2.0            # band width in standard deviations
    quantity = "0.5"
    exit = "mean"      # or "upper"
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
from engine import BarSeries, Strategy, hookimpl, positive

__all__ = ["MeanRevConfig", "MeanReversion", "engine_strategies"]

__version__ = "0.1.0"


def _at_least_two(_inst: object, _attr: object, value: int) -> None:
    if value < 2:
        raise ValueError(f"must be >= 2, got {value}")


@attrs.frozen
class MeanRevConfig:
    """``[[strategies]] type = "meanrev"`` options."""

    window: int = attrs.field(default=20, validator=_at_least_two)
    k: float = attrs.field(default=2.0, validator=positive)
    quantity: Decimal = attrs.field(default=Decimal(1), validator=positive)
    exit: str = attrs.field(default="mean", validator=attrs.validators.in_(("mean", "upper")))


class MeanReversion:
    """The strategy object: prepared signals in backtests, rolling sums otherwise."""

    def __init__(self, config: MeanRevConfig) -> None:
        self.window = config.window
        self.k = config.k
        self.quantity = config.quantity
        self.exit_at_upper = config.exit == "upper"
        self._closes: deque[int] = deque()
        self._s1 = 0  # sum of the window's closes, in ticks (exact)
        self._s2 = 0  # sum of their squares (exact)
        self._entry: list[bool] | None = None
        self._exit: list[bool] | None = None
        self.ctx: Any = None

    def on_start(self, ctx: Any) -> None:
        """Keep the context for orders and positions."""
        self.ctx = ctx

    def _levels(self, s1: int, s2: int) -> tuple[float, float, float]:
        """(lower band, exit level, mean) from the window's sums, in ticks."""
        n = self.window
        mean = float(s1) / n
        var = float(s2) / n - mean * mean
        std = math.sqrt(var) if var > 0 else 0.0
        exit_level = mean + self.k * std if self.exit_at_upper else mean
        return mean - self.k * std, exit_level, mean

    def prepare(self, series: BarSeries) -> None:
        """Backtests: the entry and exit signal of every bar, with numpy (the same
        formula as :meth:`_levels`). Falls back to bar-by-bar sums when a window's
        sum of squares could overflow int64."""
        closes = series.close
        n, w = len(closes), self.window
        if n and int(closes.max()) ** 2 * w >= 2**62:
            return
        entry = np.zeros(n, dtype=bool)
        exit_ = np.zeros(n, dtype=bool)
        if n >= w:
            # exact int64 sums of each window (ending at bars w-1..n-1), as on_bar keeps them
            windows = np.lib.stride_tricks.sliding_window_view
            s1 = windows(closes, w).sum(axis=1, dtype=np.int64).astype(np.float64)
            s2 = windows(closes * closes, w).sum(axis=1, dtype=np.int64).astype(np.float64)
            mean = s1 / w
            var = s2 / w - mean * mean
            std = np.sqrt(np.where(var > 0, var, 0.0))
            level = mean + self.k * std if self.exit_at_upper else mean
            close = closes[w - 1 :].astype(np.float64)
            entry[w - 1 :] = close < mean - self.k * std
            exit_[w - 1 :] = close > level
        self._entry = entry.tolist()
        self._exit = exit_.tolist()

    def on_bar(self, bar: Any) -> None:
        """Trade on the signal of this bar: looked up when prepared, else computed."""
        if self._entry is not None and self._exit is not None:
            i = bar.index
            self._act(self._entry[i], self._exit[i])
            return
        c = bar.close
        closes = self._closes
        closes.append(c)
        self._s1 += c
        self._s2 += c * c
        if len(closes) > self.window:
            old = closes.popleft()
            self._s1 -= old
            self._s2 -= old * old
        if len(closes) < self.window:
            return
        lower, exit_level, _mean = self._levels(self._s1, self._s2)
        self._act(float(c) < lower, float(c) > exit_level)

    def _act(self, entry: bool, exit_: bool) -> None:
        ctx = self.ctx
        if ctx.open_order_count():  # an order is on its way (or partly filled): wait
            return
        held = ctx.position()
        if not held:
            if entry:
                ctx.buy(self.quantity)
        elif held > 0 and exit_:
            ctx.sell(held)


@hookimpl
def engine_strategies() -> list[Strategy]:
    """The ``meanrev`` strategy."""
    return [
        Strategy(
            name="meanrev",
            factory=MeanReversion,
            config_type=MeanRevConfig,
            description="Mean reversion: buy below the lower Bollinger band, sell at the mean.",
        )
    ]
