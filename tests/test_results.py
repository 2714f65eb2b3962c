"""RunResult for people: statistics, the notebook view and the equity/drawdown plot."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from loguru import logger

from engine import Analyzer, Engine, MissingDependency, RunResult, Stats, hookimpl

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PERFORMANCE = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate")


@pytest.fixture(scope="module")
def result() -> RunResult:
    from conftest import BASE_CONFIG

    from engine import PluginSettings

    eng = Engine.from_config(BASE_CONFIG, settings=PluginSettings(builtin_only=True))
    return eng.backtest_sync()


@pytest.fixture
def close_figures() -> Iterator[None]:
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# -- stats ---------------------------------------------------------------------------------


def test_stats_is_a_read_only_mapping_with_names_sources_and_frames(result: RunResult) -> None:
    stats = result.stats
    assert isinstance(stats, Stats)
    assert list(stats) == [*PERFORMANCE, "exposure", "trades"]
    assert stats["trades"] == stats.trades == len(result.trade_records) > 10
    assert stats.max_drawdown == pytest.approx(float(result.curve.drawdown.min()))
    assert {stats.source(name) for name in stats} == {"performance"}
    assert dict(stats) == stats  # compares with a plain dict as a mapping does
    with pytest.raises(TypeError):
        stats["trades"] = 0  # type: ignore[index]
    with pytest.raises(AttributeError, match=r"no statistic 'sharp' \(known: total_return, "):
        _ = stats.sharp
    with pytest.raises(KeyError):
        stats.source("sharp")
    series = stats.to_series()
    assert list(series.index) == list(stats) and series["trades"] == stats["trades"]
    assert "sharpe" in dir(stats)
    assert repr(stats).startswith("Stats(total_return=")


def test_stats_to_dict_and_the_summary_are_json_ready(make_engine: Callable[..., Engine]) -> None:
    config: dict[str, Any] = {
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "bars": 300, "start_price": "100"},
        "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20}],
    }
    short = make_engine(config).backtest_sync()  # five hours: no annualised figures
    assert math.isnan(short.stats.sharpe)
    assert short.stats.to_dict()["sharpe"] is None
    summary = json.loads(json.dumps(short.summary()))
    assert summary["stats"] == short.stats.to_dict()
    assert summary["stats"]["trades"] == len(short.trade_records)


def test_statistics_of_a_plugin_analyzer_name_their_source(
    make_engine: Callable[..., Engine],
) -> None:
    class Turnover:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            def compute(result: Any) -> dict[str, Any]:
                return {"fills": len(result.fill_records)}

            return [Analyzer(name="turnover", compute=compute)]

    eng = make_engine()
    eng.register(Turnover(), "turnover-plugin")
    stats = eng.backtest_sync().stats
    assert stats.source("fills") == "turnover" and stats.source("sharpe") == "performance"
    assert stats.fills > 0


def test_a_statistic_set_twice_warns_naming_both_analyzers(result: RunResult) -> None:
    copy = attrs.evolve(result, stats=dict(result.stats), stat_sources={})
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        copy.add_stats({"sharpe": 1.5, "calmar": 2.0}, analyzer="mine")
        copy.add_stats({"calmar": 3.0}, analyzer="theirs")
    finally:
        logger.remove(sink)
    assert copy.stats.sharpe == 1.5 and copy.stats.calmar == 3.0
    assert copy.stats.source("calmar") == "theirs"
    assert [line.strip() for line in lines] == [
        "statistic 'calmar' of analyzer theirs replaces the one of analyzer mine"
    ]
    assert result.stats.source("sharpe") == "performance"  # the original is untouched


# -- notebook view -------------------------------------------------------------------------


def test_the_notebook_view_has_the_summary_and_the_first_trades(result: RunResult) -> None:
    view = result._repr_html_()
    assert view.startswith("<div class='engine-report'>") and view.endswith("</div>")
    assert "<caption>test: backtest report</caption>" in view
    for label, value in result.report_rows():
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in view
    assert f"first 10 of {len(result.trade_records):,} trades" in view
    first, eleventh = result.trade_records[0], result.trade_records[10]
    assert f"<td>{first.exit_price:,}</td>" in view
    assert view.count("<tr>") == len(result.report_rows()) + 1 + 10  # header row + 10 trades
    assert f"{eleventh.exit_ts}" not in view
    assert "<svg" not in view  # fast: charts come from .plot()


def test_the_notebook_view_escapes_names(make_engine: Callable[..., Engine]) -> None:
    from conftest import BASE_CONFIG

    config = {**BASE_CONFIG, "engine": {**BASE_CONFIG["engine"], "name": "<b>x</b> & y"}}
    html = make_engine(config).backtest_sync()._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y: backtest report" in html and "<b>x</b>" not in html


def test_stats_render_as_a_table(result: RunResult) -> None:
    table = result.stats._repr_html_()
    assert table.startswith("<table>") and "<tr><th>max drawdown</th>" in table


# -- plot ----------------------------------------------------------------------------------


def test_plot_draws_equity_and_drawdown_keeping_the_extremes(
    result: RunResult, close_figures: None, tmp_path: Path
) -> None:
    fig = result.plot(max_points=200)
    top, bottom = fig.axes
    assert top.get_title() == "test: equity" and top.get_ylabel() == "equity"
    assert bottom.get_title().startswith("drawdown (max -") and bottom.get_ylabel() == "drawdown %"
    equity_line = top.get_lines()[0]
    y = np.asarray(equity_line.get_ydata(), dtype=float)
    assert len(y) <= 2 * 200 + 2 < result.bars  # thinned...
    assert y.max() == result.curve.equity.max() and y.min() == result.curve.equity.min()  # ...not
    dd = np.asarray(bottom.get_lines()[0].get_ydata(), dtype=float)
    assert dd.min() == pytest.approx(result.curve.drawdown.min() * 100)
    full = result.plot(max_points=None).axes[0].get_lines()[0]
    assert len(full.get_ydata()) == result.bars
    path = tmp_path / "equity.png"
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_without_matplotlib_plot_says_what_to_install(
    result: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependency, match=r"pip install 'engine\[plot\]'") as info:
        result.plot()
    assert info.value.exit_code == 2
    with pytest.raises(MissingDependency):
        result.to_html()
    assert "<h2>Trades</h2>" in result.to_html(charts=False)  # tables need nothing
