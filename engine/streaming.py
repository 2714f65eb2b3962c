"""Streamed backtests (``[backtest] stream = true``): a history of any length in
bounded memory, with the in-memory run's results.

The feed gives each instrument's bars in chunks (its optional
``chunks(instrument, ctx, size)``; the built-in ``parquet`` feed reads row groups).
The run goes in *rounds*: each round takes, from every instrument's current chunk,
the bars up to the earliest last timestamp among those chunks, so bars are still
merged by time (ties in the instruments' configured order) and no instrument runs
ahead of another. Each round:

1. moves every instrument's :class:`~engine.kernel.window.HistoryWindow` on (the
   bars checks may look back at: the round's bars and ``history_bars`` before them);
2. gives the round's bars to each strategy that has
   ``prepare_chunk(series, first)`` (``first``: the index of the chunk's first bar,
   the ``bar.index`` its ``on_bar`` will see); a strategy with only ``prepare``
   runs bar by bar, as in paper trading (``prepare`` is never given a part);
3. runs them through :func:`~engine.kernel.loops.backtest_chunks`, the in-memory
   loop itself;
4. adds the round to the equity curve (:class:`EquityRecorder`), which keeps the
   last bar of each ``equity_interval`` of engine time (or every bar).

What is kept between rounds is bounded: the windows, one chunk per instrument, and
the sampled equity curve; orders, fills and round trips are kept as in any run.
Trades, fills, denials, the portfolio and the final equity are exactly those of
the in-memory run; so is every equity point kept (``equity_interval = "bar"``
keeps them all, and then the statistics are identical too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine._feedcalls import feed_failed, not_bars
from engine.aio import maybe_await
from engine.config import parse_interval
from engine.data import BarSeries
from engine.errors import ConfigError, DataError, EngineError, Problem
from engine.kernel.gcpolicy import quiet_gc, settle
from engine.kernel.loops import backtest_chunks
from engine.kernel.window import HistoryWindow
from engine.model import Fill, Portfolio
from engine.results import EquityCurve

if TYPE_CHECKING:
    from engine.engine import Engine, Progress, _Run
    from engine.results import RunResult

__all__ = ["EquityRecorder", "backtest_streamed"]


class EquityRecorder:
    """The equity curve of a run fed round by round, each point the very float
    :func:`~engine.results.equity_curve` computes for the whole run: the running
    sums of fill cash flows and of each instrument's signed quantities carry from
    round to round, and the same additions continue in the same order.

    ``every_ns``: keep only the last point of each interval of that many
    nanoseconds of engine time (``None``: every point).
    """

    def __init__(self, portfolio: Portfolio, symbols: Sequence[str], every_ns: int | None):
        self.every_ns = every_ns
        self.cash0 = float(portfolio.initial_cash)
        self.instruments = portfolio.instruments
        self.symbols = list(symbols)
        self._flows = 0.0  # running sum of the fills' cash flows
        self._fills = 0  # fills accounted so far
        #: running sum of signed quantities, for instruments that had fills
        self._position: dict[str, float] = {}
        self._close: dict[str, float] = {}  # last close seen, in price units
        self._pending: tuple[int, float, bool] | None = None
        self._ts: list[np.ndarray[Any, Any]] = []
        self._equity: list[np.ndarray[Any, Any]] = []
        self._invested: list[np.ndarray[Any, Any]] = []

    def add(self, parts: Mapping[str, BarSeries], fills: Sequence[Fill]) -> None:
        """Account a round: ``parts`` the bars it ran (by instrument), ``fills`` every
        fill of the run so far (those after the previous round are new)."""
        stamps = [p.ts for p in parts.values() if len(p)]
        if not stamps:
            return
        times = stamps[0] if len(stamps) == 1 else np.unique(np.concatenate(stamps))
        new = fills[self._fills :]
        self._fills = len(fills)
        instruments = self.instruments
        flows = np.fromiter(
            (
                -float(
                    f.quantity * f.side.sign * f.price * instruments[f.instrument].multiplier
                    + f.fee
                )
                for f in new
            ),
            dtype=np.float64,
            count=len(new),
        )
        # running[m]: the cash flows of every fill up to the m-th new one, summed in
        # order from the run's first fill (running[0] is the sum before this round)
        running = np.cumsum(np.concatenate(([self._flows], flows)))
        self._flows = float(running[-1])
        fill_ts = np.fromiter((f.ts for f in new), dtype=np.int64, count=len(new))
        k = np.searchsorted(fill_ts, times, side="right")
        equity = self.cash0 + running[k]
        invested = np.zeros(times.shape[0], dtype=bool)
        for symbol in self.symbols:
            own = [f for f in new if f.instrument == symbol]
            part = parts.get(symbol)
            if own or symbol in self._position:
                signed = np.fromiter(
                    (float(f.quantity * f.side.sign) for f in own),
                    dtype=np.float64,
                    count=len(own),
                )
                held = np.cumsum(np.concatenate(([self._position.get(symbol, 0.0)], signed)))
                self._position[symbol] = float(held[-1])
                f_ts = np.fromiter((f.ts for f in own), dtype=np.int64, count=len(own))
                pos = held[np.searchsorted(f_ts, times, side="right")]
                mult = float(instruments[symbol].multiplier)
                equity += pos * self._closes(symbol, part, times) * mult
                invested |= pos != 0
            if part is not None and len(part):
                self._close[symbol] = float(part.prices("close")[-1])
        self._keep(times, equity, invested)

    def _closes(
        self, symbol: str, part: BarSeries | None, times: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """The last close of ``symbol`` at or before each of ``times``."""
        last = self._close.get(symbol, 0.0)
        if part is None or not len(part):
            return np.full(times.shape[0], last)
        ci = np.searchsorted(part.ts, times, side="right") - 1
        return np.where(ci >= 0, part.prices("close")[np.maximum(ci, 0)], last)

    def _keep(
        self, times: np.ndarray[Any, Any], equity: np.ndarray[Any, Any], invested: Any
    ) -> None:
        if self.every_ns is None:
            self._ts.append(times)
            self._equity.append(equity)
            self._invested.append(invested)
            return
        if self._pending is not None:  # the previous round's last point, held back
            ts0, eq0, inv0 = self._pending
            times = np.concatenate(([ts0], times))
            equity = np.concatenate(([eq0], equity))
            invested = np.concatenate(([inv0], invested))
        bucket = times // self.every_ns
        last = np.flatnonzero(bucket[1:] != bucket[:-1])  # last point of each interval
        self._ts.append(times[last])
        self._equity.append(equity[last])
        self._invested.append(invested[last])
        self._pending = (int(times[-1]), float(equity[-1]), bool(invested[-1]))

    def curve(self) -> EquityCurve:
        """The curve so far (the last point included)."""
        ts, equity, invested = list(self._ts), list(self._equity), list(self._invested)
        if self._pending is not None:
            t, e, i = self._pending
            ts.append(np.array([t], dtype=np.int64))
            equity.append(np.array([e], dtype=np.float64))
            invested.append(np.array([i], dtype=bool))
        if not ts:
            empty = np.zeros(0)
            return EquityCurve(empty.astype(np.int64), empty, empty.astype(bool))
        return EquityCurve(
            np.concatenate(ts).astype(np.int64),
            np.concatenate(equity).astype(np.float64),
            np.concatenate(invested).astype(bool),
        )


async def _chunks(source: Iterable[BarSeries] | AsyncIterator[BarSeries]) -> Any:
    """The chunks of a feed's ``chunks()``, sync or async, as an async iterator."""
    if hasattr(source, "__aiter__"):
        async for c in source:
            yield c
    else:
        for c in source:
            yield c


