"""Tests of the columnar data layer: ``engine.data`` (BarSeries, bars_from_table)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Instrument
from engine.data import PRICE_COLUMNS, BarSeries, bars_from_table
from engine.errors import DataError, Problem
from engine.model import Bar

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z in ns
MIN = 60_000_000_000
T0_S = 1_704_067_200


def inst(tick: str = "0.01", symbol: str = "BTC-USD") -> Instrument:
    return Instrument(symbol, Decimal(tick))


def ts_list(n: int, start: int = T0, step: int = MIN) -> list[int]:
    return [start + step * i for i in range(n)]


def flat(n: int, price: float = 100.0) -> list[float]:
    return [price] * n


def raises_data_error(fn, *args, **kwargs) -> tuple[Problem, ...]:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    problems = info.value.problems
    assert problems, "a DataError must carry at least one problem"
    assert all(isinstance(p, Problem) for p in problems)
    return problems


def wheres(problems) -> list[str]:
    return [p.where for p in problems]


# ---------------------------------------------------------------------------------------
# BarSeries.from_arrays: valid data
# ---------------------------------------------------------------------------------------


class TestFromArraysValid:
    def test_round_trips_to_exact_ticks(self) -> None:
        s = BarSeries.from_arrays(
            inst("0.01"),
            ts_list(3),
            [100.01, 100.5, 99.99],
            [100.25, 101.0, 100.5],
            [99.9, 100.0, 99.0],
            [100.2, 100.75, 99.01],
            [1.5, 0.0, 2.25],
        )
        assert len(s) == 3
        assert s.ts.dtype == np.int64
        assert s.open.dtype == np.int64 and s.close.dtype == np.int64
        assert s.ts.tolist() == ts_list(3)
        assert s.open.tolist() == [10001, 10050, 9999]
        assert s.high.tolist() == [10025, 10100, 10050]
        assert s.low.tolist() == [9990, 10000, 9900]
        assert s.close.tolist() == [10020, 10075, 9901]
        assert s.volume.tolist() == [1.5, 0.0, 2.25]

    @pytest.mark.parametrize(
        ("tick", "prices", "ticks"),
        [
            ("0.5", [100.5, 101.0, 0.5], [201, 202, 1]),
            ("1", [7.0, 30000.0, 1.0], [7, 30000, 1]),
            ("0.0001", [1.2345, 0.0001, 1.1], [12345, 1, 11000]),
            ("0.25", [0.25, 0.75, 1234.5], [1, 3, 4938]),
        ],
    )
    def test_other_tick_grids(self, tick: str, prices: list[float], ticks: list[int]) -> None:
        s = BarSeries.from_arrays(inst(tick), ts_list(3), prices, prices, prices, prices)
        for col in PRICE_COLUMNS:
            assert getattr(s, col).tolist() == ticks
        for i, t in enumerate(ticks):
            assert s.bar(i).close == Decimal(t) * Decimal(tick)

    def test_volume_defaults_to_zero(self) -> None:
        s = BarSeries.from_arrays(inst(), ts_list(2), flat(2), flat(2), flat(2), flat(2))
        assert s.volume.tolist() == [0.0, 0.0]

    def test_accepts_numpy_arrays(self) -> None:
        p = np.array([1.0, 2.0, 3.0])
        s = BarSeries.from_arrays(inst("1"), np.array(ts_list(3), dtype=np.int64), p, p, p, p)
        assert s.close.tolist() == [1, 2, 3]

    def test_single_bar_and_empty(self) -> None:
        one = BarSeries.from_arrays(inst(), [T0], [1.0], [1.0], [1.0], [1.0])
        assert len(one) == 1
        empty = BarSeries.from_arrays(inst(), [], [], [], [], [])
        assert len(empty) == 0

    def test_high_equal_to_open_close_and_low_equal_is_valid(self) -> None:
        s = BarSeries.from_arrays(inst(), ts_list(1), [100.0], [101.0], [99.0], [101.0])
        assert (s.high.tolist(), s.low.tolist()) == ([10100], [9900])

    def test_repr_and_len(self) -> None:
        s = BarSeries.from_prices(inst(), [1.0, 2.0])
        assert len(s) == 2
        assert repr(s) == "BarSeries('BTC-USD', 2 bars)"


# ---------------------------------------------------------------------------------------
# BarSeries.from_arrays: every problem is reported with source, row and column
# ---------------------------------------------------------------------------------------


class TestFromArraysProblems:
    def _build(self, *, tick="0.01", source="prices.csv", first_row=0, **cols):
        n = len(cols.get("ts", ts_list(4)))
        data = {
            "ts": ts_list(n),
            "open": flat(n, 100.0),
            "high": flat(n, 101.0),
            "low": flat(n, 99.0),
            "close": flat(n, 100.5),
            "volume": flat(n, 1.0),
        } | cols
        return BarSeries.from_arrays(
            inst(tick),
            data["ts"],
            data["open"],
            data["high"],
            data["low"],
            data["close"],
            data["volume"],
            source=source,
            first_row=first_row,
        )

    def test_nan_price(self) -> None:
        problems = raises_data_error(self._build, close=[100.5, float("nan"), 100.5, 100.5])
        assert len(problems) == 1
        assert problems[0].where == "prices.csv row 1, column close"
        assert "positive number" in problems[0].message
        assert "nan" in problems[0].message

    def test_infinite_price(self) -> None:
        problems = raises_data_error(self._build, high=[101.0, 101.0, float("inf"), 101.0])
        assert wheres(problems) == ["prices.csv row 2, column high"]

    @pytest.mark.parametrize("bad", [0.0, -1.0, -100.5])
    def test_non_positive_price(self, bad: float) -> None:
        problems = raises_data_error(self._build, open=[100.0, 100.0, 100.0, bad])
        assert wheres(problems) == ["prices.csv row 3, column open"]
        assert "positive number" in problems[0].message
        assert str(bad) in problems[0].message

    def test_price_off_tick_grid(self) -> None:
        problems = raises_data_error(self._build, low=[99.0, 99.005, 99.0, 99.0])
        assert len(problems) == 1
        assert problems[0].where == "prices.csv row 1, column low"
        assert "not a multiple of the tick size" in problems[0].message
        assert "99.005" in problems[0].message

    def test_price_off_coarse_tick_grid(self) -> None:
        problems = raises_data_error(
            self._build, tick="0.5", open=[100.0, 100.0, 100.25, 100.0], high=flat(4, 101.0)
        )
        assert wheres(problems) == ["prices.csv row 2, column open"]

    @pytest.mark.parametrize(
        ("price", "tick"),
        [
            ("30000.005", "0.01"),
            ("30000.013", "0.01"),
            ("5000.005", "0.01"),
            ("1000000.5", "1"),
            ("12.34565", "0.0001"),
        ],
    )
    def test_price_off_tick_grid_at_realistic_magnitudes(self, price: str, tick: str) -> None:
        # A price half a tick off the grid must be rejected whatever its magnitude
        # (30000.005 is a typical BTC price with a 0.01 tick); it must never be
        # silently rounded to a neighbouring tick.
        p = float(price)
        problems = raises_data_error(
            BarSeries.from_arrays, inst(tick), [T0], [p], [p], [p], [p], source="big.csv"
        )
        assert "big.csv row 0, column close" in wheres(problems)
        assert all("not a multiple of the tick size" in pr.message for pr in problems)

    def test_high_below_open_or_close(self) -> None:
        problems = raises_data_error(
            self._build,
            open=[100.0, 100.0, 100.0, 100.0],
            close=[100.5, 100.5, 102.0, 100.5],
            high=[101.0, 101.0, 101.0, 101.0],
        )
        assert len(problems) == 1
        assert problems[0].where == "prices.csv row 2, column high/low"
        assert "low <= open, close <= high" in problems[0].message

    def test_high_below_open(self) -> None:
        problems = raises_data_error(self._build, open=[100.0, 101.5, 100.0, 100.0])
        assert wheres(problems) == ["prices.csv row 1, column high/low"]

    def test_low_above_open_or_close(self) -> None:
        problems = raises_data_error(
            self._build,
            close=[100.5, 100.5, 100.5, 98.5],  # below low = 99
        )
        assert wheres(problems) == ["prices.csv row 3, column high/low"]

    def test_low_above_open(self) -> None:
        problems = raises_data_error(self._build, low=[99.0, 100.25, 99.0, 99.0])
        assert wheres(problems) == ["prices.csv row 1, column high/low"]

    def test_negative_volume(self) -> None:
        problems = raises_data_error(self._build, volume=[1.0, 1.0, -0.5, 1.0])
        assert wheres(problems) == ["prices.csv row 2, column volume"]
        assert "volume must be >= 0" in problems[0].message
        assert "-0.5" in problems[0].message

    def test_nan_volume(self) -> None:
        problems = raises_data_error(self._build, volume=[float("nan"), 1.0, 1.0, 1.0])
        assert wheres(problems) == ["prices.csv row 0, column volume"]

    def test_duplicate_timestamp(self) -> None:
        ts = ts_list(4)
        ts[2] = ts[1]
        problems = raises_data_error(self._build, ts=ts)
        assert wheres(problems) == ["prices.csv row 2, column timestamp"]
        assert "does not increase" in problems[0].message

    def test_backwards_timestamp(self) -> None:
        ts = ts_list(4)
        ts[3] = ts[0] - 1
        problems = raises_data_error(self._build, ts=ts)
        assert wheres(problems) == ["prices.csv row 3, column timestamp"]

    def test_first_row_offset_shows_in_row_number(self) -> None:
        problems = raises_data_error(
            self._build, first_row=2, close=[100.5, 100.5, float("nan"), 100.5]
        )
        assert wheres(problems) == ["prices.csv row 4, column close"]
        ts = ts_list(4)
        ts[1] = ts[0]
        problems = raises_data_error(self._build, first_row=10, ts=ts)
        assert wheres(problems) == ["prices.csv row 11, column timestamp"]

    def test_default_source(self) -> None:
        with pytest.raises(DataError) as info:
            BarSeries.from_arrays(inst(), [T0], [0.0], [1.0], [1.0], [1.0])
        assert info.value.problems[0].where == "<data> row 0, column open"

    def test_several_problems_all_reported(self) -> None:
        ts = ts_list(4)
        ts[3] = ts[2]
        problems = raises_data_error(
            self._build,
            ts=ts,
            open=[100.0, -1.0, 100.0, 100.0],
            close=[100.5, 100.5, 100.505, 100.5],
            volume=[1.0, 1.0, 1.0, -2.0],
        )
        assert set(wheres(problems)) == {
            "prices.csv row 1, column open",
            "prices.csv row 2, column close",
            "prices.csv row 3, column volume",
            "prices.csv row 3, column timestamp",
        }

    def test_error_message_lists_every_problem(self) -> None:
        with pytest.raises(DataError) as info:
            self._build(open=[100.0, -1.0, 100.0, 0.0])
        text = str(info.value)
        assert "prices.csv row 1, column open: price must be a positive number" in text
        assert "prices.csv row 3, column open" in text
        assert info.value.exit_code == 2

    def test_many_problems_are_capped(self) -> None:
        n = 50
        problems = raises_data_error(
            self._build, ts=ts_list(n), close=[float("nan")] * n, open=flat(n, 100.0)
        )
        # at most 10 per column and check, at most 20 in all
        assert 1 <= len(problems) <= 20
        assert problems[0].where == "prices.csv row 0, column close"

    def test_price_column_of_wrong_length(self) -> None:
        problems = raises_data_error(
            BarSeries.from_arrays,
            inst(),
            ts_list(3),
            flat(3),
            flat(2),
            flat(3),
            flat(3),
            source="s.csv",
        )
        assert problems[0].where == "s.csv"
        assert "high" in problems[0].message and "2 rows" in problems[0].message

    def test_volume_column_of_wrong_length(self) -> None:
        # Like a price column, a volume column with the wrong number of rows must be
        # rejected; otherwise the series is inconsistent (bar(i) fails later).
        problems = raises_data_error(
            BarSeries.from_arrays,
            inst(),
            ts_list(3),
            flat(3),
            flat(3),
            flat(3),
            flat(3),
            [1.0, 2.0],
            source="s.csv",
        )
        assert any("volume" in p.message or "volume" in p.where for p in problems)


# ---------------------------------------------------------------------------------------
# from_prices, bar, prices, to_pandas, concat
# ---------------------------------------------------------------------------------------


class TestSeriesHelpers:
    def test_from_prices_builds_flat_bars(self) -> None:
        s = BarSeries.from_prices(inst(), [100.0, 100.1, 100.2])
        assert s.ts.tolist() == ts_list(3)
        for col in PRICE_COLUMNS:
            assert getattr(s, col).tolist() == [10000, 10010, 10020]
        assert s.volume.tolist() == [1.0, 1.0, 1.0]

    def test_from_prices_custom_start_and_interval(self) -> None:
        s = BarSeries.from_prices(inst("1"), [1, 2, 3, 4], start_ns=5, interval_ns=10)
        assert s.ts.tolist() == [5, 15, 25, 35]

    def test_from_prices_checks_prices(self) -> None:
        problems = raises_data_error(BarSeries.from_prices, inst(), [100.0, 100.001])
        assert "<prices> row 1, column open" in wheres(problems)
        assert "<prices> row 1, column close" in wheres(problems)
        problems = raises_data_error(BarSeries.from_prices, inst(), [100.0, 0.0])
        assert "<prices> row 1, column close" in wheres(problems)

    def test_bar_returns_exact_decimals(self) -> None:
        # 0.1 + 0.2 style values: floats are inexact, the bar must not be
        s = BarSeries.from_arrays(
            inst("0.01"),
            [T0, T0 + MIN],
            [0.1, 0.3],
            [0.3, 0.3],
            [0.1, 0.29],
            [0.29, 0.3],
            [12.5, 0.001],
        )
        b = s.bar(0)
        assert isinstance(b, Bar)
        assert b.instrument == "BTC-USD"
        assert b.ts == T0
        assert (b.open, b.high, b.low, b.close) == (
            Decimal("0.10"),
            Decimal("0.30"),
            Decimal("0.10"),
            Decimal("0.29"),
        )
        for v in (b.open, b.high, b.low, b.close, b.volume):
            assert isinstance(v, Decimal)
        assert str(b.close) == "0.29"
        assert b.volume == Decimal("12.5")
        b1 = s.bar(1)
        assert b1.ts == T0 + MIN
        assert b1.low == Decimal("0.29")
        assert b1.volume == Decimal("0.001")
        assert b1.open + b1.low == Decimal("0.59")

    def test_bar_with_small_tick(self) -> None:
        s = BarSeries.from_prices(inst("0.0001"), [1.2345])
        assert s.bar(0).close == Decimal("1.2345")
        assert isinstance(s.bar(0).ts, int)

    def test_bar_negative_index(self) -> None:
        s = BarSeries.from_prices(inst(), [1.0, 2.0, 3.0])
        assert s.bar(-1).close == Decimal(3)

    def test_prices(self) -> None:
        s = BarSeries.from_arrays(
            inst("0.5"), ts_list(2), [1.0, 2.0], [2.0, 3.5], [0.5, 1.5], [1.5, 3.0]
        )
        assert s.prices().dtype == np.float64
        assert s.prices().tolist() == [1.5, 3.0]  # default column: close
        assert s.prices("high").tolist() == [2.0, 3.5]
        assert s.prices("low").tolist() == [0.5, 1.5]
        assert s.prices("open").tolist() == [1.0, 2.0]

    def test_to_pandas(self) -> None:
        s = BarSeries.from_arrays(
            inst("0.01"),
            ts_list(2),
            [100.0, 100.5],
            [101.0, 101.25],
            [99.5, 100.0],
            [100.5, 101.0],
            [3.0, 4.5],
        )
        df = s.to_pandas()
        assert isinstance(df, pd.DataFrame)
        assert list(df.columns) == ["open", "high", "low", "close", "volume"]
        assert df.index.name == "timestamp"
        assert str(df.index.tz) == "UTC"
        assert list(df.index) == [
            pd.Timestamp("2024-01-01T00:00:00Z"),
            pd.Timestamp("2024-01-01T00:01:00Z"),
        ]
        assert df["open"].tolist() == pytest.approx([100.0, 100.5])
        assert df["high"].tolist() == pytest.approx([101.0, 101.25])
        assert df["low"].tolist() == pytest.approx([99.5, 100.0])
        assert df["close"].tolist() == pytest.approx([100.5, 101.0])
        assert df["volume"].tolist() == [3.0, 4.5]

    def test_concat(self) -> None:
        i = inst()
        a = BarSeries.from_prices(i, [1.0, 2.0], start_ns=T0)
        b = BarSeries.from_prices(i, [3.0], start_ns=T0 + 2 * MIN)
        c = BarSeries.from_prices(i, [4.0, 5.0], start_ns=T0 + 3 * MIN)
        joined = BarSeries.concat([a, b, c])
        assert isinstance(joined, BarSeries)
        assert joined.instrument == i
        assert len(joined) == 5
        assert joined.ts.tolist() == ts_list(5)
        assert joined.close.tolist() == [100, 200, 300, 400, 500]
        assert joined.open.tolist() == joined.close.tolist()
        assert joined.volume.tolist() == [1.0] * 5
        assert joined.ts.dtype == np.int64
        assert [joined.bar(k).close for k in range(5)] == [Decimal(k) for k in range(1, 6)]
        # the parts are left alone
        assert len(a) == 2 and len(b) == 1

    def test_concat_single_part(self) -> None:
        a = BarSeries.from_prices(inst(), [1.0, 2.0])
        joined = BarSeries.concat([a])
        assert joined.close.tolist() == a.close.tolist()
        assert joined.ts.tolist() == a.ts.tolist()


# ---------------------------------------------------------------------------------------
# bars_from_table
# ---------------------------------------------------------------------------------------


def table(n: int = 3, **cols) -> pa.Table:
    data = {
        "timestamp": [T0_S + 60 * i for i in range(n)],
        "open": flat(n, 100.0),
        "high": flat(n, 101.0),
        "low": flat(n, 99.0),
        "close": flat(n, 100.5),
        "volume": flat(n, 2.0),
    } | cols
    return pa.table({k: v for k, v in data.items() if v is not None})


class TestBarsFromTable:
    def test_epoch_seconds(self) -> None:
        s = bars_from_table(table(3), inst(), source="t.csv")
        assert s.ts.tolist() == ts_list(3)
        assert s.open.tolist() == [10000] * 3
        assert s.high.tolist() == [10100] * 3
        assert s.low.tolist() == [9900] * 3
        assert s.close.tolist() == [10050] * 3
        assert s.volume.tolist() == [2.0] * 3

    def test_odd_epoch_seconds_are_exact(self) -> None:
        stamps = [T0_S + 1, T0_S + 7, T0_S + 12_345]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == [x * 1_000_000_000 for x in stamps]

    def test_epoch_milliseconds(self) -> None:
        stamps_ms = [T0_S * 1000, T0_S * 1000 + 60_000, T0_S * 1000 + 120_000]
        s = bars_from_table(
            table(3, timestamp=stamps_ms), inst(), source="t.csv", timestamp_unit="ms"
        )
        assert s.ts.tolist() == ts_list(3)

    def test_epoch_milliseconds_are_exact(self) -> None:
        # epoch ms with a non-round millisecond part must convert to exactly ms * 10**6 ns
        stamps_ms = [T0_S * 1000 + 123, T0_S * 1000 + 60_001, T0_S * 1000 + 120_999]
        s = bars_from_table(
            table(3, timestamp=stamps_ms), inst(), source="t.csv", timestamp_unit="ms"
        )
        assert s.ts.tolist() == [x * 1_000_000 for x in stamps_ms]

    def test_epoch_nanoseconds(self) -> None:
        # integer ns timestamps (unit "ns") must be taken as they are
        stamps = [T0 + 1, T0 + 2, T0 + MIN + 3]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv", timestamp_unit="ns")
        assert s.ts.tolist() == stamps

    def test_float_epoch_seconds(self) -> None:
        stamps = [float(T0_S), T0_S + 60.5, T0_S + 120.0]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == [T0, T0 + 60_500_000_000, T0 + 2 * MIN]

    def test_iso_strings_utc(self) -> None:
        stamps = ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == ts_list(3)

    def test_iso_strings_naive_are_utc(self) -> None:
        stamps = ["2024-01-01T00:00:00", "2024-01-01T00:01:00", "2024-01-01 00:02:00"]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == ts_list(3)

    def test_iso_strings_with_offsets_convert_to_utc(self) -> None:
        stamps = [
            "2024-01-01T02:00:00+02:00",  # 00:00Z
            "2023-12-31T19:01:00-05:00",  # 00:01Z
            "2024-01-01T00:02:00Z",
        ]
        s = bars_from_table(table(3, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == ts_list(3)

    def test_iso_strings_with_fraction(self) -> None:
        stamps = ["2024-01-01T00:00:00.250Z", "2024-01-01T00:00:00.500Z"]
        s = bars_from_table(table(2, timestamp=stamps), inst(), source="t.csv")
        assert s.ts.tolist() == [T0 + 250_000_000, T0 + 500_000_000]

    def test_arrow_timestamp_column(self) -> None:
        col = pa.array([T0, T0 + MIN], type=pa.timestamp("ns", tz="UTC"))
        s = bars_from_table(table(2, timestamp=col), inst(), source="t.parquet")
        assert s.ts.tolist() == ts_list(2)
        col_s = pa.array([T0_S, T0_S + 60], type=pa.timestamp("s"))
        s = bars_from_table(table(2, timestamp=col_s), inst(), source="t.parquet")
        assert s.ts.tolist() == ts_list(2)

    def test_custom_timestamp_column(self) -> None:
        t = table(2).rename_columns(["time", "open", "high", "low", "close", "volume"])
        s = bars_from_table(t, inst(), source="t.csv", timestamp_column="time")
        assert s.ts.tolist() == ts_list(2)

    def test_volume_is_optional(self) -> None:
        s = bars_from_table(table(2, volume=None), inst(), source="t.csv")
        assert s.volume.tolist() == [0.0, 0.0]

    def test_extra_columns_are_ignored(self) -> None:
        t = table(2).append_column("note", pa.array(["a", "b"]))
        assert len(bars_from_table(t, inst(), source="t.csv")) == 2

    def test_prices_as_numeric_strings(self) -> None:
        s = bars_from_table(
            table(2, close=["100.25", "100.5"], volume=["1", "2.5"]), inst(), source="t.csv"
        )
        assert s.close.tolist() == [10025, 10050]
        assert s.volume.tolist() == [1.0, 2.5]

    def test_integer_price_columns(self) -> None:
        s = bars_from_table(
            table(2, open=[100, 100], high=[101, 101], low=[99, 99], close=[100, 101]),
            inst("1"),
            source="t.csv",
        )
        assert s.close.tolist() == [100, 101]

    def test_missing_columns_in_one_problem(self) -> None:
        t = pa.table({"timestamp": [T0_S], "open": [1.0], "volume": [1.0]})
        problems = raises_data_error(bars_from_table, t, inst(), source="data/x.csv")
        assert len(problems) == 1
        assert problems[0].where == "data/x.csv"
        msg = problems[0].message
        assert "missing column(s): high, low, close" in msg
        assert "found: timestamp, open, volume" in msg

    def test_missing_timestamp_column(self) -> None:
        problems = raises_data_error(
            bars_from_table, table(2), inst(), source="x.csv", timestamp_column="time"
        )
        assert len(problems) == 1
        assert "missing column(s): time" in problems[0].message

    def test_non_numeric_cell(self) -> None:
        problems = raises_data_error(
            bars_from_table,
            table(4, close=["100.5", "100.5", "abc", "100.5"]),
            inst(),
            source="x.csv",
        )
        assert len(problems) == 1
        assert problems[0].where == "x.csv row 4, column close"  # first_row defaults to 2
        assert problems[0].message == "not a number: 'abc'"

    def test_non_numeric_cell_with_first_row(self) -> None:
        problems = raises_data_error(
            bars_from_table,
            table(3, high=["101", "x", "101"]),
            inst(),
            source="x.parquet",
            first_row=1,
        )
        assert wheres(problems) == ["x.parquet row 2, column high"]

    def test_several_non_numeric_cells(self) -> None:
        problems = raises_data_error(
            bars_from_table,
            table(3, open=["1", "one", "1"], volume=["1", "2", "many"]),
            inst(),
            source="x.csv",
        )
        assert set(wheres(problems)) == {"x.csv row 3, column open", "x.csv row 4, column volume"}

    def test_empty_numeric_cell(self) -> None:
        problems = raises_data_error(
            bars_from_table, table(3, low=[99.0, None, 99.0]), inst(), source="x.csv"
        )
        assert len(problems) == 1
        assert problems[0].where == "x.csv row 3, column low"
        assert problems[0].message == "empty cell"

    def test_empty_volume_cell(self) -> None:
        problems = raises_data_error(
            bars_from_table, table(3, volume=[1.0, 1.0, None]), inst(), source="x.csv"
        )
        assert wheres(problems) == ["x.csv row 4, column volume"]

    def test_empty_text_cell(self) -> None:
        problems = raises_data_error(
            bars_from_table, table(3, close=["100.5", "", "100.5"]), inst(), source="x.csv"
        )
        assert wheres(problems) == ["x.csv row 3, column close"]

    def test_empty_epoch_timestamp_cell(self) -> None:
        problems = raises_data_error(
            bars_from_table,
            table(3, timestamp=pa.array([T0_S, None, T0_S + 120], type=pa.int64())),
            inst(),
            source="x.csv",
        )
        assert len(problems) == 1
        assert problems[0].where == "x.csv row 3, column timestamp"
        assert problems[0].message == "empty cell"

    def test_empty_arrow_timestamp_cell(self) -> None:
        col = pa.array([T0, None, T0 + 2 * MIN], type=pa.timestamp("ns", tz="UTC"))
        problems = raises_data_error(
            bars_from_table, table(3, timestamp=col), inst(), source="x.csv"
        )
        assert problems[0].where == "x.csv row 3, column timestamp"
        assert problems[0].message == "empty cell"

    def test_empty_iso_string_timestamp_cell(self) -> None:
        # an empty cell in a column of ISO strings must be reported at its own row,
        # not turned into a garbage timestamp
        stamps = ["2024-01-01T00:00:00", None, "2024-01-01T00:02:00"]
        problems = raises_data_error(
            bars_from_table, table(3, timestamp=stamps), inst(), source="x.csv"
        )
        assert wheres(problems) == ["x.csv row 3, column timestamp"]

    def test_unparsable_timestamp(self) -> None:
        stamps = ["2024-01-01T00:00:00Z", "yesterday", "2024-01-01T00:02:00Z"]
        problems = raises_data_error(
            bars_from_table, table(3, timestamp=stamps), inst(), source="x.csv"
        )
        assert len(problems) == 1
        assert problems[0].where == "x.csv row 3, column timestamp"
        assert problems[0].message == "not a timestamp: 'yesterday'"

    def test_value_problems_carry_file_rows(self) -> None:
        # problems found by from_arrays use the table's first_row too
        problems = raises_data_error(
            bars_from_table,
            table(3, close=[100.5, -1.0, 100.505]),
            inst(),
            source="x.csv",
        )
        assert set(wheres(problems)) == {"x.csv row 3, column close", "x.csv row 4, column close"}

    def test_non_increasing_timestamps_in_table(self) -> None:
        stamps = [T0_S, T0_S + 60, T0_S + 60, T0_S + 30]
        problems = raises_data_error(
            bars_from_table, table(4, timestamp=stamps), inst(), source="x.csv"
        )
        assert wheres(problems) == [
            "x.csv row 4, column timestamp",
            "x.csv row 5, column timestamp",
        ]


# ---------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------

TICKS = ["0.01", "0.5", "1", "0.0001", "0.25", "0.001"]


@st.composite
def ohlc_ticks(draw):
    n = draw(st.integers(1, 40))
    tick = draw(st.sampled_from(TICKS))
    ticks = st.integers(1, 2_000_000)
    rows = []
    for _ in range(n):
        o = draw(ticks)
        c = draw(ticks)
        h = max(o, c) + draw(st.integers(0, 5_000))
        lo = max(1, min(o, c) - draw(st.integers(0, 5_000)))
        rows.append((o, h, lo, c))
    steps = draw(st.lists(st.integers(1, 10**12), min_size=n, max_size=n))
    start = draw(st.integers(0, 2 * 10**18))
    return tick, rows, steps, start


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ohlc_ticks())
def test_property_valid_ohlc_round_trips_exactly(data) -> None:
    tick, rows, steps, start = data
    instrument = inst(tick)
    d_tick = Decimal(tick)
    ts = [start]
    for step in steps[1:]:
        ts.append(ts[-1] + step)
    cols = list(zip(*rows, strict=True))
    as_float = [[float(Decimal(t) * d_tick) for t in col] for col in cols]
    s = BarSeries.from_arrays(instrument, ts, *as_float, source="prop")
    assert s.ts.tolist() == ts
    for name, col in zip(PRICE_COLUMNS, cols, strict=True):
        assert getattr(s, name).tolist() == list(col)
    for i, (o, h, lo, c) in enumerate(rows):
        b = s.bar(i)
        assert (b.open, b.high, b.low, b.close) == tuple(Decimal(t) * d_tick for t in (o, h, lo, c))
        assert b.ts == ts[i]


@st.composite
def timestamps_with_one_bad_step(draw):
    n = draw(st.integers(2, 40))
    steps = draw(st.lists(st.integers(1, 10**11), min_size=n - 1, max_size=n - 1))
    ts = [draw(st.integers(0, 10**18))]
    for step in steps:
        ts.append(ts[-1] + step)
    bad = draw(st.integers(1, n - 1))
    back = draw(st.integers(0, 10**9))  # 0: duplicate, > 0: a step backwards
    ts[bad] = ts[bad - 1] - back
    first_row = draw(st.integers(0, 1000))
    return ts, bad, first_row


@settings(max_examples=150, deadline=None)
@given(timestamps_with_one_bad_step())
def test_property_one_bad_timestamp_is_named(data) -> None:
    ts, bad, first_row = data
    n = len(ts)
    with pytest.raises(DataError) as info:
        BarSeries.from_arrays(
            inst(), ts, flat(n), flat(n), flat(n), flat(n), source="feed.csv", first_row=first_row
        )
    problems = info.value.problems
    assert [p.where for p in problems] == [f"feed.csv row {bad + first_row}, column timestamp"]
    assert "does not increase" in problems[0].message


@settings(max_examples=100, deadline=None)
@given(
    tick=st.sampled_from(TICKS),
    ticks=st.integers(1, 10**9),
    row=st.integers(0, 20),
)
def test_property_half_tick_off_grid_is_rejected(tick: str, ticks: int, row: int) -> None:
    # any price exactly half a tick off the grid must be reported, never rounded
    n = row + 1
    good = float(Decimal(ticks) * Decimal(tick))
    off = float((Decimal(ticks) + Decimal("0.5")) * Decimal(tick))
    close = [good] * n
    close[row] = off
    hi = [max(good, off)] * n
    lo = [min(good, off)] * n
    with pytest.raises(DataError) as info:
        BarSeries.from_arrays(inst(tick), ts_list(n), [good] * n, hi, lo, close, source="p")
    assert f"p row {row}, column close" in [p.where for p in info.value.problems]
