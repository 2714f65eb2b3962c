"""Tests of the built-in feed plugins: ``csv``, ``parquet`` and ``synthetic``.

Each feed is driven directly (config class + ``load(instrument, FeedContext)``)
and end to end through ``Engine.from_config(...).backtest_sync()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import ConfigError, DataError, Engine, FeedContext, Instrument
from engine.builtins import feed_synthetic
from engine.builtins.feed_csv import CsvConfig, CsvFeed
from engine.builtins.feed_files import FileFeedConfig
from engine.builtins.feed_parquet import ParquetFeed
from engine.builtins.feed_synthetic import SyntheticConfig, SyntheticFeed
from engine.data import BarSeries

T0_S = 1_704_067_200  # 2024-01-01T00:00:00Z
T0 = T0_S * 1_000_000_000
MIN = 60_000_000_000
HEADER = "timestamp,open,high,low,close,volume"

BTC = Instrument("BTC-USD", Decimal("0.01"))
ETH = Instrument("ETH-USD", Decimal("0.01"))

# a price path with two SMA(2/4) crossings: a buy, a sell, a buy
CLOSES = [100, 99, 98, 97, 98, 100, 102, 104, 103, 101, 99, 97, 96, 95, 97, 99, 101]


def ohlc_rows(closes=CLOSES):
    """(open, high, low, close, volume) rows, each open at the previous close."""
    rows, prev = [], closes[0]
    for c in closes:
        o = prev
        rows.append((o, max(o, c) + 0.5, min(o, c) - 0.5, c, 10.0))
        prev = c
    return rows


def csv_text(rows=None, stamps=None) -> str:
    rows = ohlc_rows() if rows is None else rows
    stamps = [T0_S + 60 * i for i in range(len(rows))] if stamps is None else stamps
    lines = [HEADER] + [
        ",".join(str(x) for x in (t, *r)) for t, r in zip(stamps, rows, strict=True)
    ]
    return "\n".join(lines) + "\n"


def with_cell(text: str, line: int, column: str, value: str) -> str:
    """``text`` with the cell of file line ``line`` (1-based, header = 1) replaced."""
    lines = text.splitlines()
    cells = lines[line - 1].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def write_csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ctx(base: Path, seed: int = 7) -> FeedContext:
    return FeedContext(base, seed, "backtest")


def load_csv(base: Path, path: str = "{symbol}.csv", instrument=BTC, **options) -> BarSeries:
    return CsvFeed(CsvConfig(path=path, **options)).load(instrument, ctx(base))


def csv_problems(base: Path, text: str, **options):
    f = write_csv(base / "BTC-USD.csv", text)
    with pytest.raises(DataError) as info:
        load_csv(base, **options)
    return f, info.value.problems


def config(feed: dict, symbols=("BTC-USD",), **strategy) -> dict:
    return {
        "instruments": [{"symbol": s, "tick_size": "0.01"} for s in symbols],
        "feed": feed,
        "strategies": [{"type": "sma_crossover", "fast": 2, "slow": 4} | strategy],
    }


def expected_ticks(rows, column: int) -> list[int]:
    return [round(Decimal(str(r[column])) / Decimal("0.01")) for r in rows]


def assert_matches_rows(s: BarSeries, rows, stamps_ns) -> None:
    assert len(s) == len(rows)
    assert s.ts.tolist() == stamps_ns
    for k, name in enumerate(("open", "high", "low", "close")):
        assert getattr(s, name).tolist() == expected_ticks(rows, k)
    assert s.volume.tolist() == [r[4] for r in rows]


# =======================================================================================
# CSV
# =======================================================================================


class TestCsvLoad:
    def test_epoch_seconds(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "BTC-USD.csv", csv_text())
        s = load_csv(tmp_path)
        assert s.instrument == BTC
        assert_matches_rows(s, ohlc_rows(), [T0 + MIN * i for i in range(len(CLOSES))])
        assert s.bar(0).close == Decimal("100.00")
        assert s.bar(3).low == Decimal("96.5")

    def test_iso_timestamps(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:4]
        stamps = [f"2024-01-01T00:0{i}:00Z" for i in range(4)]
        write_csv(tmp_path / "BTC-USD.csv", csv_text(rows, stamps))
        assert_matches_rows(load_csv(tmp_path), rows, [T0 + MIN * i for i in range(4)])

    def test_iso_timestamps_with_offset(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:3]
        stamps = [f"2024-01-01T01:0{i}:00+01:00" for i in range(3)]
        write_csv(tmp_path / "BTC-USD.csv", csv_text(rows, stamps))
        assert load_csv(tmp_path).ts.tolist() == [T0 + MIN * i for i in range(3)]

    def test_iso_timestamps_without_zone_are_utc(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:3]
        stamps = [f"2024-01-01 00:0{i}:00" for i in range(3)]
        write_csv(tmp_path / "BTC-USD.csv", csv_text(rows, stamps))
        assert load_csv(tmp_path).ts.tolist() == [T0 + MIN * i for i in range(3)]

    def test_epoch_milliseconds(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:3]
        stamps = [T0_S * 1000 + 60_000 * i for i in range(3)]
        write_csv(tmp_path / "BTC-USD.csv", csv_text(rows, stamps))
        s = load_csv(tmp_path, timestamp_unit="ms")
        assert s.ts.tolist() == [T0 + MIN * i for i in range(3)]

    def test_custom_timestamp_column_and_delimiter(self, tmp_path: Path) -> None:
        text = "time;open;high;low;close\n1704067200;1.5;2;1;1.75\n1704067260;1.75;2;1.5;2\n"
        write_csv(tmp_path / "BTC-USD.csv", text)
        s = load_csv(tmp_path, timestamp_column="time", delimiter=";")
        assert s.ts.tolist() == [T0, T0 + MIN]
        assert s.close.tolist() == [175, 200]
        assert s.volume.tolist() == [0.0, 0.0]  # volume is optional

    def test_symbol_in_path(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "data" / "BTC-USD" / "bars.csv", csv_text(ohlc_rows()[:3]))
        write_csv(tmp_path / "data" / "ETH-USD" / "bars.csv", csv_text(ohlc_rows()[5:7]))
        feed = CsvFeed(CsvConfig(path="data/{symbol}/bars.csv"))
        assert len(feed.load(BTC, ctx(tmp_path))) == 3
        eth = feed.load(ETH, ctx(tmp_path))
        assert len(eth) == 2
        assert eth.instrument == ETH
        assert eth.close.tolist() == expected_ticks(ohlc_rows()[5:7], 3)

    def test_relative_path_resolves_against_base_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        base = tmp_path / "cfg"
        write_csv(base / "BTC-USD.csv", csv_text())
        monkeypatch.chdir(tmp_path)  # the cwd has no such file
        assert len(load_csv(base)) == len(CLOSES)

    def test_absolute_path_is_used_as_is(self, tmp_path: Path) -> None:
        f = write_csv(tmp_path / "abs" / "BTC-USD.csv", csv_text())
        s = CsvFeed(CsvConfig(path=str(f))).load(BTC, ctx(tmp_path / "elsewhere"))
        assert len(s) == len(CLOSES)


class TestCsvProblems:
    def test_missing_file_names_path(self, tmp_path: Path) -> None:
        with pytest.raises(DataError) as info:
            load_csv(tmp_path, path="data/{symbol}.csv")
        (problem,) = info.value.problems
        assert problem.where == str(tmp_path / "data" / "BTC-USD.csv")
        assert "not found" in problem.message
        assert "BTC-USD" in problem.message

    def test_directory_is_not_a_data_file(self, tmp_path: Path) -> None:
        (tmp_path / "BTC-USD.csv").mkdir()
        with pytest.raises(DataError) as info:
            load_csv(tmp_path)
        assert info.value.problems[0].where == str(tmp_path / "BTC-USD.csv")

    def test_missing_column(self, tmp_path: Path) -> None:
        text = "timestamp,open,high,close\n1704067200,1,2,1.5\n"
        f, problems = csv_problems(tmp_path, text)
        assert len(problems) == 1
        assert problems[0].where == str(f)
        assert "missing column(s): low" in problems[0].message
        assert "found: timestamp, open, high, close" in problems[0].message

    def test_several_missing_columns_in_one_problem(self, tmp_path: Path) -> None:
        _, problems = csv_problems(tmp_path, "time,price\n1,2\n")
        assert len(problems) == 1
        assert "timestamp, open, high, low, close" in problems[0].message

    def test_unparsable_cell_names_file_row_and_column(self, tmp_path: Path) -> None:
        # data line 4 = file line 4 (the header is line 1)
        text = with_cell(csv_text(ohlc_rows()[:5]), 4, "close", "abc")
        f, problems = csv_problems(tmp_path, text)
        assert len(problems) == 1
        assert problems[0].where == f"{f} row 4, column close"
        assert "row 4" in str(problems[0]) and "column close" in str(problems[0])
        assert problems[0].message == "not a number: 'abc'"

    def test_unparsable_cell_after_the_first_block(self, tmp_path: Path) -> None:
        # a bad cell far down a large (> 1 MB, several read blocks) file keeps its line number
        n = 40_000
        lines = [HEADER] + [f"{T0_S + 60 * i},100.5,101,100,100.25,1" for i in range(n)]
        lines[n - 5] = f"{T0_S + 60 * (n - 6)},100.5,101,100,oops,1"
        f, problems = csv_problems(tmp_path, "\n".join(lines) + "\n")
        assert [p.where for p in problems] == [f"{f} row {n - 4}, column close"]
        assert "oops" in problems[0].message

    def test_unparsable_timestamp(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:3]
        stamps = ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "soon"]
        f, problems = csv_problems(tmp_path, csv_text(rows, stamps))
        assert [p.where for p in problems] == [f"{f} row 4, column timestamp"]
        assert "soon" in problems[0].message

    def test_empty_price_cell(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,2,5\n1704067260,2,3,1,,5\n1704067320,2,3,1,2,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column close"]
        assert problems[0].message == "empty cell"

    def test_empty_timestamp_cell(self, tmp_path: Path) -> None:
        text = (
            HEADER
            + "\n2024-01-01T00:00:00Z,1,2,1,2,5\n,2,3,1,2,5\n2024-01-01T00:02:00Z,2,3,1,2,5\n"
        )
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column timestamp"]

    def test_duplicate_timestamp(self, tmp_path: Path) -> None:
        stamps = [T0_S, T0_S + 60, T0_S + 120, T0_S + 120, T0_S + 240]
        f, problems = csv_problems(tmp_path, csv_text(ohlc_rows()[:5], stamps))
        assert [p.where for p in problems] == [f"{f} row 5, column timestamp"]
        assert "does not increase" in problems[0].message

    def test_backwards_timestamp(self, tmp_path: Path) -> None:
        stamps = [T0_S, T0_S + 60, T0_S + 30]
        f, problems = csv_problems(tmp_path, csv_text(ohlc_rows()[:3], stamps))
        assert [p.where for p in problems] == [f"{f} row 4, column timestamp"]

    @pytest.mark.parametrize("nan", ["NaN", "nan"])
    def test_nan_price(self, tmp_path: Path, nan: str) -> None:
        text = HEADER + f"\n1704067200,1,2,1,2,5\n1704067260,{nan},3,1,2,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column open"]

    @pytest.mark.parametrize("bad", ["0", "-5", "-0.01"])
    def test_non_positive_price(self, tmp_path: Path, bad: str) -> None:
        text = HEADER + f"\n1704067200,1,2,1,2,5\n1704067260,2,3,1,2,5\n1704067320,2,3,{bad},2,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 4, column low"]
        assert "positive number" in problems[0].message

    def test_price_off_tick_grid(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,2,5\n1704067260,2,3,1,2.005,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column close"]
        assert "tick size" in problems[0].message

    def test_inconsistent_bar(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,2,5\n1704067260,2,3,1,3.5,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column high/low"]

    def test_negative_volume(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,2,5\n1704067260,2,3,1,2,-1\n"
        f, problems = csv_problems(tmp_path, text)
        assert [p.where for p in problems] == [f"{f} row 3, column volume"]

    def test_ragged_row_is_unreadable(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,2,5\n1704067260,2,3\n"
        f, problems = csv_problems(tmp_path, text)
        assert len(problems) == 1
        assert problems[0].where == str(f)
        assert "unreadable CSV" in problems[0].message

    def test_several_problems_reported_together(self, tmp_path: Path) -> None:
        text = HEADER + "\n1704067200,1,2,1,x,5\n1704067260,2,3,1,2,5\n1704067320,y,3,1,2,5\n"
        f, problems = csv_problems(tmp_path, text)
        assert {p.where for p in problems} == {
            f"{f} row 2, column close",
            f"{f} row 4, column open",
        }


# =======================================================================================
# Parquet
# =======================================================================================


def parquet_table(rows=None, stamps=None) -> pa.Table:
    rows = ohlc_rows() if rows is None else rows
    if stamps is None:
        stamps = pa.array(
            [T0 + MIN * i for i in range(len(rows))], type=pa.timestamp("ns", tz="UTC")
        )
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "timestamp": stamps,
            "open": pa.array(cols[0], type=pa.float64()),
            "high": pa.array(cols[1], type=pa.float64()),
            "low": pa.array(cols[2], type=pa.float64()),
            "close": pa.array(cols[3], type=pa.float64()),
            "volume": pa.array(cols[4], type=pa.float64()),
        }
    )


def write_parquet(path: Path, t: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path)
    return path


def load_parquet(base: Path, path: str = "{symbol}.parquet", instrument=BTC, **opts) -> BarSeries:
    return ParquetFeed(FileFeedConfig(path=path, **opts)).load(instrument, ctx(base))


def parquet_problems(base: Path, t: pa.Table, **opts):
    f = write_parquet(base / "BTC-USD.parquet", t)
    with pytest.raises(DataError) as info:
        load_parquet(base, **opts)
    return f, info.value.problems


def with_column(t: pa.Table, name: str, values) -> pa.Table:
    return t.set_column(t.column_names.index(name), name, values)


class TestParquetLoad:
    def test_timestamp_column(self, tmp_path: Path) -> None:
        write_parquet(tmp_path / "BTC-USD.parquet", parquet_table())
        s = load_parquet(tmp_path)
        assert_matches_rows(s, ohlc_rows(), [T0 + MIN * i for i in range(len(CLOSES))])

    def test_written_by_pandas(self, tmp_path: Path) -> None:
        df = pd.DataFrame(
            {
                "timestamp": pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC"),
                "open": [1.0, 2.0, 3.0],
                "high": [2.0, 3.0, 4.0],
                "low": [1.0, 1.0, 1.0],
                "close": [2.0, 2.5, 3.25],
                "volume": [1.0, 2.0, 3.0],
            }
        )
        df.to_parquet(tmp_path / "BTC-USD.parquet")
        s = load_parquet(tmp_path)
        assert s.ts.tolist() == [T0, T0 + MIN, T0 + 2 * MIN]
        assert s.close.tolist() == [200, 250, 325]

    def test_epoch_seconds(self, tmp_path: Path) -> None:
        t = with_column(
            parquet_table(),
            "timestamp",
            pa.array([T0_S + 60 * i for i in range(len(CLOSES))], type=pa.int64()),
        )
        write_parquet(tmp_path / "BTC-USD.parquet", t)
        assert load_parquet(tmp_path).ts.tolist() == [T0 + MIN * i for i in range(len(CLOSES))]

    def test_epoch_milliseconds(self, tmp_path: Path) -> None:
        t = with_column(
            parquet_table(),
            "timestamp",
            pa.array([T0_S * 1000 + 60_000 * i for i in range(len(CLOSES))], type=pa.int64()),
        )
        write_parquet(tmp_path / "BTC-USD.parquet", t)
        s = load_parquet(tmp_path, timestamp_unit="ms")
        assert s.ts.tolist() == [T0 + MIN * i for i in range(len(CLOSES))]

    def test_iso_string_timestamps(self, tmp_path: Path) -> None:
        rows = ohlc_rows()[:3]
        stamps = pa.array([f"2024-01-01T00:0{i}:00Z" for i in range(3)])
        write_parquet(tmp_path / "BTC-USD.parquet", parquet_table(rows, stamps))
        assert load_parquet(tmp_path).ts.tolist() == [T0, T0 + MIN, T0 + 2 * MIN]

    def test_symbol_in_path(self, tmp_path: Path) -> None:
        write_parquet(tmp_path / "pq" / "BTC-USD.parquet", parquet_table(ohlc_rows()[:4]))
        write_parquet(tmp_path / "pq" / "ETH-USD.parquet", parquet_table(ohlc_rows()[:6]))
        feed = ParquetFeed(FileFeedConfig(path="pq/{symbol}.parquet"))
        assert len(feed.load(BTC, ctx(tmp_path))) == 4
        assert len(feed.load(ETH, ctx(tmp_path))) == 6


class TestParquetProblems:
    def test_missing_file_names_path(self, tmp_path: Path) -> None:
        with pytest.raises(DataError) as info:
            load_parquet(tmp_path)
        (problem,) = info.value.problems
        assert problem.where == str(tmp_path / "BTC-USD.parquet")
        assert "not found" in problem.message

    def test_unreadable_file(self, tmp_path: Path) -> None:
        f = tmp_path / "BTC-USD.parquet"
        f.write_text("timestamp,open\nthis is not parquet\n")
        with pytest.raises(DataError) as info:
            load_parquet(tmp_path)
        (problem,) = info.value.problems
        assert problem.where == str(f)
        assert "unreadable Parquet" in problem.message

    def test_missing_column(self, tmp_path: Path) -> None:
        f, problems = parquet_problems(tmp_path, parquet_table().drop_columns(["high", "close"]))
        assert len(problems) == 1
        assert problems[0].where == str(f)
        assert "missing column(s): high, close" in problems[0].message

    def test_first_data_row_is_row_1(self, tmp_path: Path) -> None:
        t = parquet_table(ohlc_rows()[:3])
        t = with_column(t, "close", pa.array(["abc", "98", "97"]))
        f, problems = parquet_problems(tmp_path, t)
        assert [p.where for p in problems] == [f"{f} row 1, column close"]
        assert problems[0].message == "not a number: 'abc'"

    def test_unparsable_cell(self, tmp_path: Path) -> None:
        t = parquet_table(ohlc_rows()[:5])
        t = with_column(t, "high", pa.array(["101", "100", "99", "x1", "98.5"]))
        f, problems = parquet_problems(tmp_path, t)
        assert [p.where for p in problems] == [f"{f} row 4, column high"]

    def test_nan_price(self, tmp_path: Path) -> None:
        t = parquet_table(ohlc_rows()[:3])
        t = with_column(t, "open", pa.array([100.0, float("nan"), 98.0], from_pandas=False))
        f, problems = parquet_problems(tmp_path, t)
        assert [p.where for p in problems] == [f"{f} row 2, column open"]
        assert "positive number" in problems[0].message

    def test_null_price(self, tmp_path: Path) -> None:
        t = parquet_table(ohlc_rows()[:3])
        t = with_column(t, "low", pa.array([99.5, 98.5, None], type=pa.float64()))
        f, problems = parquet_problems(tmp_path, t)
        assert [p.where for p in problems] == [f"{f} row 3, column low"]
        assert problems[0].message == "empty cell"

    @pytest.mark.parametrize("bad", [0.0, -3.0])
    def test_non_positive_price(self, tmp_path: Path, bad: float) -> None:
        rows = ohlc_rows()[:3]
        t = with_column(
            parquet_table(rows), "close", pa.array([rows[0][3], bad, rows[2][3]], pa.float64())
        )
        f, problems = parquet_problems(tmp_path, t)
        assert [p.where for p in problems] == [f"{f} row 2, column close"]
        assert "positive number" in problems[0].message

    def test_duplicate_timestamp(self, tmp_path: Path) -> None:
        stamps = pa.array([T0, T0 + MIN, T0 + MIN, T0 + 3 * MIN], pa.timestamp("ns", tz="UTC"))
        f, problems = parquet_problems(tmp_path, parquet_table(ohlc_rows()[:4], stamps))
        assert [p.where for p in problems] == [f"{f} row 3, column timestamp"]
        assert "does not increase" in problems[0].message

    def test_backwards_timestamp(self, tmp_path: Path) -> None:
        stamps = pa.array([T0_S + 60, T0_S], pa.int64())
        f, problems = parquet_problems(tmp_path, parquet_table(ohlc_rows()[:2], stamps))
        assert [p.where for p in problems] == [f"{f} row 2, column timestamp"]

    def test_null_timestamp(self, tmp_path: Path) -> None:
        stamps = pa.array([T0, None, T0 + 2 * MIN], pa.timestamp("ns", tz="UTC"))
        f, problems = parquet_problems(tmp_path, parquet_table(ohlc_rows()[:3], stamps))
        assert [p.where for p in problems] == [f"{f} row 2, column timestamp"]
        assert problems[0].message == "empty cell"


# =======================================================================================
# Synthetic
# =======================================================================================


def synth(seed: int = 7, instrument=BTC, **options) -> BarSeries:
    return SyntheticFeed(SyntheticConfig(**options)).load(
        instrument, FeedContext(Path(), seed, "backtest")
    )


def columns(s: BarSeries) -> list[list]:
    return [getattr(s, c).tolist() for c in ("ts", "open", "high", "low", "close", "volume")]


def assert_valid_bars(s: BarSeries, step: int) -> None:
    o, h, lo, c = s.open, s.high, s.low, s.close
    assert all(a.dtype == np.int64 for a in (s.ts, o, h, lo, c))
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(h >= np.maximum(o, c))
    assert np.all(lo >= 1)
    assert np.all(np.diff(s.ts) == step)
    assert np.all(np.isfinite(s.volume)) and np.all(s.volume >= 0)
    # the synthetic bars pass the same checks as file data
    rebuilt = BarSeries.from_arrays(
        s.instrument,
        s.ts,
        s.prices("open"),
        s.prices("high"),
        s.prices("low"),
        s.prices("close"),
        s.volume,
    )
    assert rebuilt.close.tolist() == c.tolist()


class TestSynthetic:
    def test_bars_count_start_and_interval(self) -> None:
        s = synth(bars=50)
        assert len(s) == 50
        assert s.instrument == BTC
        assert s.ts[0] == T0  # default start 2024-01-01T00:00:00Z
        assert_valid_bars(s, MIN)
        assert s.open[0] == 10000  # start_price 100 at tick 0.01

    @pytest.mark.parametrize(
        ("interval", "step"),
        [
            ("250ms", 250_000_000),
            ("1s", 10**9),
            ("5m", 5 * MIN),
            ("4h", 240 * MIN),
            ("1d", 1440 * MIN),
        ],
    )
    def test_interval(self, interval: str, step: int) -> None:
        s = synth(bars=20, interval=interval)
        assert np.all(np.diff(s.ts) == step)

    def test_start(self) -> None:
        s = synth(bars=3, start="2024-03-01T12:30:00+02:00")
        assert s.ts[0] == pd.Timestamp("2024-03-01T10:30:00Z").value
        naive = synth(bars=3, start="2024-03-01 10:30")
        assert naive.ts.tolist() == s.ts.tolist()

    def test_start_price_on_the_tick_grid(self) -> None:
        s = synth(bars=5, start_price=Decimal("30000"), instrument=Instrument("X", Decimal("0.5")))
        assert s.open[0] == 60000
        assert s.bar(0).open == Decimal("30000")

    def test_deterministic_for_a_seed(self) -> None:
        assert columns(synth(seed=11, bars=300)) == columns(synth(seed=11, bars=300))

    def test_different_seeds_differ(self) -> None:
        a, b = synth(seed=1, bars=100), synth(seed=2, bars=100)
        assert a.close.tolist() != b.close.tolist()
        assert a.ts.tolist() == b.ts.tolist()

    def test_config_seed_overrides_run_seed(self) -> None:
        a = synth(seed=1, bars=100)
        pinned_1 = SyntheticFeed(SyntheticConfig(bars=100, seed=99)).load(
            BTC, FeedContext(Path(), 1, "backtest")
        )
        pinned_2 = SyntheticFeed(SyntheticConfig(bars=100, seed=99)).load(
            BTC, FeedContext(Path(), 2, "backtest")
        )
        assert columns(pinned_1) == columns(pinned_2)
        assert columns(pinned_1) == columns(synth(seed=99, bars=100))
        assert columns(pinned_1) != columns(a)

    def test_different_symbols_differ(self) -> None:
        a = synth(bars=100, instrument=BTC)
        b = synth(bars=100, instrument=ETH)
        assert a.close.tolist() != b.close.tolist()
        assert b.instrument == ETH

    def test_every_bar_valid_under_high_volatility(self) -> None:
        # volatile walk near the bottom of a coarse grid: lows are clipped at 1 tick
        s = synth(
            bars=3000,
            volatility=0.08,
            start_price=Decimal(3),
            instrument=Instrument("PENNY", Decimal("1")),
        )
        assert_valid_bars(s, MIN)
        assert s.low.min() == 1

    def test_every_bar_valid_small_tick(self) -> None:
        s = synth(
            bars=2000,
            volatility=0.01,
            drift=0.0005,
            instrument=Instrument("FX", Decimal("0.0001")),
            start_price=Decimal("1.1"),
        )
        assert_valid_bars(s, MIN)
        assert s.open[0] == 11000

    def test_zero_volatility_is_flat(self) -> None:
        s = synth(bars=10, volatility=0.0)
        assert set(s.close.tolist()) == {10000}
        assert s.high.tolist() == s.low.tolist() == s.close.tolist()

    def test_walk_is_continuous(self) -> None:
        s = synth(bars=500)
        assert s.open[1:].tolist() == s.close[:-1].tolist()

    def test_stream_stamped_from_wall_clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = T0 + 37 * MIN + 12_345
        monkeypatch.setattr(feed_synthetic.time, "time_ns", lambda: now)
        feed = SyntheticFeed(SyntheticConfig(bars=5))
        chunks = feed.stream(BTC, FeedContext(Path(), 7, "paper"))
        first, second, third = next(chunks), next(chunks), next(chunks)
        size = SyntheticFeed.CHUNK
        assert len(first) == len(second) == len(third) == size
        # the first bar is the next interval boundary after now
        assert first.ts[0] == T0 + 38 * MIN
        for s in (first, second, third):
            assert_valid_bars(s, MIN)
        # chunks continue the clock and the walk
        assert second.ts[0] == first.ts[-1] + MIN
        assert third.ts[0] == second.ts[-1] + MIN
        assert second.open[0] == first.close[-1]
        assert third.open[0] == second.close[-1]
        joined = BarSeries.concat([first, second, third])
        assert np.all(np.diff(joined.ts) == MIN)

    def test_stream_matches_load_for_the_same_seed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(feed_synthetic.time, "time_ns", lambda: T0 + 5 * MIN)
        size = SyntheticFeed.CHUNK
        streamed = next(
            SyntheticFeed(SyntheticConfig()).stream(BTC, FeedContext(Path(), 3, "paper"))
        )
        loaded = synth(seed=3, bars=size)
        for c in ("open", "high", "low", "close", "volume"):
            assert getattr(streamed, c).tolist() == getattr(loaded, c).tolist()
        assert streamed.ts[0] == T0 + 6 * MIN

    def test_stream_uses_real_clock(self) -> None:
        step = 10**9
        before = time.time_ns()
        first = next(
            SyntheticFeed(SyntheticConfig(interval="1s")).stream(
                BTC, FeedContext(Path(), 1, "paper")
            )
        )
        after = time.time_ns()
        assert first.ts[0] % step == 0
        assert before < first.ts[0] <= after + step
        assert np.all(np.diff(first.ts) == step)

    @pytest.mark.parametrize(
        ("feed", "where"),
        [
            ({"type": "synthetic", "interval": "5x"}, "config.feed.interval"),
            ({"type": "synthetic", "bars": 0}, "config.feed.bars"),
            ({"type": "synthetic", "volatility": -0.1}, "config.feed.volatility"),
            ({"type": "csv"}, "config.feed.path"),
            ({"type": "parquet", "path": "x", "timestamp_unit": "h"}, "config.feed.timestamp_unit"),
        ],
    )
    def test_bad_feed_options_are_config_errors(self, feed: dict, where: str) -> None:
        with pytest.raises(ConfigError) as info:
            Engine.from_config(config(feed)).check()
        assert where in [p.where for p in info.value.problems]


# =======================================================================================
# End to end through the Engine
# =======================================================================================


def fills(result) -> list[tuple]:
    return [(f.side.value, f.quantity, f.price, f.ts) for f in result.fill_records]


class TestEndToEnd:
    def test_csv_backtest(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "BTC-USD.csv", csv_text())
        result = Engine.from_config(
            config({"type": "csv", "path": str(tmp_path / "{symbol}.csv")})
        ).backtest_sync()
        assert result.bars == len(CLOSES)
        assert result.final_marks == {"BTC-USD": Decimal("101.00")}
        # SMA(2/4) crossings on this path: buy, sell, buy, filled at the next open
        assert [f[0] for f in fills(result)] == ["buy", "sell", "buy"]
        assert [f[2] for f in fills(result)] == [Decimal("100"), Decimal("101"), Decimal("99")]
        assert all(isinstance(f[2], Decimal) for f in fills(result))
        assert len(result.trade_records) == 1
        assert result.trade_records[0].pnl == Decimal("1.00")

    def test_csv_iso_timestamps_backtest(self, tmp_path: Path) -> None:
        stamps = [
            pd.Timestamp(T0 + MIN * i, tz="UTC").isoformat().replace("+00:00", "Z")
            for i in range(len(CLOSES))
        ]
        write_csv(tmp_path / "BTC-USD.csv", csv_text(stamps=stamps))
        write_csv(tmp_path / "epoch" / "BTC-USD.csv", csv_text())
        iso = Engine.from_config(
            config({"type": "csv", "path": str(tmp_path / "{symbol}.csv")})
        ).backtest_sync()
        epoch = Engine.from_config(
            config({"type": "csv", "path": str(tmp_path / "epoch" / "{symbol}.csv")})
        ).backtest_sync()
        assert iso.bars == epoch.bars == len(CLOSES)
        assert fills(iso) == fills(epoch)
        assert fills(iso)[0][3] == T0 + 6 * MIN

    def test_parquet_backtest_matches_csv(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "BTC-USD.csv", csv_text())
        write_parquet(tmp_path / "BTC-USD.parquet", parquet_table())
        csv_result = Engine.from_config(
            config({"type": "csv", "path": str(tmp_path / "{symbol}.csv")})
        ).backtest_sync()
        pq_result = Engine.from_config(
            config({"type": "parquet", "path": str(tmp_path / "{symbol}.parquet")})
        ).backtest_sync()
        assert pq_result.bars == len(CLOSES)
        assert fills(pq_result) == fills(csv_result)
        assert len(fills(pq_result)) == 3
        assert pq_result.final_marks == csv_result.final_marks

    def test_symbol_in_path_loads_each_instrument(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "d" / "BTC-USD.csv", csv_text())
        write_csv(tmp_path / "d" / "ETH-USD.csv", csv_text(ohlc_rows([50, 51, 52])))
        result = Engine.from_config(
            config(
                {"type": "csv", "path": str(tmp_path / "d" / "{symbol}.csv")},
                symbols=("BTC-USD", "ETH-USD"),
            )
        ).backtest_sync()
        assert result.bars == len(CLOSES) + 3
        assert result.final_marks == {"BTC-USD": Decimal("101"), "ETH-USD": Decimal("52")}

    def test_relative_path_resolves_against_toml_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project = tmp_path / "project"
        write_csv(project / "data" / "BTC-USD.csv", csv_text())
        toml = project / "backtest.toml"
        toml.write_text(
            '[[instruments]]\nsymbol = "BTC-USD"\ntick_size = "0.01"\n\n'
            '[feed]\ntype = "csv"\npath = "data/{symbol}.csv"\n\n'
            '[[strategies]]\ntype = "sma_crossover"\nfast = 2\nslow = 4\n'
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        result = Engine.from_config(toml).backtest_sync()
        assert result.bars == len(CLOSES)
        assert len(result.fill_records) == 3
        # the same works with the path given as a string relative to the cwd
        monkeypatch.chdir(tmp_path)
        assert Engine.from_config("project/backtest.toml").backtest_sync().bars == len(CLOSES)

    def test_relative_path_of_dict_config_resolves_against_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write_csv(tmp_path / "here" / "BTC-USD.csv", csv_text())
        monkeypatch.chdir(tmp_path)
        result = Engine.from_config(
            config({"type": "csv", "path": "here/{symbol}.csv"})
        ).backtest_sync()
        assert result.bars == len(CLOSES)

    def test_missing_file_raises_data_error(self, tmp_path: Path) -> None:
        eng = Engine.from_config(config({"type": "csv", "path": str(tmp_path / "{symbol}.csv")}))
        with pytest.raises(DataError) as info:
            eng.backtest_sync()
        assert [p.where for p in info.value.problems] == [str(tmp_path / "BTC-USD.csv")]

    def test_bad_cell_raises_data_error(self, tmp_path: Path) -> None:
        f = write_csv(tmp_path / "BTC-USD.csv", with_cell(csv_text(), 4, "close", "abc"))
        eng = Engine.from_config(config({"type": "csv", "path": str(tmp_path / "{symbol}.csv")}))
        with pytest.raises(DataError) as info:
            eng.backtest_sync()
        assert [str(p) for p in info.value.problems] == [
            f"{f} row 4, column close: not a number: 'abc'"
        ]

    def test_synthetic_backtest_is_deterministic(self) -> None:
        cfg = config({"type": "synthetic", "bars": 400, "volatility": 0.01}) | {
            "engine": {"seed": 5}
        }
        a = Engine.from_config(cfg).backtest_sync()
        b = Engine.from_config(cfg).backtest_sync()
        assert a.bars == b.bars == 400
        assert fills(a) == fills(b)
        assert len(fills(a)) > 0
        other = Engine.from_config(cfg | {"engine": {"seed": 6}}).backtest_sync()
        assert fills(other) != fills(a)


# =======================================================================================
# CLI
# =======================================================================================


def engine_command() -> list[str]:
    script = Path(sys.executable).parent / "engine"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "engine.cli"]


@pytest.mark.slow
class TestCli:
    def _run(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"NO_COLOR": "1", "TERM": "dumb"}
        return subprocess.run(
            [*engine_command(), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    def _toml(self, folder: Path) -> Path:
        toml = folder / "bad.toml"
        toml.write_text(
            '[[instruments]]\nsymbol = "BTC-USD"\ntick_size = "0.01"\n\n'
            '[feed]\ntype = "csv"\npath = "data/{symbol}.csv"\n\n'
            '[[strategies]]\ntype = "sma_crossover"\nfast = 2\nslow = 4\n'
        )
        return toml

    def test_backtest_bad_csv_exits_2_with_problem_line(self, tmp_path: Path) -> None:
        project = tmp_path.resolve() / "project"
        f = write_csv(project / "data" / "BTC-USD.csv", with_cell(csv_text(), 4, "close", "abc"))
        self._toml(project)
        proc = self._run(tmp_path, "backtest", "--no-progress", "project/bad.toml")
        assert proc.returncode == 2, proc.stderr
        assert f"{f} row 4, column close: not a number: 'abc'" in proc.stderr.splitlines()
        assert "Traceback" not in proc.stdout + proc.stderr

    def test_backtest_missing_csv_exits_2(self, tmp_path: Path) -> None:
        project = tmp_path.resolve() / "project"
        project.mkdir()
        toml = self._toml(project)
        proc = self._run(tmp_path, "backtest", str(toml))
        assert proc.returncode == 2, proc.stderr
        expected = str(project / "data" / "BTC-USD.csv")
        assert any(
            line.startswith(f"{expected}: data file not found") for line in proc.stderr.splitlines()
        )
        assert "Traceback" not in proc.stdout + proc.stderr


def test_a_bad_cell_far_into_a_large_csv_is_named_by_row(tmp_path: Path) -> None:
    from engine.builtins.feed_csv import CsvConfig, CsvFeed

    path = tmp_path / "big.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [
        f"{i},100.0,100.0,100.0,{'abc' if i == 250_000 else '100.0'},1" for i in range(300_000)
    ]
    path.write_text("\n".join(lines) + "\n")
    feed = CsvFeed(CsvConfig(path=str(path)))
    with pytest.raises(DataError) as err:
        feed.load(Instrument("BTC-USD", Decimal("0.01")), FeedContext(tmp_path, 0, "backtest"))
    assert [str(p) for p in err.value.problems] == [
        f"{path} row 250002, column close: not a number: 'abc'"
    ]


def test_a_line_with_missing_fields_is_an_unreadable_file(tmp_path: Path) -> None:
    from engine.builtins.feed_csv import CsvConfig, CsvFeed

    path = tmp_path / "short.csv"
    path.write_text("timestamp,open,high,low,close\n1,1,1,1,1\n2,1,1,1\n")
    with pytest.raises(DataError) as err:
        CsvFeed(CsvConfig(path=str(path))).load(
            Instrument("BTC-USD", Decimal("0.01")), FeedContext(tmp_path, 0, "backtest")
        )
    assert (
        str(err.value.problems[0])
        == f"{path}: unreadable CSV: CSV parse error: Expected 5 columns, got 4: 2,1,1,1"
    )