class _Source:
    """One instrument's chunks: the current one, what is left of it, and checks."""

    def __init__(self, engine: Engine, symbol: str, chunks: Any) -> None:
        self.spec = engine.config.component("feed")
        self.symbol = symbol
        self.chunks = chunks
        self.left: BarSeries | None = None
        self.done = False
        self.last_ts: int | None = None

    async def fill(self) -> None:
        """Read chunks until one with bars is at hand or the feed has no more."""
        spec = self.spec
        while not self.done and (self.left is None or not len(self.left)):
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                self.done = True
                return
            except EngineError:
                raise
            except Exception as exc:
                raise feed_failed(spec, f"failed to read {self.symbol}", exc) from exc
            if not isinstance(chunk, BarSeries):
                raise not_bars(spec, chunk, "chunks() gave", f" for {self.symbol}")
            if len(chunk) and self.last_ts is not None and int(chunk.ts[0]) <= self.last_ts:
                raise DataError(
                    [
                        Problem(
                            spec.path,
                            f"feed {spec.type!r}: a chunk of {self.symbol} starts at"
                            f" {int(chunk.ts[0])}, not after the previous chunk's last bar"
                            f" ({self.last_ts})",
                        )
                    ]
                )
            if len(chunk):
                self.last_ts = int(chunk.ts[-1])
            self.left = chunk

    def take(self, until: int) -> BarSeries | None:
        """The bars left with a timestamp at or before ``until`` (removed)."""
        left = self.left
        if left is None or not len(left):
            return None
        k = int(np.searchsorted(left.ts, until, side="right"))
        if not k:
            return None
        self.left = left.slice(k, len(left))
        return left.slice(0, k)


