"""The ``parquet`` feed's chunks for streamed backtests: the same bars as ``load()``,
row group by row group, checked the same way, with errors naming the file's row."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import BarSeries, DataError, FeedContext, Instrument
from engine.builtins.feed_files import FileFeedConfig
from engine.builtins.feed_parquet import ParquetFeed

BTC = Instrument("BTC-USD", Decimal("0.01"))
T0 = 1_704_067_200


def table(n: int) -> pa.Table:
    close = 100 + np.round(np.sin(np.arange(n) / 7) * 5, 2)
    return pa.table(
        {
            "timestamp": T0 + 60 * np.arange(n),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.arange(n, dtype=np.float64),
        }
    )


def feed(path: Path) -> ParquetFeed:
    return ParquetFeed(FileFeedConfig(path=str(path)))


def ctx(base: Path) -> FeedContext:
    return FeedContext(base, 0, "backtest")


def columns(s: BarSeries) -> list[np.ndarray]:
    return [s.ts, s.open, s.high, s.low, s.close, s.volume]


@pytest.mark.parametrize("size", [1, 64, 100, 999, 5_000])
def test_chunks_are_the_loaded_bars_in_order(tmp_path: Path, size: int) -> None:
    pq.write_table(table(1_000), tmp_path / "BTC-USD.parquet", row_group_size=300)
    f = feed(tmp_path / "{symbol}.parquet")
    whole = f.load(BTC, ctx(tmp_path))
    parts = list(f.chunks(BTC, ctx(tmp_path), size))
    assert all(0 < len(p) <= size for p in parts)
    joined = BarSeries.concat(parts)
    assert all(np.array_equal(a, b) for a, b in zip(columns(joined), columns(whole), strict=True))
    assert f.count(BTC, ctx(tmp_path)) == 1_000


def test_a_bad_cell_in_a_later_row_group_names_its_row(tmp_path: Path) -> None:
    t = table(1_000)
    close = t.column("close").to_numpy().copy()
    close[812] = -1.0
    t = t.set_column(t.column_names.index("close"), "close", pa.array(close))
    pq.write_table(t, tmp_path / "BTC-USD.parquet", row_group_size=300)
    f = feed(tmp_path / "{symbol}.parquet")
    chunks = f.chunks(BTC, ctx(tmp_path), 250)
    with pytest.raises(DataError, match=r"BTC-USD\.parquet row 813, column close: price must"):
        list(chunks)


def test_time_going_back_between_row_groups_names_the_row(tmp_path: Path) -> None:
    t = table(600)
    stamps = t.column("timestamp").to_numpy().copy()
    stamps[300:] -= 60 * 400  # the second row group starts before the first ends
    t = t.set_column(0, "timestamp", pa.array(stamps))
    pq.write_table(t, tmp_path / "BTC-USD.parquet", row_group_size=300)
    with pytest.raises(DataError, match=r"row 301, column timestamp: timestamp does not increase"):
        list(feed(tmp_path / "{symbol}.parquet").chunks(BTC, ctx(tmp_path), 300))


def test_an_unreadable_or_missing_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "BTC-USD.parquet").write_bytes(b"not parquet at all")
    f = feed(tmp_path / "{symbol}.parquet")
    with pytest.raises(DataError, match="unreadable Parquet file"):
        list(f.chunks(BTC, ctx(tmp_path), 10))
    with pytest.raises(DataError, match="unreadable Parquet file"):
        f.count(BTC, ctx(tmp_path))
    with pytest.raises(DataError, match=r"data file not found \(for ETH-USD\)"):
        list(f.chunks(Instrument("ETH-USD", Decimal("0.01")), ctx(tmp_path), 10))
