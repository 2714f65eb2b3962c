"""Many instruments: 100 instruments x 100,000 one-minute bars (10,000,000 events
merged by time), one SMA(10/30) strategy instance per instrument.

    python -m benchmarks.multi_instrument [--quick] [--instruments N] [--bars N]

Target 4: at least 1,000,000 events/s. The reference is the plain CPython loop run
over each instrument's bars in turn (same process); every instrument's fills must
equal its plain loop's.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import Any

from benchmarks.common import TICK, best_of, config, peak_rss_mb, plain_loop, row, scenario_main


def multi_config(instruments: int, bars: int) -> dict[str, Any]:
    """One SMA strategy per instrument, cash enough for every one to hold a unit."""
    cfg = config(bars)
    cfg["engine"]["initial_cash"] = "1000000000"
    symbols = [f"S{k:03d}" for k in range(instruments)]
    cfg["instruments"] = [
        {"symbol": s, "tick_size": str(TICK), "lot_size": "0.001"} for s in symbols
    ]
    cfg["strategies"] = [
        {"type": "sma_crossover", "fast": 10, "slow": 30, "quantity": "1", "instrument": s, "id": s}
        for s in symbols
    ]
    return cfg


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the engine once, the plain loops after it; the rows."""
    from engine import Engine

    instruments = args.instruments or (20 if args.quick else 100)
    bars = args.bars or (10_000 if args.quick else 100_000)
    result = Engine.from_config(multi_config(instruments, bars)).backtest_sync()
    rss = peak_rss_mb()
    events = instruments * bars
    by_symbol: dict[str, list[Any]] = {}
    for f in result.fill_records:
        by_symbol.setdefault(f.instrument, []).append((f.ts, f.side.value, f.price, f.quantity))
    columns = {
        s: (series.open.tolist(), series.close.tolist(), series.ts.tolist())
        for s, series in result.series.items()
    }

    def plain_all() -> dict[str, list[tuple[int, str]]]:
        return {s: plain_loop(o, c, 10, 30) for s, (o, c, _) in columns.items()}

    plain, reference = best_of(1, plain_all)
    identical = all(
        by_symbol.get(s, []) == [(ts[i], side, o[i] * TICK, Decimal(1)) for i, side in reference[s]]
        for s, (o, _, ts) in columns.items()
    )
    scenario = f"{instruments} instruments x {bars:,} bars ({events:,} events)"
    rate = events / result.elapsed_seconds
    return [
        row(
            "4",
            scenario,
            "engine loop",
            round(rate),
            "events/s",
            reference="plain loop",
            reference_value=round(events / plain),
            ratio=result.elapsed_seconds / plain,
            limit=">= 1,000,000 events/s",
            met=rate >= 1_000_000,
            note=f"{len(result.fill_records):,} fills, peak RSS {rss:.0f} MB",
        ),
        row("4", scenario, "identical fills per instrument", identical, "", met=identical),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's own options."""
    parser.add_argument("--instruments", type=int, help="instruments (default 100)")
    parser.add_argument("--bars", type=int, help="bars per instrument (default 100,000)")


def main(argv: list[str] | None = None) -> int:
    """Run and print the rows."""
    return scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
