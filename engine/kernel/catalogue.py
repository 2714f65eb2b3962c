"""The engine's own metrics, derived from the kernel's state when metrics are
collected (nothing is counted per event). docs/metrics.md lists them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from engine.metrics import Labels, MetricKind, Metrics
from engine.model import OrderState

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["CATALOGUE", "EMITTED", "install"]

C, G = MetricKind.COUNTER, MetricKind.GAUGE

#: name -> (kind, labels, help). The source of docs/metrics.md.
CATALOGUE: dict[str, tuple[MetricKind, tuple[str, ...], str]] = {
    "engine_bars_total": (C, ("instrument",), "bars processed"),
    "engine_orders_total": (C, ("state",), "order state transitions, by state reached"),
    "engine_denials_total": (C, ("stage", "plugin", "reason"), "intents denied"),
    "engine_reductions_total": (C, ("reason",), "intents whose quantity a guard reduced"),
    "engine_fills_total": (C, ("instrument",), "fills"),
    "engine_fees_total": (C, (), "fees paid, quote currency"),
    "engine_funding_total": (C, (), "funding received (negative: paid), quote currency"),
    "engine_liquidations_total": (C, ("instrument",), "positions liquidated"),
    "engine_alerts_total": (C, ("severity",), "alerts raised"),
    "engine_alert_failures_total": (C, (), "alert deliveries that failed"),
    "engine_ignored_fills_total": (
        C,
        ("reason",),
        "fills a venue reported that were not applied (duplicate, overfill)",
    ),
    "engine_illegal_transitions_total": (
        C,
        (),
        "illegal order transitions (bugs in a venue or plugin)",
    ),
    "engine_equity": (G, (), "equity at the last closes, quote currency"),
    "engine_cash": (G, (), "cash, quote currency"),
    "engine_realized_pnl": (G, (), "realised PnL before fees, quote currency"),
    "engine_position": (G, ("instrument",), "signed position"),
    "engine_exposure_gross": (G, (), "gross notional of positions, quote currency"),
    "engine_margin_ratio": (G, (), "maintenance margin over equity (1 is liquidation)"),
    "engine_trading_state": (G, (), "0 active, 1 reducing, 2 halted"),
    "engine_open_orders": (G, (), "orders not yet in a terminal state"),
}


H = MetricKind.HISTOGRAM

#: Metrics emitted elsewhere than the collectors below: name -> (kind, labels,
#: help, where from). Also the source of docs/metrics.md.
EMITTED: dict[str, tuple[MetricKind, tuple[str, ...], str, str]] = {
    "engine_plugin_errors_total": (
        C,
        ("plugin", "kind"),
        "errors raised by metrics stores and exporters",
        "core, at each collection",
    ),
    "engine_order_span_seconds": (
        H,
        ("span",),
        "order path step durations: decision and submit in processing time; ack, fill"
        " and order (intent to terminal state) in engine time",
        "core, with `[logging] trace_orders`",
    ),
    "engine_pipeline_check_seconds": (
        H,
        ("stage", "check"),
        "time each pipeline check takes (pipeline latency per stage)",
        "core, with `[logging] trace_orders`",
    ),
    "engine_operation_seconds": (
        H,
        ("operation", "outcome"),
        "operations timed with `log_operation(..., metrics=...)`",
        "core API, any plugin",
    ),
    "engine_process_rss_bytes": (G, (), "resident memory of the engine process", "`resources`"),
    "engine_process_cpu_seconds_total": (
        C,
        (),
        "CPU time of the engine process, seconds",
        "`resources`",
    ),
    "engine_loop_lag_seconds": (
        G,
        (),
        "how late the event loop ran a timer (paper and live runs)",
        "`resources`",
    ),
    "engine_resilience_calls_total": (
        C,
        ("policy", "outcome"),
        "calls through a resilience policy (ok, error, timeout, circuit_open,"
        " rate_limited, bulkhead_full)",
        "core, venue and plugin calls",
    ),
    "engine_retries_total": (C, ("policy",), "retries made by a policy", "core"),
    "engine_breaker_state": (
        G,
        ("policy",),
        "circuit breaker: 0 closed, 1 half-open, 2 open",
        "core",
    ),
    "engine_breaker_opened_total": (C, ("policy",), "times a breaker opened", "core"),
    "engine_call_seconds": (H, ("policy",), "duration of calls through a policy", "core"),
    "stamina_retries_total": (
        C,
        ("callable", "retry_num", "error_type"),
        "retries scheduled by stamina",
        "stamina, served by engine-plugin-prometheus",
    ),
}


_LABELS: dict[tuple[tuple[str, object], ...], Labels] = {}


def _l(**labels: object) -> Labels:
    """Labels as a sorted tuple of string pairs; each distinct set built once."""
    key = tuple(labels.items())
    found = _LABELS.get(key)
    if found is None:
        if len(_LABELS) > 10_000:  # label values are bounded in practice; stay bounded
            _LABELS.clear()
        found = _LABELS[key] = tuple(sorted((k, str(v)) for k, v in labels.items()))
    return found


class _InstrumentLabels(dict[str, Labels]):
    """``instrument=`` labels by symbol, built on first use."""

    def __init__(self, labels: Iterable[Labels]) -> None:
        super().__init__((dict(x)["instrument"], x) for x in labels)

    def __missing__(self, symbol: str) -> Labels:
        self[symbol] = found = _l(instrument=symbol)
        return found


def install(metrics: Metrics, kernel: Kernel) -> None:
    """Add the catalogue's collectors for ``kernel`` to ``metrics``."""
    denials: Counter[Labels] = Counter()
    reductions: Counter[Labels] = Counter()
    fills: Counter[str] = Counter()
    liquidations: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    seen = {"denials": 0, "reductions": 0, "fills": 0, "liquidations": 0, "alerts": 0}
    for name, (_kind, _labels, text) in CATALOGUE.items():
        metrics.help[name] = text

    by_instrument = _InstrumentLabels(_l(instrument=symbol) for symbol in kernel.streams)
    by_state = {state: _l(state=state.value) for state in OrderState}
    pipeline = kernel.pipeline

    def counters() -> list[tuple[str, MetricKind, Labels, float]]:
        # what happened since the last collection, counted once
        if len(pipeline.denials) > seen["denials"]:
            for d in pipeline.denials[seen["denials"] :]:
                denials[_l(stage=d.stage, plugin=d.plugin, reason=d.reason)] += 1
            seen["denials"] = len(pipeline.denials)
        if len(pipeline.reductions) > seen["reductions"]:
            for r in pipeline.reductions[seen["reductions"] :]:
                reductions[_l(reason=r.reason)] += 1
            seen["reductions"] = len(pipeline.reductions)
        if len(kernel.fills) > seen["fills"]:
            for f in kernel.fills[seen["fills"] :]:
                fills[f.instrument] += 1
            seen["fills"] = len(kernel.fills)
        if len(kernel.liquidations) > seen["liquidations"]:
            for liq in kernel.liquidations[seen["liquidations"] :]:
                liquidations[liq.instrument] += 1
            seen["liquidations"] = len(kernel.liquidations)
        if len(kernel.alerts) > seen["alerts"]:
            for a in kernel.alerts[seen["alerts"] :]:
                alerts[a.severity.value] += 1
            seen["alerts"] = len(kernel.alerts)
        portfolio = kernel.portfolio
        out: list[tuple[str, MetricKind, Labels, float]] = [
            ("engine_bars_total", C, by_instrument[symbol], stream.view.index + 1)
            for symbol, stream in kernel.streams.items()
        ]
        out += [("engine_orders_total", C, by_state[s], n) for s, n in kernel.order_counts.items()]
        out += [("engine_denials_total", C, labels, n) for labels, n in denials.items()]
        out += [("engine_reductions_total", C, labels, n) for labels, n in reductions.items()]
        out += [("engine_fills_total", C, by_instrument[s], n) for s, n in fills.items()]
        out += [
            ("engine_liquidations_total", C, by_instrument[s], n) for s, n in liquidations.items()
        ]
        out += [("engine_alerts_total", C, _l(severity=v), n) for v, n in alerts.items()]
        out += [
            ("engine_fees_total", C, (), float(portfolio.fees)),
            ("engine_funding_total", C, (), float(portfolio.funding)),
            ("engine_alert_failures_total", C, (), kernel.alert_failures),
            ("engine_illegal_transitions_total", C, (), kernel.illegal_transitions),
        ]
        out += [
            ("engine_ignored_fills_total", C, _l(reason=r), n)
            for r, n in kernel.ignored_fills.items()
        ]
        return out

    def gauges() -> Iterator[tuple[str, MetricKind, Labels, float]]:
        portfolio = kernel.portfolio
        marks = kernel.marks()
        yield (
            "engine_equity",
            G,
            (),
            float(portfolio.equity(marks)) if marks else float(portfolio.cash),
        )
        yield "engine_cash", G, (), float(portfolio.cash)
        yield "engine_realized_pnl", G, (), float(portfolio.realized_pnl)
        gross = 0.0
        for symbol, pos in portfolio.positions.items():
            yield "engine_position", G, _l(instrument=symbol), float(pos.quantity)
            if pos.quantity and symbol in marks:
                gross += float(portfolio.notional(symbol, marks[symbol]))
        yield "engine_exposure_gross", G, (), gross
        yield "engine_margin_ratio", G, (), float(portfolio.margin_ratio(marks)) if marks else 0.0
        yield "engine_trading_state", G, (), kernel.trading.state.severity
        yield "engine_open_orders", G, (), len(kernel.open_orders())

    metrics.add_collector(counters)
    metrics.add_collector(gauges)
