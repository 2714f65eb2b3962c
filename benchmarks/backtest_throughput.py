"""Backtest throughput: SMA(10/30) crossover over generated one-minute bars.

The engine runs exactly as a user runs it: a config (dict, same shape as TOML),
the built-in ``sma_crossover`` strategy and ``synthetic`` feed loaded through
their entry points, the simulated broker, the order pipeline and the portfolio.
In the same process, a plain CPython loop computes the same fills from the same
bars; the two fill lists must be identical.

    python benchmarks/backtest_throughput.py [--bars 1000000] [--json out.json]

Each side runs ``--repeat`` times (default 3) and the best time is kept, as
timeit does: the machine is shared and noisy. Figures printed: engine bars/s
(kernel loop: feed columns -> strategy -> pipeline -> broker -> portfolio),
end-to-end wall time (plus data generation, equity curve and statistics), peak
RSS of the process after the first engine run, the plain loop's bars/s over the
same bars, and the ratio of the two times.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from decimal import Decimal
from typing import Any

TICK = Decimal("0.01")


def config(bars: int) -> dict[str, Any]:
    """The benchmark's engine configuration (the same shape as a TOML file)."""
    return {
        "engine": {"name": "throughput", "initial_cash": "1000000", "seed": 42},
        "instruments": [{"symbol": "BTC-USD", "tick_size": str(TICK), "lot_size": "0.001"}],
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


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument("--json", dest="json_path", help="also write the figures here")
    args = parser.parse_args(argv)

    from engine import Engine

    engine_times: list[float] = []
    walls: list[float] = []
    result: Any = None
    engine_rss = 0.0
    for k in range(args.repeat):
        result = None  # one run's objects at a time
        started = time.perf_counter()
        result = Engine.from_config(config(args.bars)).backtest_sync()
        walls.append(time.perf_counter() - started)
        engine_times.append(result.elapsed_seconds)
        if k == 0:
            engine_rss = peak_rss_mb()  # high-water mark of the first (cold) run
    engine_time, wall = min(engine_times), min(walls)
    engine_fills = [(f.ts, f.side.value, f.price, f.quantity) for f in result.fill_records]

    # the plain loop reads the very same bars, as Python lists of integer ticks
    series = result.series["BTC-USD"]
    opens, closes, ts = series.open.tolist(), series.close.tolist(), series.ts.tolist()
    plain_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        reference = plain_loop(opens, closes, 10, 30)
        plain_times.append(time.perf_counter() - t0)
    plain_time = min(plain_times)
    reference_fills = [(ts[i], side, opens[i] * TICK, Decimal(1)) for i, side in reference]

    identical = engine_fills == reference_fills
    figures = {
        "bars": result.bars,
        "fills": len(engine_fills),
        "repeat": args.repeat,
        "engine_seconds": round(engine_time, 4),
        "engine_seconds_all": [round(t, 4) for t in engine_times],
        "engine_bars_per_second": round(result.bars / engine_time),
        "engine_wall_seconds": round(wall, 3),
        "engine_peak_rss_mb": round(engine_rss, 1),
        "plain_loop_seconds": round(plain_time, 4),
        "plain_loop_seconds_all": [round(t, 4) for t in plain_times],
        "plain_loop_bars_per_second": round(result.bars / plain_time),
        "ratio_engine_to_plain": round(engine_time / plain_time, 2),
        "fills_identical": identical,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    rows = [
        ("bars", f"{figures['bars']:,}"),
        ("fills (engine = plain loop)", f"{figures['fills']:,}  identical: {identical}"),
        ("runs of each (best kept)", str(args.repeat)),
        ("engine loop", f"{engine_time:.3f} s  {figures['engine_bars_per_second']:,} bars/s"),
        ("engine end to end", f"{wall:.3f} s (data generation, equity curve, statistics included)"),
        ("engine peak RSS", f"{engine_rss:.0f} MB"),
        (
            "plain CPython loop",
            f"{plain_time:.3f} s  {figures['plain_loop_bars_per_second']:,} bars/s",
        ),
        (
            "ratio engine / plain loop",
            f"{figures['ratio_engine_to_plain']:.2f}x the plain loop's time",
        ),
        ("target (issue 2)", ">= 1,000,000 bars/s, peak RSS < 400 MB, identical fills"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(figures, fh, indent=2)
    ok = identical and figures["engine_bars_per_second"] >= 1_000_000 and engine_rss < 400
    print("PASS" if ok else "BELOW TARGET")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
