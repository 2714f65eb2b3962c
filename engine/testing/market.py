"""Scripted market data: a feed built from the bars or quotes a test writes down.

:class:`ScriptedMarket` is a feed object (``load`` for backtests, ``stream`` for
paper runs) over data given as

* a list of prices (flat bars: open = high = low = close),
* a list of bars: dicts with ``open``/``high``/``low``/``close`` (``volume``, ``ts``
  optional), ``(open, high, low, close[, volume])`` tuples or :class:`~engine.Bar`
  records,
* a list of quotes: dicts with ``bid`` and ``ask`` (``bid_size``/``ask_size``
  optional) or :class:`~engine.Quote` records. A quote becomes a bar at its mid
  price, rounded to the nearest tick, that carries ``bid``/``ask`` columns (the
  spread filter and the checks that read the book see them),
* a pandas DataFrame with such columns (a ``DatetimeIndex`` or a ``ts``/
  ``timestamp`` column gives the times),
* an iterator or generator of such items (consumed lazily by a paper run, one bar
  at a time; it can be used once), or a function returning one (called again for
  every run),
* a dict ``{symbol: data}`` for several instruments.

Rows without a time are stamped ``start + i * interval``. Every value goes through
the engine's data checks, so a price off the tick grid or a high below the low is
reported with its row, like a bad CSV file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import DataError, Problem

if TYPE_CHECKING:
    from engine.data import BarSeries
    from engine.model import Instrument
    from engine.records import Feed

__all__ = ["ScriptedMarket"]

_BOOK = ("bid", "ask", "bid_size", "ask_size")
_EXTRA = (*_BOOK, "funding_rate")
_PRICES = ("open", "high", "low", "close")


def _ns(value: Any, where: str) -> int:
    """Nanoseconds since the epoch from an int, a datetime or an ISO-8601 string."""
    if isinstance(value, bool):
        raise DataError([Problem(where, f"not a timestamp: {value!r}")])
    if isinstance(value, int):
        return value
    try:
        import pandas as pd

        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError([Problem(where, f"not a timestamp: {value!r}")]) from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def _interval_ns(interval: str | int) -> int:
    if isinstance(interval, int):
        return interval
    from engine.config import parse_interval

    return parse_interval(interval)


class _Rows:
    """Rows of one instrument, normalised to dicts of floats (and ``ts`` ints)."""

    def __init__(self, symbol: str, start_ns: int, step_ns: int) -> None:
        self.symbol = symbol
        self.start_ns = start_ns
        self.step_ns = step_ns
        self.count = 0
        self.last_ts: int | None = None

    def row(self, item: Any, tick: Decimal) -> dict[str, Any]:
        """One bar as a dict from any supported item."""
        where = f"scripted market {self.symbol} row {self.count}"
        row = self._fields(item, where)
        if "close" not in row and "bid" in row and "ask" in row:
            mid = (Decimal(repr(row["bid"])) + Decimal(repr(row["ask"]))) / 2
            ticks = (mid / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            row["close"] = float(ticks * tick)
        if "close" not in row:
            keys = ", ".join(sorted(row)) or "none"
            raise DataError(
                [Problem(where, f"needs a price: close, or bid and ask (got keys: {keys})")]
            )
        close = row["close"]
        row.setdefault("open", close)
        row.setdefault("high", max(row["open"], close))
        row.setdefault("low", min(row["open"], close))
        row.setdefault("volume", 1.0)
        ts = row.get("ts")
        if ts is None:
            ts = self.start_ns if self.last_ts is None else self.last_ts + self.step_ns
        row["ts"] = ts
        self.last_ts = ts
        self.count += 1
        return row

    @staticmethod
    def _fields(item: Any, where: str) -> dict[str, Any]:
        from engine.model import Bar, Quote

        if isinstance(item, Bar):
            return {
                "ts": item.ts,
                **{c: float(getattr(item, c)) for c in _PRICES},
                "volume": float(item.volume),
            }
        if isinstance(item, Quote):
            return {"ts": item.ts, **{c: float(getattr(item, c)) for c in _BOOK}}
        if isinstance(item, int | float | Decimal | str) and not isinstance(item, bool):
            return {"close": _number(item, where, "close")}
        if isinstance(item, Mapping):
            row: dict[str, Any] = {}
            for key, value in item.items():
                name = str(key).lower()
                if name in ("ts", "timestamp", "time"):
                    row["ts"] = _ns(value, f"{where}, column {name}")
                elif name in (*_PRICES, "volume", *_EXTRA):
                    row[name] = _number(value, where, name)
                else:
                    known = ", ".join(("ts", *_PRICES, "volume", *_EXTRA))
                    raise DataError(
                        [Problem(f"{where}, column {key}", f"unknown column; known: {known}")]
                    )
            return row
        if isinstance(item, tuple | list) and len(item) in (4, 5):
            names = (*_PRICES, "volume")[: len(item)]
            return {n: _number(v, where, n) for n, v in zip(names, item, strict=False)}
        raise DataError(
            [
                Problem(
                    where,
                    f"cannot read {type(item).__name__} {item!r}: give a price, a dict, an"
                    " (open, high, low, close[, volume]) tuple, a Bar or a Quote",
                )
            ]
        )


def _number(value: Any, where: str, column: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(
            [Problem(f"{where}, column {column}", f"not a number: {value!r}")]
        ) from None


def _frame_items(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as dicts (its DatetimeIndex as ``ts``)."""
    import pandas as pd

    records: list[dict[str, Any]] = frame.to_dict("records")
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
        for record, stamp in zip(records, index.asi8.tolist(), strict=True):
            record["ts"] = int(stamp)
    return records


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_dict")


