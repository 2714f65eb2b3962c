"""engine.report: the self-contained HTML page and the thinning of long curves."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine import Engine, RunResult
from engine.report import decimate, document


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    tags.close()
    return tags


@pytest.fixture(scope="module")
def result() -> RunResult:
    from conftest import BASE_CONFIG

    from engine import PluginSettings

    config = {**BASE_CONFIG, "feed": {**BASE_CONFIG["feed"], "bars": 20_000}}
    return Engine.from_config(config, settings=PluginSettings(builtin_only=True)).backtest_sync()


def test_the_page_is_self_contained(result: RunResult) -> None:
    page = document(result)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert not re.search(r"https?:|url\((?!#)|@import", page)  # no address of anything
    tags = parse(page)
    names = {tag for tag, _ in tags.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed"}
    for tag, attrs in tags.tags:
        for key in ("src", "href", "xlink:href"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), (tag, key, value)  # in-page only
    assert len(page) < 1_500_000  # 20,000 bars, thinned: the page stays small


def test_the_page_has_the_summary_charts_and_trades(result: RunResult) -> None:
    page = document(result, trades=5)
    text = " ".join(parse(page).text)
    assert "test: backtest report" in text
    assert "2024-01-01 00:00:00 to 2024-01-14 21:19:00 UTC; 20,000 bars" in text
    for label, value in result.report_rows():
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page
    assert f"first 5 of {len(result.trade_records):,} trades" in page
    assert "test: equity" in page and "drawdown (max -" in page  # chart titles (as text)
    # the two axes' tick labels are drawn as glyph paths, so check the chart's
    # structure: two axes, the equity line and the drawdown area
    assert page.count('<g id="axes_') == 2
    assert '<g id="line2d_' in page and '<g id="FillBetweenPolyCollection_' in page


def test_the_page_without_charts_or_trades(make_engine: Callable[..., Engine]) -> None:
    config: dict[str, Any] = {
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "bars": 10, "start_price": "100"},
        "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20}],
    }
    quiet = make_engine(config).backtest_sync()
    assert not quiet.trade_records
    page = quiet.to_html(charts=False)
    assert "<svg" not in page and "<p>No closed trades.</p>" in page
    assert "<svg" in quiet.to_html()  # a chart of ten bars


def test_write_html_creates_folders(result: RunResult, tmp_path: Any) -> None:
    path = result.write_html(tmp_path / "a" / "b" / "report.html", charts=False)
    assert path.read_text(encoding="utf-8") == result.to_html(charts=False)


def test_decimate_example() -> None:
    values = np.array([0.0, 5, 1, 3, 2, 9, 4, 8, 7, 6])
    assert decimate(4, values).tolist() == [0, 1, 5, 6, 9]
    assert decimate(100, values).tolist() == list(range(10))  # short: every point


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 3000), elements=st.floats(-1e6, 1e6)),
    st.integers(2, 400),
)
def test_decimate_keeps_ends_and_extremes_of_every_bucket(
    values: np.ndarray[Any, np.dtype[np.float64]], max_points: int
) -> None:
    other = values[::-1].copy()
    idx = decimate(max_points, values, other)
    assert idx[0] == 0 and idx[-1] == len(values) - 1
    assert np.all(np.diff(idx) > 0)  # sorted, unique
    buckets = max_points // 2
    assert len(idx) == len(values) if len(values) <= 2 * buckets else len(idx) <= 4 * buckets + 2
    for col in (values, other):
        assert col[idx].max() == col.max() and col[idx].min() == col.min()


@pytest.mark.parametrize("name", ["engine.report", "engine.results"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    outcome = doctest.testmod(importlib.import_module(name))
    assert outcome.attempted > 0 and outcome.failed == 0
