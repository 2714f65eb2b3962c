"""The Engine API as a notebook or script uses it; one code path for backtest and paper."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from engine import Engine, Feed, PluginError, RunResult, Strategy, hookimpl


async def test_backtest_can_be_awaited_inside_a_running_loop(
    make_engine: Callable[..., Engine],
) -> None:
    result = await make_engine().backtest()
    assert isinstance(result, RunResult)
    assert result.bars == 2000 and result.trade_records


async def test_the_sync_helper_works_under_a_running_loop(
    make_engine: Callable[..., Engine],
) -> None:
    # a Jupyter cell calling the sync helper: no "event loop is already running"
    result = make_engine().backtest_sync()
    assert result.bars == 2000


def test_results_for_people(make_engine: Callable[..., Engine], tmp_path: Any) -> None:
    result = make_engine().backtest_sync()
    trades, fills, equity = result.trades, result.fills, result.equity
    assert len(trades) == len(result.trade_records) and list(trades.columns)[:3] == [
        "instrument",
        "strategy",
        "direction",
    ]
    assert len(fills) == len(result.fill_records)
    assert len(equity) == 2000 and {"equity", "drawdown", "invested"} <= set(equity.columns)
    assert str(equity.index.tz) == "UTC"
    html = result._repr_html_()
    assert "<table>" in html and "sharpe" in html and "final equity" in html
    for key in (
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "exposure",
        "trades",
    ):
        assert key in result.stats
    # the curve's last point agrees with the exact portfolio figure
    assert equity["equity"].iloc[-1] == pytest.approx(float(result.final_equity), rel=1e-12)
    paths = result.write(tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == [
        "equity.csv",
        "fills.csv",
        "summary.json",
        "trades.csv",
    ]


def test_runs_are_deterministic(make_engine: Callable[..., Engine]) -> None:
    a = make_engine().backtest_sync()
    b = make_engine().backtest_sync()
    assert a.fill_records == b.fill_records and a.final_equity == b.final_equity


def test_engines_are_independent(make_engine: Callable[..., Engine]) -> None:
    class Extra:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="extra", factory=lambda _: None)]

    one, two = make_engine(), make_engine()
    one.register(Extra(), "extra")
    assert "extra" in one.plugins.records("engine_strategies")
    assert "extra" not in two.plugins.records("engine_strategies")


class LoadOnly:
    """The synthetic feed without stream(): a paper run must replay load()."""

    def __init__(self, config: Any) -> None:
        from engine.builtins.feed_synthetic import SyntheticConfig, SyntheticFeed

        self.feed = SyntheticFeed(SyntheticConfig(bars=2000, start_price=Decimal(100)))

    def load(self, instrument: Any, ctx: Any) -> Any:
        return self.feed.load(instrument, ctx)


async def test_paper_replay_gives_exactly_the_backtest_fills(
    make_engine: Callable[..., Engine],
) -> None:
    class P:
        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="load-only", factory=LoadOnly)]

    def build() -> Engine:
        eng = make_engine()
        eng._raw.data["feed"] = {"type": "load-only"}  # type: ignore[index]
        eng.register(P(), "load-only")
        return eng

    backtest = await build().backtest()
    paper = await build().run(speed=1e9)  # bars as fast as the loop allows
    assert paper.mode == "paper" and paper.bars == backtest.bars == 2000
    assert len(backtest.fill_records) > 50
    assert paper.fill_records == backtest.fill_records
    assert paper.final_equity == backtest.final_equity
    assert paper.stats["trades"] == backtest.stats["trades"]


async def test_paper_run_on_the_synthetic_stream_stops_on_request(
    make_engine: Callable[..., Engine],
) -> None:
    config = {
        "instruments": [{"symbol": "ETH-USD", "tick_size": "0.01"}],
        "feed": {"type": "synthetic", "interval": "1s", "start_price": "2000", "volatility": 0.01},
        "strategies": [{"type": "sma_crossover", "fast": 2, "slow": 3}],
    }
    stop = asyncio.Event()
    eng = make_engine(config)
    task = asyncio.create_task(eng.run(speed=200, stop=stop))
    await asyncio.sleep(1.0)
    stop.set()
    result = await asyncio.wait_for(task, 5)
    assert result.mode == "paper" and 50 <= result.bars <= 400
    assert result.fill_records  # it traded
    assert result.curve.ts[0] > 1_700_000_000 * 10**9  # stamped with the wall clock


async def test_max_bars_and_duration(make_engine: Callable[..., Engine]) -> None:
    eng = make_engine()
    result = await eng.run(speed=1e9, max_bars=150)
    assert result.bars == 150
    result = await make_engine().run(speed=1.0, duration=0.3)
    assert result.bars <= 2


class Boom:
    """A feed whose load fails."""

    def load(self, instrument: Any, ctx: Any) -> Any:
        raise OSError("disk gone")


def with_feed(make_engine: Callable[..., Engine], feed: Any) -> Engine:
    """An engine whose [feed] is ``feed`` (registered as type 'custom')."""

    class P:
        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="custom", factory=lambda _: feed)]

    eng = make_engine()
    eng._raw.data["feed"] = {"type": "custom"}  # type: ignore[index]
    eng.register(P(), "custom")
    return eng


FEED_ERROR = "config.feed: feed 'custom' failed to load BTC-USD: OSError: disk gone"


async def test_a_failing_feed_stops_the_paper_run_with_its_error(
    make_engine: Callable[..., Engine],
) -> None:
    with pytest.raises(PluginError, match=FEED_ERROR):
        await with_feed(make_engine, Boom()).run(speed=1e9)


def test_a_strategy_factory_error_names_the_component(make_engine: Callable[..., Engine]) -> None:
    class P:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            def bad(_: Any) -> Any:
                raise ValueError("cannot build")

            return [Strategy(name="bad", factory=bad)]

    eng = make_engine()
    eng._raw.data["strategies"] = [{"type": "bad"}]  # type: ignore[index]
    eng.register(P(), "p")
    with pytest.raises(
        PluginError,
        match=r"config.strategies\[0\]: building 'bad' failed: ValueError: cannot build",
    ):
        eng.backtest_sync()


def test_startup_and_shutdown_hooks_wrap_a_run(make_engine: Callable[..., Engine]) -> None:
    calls: list[str] = []

    class P:
        @hookimpl
        async def engine_startup(self, engine: Engine) -> None:
            calls.append("startup")

        @hookimpl
        def engine_shutdown(self, engine: Engine) -> None:
            calls.append("shutdown")

    eng = make_engine()
    eng.register(P(), "p")
    eng.backtest_sync()
    assert calls == ["startup", "shutdown"]


def test_a_feed_that_raises_is_named_in_the_error(make_engine: Callable[..., Engine]) -> None:
    with pytest.raises(PluginError, match=FEED_ERROR):
        with_feed(make_engine, Boom()).backtest_sync()


def test_stop_undoes_only_what_started(make_engine: Callable[..., Engine]) -> None:
    from engine import Coordinator

    calls: list[str] = []

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        async def start(self, engine: Engine) -> None:
            if self.name == "b":
                raise RuntimeError("b cannot start")
            calls.append(f"start {self.name}")

        async def stop(self) -> None:
            calls.append(f"stop {self.name}")

    class Failing:
        def __init__(self, _: Any) -> None:
            pass

        def on_bar(self, bar: Any) -> None:
            pass

        def on_stop(self) -> None:
            raise RuntimeError("on_stop fails")

    class P:
        @hookimpl
        def engine_coordinators(self) -> list[Coordinator]:
            return [
                Coordinator(name="a", factory=lambda _: Service("a"), priority=1),
                Coordinator(name="b", factory=lambda _: Service("b"), priority=2),
                Coordinator(name="c", factory=lambda _: Service("c"), priority=3),
            ]

        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="failing", factory=Failing)]

        @hookimpl
        def engine_shutdown(self, engine: Engine) -> None:
            calls.append("shutdown")

    eng = make_engine()
    eng._raw.data["strategies"] = [{"type": "failing"}]  # type: ignore[index]
    eng.register(P(), "p")
    with pytest.raises(RuntimeError, match="b cannot start"):
        eng.backtest_sync()
    assert calls == ["start a", "stop a", "shutdown"]


def test_a_finished_run_leaves_nothing_alive(make_engine: Callable[..., Engine]) -> None:
    """Sweeps run hundreds of backtests in one process: a finished run's kernel (and
    with it its orders, fills and bars) must be freed once its result is dropped."""
    import gc

    from engine.kernel.core import Kernel

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Kernel))

    before = alive()
    for _ in range(3):
        result = make_engine().backtest_sync()
        assert result.fill_records
        del result
    assert alive() == before