async def backtest_streamed(engine: Engine, run: _Run, progress: Progress | None) -> RunResult:
    """The body of :meth:`Engine.backtest` for ``[backtest] stream = true`` (see the
    module's docstring): ``run`` is built; this reads, runs and reports."""
    settings = engine.config.backtest
    spec = engine.config.component("feed")
    feed = run.feed
    if not callable(getattr(feed, "chunks", None)):
        raise ConfigError(
            [
                Problem(
                    "config.backtest.stream",
                    f"feed {spec.type!r} cannot stream a backtest (it has no"
                    " chunks(instrument, ctx, size) method); use a feed that can, such as"
                    " parquet, or set stream = false",
                )
            ]
        )
    kernel = run.kernel
    ctx = engine._feed_context("backtest")
    symbols = [i.symbol for i in run.instruments]
    sources = [
        _Source(engine, i.symbol, _chunks(feed.chunks(i, ctx, settings.chunk_bars)))
        for i in run.instruments
    ]
    total = 0
    if callable(getattr(feed, "count", None)):
        for inst in run.instruments:
            total += int(await maybe_await(feed.count(inst, ctx)) or 0)
    windows = {s: HistoryWindow(s, settings.history_bars) for s in symbols}
    for symbol, window in windows.items():
        kernel.streams[symbol].window = window
    prepares: dict[str, list[Any]] = {s: [] for s in symbols}
    for sid, strategy in run.strategies:
        prepare_chunk = getattr(strategy, "prepare_chunk", None)
        if prepare_chunk is not None:
            prepares[run.instrument_of[sid]].append(prepare_chunk)
    every = None if settings.equity_interval == "bar" else parse_interval(settings.equity_interval)
    equity = EquityRecorder(kernel.portfolio, symbols, every)
    store = engine._open_journal(run, durable=False)
    await engine._start(run)
    started = time.perf_counter()
    done = 0
    final_ts = 0
    with quiet_gc():
        while True:
            for source in sources:
                await source.fill()
            live = [s for s in sources if s.left is not None and len(s.left)]
            if not live:
                break
            until = min(int(s.left.ts[-1]) for s in live if s.left is not None)
            parts: dict[str, BarSeries] = {}
            for source in live:
                part = source.take(until)
                if part is not None:
                    parts[source.symbol] = part
            offsets = {s: windows[s].advance(part) for s, part in parts.items()}
            for symbol, part in parts.items():
                for prepare_chunk in prepares[symbol]:
                    await maybe_await(prepare_chunk(part, offsets[symbol]))
            for ran in backtest_chunks(kernel, parts, offsets=offsets):
                if store is not None:
                    store.commit()
                if run.publisher:
                    run.publisher.flush()
                settle()
                if progress is not None:
                    progress(done + ran, max(total, done + ran))
                await asyncio.sleep(0)
            done += sum(len(p) for p in parts.values())
            final_ts = until
            for window in windows.values():
                if window.error is not None:
                    raise window.error
            equity.add(parts, kernel.fills)
    elapsed = time.perf_counter() - started
    return engine._result(
        run, "backtest", {}, done, elapsed, curve=equity.curve(), final_ts=final_ts
    )
