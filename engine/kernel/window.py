"""The bounded history of a streamed backtest: what checks may look back at.

In an in-memory backtest a stream holds its instrument's whole series, and
``ctx.history(symbol, column, n)`` / ``ctx.window_sum(...)`` read it. A streamed
backtest (``[backtest] stream = true``) holds one chunk at a time: a
:class:`HistoryWindow` keeps the last ``keep`` bars before the current chunk and
the chunk, and answers the same two questions with the same numbers:

* ``history`` returns the same values;
* ``window_sum`` returns the same float, bit for bit: the in-memory answer is a
  difference of one cumulative sum over the whole column (float64, summed in
  order), so the window carries, for every column, the exact running sum up to
  the bar before it and continues the same additions from there.

A check that asks for more bars than are kept gets a :class:`ConfigError` naming
``config.backtest.history_bars``; the error is also kept (:attr:`error`), because
the order pipeline turns a check's exception into a denial, and the streamed
loop then stops the run with it rather than let it differ from the in-memory run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data import PRICE_COLUMNS, BarSeries
from engine.errors import ConfigError, Problem

__all__ = ["HistoryWindow"]

_COLUMNS = ("ts", *PRICE_COLUMNS, "volume")


def _column(series: BarSeries, name: str) -> Any:
    return getattr(series, name) if name in _COLUMNS else series.extra.get(name)


def _running_sum(carry: float, values: Any) -> float:
    """``carry`` plus ``values`` added one at a time, in order (as ``np.cumsum``)."""
    if not len(values):
        return carry
    head = np.array([carry], dtype=np.float64)
    return float(np.cumsum(np.concatenate((head, values.astype(np.float64))))[-1])


class HistoryWindow:
    """The bars of one instrument a streamed backtest keeps: rows ``base`` to
    ``base + len(series) - 1`` of the instrument's whole history."""

    __slots__ = ("_carry", "_cums", "base", "error", "keep", "series", "symbol")

    def __init__(self, symbol: str, keep: int) -> None:
        self.symbol = symbol
        self.keep = keep
        self.series: BarSeries | None = None
        #: the index (in the whole history) of the window's first row
        self.base = 0
        #: the first look-back that reached before the window (the run stops on it)
        self.error: ConfigError | None = None
        self._carry: dict[str, float] = {}
        self._cums: dict[str, Any] = {}

    def advance(self, part: BarSeries) -> int:
        """Add the next bars of the instrument, keeping at most ``keep`` of the bars
        before them; returns the index of ``part``'s first bar in the whole history."""
        old = self.series
        if old is None:
            self.series = part
            self.base = 0
            self._carry = {name: 0.0 for name in (*_COLUMNS, *part.extra)}
            self._cums = {}
            return 0
        first = self.base + len(old)
        drop = max(0, len(old) - self.keep)
        if drop:
            for name in self._carry:
                values = _column(old, name)
                if values is not None:
                    self._carry[name] = _running_sum(self._carry[name], values[:drop])
        kept = old.slice(drop, len(old))
        self.series = BarSeries.concat([kept, part]) if len(kept) else part
        self.base += drop
        self._cums = {}
        return first

    def _short(self, column: str, n: int) -> ConfigError:
        error = ConfigError(
            [
                Problem(
                    "config.backtest.history_bars",
                    f"a check asked for the last {n} bars of {self.symbol} {column};"
                    f" a streamed backtest keeps {self.keep} bars before each chunk:"
                    " raise history_bars",
                )
            ]
        )
        if self.error is None:
            self.error = error
        return error

    def history(self, column: str, i: int, n: int) -> np.ndarray[Any, Any]:
        """The last ``n`` values of ``column`` up to bar ``i`` (as in memory)."""
        if i < 0 or self.series is None:
            return np.empty(0)
        lo = max(0, i - n + 1)
        if lo < self.base:
            raise self._short(column, n)
        values = _column(self.series, column)
        if values is None:
            return np.empty(0)
        out: np.ndarray[Any, Any] = values[lo - self.base : i - self.base + 1]
        return out

    def window_sum(self, column: str, i: int, n: int) -> float:
        """Sum of the last ``n`` values of ``column`` up to bar ``i``, the very float
        the in-memory run computes."""
        if i < 0 or self.series is None:
            return 0.0
        cums = self._cums.get(column)
        if cums is None:
            values = _column(self.series, column)
            if values is None:
                raise KeyError(column)
            head = np.array([self._carry.get(column, 0.0)], dtype=np.float64)
            # cums[k] is the running sum up to bar base + k - 1
            cums = np.cumsum(np.concatenate((head, values.astype(np.float64))))
            self._cums[column] = cums
        k = i - self.base + 1
        if i < n:
            return cums.item(k) - 0.0  # type: ignore[no-any-return]
        if k - n < 0:
            raise self._short(column, n)
        return cums.item(k) - cums.item(k - n)  # type: ignore[no-any-return]
