"""Columnar bar storage and the checks every feed's data goes through.

A :class:`BarSeries` holds one instrument's bars as numpy columns: timestamps in
nanoseconds (int64), prices in integer ticks (int64) and volume (float64).
Feeds build one with :meth:`BarSeries.from_arrays` (float prices) or
:func:`bars_from_table` (an Arrow table), which check the data and raise a
:class:`~engine.errors.DataError` naming file, row and column of each problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.errors import DataError, Problem
from engine.model import Bar, Instrument

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["OPTIONAL_COLUMNS", "PRICE_COLUMNS", "BarSeries", "active_rows", "bars_from_table"]

PRICE_COLUMNS = ("open", "high", "low", "close")
#: Columns a feed may add; kept as float64 in their own units (prices, not ticks) and
#: read on demand by checks and the broker, never copied per bar.
OPTIONAL_COLUMNS = ("bid", "ask", "bid_size", "ask_size", "funding_rate")
MAX_REPORTED = 10
NS_PER_MINUTE = 60_000_000_000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _where(source: str, index: int, first_row: int, column: str) -> str:
    return f"{source} row {index + first_row}, column {column}"


def _to_ticks(
    prices: FloatArray,
    tick: float,
    column: str,
    source: str,
    first_row: int,
    problems: list[Problem],
) -> IntArray:
    bad = ~np.isfinite(prices) | (prices <= 0)
    for i in np.flatnonzero(bad)[:MAX_REPORTED]:
        problems.append(
            Problem(
                _where(source, int(i), first_row, column),
                f"price must be a positive number, got {float(prices[i])}",
            )
        )
    with np.errstate(invalid="ignore"):
        scaled = prices / tick
        ticks = np.rint(scaled)
        # off the grid by more than float64 rounding allows at this magnitude
        tolerance = np.maximum(1e-6, 16 * np.finfo(np.float64).eps * np.abs(scaled))
        off = ~bad & (np.abs(scaled - ticks) > tolerance)
    for i in np.flatnonzero(off)[:MAX_REPORTED]:
        problems.append(
            Problem(
                _where(source, int(i), first_row, column),
                f"price {float(prices[i])!r} is not a multiple of the tick size {tick!r}",
            )
        )
    ticks[bad] = 0
    return ticks.astype(np.int64)


class BarSeries:
    """One instrument's bars as columns. Prices are integer ticks (see docs/model.md).

    ``extra`` holds optional float64 columns by name (:data:`OPTIONAL_COLUMNS`:
    top of book and funding rate), each as long as the series.
    """

    __slots__ = ("close", "extra", "high", "instrument", "low", "open", "ts", "volume")

    def __init__(
        self,
        instrument: Instrument,
        ts: IntArray,
        open: IntArray,
        high: IntArray,
        low: IntArray,
        close: IntArray,
        volume: FloatArray,
        extra: dict[str, FloatArray] | None = None,
    ) -> None:
        self.extra = extra or {}
        self.instrument = instrument
        self.ts = ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __repr__(self) -> str:
        return f"BarSeries({self.instrument.symbol!r}, {len(self)} bars)"

    def slice(self, start: int, stop: int) -> BarSeries:
        """Bars ``start:stop`` (views of the same arrays, no copy)."""
        return BarSeries(
            self.instrument,
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            {k: v[start:stop] for k, v in self.extra.items()},
        )

    @classmethod
    def from_arrays(
        cls,
        instrument: Instrument,
        ts: Sequence[int] | IntArray,
        open: Sequence[float] | FloatArray,
        high: Sequence[float] | FloatArray,
        low: Sequence[float] | FloatArray,
        close: Sequence[float] | FloatArray,
        volume: Sequence[float] | FloatArray | None = None,
        *,
        extra: Mapping[str, Sequence[float] | FloatArray] | None = None,
        source: str = "<data>",
        first_row: int = 0,
    ) -> BarSeries:
        """Build from float prices, checking everything; raises :class:`DataError`.

        Checks: timestamps strictly increasing; prices finite, positive and on the
        tick grid; ``low <= open, close <= high``; volume finite and non-negative.
        ``first_row`` is the file row of element 0 (for messages).
        """
        problems: list[Problem] = []
        ts_arr = np.asarray(ts, dtype=np.int64)
        n = ts_arr.shape[0]
        tick = float(instrument.tick_size)
        cols = {}
        for name, values in zip(PRICE_COLUMNS, (open, high, low, close), strict=True):
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape[0] != n:
                raise DataError(
                    [Problem(source, f"column {name} has {arr.shape[0]} rows, expected {n}")]
                )
            cols[name] = _to_ticks(arr, tick, name, source, first_row, problems)
        vol = np.zeros(n) if volume is None else np.asarray(volume, dtype=np.float64)
        if vol.shape[0] != n:
            raise DataError(
                [Problem(source, f"column volume has {vol.shape[0]} rows, expected {n}")]
            )
        for i in np.flatnonzero(~np.isfinite(vol) | (vol < 0))[:MAX_REPORTED]:
            problems.append(
                Problem(
                    _where(source, int(i), first_row, "volume"),
                    f"volume must be >= 0, got {vol[i]}",
                )
            )
        if n > 1:
            for i in np.flatnonzero(np.diff(ts_arr) <= 0)[:MAX_REPORTED]:
                problems.append(
                    Problem(
                        _where(source, int(i) + 1, first_row, "timestamp"),
                        "timestamp does not increase (previous row has the same or a later time)",
                    )
                )
        if not problems:
            o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
            bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo > h)
            for i in np.flatnonzero(bad)[:MAX_REPORTED]:
                problems.append(
                    Problem(
                        _where(source, int(i), first_row, "high/low"),
                        "inconsistent bar: need low <= open, close <= high",
                    )
                )
        extras: dict[str, FloatArray] = {}
        for name, values in (extra or {}).items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape[0] != n:
                raise DataError(
                    [Problem(source, f"column {name} has {arr.shape[0]} rows, expected {n}")]
                )
            for i in np.flatnonzero(~np.isfinite(arr))[:MAX_REPORTED]:
                problems.append(
                    Problem(
                        _where(source, int(i), first_row, name), f"must be a number, got {arr[i]}"
                    )
                )
            extras[name] = arr
        if problems:
            raise DataError(problems[: MAX_REPORTED * 2])
        return cls(
            instrument, ts_arr, cols["open"], cols["high"], cols["low"], cols["close"], vol, extras
        )

    @classmethod
    def from_prices(
        cls,
        instrument: Instrument,
        closes: Sequence[float],
        *,
        start_ns: int = 1_704_067_200_000_000_000,
        interval_ns: int = NS_PER_MINUTE,
    ) -> BarSeries:
        """Flat bars (open = high = low = close) from a list of prices; handy in tests."""
        c = np.asarray(closes, dtype=np.float64)
        ts = start_ns + interval_ns * np.arange(c.shape[0], dtype=np.int64)
        return cls.from_arrays(instrument, ts, c, c, c, c, np.ones_like(c), source="<prices>")

    def bar(self, i: int) -> Bar:
        """Bar ``i`` as an exact :class:`~engine.model.Bar` record."""
        p = self.instrument.price
        return Bar(
            self.instrument.symbol,
            int(self.ts[i]),
            p(int(self.open[i])),
            p(int(self.high[i])),
            p(int(self.low[i])),
            p(int(self.close[i])),
            Decimal(repr(float(self.volume[i]))),
        )

    def prices(self, column: str = "close") -> FloatArray:
        """A price column in price units (float64), for analysis and plots."""
        ticks: IntArray = getattr(self, column)
        return np.asarray(ticks * float(self.instrument.tick_size), dtype=np.float64)

    def to_pandas(self) -> pd.DataFrame:
        """The bars as a DataFrame indexed by UTC timestamp, prices in price units."""
        import pandas as pd

        frame = pd.DataFrame(
            {c: self.prices(c) for c in PRICE_COLUMNS} | {"volume": self.volume} | self.extra,
            index=pd.to_datetime(self.ts, unit="ns", utc=True),
        )
        frame.index.name = "timestamp"
        return frame

    @staticmethod
    def concat(parts: Sequence[BarSeries]) -> BarSeries:
        """Join consecutive chunks of the same instrument."""
        first = parts[0]

        def joined(column: str) -> Any:
            return np.concatenate([getattr(p, column) for p in parts])

        return BarSeries(
            first.instrument,
            joined("ts"),
            joined("open"),
            joined("high"),
            joined("low"),
            joined("close"),
            joined("volume"),
            {name: np.concatenate([p.extra[name] for p in parts]) for name in first.extra},
        )


_TS_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def bars_from_table(
    table: pa.Table,
    instrument: Instrument,
    *,
    source: str,
    timestamp_column: str = "timestamp",
    timestamp_unit: str = "s",
    first_row: int = 2,
) -> BarSeries:
    """Build a :class:`BarSeries` from an Arrow table (CSV or Parquet).

    The timestamp column may hold timestamps, ISO-8601 strings or epoch numbers in
    ``timestamp_unit``. Missing columns, unparsable cells and bad values are
    reported with file, row and column. ``first_row`` is the file row of the
    table's first row (2 for a CSV with a header line, 1 for Parquet).
    """
    import pyarrow as pa

    required = (timestamp_column, *PRICE_COLUMNS)
    missing = [c for c in required if c not in table.column_names]
    if missing:
        have = ", ".join(table.column_names) or "none"
        raise DataError(
            [Problem(source, f"missing column(s): {', '.join(missing)} (found: {have})")]
        )
    problems: list[Problem] = []

    def numeric(name: str) -> FloatArray:
        col = table.column(name)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            arr = col.cast(pa.float64())
        else:
            text = col.cast(pa.string()).to_pylist()
            values = np.empty(len(text))
            for i, cell in enumerate(text):
                try:
                    values[i] = float(cell) if cell not in (None, "") else np.nan
                except ValueError:
                    values[i] = np.nan
                    problems.append(
                        Problem(_where(source, i, first_row, name), f"not a number: {cell!r}")
                    )
            return values
        nulls = arr.is_null()
        out = np.asarray(arr.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        for i in np.flatnonzero(nulls.to_numpy(zero_copy_only=False))[:MAX_REPORTED]:
            problems.append(Problem(_where(source, int(i), first_row, name), "empty cell"))
        return out

    ts = _timestamps(
        table.column(timestamp_column),
        timestamp_unit,
        source,
        first_row,
        timestamp_column,
        problems,
    )
    open_, high, low, close = (numeric(c) for c in PRICE_COLUMNS)
    volume = numeric("volume") if "volume" in table.column_names else np.zeros(len(table))
    extra = {c: numeric(c) for c in OPTIONAL_COLUMNS if c in table.column_names}
    if problems:
        raise DataError(problems[: MAX_REPORTED * 2])
    return BarSeries.from_arrays(
        instrument,
        ts,
        open_,
        high,
        low,
        close,
        volume,
        extra=extra,
        source=source,
        first_row=first_row,
    )


def _empty_cells(col: Any, source: str, first_row: int, name: str, problems: list[Problem]) -> None:
    if col.null_count:
        for i in np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[:MAX_REPORTED]:
            problems.append(Problem(_where(source, int(i), first_row, name), "empty cell"))


def _timestamps(
    col: Any, unit: str, source: str, first_row: int, name: str, problems: list[Problem]
) -> IntArray:
    """Nanoseconds since the epoch from a timestamp, integer, float or text column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _empty_cells(col, source, first_row, name, problems)
    if pa.types.is_timestamp(col.type):
        ns = col.cast(pa.timestamp("ns")).cast(pa.int64()).fill_null(0)
        return np.asarray(ns.to_numpy(zero_copy_only=False), dtype=np.int64)
    scale = _TS_UNITS[unit]
    if pa.types.is_integer(col.type):
        # exact integer arithmetic: float64 would move nanoseconds
        values = np.asarray(col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
        limit = np.iinfo(np.int64).max // scale
        for i in np.flatnonzero(np.abs(values) > limit)[:MAX_REPORTED]:
            problems.append(
                Problem(
                    _where(source, int(i), first_row, name),
                    f"{values[i]} is out of range for timestamp_unit {unit!r}",
                )
            )
        return np.asarray(np.where(np.abs(values) > limit, 0, values) * scale, dtype=np.int64)
    if pa.types.is_floating(col.type):
        values = col.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        return np.asarray(np.rint(np.nan_to_num(values) * scale), dtype=np.int64)
    text = col.cast(pa.string())
    if not text.null_count:
        try:
            parsed = pc.cast(text, pa.timestamp("ns"))
            return np.asarray(
                parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    import pandas as pd

    out = np.zeros(len(text), dtype=np.int64)
    for i, cell in enumerate(text.to_pylist()):
        if cell is None:
            continue  # reported as an empty cell above
        try:
            stamp = pd.Timestamp(cell)
            if pd.isna(stamp):
                raise ValueError
            out[i] = (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).value
        except (ValueError, TypeError):
            if len(problems) < MAX_REPORTED:
                problems.append(
                    Problem(_where(source, i, first_row, name), f"not a timestamp: {cell!r}")
                )
    return out


def active_rows(marked: Any, n: int, where: str) -> IntArray:
    """The sorted bar indices a strategy's ``prepare`` returned as active (a boolean
    mask of ``n`` bars, or indices in ``0 <= i < n``); raises :class:`DataError`
    naming ``where`` (the strategy) for anything else."""
    arr = np.asarray(marked)
    if arr.dtype == np.bool_:
        if arr.shape != (n,):
            raise DataError(
                [Problem(where, f"prepare() returned a mask of shape {arr.shape}, expected ({n},)")]
            )
        return np.flatnonzero(arr).astype(np.int64)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(
            [Problem(where, "prepare() must return None, a boolean mask or bar indices")]
        )
    rows = np.unique(arr.astype(np.int64))
    if rows.size and (rows[0] < 0 or rows[-1] >= n):
        raise DataError([Problem(where, f"prepare() returned bar indices outside 0..{n - 1}")])
    return rows
