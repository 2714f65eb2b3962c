"""Sweep executors: wall time of the same 60-run grid on ``sequential``, ``local`` and
``dask`` (a LocalCluster), and the speedups over ``sequential``.

    python benchmarks/sweep_executors.py [--bars 50000] [--workers 2] [--json]

Each executor's sweep runs in a fresh process of its own (as one ``engine sweep``
command does). Each run is a full engine backtest (SMA crossover over ``--bars``
generated one-minute bars, its own plugin manager) of the grid ``fast = 2..8:2`` x
``slow = 10..38:2``.
Wall times include starting the executor's workers (a process pool, or a Dask
LocalCluster) and shipping the bars to them, as a user pays them. The three tables
must be identical (exit 1 otherwise). The per-run cost is the mean time a worker
spent on one run (load the plugins, build the engine, backtest, statistics), in wall
time and in CPU time (the CPU time does not depend on what else the machine runs; the
load average printed at the end says how busy it was).

The dask executor comes from ``plugins/engine-plugin-dask``: installed, or taken from
its source folder when not.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRID = {"strategy.fast": "2..8:2", "strategy.slow": "10..38:2"}


def config(bars: int) -> dict[str, Any]:
    """The swept configuration (the shape of a TOML file)."""
    return {
        "engine": {"name": "sweep-benchmark", "initial_cash": "100000", "seed": 42},
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "bars": bars, "start_price": "30000", "volatility": 0.0008},
        "broker": {"type": "simulated", "fee_bps": "1", "slippage_bps": "0.5"},
        "strategies": [{"type": "sma_crossover", "fast": 10, "slow": 30, "quantity": "0.5"}],
    }


def dask_plugin() -> Any:
    """The dask executor's plugin module (installed, else from its source folder)."""
    try:
        import engine_plugin_dask
    except ImportError:
        sys.path.insert(0, str(ROOT / "plugins" / "engine-plugin-dask"))
        import engine_plugin_dask
    return engine_plugin_dask


def measure(executor: str, bars: int, workers: int) -> dict[str, Any]:
    """One sweep on ``executor``: wall time, per-run worker time, the table."""
    import json as _json

    from engine import Engine, PluginSettings

    eng = Engine.from_config(config(bars), settings=PluginSettings(builtin_only=True))
    if executor == "dask":
        eng.register(dask_plugin(), "dask")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = eng.sweep_sync(GRID, executor=executor, workers=workers, output=folder)
        wall = time.perf_counter() - started
        lines = (Path(folder) / "ledger.jsonl").read_text().splitlines()
    entries = [_json.loads(line) for line in lines]
    seconds = [e["seconds"] for e in entries]
    cpu = [e["cpu_seconds"] for e in entries]
    return {
        "executor": executor,
        "runs": result.runs,
        "failed": len(result.failures),
        "wall_seconds": wall,
        "run_seconds_mean": statistics.fmean(seconds),
        "run_cpu_seconds_mean": statistics.fmean(cpu),
        "table": result.results,
    }


def in_fresh_process(executor: str, bars: int, workers: int) -> dict[str, Any]:
    """:func:`measure` in a process of its own, as a user runs one sweep per command:
    no state of an earlier sweep (imports, caches, heap) weighs on this one."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.pickle"
        cmd = [sys.executable, __file__, "--one", executor, str(out)]
        subprocess.run([*cmd, "--bars", str(bars), "--workers", str(workers)], check=True)
        figures: dict[str, Any] = pickle.loads(out.read_bytes())
        return figures


def main(argv: list[str] | None = None) -> int:
    """Run the three sweeps and print wall times and speedups."""
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=50_000, help="bars per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--one", nargs=2, metavar=("EXECUTOR", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # one sweep in this (fresh) process, its figures pickled to OUT
        Path(args.one[1]).write_bytes(pickle.dumps(measure(args.one[0], args.bars, args.workers)))
        return 0
    rows = [in_fresh_process(e, args.bars, args.workers) for e in ("sequential", "local", "dask")]
    base = rows[0]
    same = all(
        r["table"].equals(base["table"]) and r["failed"] == 0 and r["runs"] == 60 for r in rows
    )
    for r in rows[1:]:
        pd.testing.assert_frame_equal(base["table"], r["table"])
    report = [
        {
            "executor": r["executor"],
            "workers": 1 if r["executor"] == "sequential" else args.workers,
            "runs": r["runs"],
            "wall_seconds": round(r["wall_seconds"], 2),
            "per_run_seconds": round(r["run_seconds_mean"], 3),
            "per_run_cpu_seconds": round(r["run_cpu_seconds_mean"], 3),
            "speedup": round(base["wall_seconds"] / r["wall_seconds"], 2),
        }
        for r in rows
    ]
    if args.json:
        document = {"bars_per_run": args.bars, "identical": same, "rows": report}
        document["load_average"] = list(os.getloadavg())
        print(json.dumps(document, indent=2))
    else:
        print(f"60-run grid, {args.bars:,} bars per run; identical tables: {same}")
        print(
            f"{'executor':<12}{'workers':>8}{'wall s':>10}{'s/run':>10}{'cpu s/run':>11}"
            f"{'speedup':>10}"
        )
        for r in report:
            print(
                f"{r['executor']:<12}{r['workers']:>8}{r['wall_seconds']:>10.2f}"
                f"{r['per_run_seconds']:>10.3f}{r['per_run_cpu_seconds']:>11.3f}"
                f"{r['speedup']:>10.2f}"
            )
        load = os.getloadavg()
        print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
