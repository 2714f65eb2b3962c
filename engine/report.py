"""Reports of a run for people: HTML for notebooks, a self-contained HTML page, and
equity and drawdown charts.

Charts are drawn with matplotlib, an optional dependency (``pip install
'engine[plot]'``) imported only when a chart is drawn; without it the HTML
tables still work and a chart raises :class:`~engine.errors.MissingDependency`.
The HTML page embeds its charts as inline SVG and its style inline: it loads
nothing from anywhere, so it can be mailed or archived as one file.

:class:`~engine.results.RunResult` is the entry point (``_repr_html_``,
``to_html``, ``write_html``, ``plot``); the functions here are its machinery.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.errors import MissingDependency

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from engine.results import RunResult

__all__ = [
    "decimate",
    "document",
    "draw",
    "fragment",
    "pyplot",
    "require_matplotlib",
    "svg_chart",
    "table",
]

#: install hint of the optional plotting dependency
PLOT_EXTRA = "pip install 'engine[plot]'"

_STYLE = """
.engine-report { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif;
  font-size: 14px; color: #1f2328; }
.engine-report h1 { font-size: 1.5em; margin: 0.2em 0; }
.engine-report h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; }
.engine-report .meta { color: #59636e; margin: 0 0 1em; }
.engine-report table { border-collapse: collapse; margin: 0.3em 0 0.8em; }
.engine-report caption { text-align: left; font-weight: 600; padding: 0.2em 0; }
.engine-report th, .engine-report td { padding: 0.2em 0.8em; border-bottom: 1px solid #d1d9e0; }
.engine-report th { text-align: left; font-weight: 600; }
.engine-report td { text-align: right; font-variant-numeric: tabular-nums; }
.engine-report td.text { text-align: left; }
.engine-report .neg { color: #cf222e; }
.engine-report .pos { color: #1a7f37; }
.engine-report .chart svg { max-width: 100%; height: auto; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def require_matplotlib() -> None:
    """Raise :class:`MissingDependency` now, before a long run, if charts cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(
            f"charts need matplotlib, which is not installed: {PLOT_EXTRA}"
        ) from exc


def pyplot() -> Any:
    """``matplotlib.pyplot``, or :class:`MissingDependency` saying what to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency(
            f"charts need matplotlib, which is not installed: {PLOT_EXTRA}"
        ) from exc
    return plt


def _figure(figsize: tuple[float, float]) -> Figure:
    """A matplotlib Figure outside pyplot (no global state, no GUI backend)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency(
            f"charts need matplotlib, which is not installed: {PLOT_EXTRA}"
        ) from exc
    return Figure(figsize=figsize, layout="constrained")


# -- tables -----------------------------------------------------------------------------


def table(rows: Iterable[tuple[str, str]], *, caption: str | None = None) -> str:
    """A two-column HTML table of ``(label, value)`` rows (values escaped)."""
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}{body}</table>"


def _utc(ts: int) -> str:
    return str(np.datetime64(int(ts), "ns").astype("datetime64[s]")).replace("T", " ")


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def _trades_table(result: RunResult, limit: int) -> str:
    records = result.trade_records
    if not records:
        return "<p>No closed trades.</p>"
    shown = records[:limit]
    head = (
        "instrument",
        "strategy",
        "direction",
        "quantity",
        "entry (UTC)",
        "entry price",
        "exit (UTC)",
        "exit price",
        "fees",
        "pnl",
    )
    cells = "".join(f"<th>{_esc(h)}</th>" for h in head)
    rows = []
    for t in shown:
        sign = "neg" if t.pnl < 0 else "pos" if t.pnl > 0 else ""
        text = [t.instrument, t.strategy, t.direction]
        numbers = [
            f"{t.quantity:,}",
            _utc(t.entry_ts),
            f"{t.entry_price:,}",
            _utc(t.exit_ts),
            f"{t.exit_price:,}",
            _money(t.fees),
        ]
        row = "".join(f"<td class='text'>{_esc(v)}</td>" for v in text)
        row += "".join(f"<td>{_esc(v)}</td>" for v in numbers)
        row += f"<td class='{sign}'>{_esc(_money(t.pnl))}</td>"
        rows.append(f"<tr>{row}</tr>")
    caption = f"first {len(shown):,} of {len(records):,} trades"
    return f"<table><caption>{caption}</caption><tr>{cells}</tr>{''.join(rows)}</table>"


def _period(result: RunResult) -> str:
    ts = result.curve.ts
    if not len(ts):
        return "no bars"
    return f"{_utc(int(ts[0]))} to {_utc(int(ts[-1]))} UTC"


def fragment(result: RunResult, *, trades: int = 10) -> str:
    """The notebook view of a run: summary table and the first ``trades`` trades."""
    title = f"{result.name}: {result.mode} report"
    return (
        f"<div class='engine-report'><style>{_STYLE}</style>"
        f"{table(result.report_rows(), caption=title)}"
        f"{_trades_table(result, trades)}</div>"
    )


def document(result: RunResult, *, trades: int = 20, charts: bool = True) -> str:
    """A self-contained HTML page: summary, equity and drawdown charts, first trades."""
    from engine import __version__

    title = f"{result.name}: {result.mode} report"
    chart = (
        f"<h2>Equity and drawdown</h2><div class='chart'>{svg_chart(result)}</div>"
        if charts
        else ""
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        "<body class='engine-report'>\n"
        f"<h1>{_esc(title)}</h1>\n"
        f"<p class='meta'>{_esc(_period(result))}; {result.bars:,} bars;"
        f" engine {_esc(__version__)}</p>\n"
        f"<h2>Summary</h2>\n{table(result.report_rows())}\n"
        f"{chart}\n"
        f"<h2>Trades</h2>\n{_trades_table(result, trades)}\n"
        "</body>\n</html>\n"
    )


# -- charts -----------------------------------------------------------------------------


def decimate(max_points: int, *columns: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Indices that keep the shape of long series: the first and last point and,
    in each of ``max_points // 2`` equal buckets, the lowest and highest point of
    every column. Short series keep every index.

    >>> decimate(4, np.array([0.0, 5, 1, 3, 2, 9, 4, 8, 7, 6])).tolist()
    [0, 1, 5, 6, 9]
    """
    size = len(columns[0]) if columns else 0
    buckets = max(1, max_points // 2)
    if size <= 2 * buckets:
        return np.arange(size)
    width = -(-size // buckets)
    rows = -(-size // width)
    pad = rows * width - size
    offsets = np.arange(rows) * width
    keep = [np.array([0, size - 1])]
    for col in columns:
        values = np.asarray(col, dtype=np.float64)
        high = np.concatenate([values, np.full(pad, -np.inf)]).reshape(rows, width)
        low = np.concatenate([values, np.full(pad, np.inf)]).reshape(rows, width)
        keep.append(offsets + high.argmax(axis=1))
        keep.append(offsets + low.argmin(axis=1))
    return np.unique(np.concatenate(keep))


def draw(fig: Figure, result: RunResult, *, max_points: int | None = 4000) -> None:
    """Draw equity (top) and drawdown in percent (bottom) on ``fig``, sharing a UTC
    time axis; ``max_points`` thins long curves (see :func:`decimate`)."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import ScalarFormatter

    curve = result.curve
    equity, drawdown = curve.equity, curve.drawdown
    idx: Sequence[int] | npt.NDArray[np.intp] = (
        np.arange(len(equity)) if max_points is None else decimate(max_points, equity, drawdown)
    )
    when = curve.ts[idx].astype("datetime64[ns]")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(when, equity[idx], color="tab:blue", linewidth=1.0, label="equity")
    top.axhline(
        float(result.portfolio.initial_cash),
        color="grey",
        linestyle=":",
        linewidth=1.0,
        label="initial cash",
    )
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    top.yaxis.set_major_formatter(plain)
    top.set_title(f"{result.name}: equity")
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    top.legend(loc="best", frameon=False)
    dd = drawdown[idx] * 100.0
    bottom.fill_between(when, dd, 0.0, color="tab:red", alpha=0.35, linewidth=0)
    bottom.plot(when, dd, color="tab:red", linewidth=0.8)
    worst = float(drawdown.min()) * 100.0 if len(drawdown) else 0.0
    bottom.set_title(f"drawdown (max {worst:.2f}%)")
    bottom.set_ylabel("drawdown %")
    bottom.set_xlabel("UTC")
    bottom.grid(alpha=0.3)
    if len(when):
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        concise = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(concise)
    else:
        top.text(0.5, 0.5, "no bars", ha="center", va="center", transform=top.transAxes)


_SVG_START = re.compile(r"<svg\b")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_XMLNS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def svg_chart(
    result: RunResult, *, figsize: tuple[float, float] = (10, 6), max_points: int = 3000
) -> str:
    """The equity and drawdown chart as an inline ``<svg>`` element for an HTML page:
    no XML prologue, no metadata, no namespace URLs (HTML supplies the SVG
    namespace), ids salted deterministically."""
    fig = _figure(figsize)  # MissingDependency without matplotlib
    import matplotlib

    draw(fig, result, max_points=max_points)
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "engine-report", "svg.fonttype": "path"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    match = _SVG_START.search(text)
    if match is None:  # pragma: no cover - matplotlib always writes one
        raise RuntimeError("matplotlib wrote no <svg> element")
    text = _METADATA.sub("", text[match.start() :], count=1)
    return _XMLNS.sub("", text, count=2)