class ScriptedMarket:
    """A feed over scripted bars or quotes (see the module doc for the data forms).

    ``name`` is the feed's record name (``[feed] type``); :meth:`record` returns the
    :class:`~engine.Feed` record a plugin registers. The same object serves every
    run of the engine it is registered with.
    """

    def __init__(
        self,
        data: Any,
        *,
        symbol: str = "BTC-USD",
        start: str | int | datetime = "2024-01-01T00:00:00Z",
        interval: str | int = "1m",
        name: str = "scripted",
    ) -> None:
        self.name = name
        self.start_ns = _ns(start, "scripted market start")
        self.step_ns = _interval_ns(interval)
        if isinstance(data, Mapping) and not _is_frame(data):
            self.sources: dict[str, Any] = {str(k): v for k, v in data.items()}
        else:
            self.sources = {symbol: data}
        self._used: set[str] = set()

    @property
    def symbols(self) -> list[str]:
        """The instruments this market has data for."""
        return list(self.sources)

    def record(self) -> Feed:
        """The :class:`~engine.Feed` record serving this market."""
        from engine.records import Feed

        return Feed(
            name=self.name,
            factory=lambda _config: self,
            description="Scripted bars or quotes (engine.testing).",
        )

    # -- data -----------------------------------------------------------------------

    def _items(self, symbol: str) -> Iterator[Any]:
        if symbol not in self.sources:
            have = ", ".join(self.sources)
            raise DataError([Problem("scripted market", f"no data for {symbol}; it has: {have}")])
        source = self.sources[symbol]
        if _is_frame(source):
            return iter(_frame_items(source))
        if isinstance(source, list | tuple):
            return iter(source)
        if callable(source) and not isinstance(source, Iterator):
            made: Callable[[], Iterable[Any]] = source
            return iter(made())
        if isinstance(source, Iterable):
            if symbol in self._used:
                raise DataError(
                    [
                        Problem(
                            f"scripted market {symbol}",
                            "its iterator was consumed by an earlier run; pass a list,"
                            " or a function returning a fresh generator",
                        )
                    ]
                )
            self._used.add(symbol)
            return iter(source)
        raise DataError(
            [Problem(f"scripted market {symbol}", f"cannot read {type(source).__name__} data")]
        )

    def _series(self, instrument: Instrument, rows: list[dict[str, Any]], first: int) -> BarSeries:
        from engine.data import BarSeries

        columns: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in ("ts", *_PRICES)}
        extra_names = [c for c in _EXTRA if any(c in r for r in rows)]
        extra = {}
        for c in extra_names:
            missing = [first + k for k, r in enumerate(rows) if c not in r]
            if missing:
                where = f"scripted market {instrument.symbol} row {missing[0]}"
                raise DataError([Problem(where, f"column {c} is missing (other rows have it)")])
            extra[c] = [r[c] for r in rows]
        return BarSeries.from_arrays(
            instrument,
            columns["ts"],
            columns["open"],
            columns["high"],
            columns["low"],
            columns["close"],
            [r["volume"] for r in rows],
            extra=extra,
            source=f"scripted market {instrument.symbol}",
            first_row=first,
        )

    def series(self, instrument: Instrument) -> BarSeries:
        """All of ``instrument``'s bars as a :class:`~engine.BarSeries`."""
        rows = _Rows(instrument.symbol, self.start_ns, self.step_ns)
        table = [rows.row(item, instrument.tick_size) for item in self._items(instrument.symbol)]
        if not table:
            raise DataError([Problem(f"scripted market {instrument.symbol}", "no bars")])
        return self._series(instrument, table, 0)

    # -- the feed protocol ----------------------------------------------------------

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        """Backtests: the whole history at once."""
        return self.series(instrument)

    def stream(self, instrument: Instrument, ctx: Any) -> Iterator[BarSeries]:
        """Paper runs: one bar at a time, pulled from the data as the run goes on."""
        rows = _Rows(instrument.symbol, self.start_ns, self.step_ns)
        previous: int | None = None
        for k, item in enumerate(self._items(instrument.symbol)):
            row = rows.row(item, instrument.tick_size)
            if previous is not None and row["ts"] <= previous:
                where = f"scripted market {instrument.symbol} row {k}, column timestamp"
                raise DataError([Problem(where, "timestamp does not increase")])
            previous = row["ts"]
            yield self._series(instrument, [row], k)

    def __repr__(self) -> str:
        return f"ScriptedMarket({self.name!r}, symbols={self.symbols})"
