"""Streamed backtests (``[backtest] stream = true``) give the in-memory run's results:
the same fills, trades, denials, trading-state changes, metrics and final figures,
and (with ``equity_interval = "bar"``) the same equity curve and statistics, for
several chunk sizes, seeds and instrument set-ups. Plus: the sampled equity curve,
``prepare_chunk``, progress, the journal, and the errors a user can meet."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import (
    BarSeries,
    BarView,
    ConfigError,
    Engine,
    Instrument,
    PluginSettings,
    RunResult,
    Strategy,
    StrategyContext,
    hookimpl,
)
from engine.builtins.feed_synthetic import RandomWalk, SyntheticConfig

T0 = 1_704_067_200_000_000_000
MIN = 60_000_000_000


def write_bars(
    path: Path,
    symbol: str,
    n: int,
    seed: int,
    *,
    start: int = 0,
    step: int = 1,
    row_group: int = 700,
    volatility: float = 0.003,
) -> None:
    """``n`` bars of a seeded random walk, one every ``step`` minutes from minute
    ``start``, written as Parquet in row groups of ``row_group`` rows."""
    inst = Instrument(symbol, Decimal("0.01"))
    s = RandomWalk(SyntheticConfig(volatility=volatility), inst, seed, 0).next(n)
    ts = T0 + (start + step * np.arange(n, dtype=np.int64)) * MIN
    table = pa.table(
        {
            "timestamp": ts,
            "open": s.prices("open"),
            "high": s.prices("high"),
            "low": s.prices("low"),
            "close": s.prices("close"),
            "volume": s.volume,
        }
    )
    pq.write_table(table, path / f"{symbol}.parquet", row_group_size=row_group)


def config(folder: Path, symbols: list[str], **extra: Any) -> dict[str, Any]:
    """SMA(5/20) on each symbol, a binding volume filter, a drawdown runtime guard
    and metrics: checks that look back, timed work and trading-state changes."""
    cfg: dict[str, Any] = {
        "engine": {"name": "streamed", "initial_cash": "1000", "seed": 1},
        "instruments": [{"symbol": s, "tick_size": "0.01"} for s in symbols],
        "feed": {
            "type": "parquet",
            "path": str(folder / "{symbol}.parquet"),
            "timestamp_unit": "ns",
        },
        "broker": {"type": "simulated", "fee_bps": "1"},
        "strategies": [
            {"type": "sma_crossover", "fast": 5, "slow": 20, "instrument": s, "id": f"sma-{s}"}
            for s in symbols
        ],
        "filters": [{"type": "min_volume", "window": 30, "min_volume": 950}],
        "runtime_guards": [
            {"type": "drawdown", "reduce_at": 0.01, "halt_at": 0.03, "cadence": "7m"}
        ],
        "metrics": {"interval": "13m"},
    }
    cfg.update(copy.deepcopy(extra))
    return cfg


def run(cfg: dict[str, Any], **backtest: Any) -> RunResult:
    cfg = copy.deepcopy(cfg)
    if backtest:
        cfg["backtest"] = backtest
    return Engine.from_config(cfg, settings=PluginSettings(builtin_only=True)).backtest_sync()


def comparable(result: RunResult, *, stats: bool = True) -> dict[str, Any]:
    """Everything a run reports that does not depend on wall time (and, unless
    ``stats``, on the resolution of the equity curve)."""
    skip = {"elapsed_seconds"} | (set() if stats else {"stats"})
    return {
        "summary": {k: v for k, v in result.summary().items() if k not in skip},
        "fills": [
            (f.ts, f.client_id, f.side, f.price, f.quantity, f.fee, f.fill_id)
            for f in result.fill_records
        ],
        "trades": result.trade_records,
        "denials": result.denials,
        "states": result.state_changes,
        "alerts": [(a.ts, a.title, a.message) for a in result.alerts],
        "metrics": sorted(
            (m.name, str(m.labels), m.value)
            for m in result.metrics
            if m.name.startswith("engine_") and not m.name.startswith("engine_process")
        ),
        "positions": result.portfolio.positions,
        "final_equity": result.final_equity,
    }


def same_curve(a: RunResult, b: RunResult) -> bool:
    return (
        np.array_equal(a.curve.ts, b.curve.ts)
        and np.array_equal(a.curve.equity, b.curve.equity)
        and np.array_equal(a.curve.invested, b.curve.invested)
    )


@pytest.mark.parametrize(
    ("seed", "chunk_bars"),
    [(1, 1), (1, 333), (2, 333), (1, 700), (2, 5_000), (1, 100_000), (2, 100_000)],
)
def test_one_instrument_streamed_equals_in_memory(
    tmp_path: Path, seed: int, chunk_bars: int
) -> None:
    write_bars(tmp_path, "BTC-USD", 4_000, seed)
    cfg = config(tmp_path, ["BTC-USD"])
    memory = run(cfg)
    streamed = run(cfg, stream=True, chunk_bars=chunk_bars, history_bars=31, equity_interval="bar")
    assert streamed.bars == memory.bars == 4_000
    assert len(memory.fill_records) > 50 and memory.denials and memory.state_changes
    assert comparable(streamed) == comparable(memory)
    assert same_curve(streamed, memory)
    assert dict(streamed.stats) == dict(memory.stats)
    assert streamed.series == {}  # a streamed run keeps no series


@pytest.mark.parametrize("chunk_bars", [1, 250, 1_000, 50_000])
def test_several_instruments_streamed_equal_in_memory(tmp_path: Path, chunk_bars: int) -> None:
    # different lengths, starts and spacings: bars of the same minute (ties), an
    # instrument that starts later and one that ends earlier
    write_bars(tmp_path, "AAA", 3_000, 1)
    write_bars(tmp_path, "BBB", 1_500, 2, start=500, step=2, row_group=333)
    write_bars(tmp_path, "CCC", 2_000, 3, start=100, row_group=2_000)
    cfg = config(tmp_path, ["AAA", "BBB", "CCC"])
    memory = run(cfg)
    streamed = run(cfg, stream=True, chunk_bars=chunk_bars, history_bars=31, equity_interval="bar")
    assert streamed.bars == memory.bars == 6_500
    assert len({f.instrument for f in memory.fill_records}) == 3
    assert comparable(streamed) == comparable(memory)
    assert same_curve(streamed, memory)
    assert dict(streamed.stats) == dict(memory.stats)


def test_the_sampled_equity_curve_keeps_the_last_bar_of_each_interval(tmp_path: Path) -> None:
    write_bars(tmp_path, "AAA", 3_000, 4)
    write_bars(tmp_path, "BBB", 1_000, 5, start=7, step=3)
    cfg = config(tmp_path, ["AAA", "BBB"])
    memory = run(cfg)
    streamed = run(cfg, stream=True, chunk_bars=256, history_bars=31, equity_interval="1h")
    assert comparable(streamed, stats=False) == comparable(memory, stats=False)
    hour = 3_600_000_000_000
    bucket = memory.curve.ts // hour
    last = np.flatnonzero(np.append(bucket[1:] != bucket[:-1], True))
    assert np.array_equal(streamed.curve.ts, memory.curve.ts[last])
    assert np.array_equal(streamed.curve.equity, memory.curve.equity[last])
    assert np.array_equal(streamed.curve.invested, memory.curve.invested[last])
    assert streamed.curve.ts[-1] == memory.curve.ts[-1]
    assert len(streamed.curve.ts) == len(np.unique(bucket)) < len(memory.curve.ts) / 50


class Momentum:
    """Buys after ``up`` consecutive higher closes, sells after as many lower ones;
    the streaks are computed up front, over the whole series (``prepare``) or chunk
    by chunk (``prepare_chunk``, carrying the last close and the streak across)."""

    def __init__(self, up: int, chunks: list[tuple[str, int, int]]) -> None:
        self.up = up
        self.chunks = chunks
        self.first = 0
        self.streak: list[int] = []
        self.last_close: int | None = None
        self.run_length = 0
        self.ctx: StrategyContext | None = None

    def on_start(self, ctx: StrategyContext) -> None:
        self.ctx = ctx

    def _streaks(self, closes: list[int]) -> list[int]:
        out = []
        for c in closes:
            if self.last_close is not None and c != self.last_close:
                up = c > self.last_close
                same = (self.run_length > 0) == up
                self.run_length = (
                    (self.run_length + (1 if up else -1)) if same else (1 if up else -1)
                )
            self.last_close = c
            out.append(self.run_length)
        return out

    def prepare(self, series: BarSeries) -> None:
        self.first = 0
        self.streak = self._streaks(series.close.tolist())

    def prepare_chunk(self, series: BarSeries, first: int) -> None:
        self.chunks.append((series.instrument.symbol, first, len(series)))
        self.first = first
        self.streak = self._streaks(series.close.tolist())

    def on_bar(self, bar: BarView) -> None:
        assert self.ctx is not None
        streak = self.streak[bar.index - self.first]
        held = self.ctx.position()
        if streak == self.up and not held and not self.ctx.open_order_count():
            self.ctx.buy(1)
        elif streak == -self.up and held > 0:
            self.ctx.sell(held)


def momentum_engine(cfg: dict[str, Any], chunks: list[tuple[str, int, int]]) -> Engine:
    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="momentum", factory=lambda _: Momentum(3, chunks))]

    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "momentum")
    return eng


def test_prepare_chunk_is_given_each_chunk_in_order(tmp_path: Path) -> None:
    write_bars(tmp_path, "AAA", 2_000, 6)
    write_bars(tmp_path, "BBB", 900, 7, start=300, step=2)
    cfg = config(tmp_path, ["AAA", "BBB"])
    cfg["strategies"] = [
        {"type": "momentum", "instrument": "AAA", "id": "m-a"},
        {"type": "momentum", "instrument": "BBB", "id": "m-b"},
    ]
    memory = momentum_engine(cfg, []).backtest_sync()
    chunks: list[tuple[str, int, int]] = []
    streamed_cfg = copy.deepcopy(cfg) | {
        "backtest": {
            "stream": True,
            "chunk_bars": 300,
            "history_bars": 31,
            "equity_interval": "bar",
        }
    }
    streamed = momentum_engine(streamed_cfg, chunks).backtest_sync()
    assert len(memory.fill_records) > 20
    assert comparable(streamed) == comparable(memory)
    assert same_curve(streamed, memory)
    # each instrument's chunks cover its bars once, in order, none longer than asked
    for symbol, bars in (("AAA", 2_000), ("BBB", 900)):
        mine = [(first, n) for sym, first, n in chunks if sym == symbol]
        assert [first for first, _ in mine] == [
            sum(n for _, n in mine[:k]) for k in range(len(mine))
        ]
        assert sum(n for _, n in mine) == bars
        assert all(0 < n <= 300 for _, n in mine)


def test_progress_counts_up_to_the_feeds_total(tmp_path: Path) -> None:
    write_bars(tmp_path, "BTC-USD", 5_000, 8)
    cfg = config(tmp_path, ["BTC-USD"]) | {"backtest": {"stream": True, "chunk_bars": 1_000}}
    seen: list[tuple[str, int, int]] = []
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.backtest_sync(lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5_000, 5_000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(t == 5_000 for _, t in seen)


def test_a_streamed_run_journals_what_the_in_memory_run_does(tmp_path: Path) -> None:
    from engine import SqliteJournal, SqliteJournalConfig

    write_bars(tmp_path, "BTC-USD", 2_000, 9)
    counts = []
    for name, extra in (("memory", {}), ("streamed", {"stream": True, "chunk_bars": 128})):
        path = tmp_path / f"{name}.journal"
        cfg = config(tmp_path, ["BTC-USD"], journal={"type": "sqlite", "path": str(path)})
        run(cfg, **extra)
        store = SqliteJournal(SqliteJournalConfig(path=str(path)))
        counts.append([(e.kind, e.data) for e in store.entries() if e.kind != "config"])
        store.close()
    assert counts[0] and counts[0] == counts[1]


def test_a_look_back_longer_than_the_history_kept_stops_the_run(tmp_path: Path) -> None:
    write_bars(tmp_path, "BTC-USD", 2_000, 10)
    cfg = config(tmp_path, ["BTC-USD"])
    with pytest.raises(ConfigError, match=r"config\.backtest\.history_bars: .*last 30 bars"):
        run(cfg, stream=True, chunk_bars=50, history_bars=10)


def test_a_feed_that_cannot_stream_is_a_config_error(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    base_config["backtest"] = {"stream": True}
    with pytest.raises(ConfigError, match=r"config\.backtest\.stream: feed 'synthetic' cannot"):
        make_engine(base_config).backtest_sync()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("chunk_bars", 0, "must be > 0"),
        ("history_bars", -1, "must be > 0"),
        ("equity_interval", "hourly", 'expected "bar" or an interval'),
    ],
)
def test_bad_settings_name_their_key(
    make_engine: Callable[..., Engine],
    base_config: dict[str, Any],
    key: str,
    value: Any,
    message: str,
) -> None:
    base_config["backtest"] = {"stream": True, key: value}
    with pytest.raises(ConfigError, match=rf"config\.backtest\.{key}: {message}"):
        make_engine(base_config).check()


def test_given_data_runs_in_memory_even_when_streaming_is_on(
    tmp_path: Path,
) -> None:
    write_bars(tmp_path, "BTC-USD", 1_000, 11)
    cfg = config(tmp_path, ["BTC-USD"]) | {"backtest": {"stream": True}}
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    data = Engine.from_config(config(tmp_path, ["BTC-USD"])).backtest_sync().series
    result = eng.backtest_sync(data=data)
    assert result.series and result.bars == 1_000
