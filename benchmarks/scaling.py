"""Linear scaling and streamed backtests over Parquet (target 3).

    python -m benchmarks.scaling [--quick] [--repeat 3]

Figures, each size in its own process (so its peak RSS is its own):

* time per bar of the engine loop at 1,000,000 and 10,000,000 generated bars
  (in memory: the ``synthetic`` feed, the benchmark's SMA configuration from
  ``benchmarks/common.py``), best of ``--repeat`` processes run alternately, and
  their ratio (target: within 15%);
* peak RSS of a backtest of 20,000,000 bars streamed from a Parquet file
  (``[backtest] stream = true``, target: under 600 MB); the file is written
  first, in another process, one row group at a time (never all in memory). The
  same file is also run with an SMA(1000/3000), which trades a hundred times less:
  the difference is what the run keeps per order, the rest what streaming keeps;
* a correctness check on a size that fits in memory: the same Parquet file
  backtested in memory and streamed (in chunks smaller than its row groups, and
  larger) must give identical fills and final equity.

``--quick`` runs 100,000 / 1,000,000 bars, 2,000,000 streamed, 200,000 compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks import common

ROOT = Path(__file__).resolve().parent.parent
SYMBOL = "BTC-USD"
START_NS = 1_704_067_200_000_000_000  # 2024-01-01
#: bars generated, and written as one row group, at a time
ROW_GROUP = 1_000_000
#: the slow window of the SMA that trades rarely (memory kept for orders aside)
FEW_TRADES = 3_000


def write_parquet(path: Path, bars: int, seed: int = 42, row_group: int = ROW_GROUP) -> None:
    """``bars`` one-minute bars of the benchmark's random walk (the ``synthetic``
    feed's generator, seeded) written to ``path`` one row group at a time: at most
    one row group is ever in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine import Instrument
    from engine.builtins.feed_synthetic import RandomWalk, SyntheticConfig

    feed = common.config(1)["feed"]
    cfg = SyntheticConfig(
        interval=feed["interval"],
        start_price=Decimal(feed["start_price"]),
        volatility=feed["volatility"],
    )
    walk = RandomWalk(cfg, Instrument(SYMBOL, common.TICK), seed, START_NS)
    schema = pa.schema(
        [
            ("timestamp", pa.timestamp("ns", tz="UTC")),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
            ("volume", pa.float64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        left = bars
        while left:
            n = min(row_group, left)
            s = walk.next(n)
            table = pa.table(
                [
                    pa.array(s.ts, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                    *(pa.array(s.prices(c)) for c in ("open", "high", "low", "close")),
                    pa.array(s.volume),
                ],
                schema=schema,
            )
            writer.write_table(table, row_group_size=n)
            left -= n


def parquet_config(
    path: Path, *, stream: bool, chunk_bars: int | None = None, slow: int = 30
) -> dict[str, Any]:
    """The benchmark's configuration over a Parquet file, in memory or streamed
    (``slow``: SMA(slow/3, slow) instead of SMA(10/30), a strategy that trades less)."""
    cfg = common.config(1)
    cfg["feed"] = {"type": "parquet", "path": str(path)}
    if slow != 30:
        cfg["strategies"][0] |= {"fast": slow // 3, "slow": slow}
    if stream:
        cfg["backtest"] = {"stream": True}
        if chunk_bars is not None:
            cfg["backtest"]["chunk_bars"] = chunk_bars
    return cfg


# -- child processes -------------------------------------------------------------------


def child_generated(bars: int, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` in-memory runs over ``bars`` generated bars."""
    from engine import Engine

    times, walls = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        result = Engine.from_config(common.config(bars)).backtest_sync()
        walls.append(time.perf_counter() - started)
        times.append(result.elapsed_seconds)
        fills = len(result.fill_records)
        del result  # one run's objects at a time
    return {
        "bars": bars,
        "seconds": min(times),
        "seconds_all": times,
        "wall": min(walls),
        "fills": fills,
        "peak_rss_mb": common.peak_rss_mb(),
    }


def child_streamed(path: str, bars: int, slow: int) -> dict[str, Any]:
    """One streamed run over the Parquet file."""
    from engine import Engine

    started = time.perf_counter()
    cfg = parquet_config(Path(path), stream=True, slow=slow)
    result = Engine.from_config(cfg).backtest_sync()
    return {
        "bars": result.bars,
        "expected_bars": bars,
        "seconds": result.elapsed_seconds,
        "wall": time.perf_counter() - started,
        "fills": len(result.fill_records),
        "final_equity": str(result.final_equity),
        "curve_points": len(result.curve.ts),
        "peak_rss_mb": common.peak_rss_mb(),
    }


def child_write(path: str, bars: int) -> dict[str, Any]:
    """Write the Parquet file."""
    started = time.perf_counter()
    write_parquet(Path(path), bars)
    return {
        "seconds": time.perf_counter() - started,
        "bytes": os.path.getsize(path),
        "peak_rss_mb": common.peak_rss_mb(),
    }


def child_compare(path: str, bars: int) -> dict[str, Any]:
    """The same file in memory and streamed (chunks smaller and larger than a row
    group): identical fills and final equity?"""
    from engine import Engine

    write_parquet(Path(path), bars, row_group=max(bars // 3, 1))

    def fills(result: Any) -> list[tuple[Any, ...]]:
        return [(f.ts, f.side, f.price, f.quantity, f.fee) for f in result.fill_records]

    memory = Engine.from_config(parquet_config(Path(path), stream=False)).backtest_sync()
    same = []
    for chunk in (max(bars // 10, 1), max(bars // 2, 1)):
        streamed = Engine.from_config(
            parquet_config(Path(path), stream=True, chunk_bars=chunk)
        ).backtest_sync()
        same.append(
            fills(streamed) == fills(memory)
            and streamed.final_equity == memory.final_equity
            and streamed.bars == memory.bars
        )
    return {"fills": len(memory.fill_records), "identical": all(same), "chunks": len(same)}


CHILDREN = {
    "generated": lambda a: child_generated(a.bars, a.repeat),
    "streamed": lambda a: child_streamed(a.path, a.bars, a.slow),
    "write": lambda a: child_write(a.path, a.bars),
    "compare": lambda a: child_compare(a.path, a.bars),
}


def run_child(
    kind: str, bars: int, *, repeat: int = 1, path: str = "", slow: int = 30
) -> dict[str, Any]:
    """One child process's figures."""
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--child", kind, "--bars", str(bars)]
    cmd += ["--repeat", str(repeat), "--path", path, "--slow", str(slow)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


# -- the scenario ----------------------------------------------------------------------


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every row of the scenario."""
    small, large = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    streamed_bars = 2_000_000 if args.quick else 20_000_000
    compared = 200_000 if args.quick else 1_000_000
    repeat = args.repeat or (2 if args.quick else 3)
    rows = []
    # sizes alternate, each run in a fresh process, best kept: a shared machine's load
    # then weighs on both sizes alike
    runs: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    for _ in range(repeat):
        for bars in (small, large):
            runs[bars].append(run_child("generated", bars))
    per_bar = {}
    rss = {}
    for bars, figures in runs.items():
        best = min(figures, key=lambda f: f["seconds"])
        per_bar[bars] = best["seconds"] / bars * 1e9
        rss[bars] = max(f["peak_rss_mb"] for f in figures)
        every = ", ".join(f"{f['seconds'] / bars * 1e9:.0f}" for f in figures)
        rows.append(
            common.row(
                "3",
                f"in memory, {bars:,} generated bars",
                "engine loop time per bar",
                round(per_bar[bars], 1),
                "ns",
                note=f"best of {repeat} processes (ns/bar: {every}): {best['seconds']:.2f} s"
                f" ({bars / best['seconds']:,.0f} bars/s), end to end {best['wall']:.1f} s,"
                f" {best['fills']:,} fills, peak RSS {rss[bars]:.0f} MB;"
                f" load average {os.getloadavg()[0]:.1f} at the end",
            )
        )
    ratio = per_bar[large] / per_bar[small]
    rows.append(
        common.row(
            "3",
            "linear scaling",
            f"time per bar at {large:,} bars",
            round(per_bar[large], 1),
            "ns",
            reference=f"time per bar at {small:,}",
            reference_value=round(per_bar[small], 1),
            ratio=ratio,
            limit="ratio <= 1.15",
            met=ratio <= 1.15,
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / f"{SYMBOL}.parquet")
        written = run_child("write", streamed_bars, path=path)
        f = run_child("streamed", streamed_bars, path=path)
        few = run_child("streamed", streamed_bars, path=path, slow=FEW_TRADES)
        complete = f["bars"] == few["bars"] == streamed_bars
        per_order = (f["peak_rss_mb"] - few["peak_rss_mb"]) * 2**20 / (f["fills"] - few["fills"])
        rows.append(
            common.row(
                "3",
                f"{streamed_bars:,} bars streamed from Parquet",
                "peak RSS",
                round(f["peak_rss_mb"], 1),
                "MB",
                reference=f"in memory, {large:,} bars",
                reference_value=round(rss[large], 1),
                ratio=f["peak_rss_mb"] / rss[large],
                limit="< 600 MB",
                met=f["peak_rss_mb"] < 600 and complete,
                note=f"{f['bars']:,} bars run in {f['seconds']:.1f} s"
                f" ({f['bars'] / f['seconds']:,.0f} bars/s, end to end {f['wall']:.1f} s),"
                f" {f['fills']:,} fills, {f['curve_points']:,} equity points;"
                f" about {per_order:,.0f} bytes kept per fill (orders, fills, round trips,"
                f" the venue's books); file {written['bytes'] / 2**20:.0f} MB written in"
                f" {written['seconds']:.0f} s (writer peak RSS {written['peak_rss_mb']:.0f} MB)",
            )
        )
        rows.append(
            common.row(
                "3",
                f"{streamed_bars:,} bars streamed from Parquet,"
                f" SMA({FEW_TRADES // 3}/{FEW_TRADES}): few orders",
                "peak RSS",
                round(few["peak_rss_mb"], 1),
                "MB",
                note=f"{few['fills']:,} fills: what streaming itself keeps (windows, a chunk,"
                f" the sampled curve), {few['seconds']:.1f} s",
            )
        )
        os.unlink(path)
        c = run_child("compare", compared, path=path)
        rows.append(
            common.row(
                "3",
                f"{compared:,} bars from Parquet",
                "identical fills and final equity, streamed (2 chunk sizes) vs in memory",
                c["fills"],
                "fills",
                limit="identical",
                met=c["identical"],
            )
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--repeat", type=int, default=None, help="runs of each size; best kept")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario (see the module's docstring), or one child process."""
    args = sys.argv[1:] if argv is None else argv
    if "--child" in args:
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", choices=sorted(CHILDREN), required=True)
        parser.add_argument("--bars", type=int, required=True)
        parser.add_argument("--repeat", type=int, default=1)
        parser.add_argument("--path", default="")
        parser.add_argument("--slow", type=int, default=30)
        child = parser.parse_args(args)
        from engine.telemetry import configure_logging

        configure_logging("WARNING")
        print(json.dumps(CHILDREN[child.child](child)))
        return 0
    return common.scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
