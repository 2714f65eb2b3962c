"""The two drivers of the kernel: a backtest over a simulated clock and a
paper/live loop on asyncio with a real clock. Both call the same bar handlers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from engine.data import BarSeries
from engine.kernel.core import Kernel

__all__ = ["backtest_chunks", "paper_loop"]

#: Bars converted to Python objects at a time: small enough that the objects are
#: recycled while still in cache, large enough to amortise the conversion call.
CHUNK = 4096
#: Bars between two progress reports.
REPORT_EVERY = 1 << 16


def _columns(s: BarSeries, start: int, stop: int) -> tuple[list[Any], ...]:
    return (
        s.ts[start:stop].tolist(),
        s.open[start:stop].tolist(),
        s.high[start:stop].tolist(),
        s.low[start:stop].tolist(),
        s.close[start:stop].tolist(),
        s.volume[start:stop].tolist(),
    )


def _run_until_due(kernel: Kernel, run: Any, ts: Any, start: int, stop: int, offset: int) -> None:
    """Rows ``start:stop`` (``ts`` indexes; ``run`` takes them minus ``offset``),
    pausing after each row at or past ``kernel.next_due`` to call
    ``kernel.on_time()``. Costs nothing per bar when nothing is scheduled."""
    while start < stop:
        window = ts[start:stop]
        k = int(np.searchsorted(window, kernel.next_due, side="left"))
        if k >= stop - start:
            run(start - offset, stop - offset)
            return
        # every event stamped like the due one runs first (other instruments' bars)
        k = start + int(np.searchsorted(window, window[k], side="right")) - 1
        run(start - offset, k + 1 - offset)
        kernel.on_time()
        start = k + 1


class _Events:
    """Runs merged events ``a:b`` of one chunk, each through its stream's stepper
    (``rows[e]``: the event's row in its stream's columns for the chunk)."""

    def __init__(self, slots: list[int], rows: list[int], steps: list[Any]):
        self.slots, self.rows, self.steps = slots, rows, steps

    def __call__(self, a: int, b: int) -> None:
        steps = self.steps
        for k, j in zip(self.slots[a:b], self.rows[a:b], strict=True):
            steps[k](j)


def backtest_chunks(
    kernel: Kernel,
    series: Mapping[str, BarSeries],
    chunk: int | None = None,
    active: Mapping[str, Sequence[int]] | None = None,
    offsets: Mapping[str, int] | None = None,
) -> Iterator[int]:
    """Run every bar through the kernel in time order, yielding the number of bars
    done about every ``REPORT_EVERY`` bars (for progress bars and to let a
    notebook's event loop breathe), and once at the end.

    With several instruments, bars are merged by timestamp; ties keep the
    instruments' configured order, so runs are deterministic. ``chunk``: bars (or
    merged events) converted at a time; by default :data:`CHUNK`, scaled with the
    number of instruments for merged runs. ``active`` (one
    instrument only): the bars where its strategies can act, for the vectorised
    mode (see :meth:`Kernel.runner`). ``offsets``: the index of each series' first
    bar in its instrument's whole history (a streamed backtest runs it chunk by
    chunk; see :mod:`engine.streaming`).
    """
    base = {symbol: (offsets or {}).get(symbol, 0) for symbol in series}
    for symbol, s in series.items():
        kernel.streams[symbol].series = s
    symbols = list(series)
    reported = 0
    if len(symbols) == 1 and active and symbols[0] in active:
        symbol = symbols[0]
        s = series[symbol]
        n = len(s)
        columns = (s.ts, s.open, s.high, s.low, s.close, s.volume)
        run = kernel.runner(symbol, columns, 0, active[symbol])
        for start in range(0, n, REPORT_EVERY):
            stop = min(start + REPORT_EVERY, n)
            _run_until_due(kernel, run, s.ts, start, stop, 0)
            reported = stop
            yield stop
        return
    if len(symbols) == 1:
        symbol = symbols[0]
        s = series[symbol]
        n = len(s)
        chunk = chunk or CHUNK
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            run = kernel.runner(symbol, _columns(s, start, stop), start + base[symbol])
            _run_until_due(kernel, run, s.ts, start, stop, start)
            if stop - reported >= REPORT_EVERY or stop == n:
                reported = stop
                yield stop
        return
    # the merge order: by time, ties in the instruments' order (compact dtypes: a
    # merge of 10,000,000 events holds a few arrays of them at once)
    ts = np.concatenate([series[s].ts for s in symbols])
    slot = np.concatenate(
        [np.full(len(series[s]), k, dtype=np.int32) for k, s in enumerate(symbols)]
    )
    order = np.lexsort((slot, ts))
    merged_ts = ts[order]
    del ts
    slots = slot[order]
    del slot
    first = np.cumsum([0] + [len(series[s]) for s in symbols[:-1]])
    indices = (order - first[slots]).astype(np.int32)  # each event's bar in its series
    del order
    n = len(merged_ts)
    start = 0
    # each chunk converts a slice of every instrument's columns: enough events per
    # instrument to amortise that, still a bounded number of Python objects
    chunk = chunk or min(max(CHUNK, 512 * len(symbols)), 1 << 17)
    while start < n:
        stop = min(start + chunk, n)
        if stop < n:  # never split events that share a timestamp across chunks
            stop = int(np.searchsorted(merged_ts, merged_ts[stop - 1], side="right"))
        cs, ci = slots[start:stop], indices[start:stop]
        steps: list[Any] = []
        lows = np.zeros(len(symbols), dtype=np.int64)
        for k, symbol in enumerate(symbols):
            mine = ci[cs == k]
            lo = int(mine[0]) if len(mine) else 0
            hi = int(mine[-1]) + 1 if len(mine) else 0
            cols = _columns(series[symbol], lo, hi)
            steps.append(kernel.stepper(symbol, cols, lo + base[symbol]))
            lows[k] = lo
        events = _Events(cs.tolist(), (ci - lows[cs]).tolist(), steps)
        _run_until_due(kernel, events, merged_ts, start, stop, start)
        if stop - reported >= REPORT_EVERY or stop == n:
            reported = stop
            yield stop
        start = stop


async def _as_async(
    chunks: Iterable[BarSeries] | AsyncIterator[BarSeries],
) -> AsyncIterator[BarSeries]:
    if hasattr(chunks, "__aiter__"):
        async for c in chunks:
            yield c
    else:
        for c in chunks:
            yield c


async def paper_loop(
    kernel: Kernel,
    streams: Mapping[str, Iterable[BarSeries] | AsyncIterator[BarSeries]],
    *,
    speed: float,
    stop: asyncio.Event,
    max_bars: int | None = None,
) -> int:
    """Feed bars to the kernel on the real clock until ``stop`` is set.

    Each bar is released when ``(bar.ts - first.ts) / speed`` seconds have passed
    since the start; ``speed=1`` is real time for bars stamped with the wall clock.
    Returns the number of bars processed.
    """
    started = time.monotonic()
    first_ts: list[int] = []
    count = 0
    done_bars = asyncio.Event()

    async def pump(symbol: str, source: Any) -> None:
        nonlocal count
        st = kernel.streams[symbol]
        run = kernel.runner(symbol)
        async for chunk in _as_async(source):
            for k in range(len(chunk)):
                ts = int(chunk.ts[k])
                if not first_ts:
                    first_ts.append(ts)
                delay = started + (ts - first_ts[0]) / 1e9 / speed - time.monotonic()
                # always yield: the venue's replies and other tasks run between bars
                # even when the clock is behind (a fast replay)
                await asyncio.sleep(delay if delay > 0 else 0)
                if stop.is_set():
                    return
                st.append(chunk, k)
                n = len(st.ts)
                run(n - 1, n)
                if kernel.now >= kernel.next_due:
                    kernel.on_time()
                if kernel._hidden:  # the bar a restart processed again is done
                    kernel.reveal_hidden()
                if kernel.journal is not None:  # the bar is done: a restart resumes after it
                    kernel.journal.record_bar(symbol, n - 1)
                count += 1
                if max_bars is not None and count >= max_bars:
                    done_bars.set()
                    return

    tasks = [asyncio.create_task(pump(s, src), name=f"feed:{s}") for s, src in streams.items()]
    waiter = asyncio.create_task(stop.wait())
    limit = asyncio.create_task(done_bars.wait())
    pending: set[asyncio.Task[Any]] = set(tasks)
    try:
        while pending:
            done, _ = await asyncio.wait(
                {waiter, limit, *pending}, return_when=asyncio.FIRST_COMPLETED
            )
            pending -= done
            failed = [t for t in done if t in tasks and t.exception() is not None]
            if waiter in done or limit in done or failed:
                break
    finally:
        stop.set()
        for t in (*tasks, waiter, limit):
            t.cancel()
        outcomes = await asyncio.gather(*tasks, waiter, limit, return_exceptions=True)
    errors = [
        o
        for o in outcomes[: len(tasks)]
        if isinstance(o, Exception) and not isinstance(o, asyncio.CancelledError)
    ]
    if errors:
        raise errors[0]
    return count
