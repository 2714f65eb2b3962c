"""Results of a run: fills, round trips, equity curve, denials and statistics.

The equity curve is computed column-wise after the run from the fill log and the
bar closes (cash and positions are step functions between fills), so the hot
loop pays nothing for it. Final cash, equity and PnL come from the exact Decimal
portfolio. Reports for people (notebook HTML, the HTML page, charts) are drawn
by :mod:`engine.report`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt
from loguru import logger

from engine.data import BarSeries
from engine.kernel.core import FundingPayment, Liquidation
from engine.kernel.pipeline import Denial, Reduction
from engine.kernel.trading import StateChange
from engine.metrics import MetricRecord
from engine.model import Fill, Order, OrderState, Portfolio, Trade
from engine.records import Alert
from engine.spans import Span

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["EquityCurve", "RunResult", "Stats", "equity_curve"]


@attrs.frozen
class EquityCurve:
    """Equity (float64, quote currency) at every timestamp of the merged bar timeline,
    plus whether any position was open at that time."""

    ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    invested: npt.NDArray[np.bool_]

    @property
    def drawdown(self) -> npt.NDArray[np.float64]:
        """Drawdown from the running peak, as a fraction (<= 0)."""
        if not len(self.equity):
            return self.equity
        peak = np.maximum.accumulate(self.equity)
        out: npt.NDArray[np.float64] = self.equity / peak - 1.0
        return out


def equity_curve(
    series: Mapping[str, BarSeries], fills: Sequence[Fill], portfolio: Portfolio
) -> EquityCurve:
    """Mark-to-market equity at every bar close from the fill log, vectorised."""
    parts = [s.ts for s in series.values() if len(s)]
    if not parts:
        empty = np.zeros(0)
        return EquityCurve(empty.astype(np.int64), empty, empty.astype(bool))
    # a single series is already strictly increasing (checked on load)
    times = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
    cash0 = float(portfolio.initial_cash)
    fill_ts = np.fromiter((f.ts for f in fills), dtype=np.int64, count=len(fills))
    flows = np.fromiter(
        (
            -float(
                f.quantity * f.side.sign * f.price * portfolio.instruments[f.instrument].multiplier
                + f.fee
            )
            for f in fills
        ),
        dtype=np.float64,
        count=len(fills),
    )
    cash_after = cash0 + np.cumsum(flows)
    # arrays as long as the run, made in place where possible (a long run's result
    # should not need several times its bars' memory)
    if len(fills):
        k = np.searchsorted(fill_ts, times, side="right")
        k -= 1  # the last fill at or before each time; -1: none yet
        before = k < 0
        np.maximum(k, 0, out=k)
        equity = cash_after.take(k)
        del k
        equity[before] = cash0
        del before
    else:
        equity = np.full(times.shape[0], cash0, dtype=np.float64)
    invested = np.zeros(times.shape[0], dtype=bool)
    by_symbol: dict[str, list[Fill]] = {}
    for f in fills:
        by_symbol.setdefault(f.instrument, []).append(f)
    for symbol, s in series.items():
        own = by_symbol.get(symbol, [])
        if not own or not len(s):
            continue
        mult = float(portfolio.instruments[symbol].multiplier)
        f_ts = np.fromiter((f.ts for f in own), dtype=np.int64, count=len(own))
        pos_after = np.cumsum(
            np.fromiter(
                (float(f.quantity * f.side.sign) for f in own), dtype=np.float64, count=len(own)
            )
        )
        j = np.searchsorted(f_ts, times, side="right")
        j -= 1
        flat = j < 0
        np.maximum(j, 0, out=j)
        pos = pos_after.take(j)
        del j
        pos[flat] = 0.0
        del flat
        invested |= pos != 0
        if times is s.ts:  # one instrument: every time is one of its bars
            close = s.prices("close")
        else:
            ci = np.searchsorted(s.ts, times, side="right")
            ci -= 1
            missing = ci < 0
            np.maximum(ci, 0, out=ci)
            close = s.prices("close").take(ci)
            del ci
            close[missing] = 0.0
            del missing
        pos *= close  # (pos * close) * mult, as before, in place
        del close
        pos *= mult
        equity += pos
    return EquityCurve(times, equity, invested)


class Stats(Mapping[str, Any]):
    """The report statistics of a run, as the analyzers computed them: a read-only
    mapping of name to value.

    ``stats["sharpe"]`` and ``stats.sharpe`` read one figure; ``stats.source("sharpe")``
    names the analyzer that computed it; :meth:`to_series` gives a pandas Series and
    :meth:`to_dict` a JSON-ready dict. A figure that cannot be computed (a Sharpe
    ratio from less than a day of data) is ``nan``, shown as n/a. In a notebook the
    object renders as a table.

    >>> s = Stats({"trades": 3, "sharpe": float("nan")}, {"trades": "performance"})
    >>> s["trades"], s.trades, s.source("trades"), s.to_dict()
    (3, 3, 'performance', {'trades': 3, 'sharpe': None})
    """

    __slots__ = ("_sources", "_values")

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> None:
        self._values = dict(values)
        self._sources = dict(sources or {})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(self._values) or "none"
            raise AttributeError(f"no statistic {name!r} (known: {known})") from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._values))

    def source(self, name: str) -> str | None:
        """The analyzer that computed ``name`` (``None`` when it was set directly)."""
        if name not in self._values:
            raise KeyError(name)
        return self._sources.get(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: ``nan`` becomes ``None``."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in self._values.items()
        }

    def to_series(self) -> pd.Series:
        """The statistics as a pandas Series indexed by name (``dtype=object``)."""
        import pandas as pd

        return pd.Series(self._values, dtype=object, name="stats")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_fmt(v)}" for k, v in self._values.items())
        return f"Stats({inner})"

    def _repr_html_(self) -> str:
        from engine import report

        return report.table([(k.replace("_", " "), _fmt(v)) for k, v in self._values.items()])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return "n/a"
        return f"{value:,.4f}"
    if isinstance(value, Decimal):
        return f"{value:,}"
    return str(value)


@attrs.define
class RunResult:
    """The outcome of a backtest or a paper run.

    In a notebook it renders as an HTML report (summary and the first trades);
    ``.trades``, ``.fills`` and ``.equity`` are DataFrames; ``.stats`` holds the
    analyzers' statistics (:class:`Stats`); ``.plot()`` draws equity and drawdown;
    ``.to_html()`` / ``.write_html(path)`` give a self-contained HTML page with charts.
    """

    mode: str
    name: str
    bars: int
    fill_records: list[Fill]
    trade_records: list[Trade]
    orders: dict[str, Order]
    denials: list[Denial]
    reductions: list[Reduction]
    portfolio: Portfolio
    curve: EquityCurve
    final_marks: dict[str, Decimal]
    elapsed_seconds: float
    series: Mapping[str, BarSeries] = attrs.field(factory=dict)
    illegal_transitions: int = 0
    alerts: list[Alert] = attrs.field(factory=list)
    #: every metric's value at the end of the run (docs/metrics.md)
    metrics: list[MetricRecord] = attrs.field(factory=list)
    alert_failures: int = 0
    state_changes: list[StateChange] = attrs.field(factory=list)
    funding_payments: list[FundingPayment] = attrs.field(factory=list)
    liquidations: list[Liquidation] = attrs.field(factory=list)
    _stats: dict[str, Any] = attrs.field(factory=dict, alias="stats")
    order_counts: Counter[OrderState] = attrs.field(factory=Counter)
    #: every finished order's spans when order tracing is on (engine.spans)
    spans: list[Span] = attrs.field(factory=list)
    #: statistic name -> the analyzer that computed it
    _stat_sources: dict[str, str] = attrs.field(factory=dict, alias="stat_sources")

    # -- statistics -----------------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """The report statistics (``total_return``, ``sharpe``, ``max_drawdown``,
        ``trades``...), read-only; see :class:`Stats`."""
        return Stats(self._stats, self._stat_sources)

    def add_stats(self, values: Mapping[str, Any], *, analyzer: str) -> None:
        """Record statistics computed by ``analyzer`` (the engine calls this for each
        :class:`~engine.records.Analyzer` after a run). A name another analyzer set
        already is replaced, with a warning naming both."""
        for name, value in values.items():
            before = self._stat_sources.get(name)
            if before is not None and before != analyzer:
                logger.warning(
                    "statistic {!r} of analyzer {} replaces the one of analyzer {}",
                    name,
                    analyzer,
                    before,
                )
            self._stats[name] = value
            self._stat_sources[name] = analyzer

    # -- exact figures --------------------------------------------------------------------

    @property
    def final_equity(self) -> Decimal:
        """Exact equity at the last marks."""
        return self.portfolio.equity(self.final_marks)

    @property
    def denials_by_reason(self) -> dict[str, int]:
        """Denied intents counted by namespaced reason, most frequent first."""
        return dict(Counter(d.reason for d in self.denials).most_common())

    def denials_by(self, field: str) -> dict[str, int]:
        """Denied intents counted by a :class:`~engine.kernel.pipeline.Denial` field
        (``stage``, ``plugin``, ``check``, ``strategy``...), most frequent first."""
        return dict(Counter(str(getattr(d, field)) for d in self.denials).most_common())

    # -- DataFrames ------------------------------------------------------------------------

    @property
    def trades(self) -> pd.DataFrame:
        """Closed round trips (FIFO), one row each."""
        import pandas as pd

        rows = [attrs.asdict(t) for t in self.trade_records]
        cols = [a.name for a in attrs.fields(Trade)]
        frame = pd.DataFrame(rows, columns=cols)
        for c in ("entry_ts", "exit_ts"):
            frame[c] = pd.to_datetime(frame[c], unit="ns", utc=True)
        for c in ("quantity", "entry_price", "exit_price", "fees", "pnl"):
            frame[c] = frame[c].astype(float)
        return frame

    @property
    def fills(self) -> pd.DataFrame:
        """Every execution, one row each."""
        import pandas as pd

        rows = [attrs.asdict(f) | {"side": f.side.value} for f in self.fill_records]
        cols = [a.name for a in attrs.fields(Fill)]
        frame = pd.DataFrame(rows, columns=cols)
        frame["ts"] = pd.to_datetime(frame["ts"], unit="ns", utc=True)
        for c in ("quantity", "price", "fee"):
            frame[c] = frame[c].astype(float)
        return frame

    @property
    def equity(self) -> pd.DataFrame:
        """Equity and drawdown at every bar, indexed by UTC timestamp."""
        import pandas as pd

        index = pd.to_datetime(self.curve.ts, unit="ns", utc=True)
        frame = pd.DataFrame(
            {
                "equity": self.curve.equity,
                "drawdown": self.curve.drawdown,
                "invested": self.curve.invested,
            },
            index=index,
        )
        frame.index.name = "timestamp"
        return frame

    # -- output --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: run facts, exact account figures, statistics, denials."""
        return {
            "name": self.name,
            "mode": self.mode,
            "bars": self.bars,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "initial_cash": str(self.portfolio.initial_cash),
            "final_equity": str(self.final_equity),
            "cash": str(self.portfolio.cash),
            "realized_pnl": str(self.portfolio.realized_pnl),
            "unrealized_pnl": str(self.portfolio.unrealized_pnl(self.final_marks)),
            "fees": str(self.portfolio.fees),
            "positions": {
                s: str(p.quantity) for s, p in self.portfolio.positions.items() if p.quantity
            },
            "orders": {
                s.value: n for s, n in sorted(self.order_counts.items(), key=lambda kv: kv[0].value)
            },
            "orders_denied": len(self.denials),
            "denials_by_reason": self.denials_by_reason,
            "denials_by_stage": self.denials_by("stage"),
            "denials_by_plugin": self.denials_by("plugin"),
            "orders_reduced": len(self.reductions),
            "illegal_transitions": self.illegal_transitions,
            "funding": str(self.portfolio.funding),
            "liquidations": [
                {
                    "ts": liq.ts,
                    "instrument": liq.instrument,
                    "side": liq.side,
                    "quantity": str(liq.quantity),
                    "price": str(liq.price),
                    "fee": str(liq.fee),
                    "liquidation_price": str(liq.liquidation_price),
                }
                for liq in self.liquidations
            ],
            "trading_state_changes": [
                {"ts": c.ts, "from": c.previous.value, "to": c.state.value, "reason": c.reason}
                for c in self.state_changes
            ],
            "alerts": len(self.alerts),
            "alert_failures": self.alert_failures,
            "stats": self.stats.to_dict(),
        }

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``trades.csv``, ``fills.csv``, ``equity.csv``, ``summary.json`` and,
        with order tracing on, ``spans.jsonl`` (OTLP/JSON spans)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "trades": out / "trades.csv",
            "fills": out / "fills.csv",
            "equity": out / "equity.csv",
            "summary": out / "summary.json",
        }
        self.trades.to_csv(paths["trades"], index=False)
        self.fills.to_csv(paths["fills"], index=False)
        self.equity.to_csv(paths["equity"])
        if self.spans:  # OTLP/JSON, one span per line
            paths["spans"] = out / "spans.jsonl"
            lines = (json.dumps(span.to_otlp()) + "\n" for span in self.spans)
            paths["spans"].write_text("".join(lines))
        paths["summary"].write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        return paths

    def report_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows of the human report, shared by the CLI and HTML."""
        rows = [
            ("bars", f"{self.bars:,}"),
            ("initial cash", _fmt(self.portfolio.initial_cash)),
            ("final equity", _fmt(self.final_equity.quantize(Decimal("0.01")))),
            ("fees", _fmt(self.portfolio.fees.quantize(Decimal("0.01")))),
        ]
        rows += [(k.replace("_", " "), _fmt(v)) for k, v in self.stats.items()]
        rows.append(("orders denied", str(len(self.denials))))
        for reason, n in self.denials_by_reason.items():
            rows.append((f"  denied: {reason}", str(n)))
        if self.reductions:
            rows.append(("orders reduced", str(len(self.reductions))))
        if self.funding_payments:
            rows.append(("funding", _fmt(self.portfolio.funding.quantize(Decimal("0.01")))))
        if self.liquidations:
            rows.append(("liquidations", str(len(self.liquidations))))
        if self.state_changes:
            rows.append(("trading state changes", str(len(self.state_changes))))
            for c in self.state_changes[-5:]:
                rows.append((f"  {c.previous.value} -> {c.state.value}", c.reason))
        return rows

    def __repr__(self) -> str:
        return (
            f"RunResult(name={self.name!r}, mode={self.mode!r}, bars={self.bars}, "
            f"trades={len(self.trade_records)}, final_equity={self.final_equity})"
        )

    def _repr_html_(self) -> str:
        from engine import report

        return report.fragment(self)

    def to_html(self, *, trades: int = 20, charts: bool = True) -> str:
        """A self-contained HTML page: summary, equity and drawdown charts (inline
        SVG; needs matplotlib unless ``charts=False``) and the first ``trades``
        trades. It loads nothing from elsewhere: open it anywhere, mail it."""
        from engine import report

        return report.document(self, trades=trades, charts=charts)

    def write_html(self, path: str | Path, *, trades: int = 20, charts: bool = True) -> Path:
        """Write :meth:`to_html` to ``path`` (parent folders are created)."""
        out = Path(path)
        text = self.to_html(trades=trades, charts=charts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return out

    def plot(
        self, *, figsize: tuple[float, float] = (10, 6), max_points: int | None = 4000
    ) -> Figure:
        """Equity (top) and drawdown (bottom) against UTC time, with matplotlib
        (``pip install 'engine[plot]'``); returns the pyplot Figure
        (``fig.savefig("equity.png")``).

        Long curves are thinned to the lowest and highest point of each of
        ``max_points // 2`` time buckets, which looks the same at any screen
        resolution; ``max_points=None`` plots every bar.
        """
        from engine import report

        plt = report.pyplot()
        fig: Figure = plt.figure(figsize=figsize, layout="constrained")
        report.draw(fig, self, max_points=max_points)
        return fig
