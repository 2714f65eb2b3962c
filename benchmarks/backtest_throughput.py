"""Backtest throughput: SMA(10/30) crossover over 1,000,000 generated one-minute bars.

    python -m benchmarks.backtest_throughput [--quick] [--bars N] [--repeat N]

The engine runs exactly as a user runs it: a config (dict, same shape as TOML), the
built-in ``synthetic`` feed and ``sma_crossover`` strategy loaded through their entry
points, the simulated broker, the order pipeline and the portfolio. Each scenario
runs in its own process (its peak RSS is its own), ``--repeat`` times, best kept;
in the same process a plain CPython loop and a numpy loop compute the same fills
from the same bars, and the fill lists must be identical.

Scenarios (what is added to the configuration):

- ``plain``: the engine alone;
- ``checks``: five guards and three filters on every order;
- ``checks+metrics``: plus metrics collected every hour of engine time into a memory
  store and the log exporter (target 1: at most 2.0x the plain loop, RSS < 300 MB);
- ``checks+metrics+vectorised``: the same with ``[backtest] vectorised`` (target 2:
  at most the plain loop's time, identical trades);
- ``journal`` and ``checks+metrics+journal``: the default journal (SQLite) on
  (issue 5: under +25% of the engine alone; target 7: within 1.25x of journal off),
  each run alternately with its journal-off twin in one process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

from benchmarks.common import (
    TICK,
    best_of,
    config,
    numpy_loop,
    peak_rss_mb,
    plain_loop,
    row,
    scenario_main,
)

#: Child processes, each running its scenarios alternately (best of ``--repeat``
#: each): a scenario and its journaled twin share a process, so the journal's ratio
#: is measured under the same load; peak RSS is the first scenario's first run.
CHILDREN = (
    ("plain", "journal"),
    ("checks",),
    ("checks+metrics", "checks+metrics+journal"),
    ("checks+metrics+vectorised",),
)


def measure_one(bars: int, extras: str, repeat: int) -> dict[str, Any]:
    """Scenarios ``extras`` (comma-separated) in this process, alternately:
    best-of-``repeat`` engine runs each, the plain and numpy loops over the very
    same bars, fills compared."""
    from engine import Engine

    names = extras.split(",")
    times: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, Any] = {}
    rss = 0.0
    for k in range(repeat):
        for name in names:
            results[name] = None  # one run's objects at a time
            results[name] = Engine.from_config(config(bars, name)).backtest_sync()
            times[name].append(results[name].elapsed_seconds)
            if k == 0 and name == names[0]:
                rss = peak_rss_mb()  # high-water mark of the first (cold) run
    series = results[names[0]].series["BTC-USD"]
    opens, closes, ts = series.open.tolist(), series.close.tolist(), series.ts.tolist()
    plain, reference = best_of(repeat, lambda: plain_loop(opens, closes, 10, 30))
    vector, by_numpy = best_of(repeat, lambda: numpy_loop(series.close, 10, 30))
    expected = [(ts[i], side, opens[i] * TICK, Decimal(1)) for i, side in reference]
    out = {}
    for name in names:
        result = results[name]
        fills = [(f.ts, f.side.value, f.price, f.quantity) for f in result.fill_records]
        out[name] = {
            "extras": name,
            "fills": len(fills),
            "identical": fills == expected and by_numpy == reference,
            "trades": len(result.trade_records),
            "denials": len(result.denials),
            "seconds": min(times[name]),
            "bars_per_second": round(result.bars / min(times[name])),
            "peak_rss_mb": round(rss, 1) if name == names[0] else None,
            "plain_loop_seconds": plain,
            "numpy_loop_seconds": vector,
        }
    return out


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every scenario in a child process, then the rows of targets 1, 2 and 7."""
    if args.child:
        print(json.dumps(measure_one(args.bars, args.child, args.repeat)))
        return []
    bars = 200_000 if args.quick and args.bars is None else args.bars or 1_000_000
    repeat = 1 if args.quick and args.repeat is None else args.repeat or 3
    got: dict[str, dict[str, Any]] = {}
    for names in CHILDREN:
        cmd = [sys.executable, "-m", "benchmarks.backtest_throughput", "--child", ",".join(names)]
        cmd += ["--bars", str(bars), "--repeat", str(repeat)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        got |= json.loads(out.stdout.strip().splitlines()[-1])
    return rows_of({name: got[name] for names in CHILDREN for name in names}, bars)


def rows_of(got: dict[str, dict[str, Any]], bars: int) -> list[dict[str, Any]]:
    """The table's rows from the scenarios' figures."""
    rows = []
    label = f"SMA {bars / 1e6:g}M bars"
    for extras, f in got.items():
        target = {"checks+metrics": "1", "checks+metrics+vectorised": "2"}.get(extras, "-")
        limit = {"1": "<= 2.0", "2": "<= 1.0"}.get(target, "")
        ratio = f["seconds"] / f["plain_loop_seconds"]
        rows.append(
            row(
                target,
                f"{label}, {extras}",
                "engine loop",
                f["bars_per_second"],
                "bars/s",
                reference="plain loop",
                reference_value=round(bars / f["plain_loop_seconds"]),
                ratio=ratio,
                limit=limit,
                met=None if not limit else ratio <= float(limit.split()[-1]),
                note=f"{f['fills']:,} fills, {f['denials']} denials",
            )
        )
        if extras == "checks+metrics+vectorised":
            numpy_ratio = f["seconds"] / f["numpy_loop_seconds"]
            rows.append(
                row(
                    "-",
                    f"{label}, {extras}",
                    "engine loop",
                    f["bars_per_second"],
                    "bars/s",
                    reference="numpy loop",
                    reference_value=round(bars / f["numpy_loop_seconds"]),
                    ratio=numpy_ratio,
                )
            )
        rows.append(
            row(
                target if target != "-" else "-",
                f"{label}, {extras}",
                "identical fills to the plain loop",
                f["identical"],
                "",
                met=f["identical"],
            )
        )
    f = got["checks+metrics"]
    rows.append(
        row(
            "1",
            f"{label}, checks+metrics",
            "peak RSS",
            f["peak_rss_mb"],
            "MB",
            limit="< 300 MB",
            met=f["peak_rss_mb"] < 300,
        )
    )
    for target, on, off, limit in (
        ("7", "checks+metrics+journal", "checks+metrics", 1.25),
        ("5*", "journal", "plain", 1.25),
    ):
        ratio = got[on]["seconds"] / got[off]["seconds"]
        rows.append(
            row(
                target,
                f"{label}, {on}",
                "engine loop",
                got[on]["bars_per_second"],
                "bars/s",
                reference=f"{off} (journal off)",
                reference_value=got[off]["bars_per_second"],
                ratio=ratio,
                limit=f"<= {limit}",
                met=ratio <= limit,
                note="5*: issue 5's journal overhead target (under 25%)" if target == "5*" else "",
            )
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's own options."""
    parser.add_argument("--bars", type=int, help="bars per run (default 1,000,000)")
    parser.add_argument("--repeat", type=int, help="runs of each, best kept (default 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print their rows."""
    return scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
