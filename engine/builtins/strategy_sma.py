"""Built-in plugin ``sma_crossover``: simple moving average crossover.

Long-only (default): buys ``quantity`` when the fast SMA crosses above the slow
SMA while flat; sells the whole position when it crosses below. With
``allow_short = true`` it reverses instead: long ``quantity`` after a golden
cross, short ``quantity`` after a death cross. Averages are compared exactly, on
integer ticks: ``sum_fast * slow`` against ``sum_slow * fast``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from engine import BarView, Strategy, StrategyContext, hookimpl, positive

if TYPE_CHECKING:
    from engine import BarSeries


@attrs.frozen
class SmaConfig:
    """``[[strategies]] type = "sma_crossover"`` options."""

    fast: int = attrs.field(default=10, validator=positive)
    slow: int = attrs.field(default=30, validator=positive)
    quantity: Decimal = attrs.field(default=Decimal(1), validator=positive)
    allow_short: bool = False

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")


class SmaCrossover:
    """Rolling sums over two deques pre-filled with zeros; one comparison per bar."""

    __slots__ = (
        "_ctx",
        "_fast_window",
        "_prev",
        "_signals",
        "_slow_window",
        "_sum_fast",
        "_sum_slow",
        "_warmup",
        "allow_short",
        "fast",
        "quantity",
        "slow",
    )

    def __init__(self, config: SmaConfig) -> None:
        self.fast = config.fast
        self.slow = config.slow
        self.quantity = config.quantity
        self.allow_short = config.allow_short
        self._fast_window = deque([0] * config.fast)
        self._slow_window = deque([0] * config.slow)
        self._sum_fast = 0
        self._sum_slow = 0
        self._warmup = config.slow  # bars until a crossing can be seen
        self._prev = 0
        self._signals: list[int] | None = None
        self._ctx: Any = None

    def on_start(self, ctx: StrategyContext) -> None:
        """Keep the context for placing orders."""
        self._ctx = ctx

    def prepare(self, series: BarSeries) -> Any:
        """Backtests: find every crossing up front, on the whole close column with exact
        int64 arithmetic (the same sums and comparison as :meth:`on_bar`); the event
        loop then only decides. Returns the bars with a crossing (the only bars where
        :meth:`on_bar` can act, for the vectorised mode). Paper and live runs never
        call it: they compute the sums bar by bar. Falls back to that too (returning
        ``None``) if the sums could overflow int64."""
        import numpy as np  # here, not at import: listing plugins stays fast

        closes = series.close
        n = len(closes)
        if n and int(closes.max()) * n * self.slow >= 2**62:
            return None
        signals = np.zeros(n, dtype=np.int8)
        if n > self.slow:
            cs = np.concatenate(([0], np.cumsum(closes, dtype=np.int64)))
            i = np.arange(self.slow - 1, n)
            sum_fast = cs[i + 1] - cs[i + 1 - self.fast]
            sum_slow = cs[i + 1] - cs[i + 1 - self.slow]
            diff = sum_fast * self.slow - sum_slow * self.fast  # from bar slow-1 on
            prev, cur = diff[:-1], diff[1:]  # crossings from bar slow on
            signals[self.slow :][(prev <= 0) & (cur > 0)] = 1
            signals[self.slow :][(prev >= 0) & (cur < 0)] = -1
        self._signals = signals.tolist()
        return np.flatnonzero(signals)

    def on_bar(self, bar: BarView) -> None:
        """Trade on a crossing: looked up when prepared, else from rolling sums."""
        signals = self._signals
        if signals is not None:
            signal = signals[bar.index]
            if signal:
                self._cross(signal > 0)
            return
        c = bar.close
        fw = self._fast_window
        sw = self._slow_window
        fw.append(c)
        sw.append(c)
        sum_fast = self._sum_fast = self._sum_fast + c - fw.popleft()
        sum_slow = self._sum_slow = self._sum_slow + c - sw.popleft()
        if self._warmup:  # both averages are defined from bar slow-1 on
            self._warmup -= 1
            if not self._warmup:
                self._prev = sum_fast * self.slow - sum_slow * self.fast
            return
        diff = sum_fast * self.slow - sum_slow * self.fast
        prev = self._prev
        self._prev = diff
        if prev <= 0 < diff:
            self._cross(True)
        elif prev >= 0 > diff:
            self._cross(False)

    def _cross(self, up: bool) -> None:
        """Act on a golden (``up``) or death cross."""
        if up:
            ctx = self._ctx
            held = ctx.position()
            if self.allow_short:
                if held < self.quantity and not ctx.open_order_count():
                    ctx.buy(self.quantity - held)
            elif not held and not ctx.open_order_count():
                ctx.buy(self.quantity)
        else:
            ctx = self._ctx
            held = ctx.position()
            if self.allow_short:
                if held > -self.quantity and not ctx.open_order_count():
                    ctx.sell(held + self.quantity)
            elif held > 0:
                ctx.sell(held)


def _build(config: SmaConfig) -> SmaCrossover:
    return SmaCrossover(config)


@hookimpl
def engine_strategies() -> list[Strategy]:
    """The ``sma_crossover`` strategy."""
    return [
        Strategy(
            name="sma_crossover",
            factory=_build,
            config_type=SmaConfig,
            description="Long-only fast/slow simple moving average crossover.",
        )
    ]
