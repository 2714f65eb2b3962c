"""HistoryWindow: what a streamed backtest keeps for checks that look back answers
exactly as the whole series does (``history`` values, ``window_sum`` bit for bit),
and refuses, naming the setting, a look-back beyond what it keeps."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from engine import ConfigError, Instrument
from engine.data import BarSeries
from engine.kernel.core import Stream
from engine.kernel.window import HistoryWindow

BTC = Instrument("BTC-USD", Decimal("0.01"))


def series(n: int, seed: int) -> BarSeries:
    rng = np.random.default_rng(seed)
    close = 10_000 + np.cumsum(rng.integers(-50, 51, n))
    ts = 1_704_067_200_000_000_000 + 60_000_000_000 * np.arange(n, dtype=np.int64)
    volume = np.round(rng.lognormal(3.0, 1.5, n), 3)  # sums that round differently by order
    bid = close * 0.01 - 0.005
    return BarSeries(BTC, ts, close, close + 3, close - 3, close, volume, {"bid": bid})


def whole(s: BarSeries) -> Stream:
    stream = Stream(BTC)
    stream.series = s
    return stream


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("keep", [40, 64, 500])
def test_answers_equal_the_whole_series_answers(seed: int, keep: int) -> None:
    s = series(3_000, seed)
    memory = whole(s)
    window = HistoryWindow("BTC-USD", keep)
    rng = np.random.default_rng(seed + 100)
    cuts = np.sort(rng.choice(np.arange(1, len(s)), 25, replace=False)).tolist()
    checked = 0
    for a, b in zip([0, *cuts], [*cuts, len(s)], strict=True):
        first = window.advance(s.slice(a, b))
        assert first == a
        for i in range(a, b):
            memory.view.index = i
            for n in (1, 7, 40):
                assert window.window_sum("volume", i, n) == memory.window_sum("volume", n)
                assert window.window_sum("close", i, n) == memory.window_sum("close", n)
                assert window.window_sum("bid", i, n) == memory.window_sum("bid", n)
                got = window.history("close", i, n)
                assert np.array_equal(got, memory.history("close", n))
                checked += 1
    assert checked == len(s) * 3
    assert window.error is None


def test_a_stream_with_a_window_answers_through_it() -> None:
    s = series(200, 5)
    stream = Stream(BTC)
    stream.window = HistoryWindow("BTC-USD", 50)
    stream.window.advance(s.slice(0, 120))
    stream.window.advance(s.slice(120, 200))
    stream.view.index = 150
    memory = whole(s)
    memory.view.index = 150
    assert stream.window_sum("volume", 30) == memory.window_sum("volume", 30)
    assert np.array_equal(stream.history("close", 51), memory.history("close", 51))
    assert len(stream.history("ask", 3)) == 0  # a column the feed does not have


def test_a_look_back_beyond_the_kept_bars_is_refused_and_remembered() -> None:
    s = series(300, 7)
    window = HistoryWindow("BTC-USD", 20)
    window.advance(s.slice(0, 100))
    window.advance(s.slice(100, 300))  # keeps bars 80..299
    assert window.base == 80
    assert len(window.history("close", 150, 71)) == 71  # back to bar 80: kept
    with pytest.raises(ConfigError, match=r"config\.backtest\.history_bars: .*last 72 bars"):
        window.history("close", 150, 72)
    assert window.error is not None
    first = window.error
    with pytest.raises(ConfigError, match="raise history_bars"):
        window.window_sum("volume", 100, 22)
    assert window.error is first  # the first one is kept
    # the start of the history is not a shortfall: fewer bars, as in memory
    start = HistoryWindow("BTC-USD", 5)
    start.advance(s.slice(0, 10))
    assert len(start.history("close", 3, 50)) == 4


def test_the_window_stays_bounded() -> None:
    s = series(10_000, 9)
    window = HistoryWindow("BTC-USD", 100)
    for a in range(0, len(s), 1_000):
        window.advance(s.slice(a, a + 1_000))
        assert window.series is not None and len(window.series) <= 1_100
