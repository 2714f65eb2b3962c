"""What every benchmark scenario shares: the SMA(10/30) configuration (the same shape
as a TOML file), the reference loops it is compared with, peak RSS, and the rows each
scenario reports to ``python -m benchmarks``.

A *row* is one figure held to one target of the performance issue::

    {"target": "1", "scenario": ..., "figure": ..., "value": ..., "unit": ...,
     "reference": ..., "reference_value": ..., "ratio": ..., "limit": ...,
     "met": True | False | None, "note": ...}

``ratio`` is the figure divided by the reference measured in the same process (both
times, so lower is better); ``met`` is ``None`` for figures reported without a target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

TICK = Decimal("0.01")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Five guards and three filters that run on every order but, with these limits,
#: never bind: the trade list stays identical to the plain loop's.
CHECKS: dict[str, Any] = {
    "filters": [
        {"type": "trading_hours", "sessions": ["00:00-24:00"], "days": list(DAYS)},
        {"type": "stale_data", "max_age": "5m"},
        {"type": "min_volume", "window": 30, "min_volume": 1},
    ],
    "guards": [
        {"type": "max_position", "limit": "10"},
        {"type": "max_order_notional", "limit": "1000000000"},
        {"type": "order_rate", "max_orders": 100000, "per": "1m"},
        {"type": "max_open_orders", "limit": 10},
        {"type": "daily_loss", "limit": "1000000000"},
    ],
}

#: Metrics collected every hour of engine time into a memory store and the log exporter.
METRICS: dict[str, Any] = {
    "metrics": {"interval": "1h"},
    "metrics_stores": [{"type": "memory"}],
    "exporters": [{"type": "log"}],
}


def journal(directory: str | None = None) -> dict[str, Any]:
    """The default journal (SQLite, WAL) in a fresh file."""
    fd, path = tempfile.mkstemp(suffix=".journal", dir=directory or tempfile.gettempdir())
    os.close(fd)
    os.unlink(path)
    return {"journal": {"type": "sqlite", "path": path}}


#: Additions to the configuration, by name; scenarios combine them with "+".
EXTRAS: dict[str, Callable[[], dict[str, Any]]] = {
    "plain": dict,
    "checks": lambda: CHECKS,
    "metrics": lambda: METRICS,
    "journal": journal,
    "vectorised": lambda: {"backtest": {"vectorised": True}},
}


def config(bars: int, extras: str = "plain", *, symbol: str = "BTC-USD") -> dict[str, Any]:
    """The benchmark's engine configuration: SMA(10/30), quantity 1, fee 1 bp, over
    ``bars`` generated one-minute bars, plus the named ``extras`` (``checks+metrics``)."""
    cfg: dict[str, Any] = {
        "engine": {"name": "benchmark", "initial_cash": "1000000", "seed": 42},
        "instruments": [{"symbol": symbol, "tick_size": str(TICK), "lot_size": "0.001"}],
        "feed": {
            "type": "synthetic",
            "bars": bars,
            "interval": "1m",
            "start_price": "30000",
            "volatility": 0.0008,
        },
        "broker": {"type": "simulated", "fee_bps": "1"},
        "strategies": [{"type": "sma_crossover", "fast": 10, "slow": 30, "quantity": "1"}],
    }
    for name in extras.split("+"):
        for key, value in EXTRAS[name]().items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = cfg[key] | value
            else:
                cfg[key] = value
    return cfg


def plain_loop(opens: list[int], closes: list[int], fast: int, slow: int) -> list[tuple[int, str]]:
    """Fills as (bar index, side): buy on a golden cross when flat, sell on a death
    cross when long, filled at the next bar's open (integer-tick sums, exact)."""
    fills: list[tuple[int, str]] = []
    sum_fast = sum_slow = 0
    prev = None
    long = False
    last = len(closes) - 1
    for i, c in enumerate(closes):
        sum_fast += c
        sum_slow += c
        if i >= fast:
            sum_fast -= closes[i - fast]
        if i >= slow:
            sum_slow -= closes[i - slow]
        if i < slow - 1:
            continue
        diff = sum_fast * slow - sum_slow * fast
        if prev is not None and i < last:
            if prev <= 0 < diff and not long:
                fills.append((i + 1, "buy"))
                long = True
            elif prev >= 0 > diff and long:
                fills.append((i + 1, "sell"))
                long = False
        prev = diff
    return fills


def numpy_loop(closes: np.ndarray, fast: int, slow: int) -> list[tuple[int, str]]:
    """The same fills as :func:`plain_loop`, with the crossings computed by numpy
    (exact int64 sums) and a Python loop only over the crossings."""
    c = np.asarray(closes, dtype=np.int64)
    csum = np.concatenate(([0], np.cumsum(c)))
    i = np.arange(slow - 1, len(c))
    diff = (csum[i + 1] - csum[i + 1 - fast]) * slow - (csum[i + 1] - csum[i + 1 - slow]) * fast
    prev, cur, at = diff[:-1], diff[1:], i[1:]
    up = (prev <= 0) & (cur > 0) & (at < len(c) - 1)
    down = (prev >= 0) & (cur < 0) & (at < len(c) - 1)
    fills: list[tuple[int, str]] = []
    long = False
    for k, is_up in zip(np.flatnonzero(up | down).tolist(), up[up | down].tolist(), strict=True):
        if is_up and not long:
            fills.append((int(at[k]) + 1, "buy"))
            long = True
        elif not is_up and long:
            fills.append((int(at[k]) + 1, "sell"))
            long = False
    return fills


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """(best wall time of ``repeat`` calls, the last call's result)."""
    import time

    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def row(
    target: str,
    scenario: str,
    figure: str,
    value: float,
    unit: str,
    *,
    reference: str = "",
    reference_value: float | None = None,
    ratio: float | None = None,
    limit: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row of the benchmark table (see the module's docstring)."""
    if ratio is not None:
        ratio = float(ratio)
    return {
        "target": target,
        "scenario": scenario,
        "figure": figure,
        "value": value,
        "unit": unit,
        "reference": reference,
        "reference_value": reference_value,
        "ratio": None if ratio is None else round(ratio, 3),
        "limit": limit,
        "met": None if met is None else bool(met),
        "note": note,
    }


def scenario_main(
    doc: str,
    measure: Callable[[argparse.Namespace], list[dict[str, Any]]],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """The command line every scenario module shares: ``--quick`` (smaller sizes, for
    CI), ``--rows-json PATH`` (write the rows for ``python -m benchmarks``); prints the
    rows. Exit code 1 when a correctness check of the scenario failed (a row whose
    ``figure`` starts with "identical" and is not met)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--rows-json", help="write the rows as JSON here")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    from engine.telemetry import configure_logging

    configure_logging("WARNING")  # as the CLI does by default
    rows = measure(args)
    for r in rows:
        print(format_row(r))
    if args.rows_json:
        with open(args.rows_json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 1 if any(r["figure"].startswith("identical") and not r["met"] for r in rows) else 0


def format_row(r: dict[str, Any]) -> str:
    """One row as a line of text."""
    ref = ""
    if r["reference"]:
        ref = f"  vs {r['reference']} {r['reference_value']:,}"
        if r["ratio"] is not None:
            ref += f"  ratio {r['ratio']:.2f}"
    verdict = {True: "MET", False: "MISSED", None: ""}[r["met"]]
    value = r["value"]
    shown = (
        f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else value
    )
    return (
        f"[{r['target']}] {r['scenario']}: {r['figure']} {shown} {r['unit']}{ref}"
        f"  {('target ' + r['limit']) if r['limit'] else ''} {verdict}".rstrip()
    )
