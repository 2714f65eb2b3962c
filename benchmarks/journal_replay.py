"""Journal replay of a large backtest: the report rebuilt from the journal alone must
equal the run's own, figure for figure.

    python benchmarks/journal_replay.py [--bars 1000000]

Runs the throughput benchmark's configuration (SMA 10/30 on generated one-minute
bars, simulated broker) with the default journal (SQLite), replays the journal
(``Engine.from_journal`` + ``replay_journal``: no strategy, no venue; the feed gives
the equity curve), compares the two summaries, trade lists and fill ids, and prints
the times and the journal's size. Exit code 1 if anything differs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest_throughput import config


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("elapsed_seconds", "mode")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    from engine import Engine, SqliteJournal, SqliteJournalConfig
    from engine.telemetry import configure_logging

    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.journal")
        cfg = config(args.bars) | {"journal": {"type": "sqlite", "path": path}}
        started = time.perf_counter()
        original = Engine.from_config(cfg).backtest_sync()
        run_seconds = time.perf_counter() - started
        store = SqliteJournal(SqliteJournalConfig(path=path))
        records = store.last_seq
        started = time.perf_counter()
        replayed = asyncio.run(Engine.from_journal(store.entries()).replay_journal(store.entries()))
        replay_seconds = time.perf_counter() - started
        store.close()
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
    same_summary = comparable(original.summary()) == comparable(replayed.summary())
    same_trades = original.trades.equals(replayed.trades)
    same_fills = [f.fill_id for f in original.fill_records] == [
        f.fill_id for f in replayed.fill_records
    ]
    print(f"bars {args.bars:,}: {len(original.fill_records):,} fills, {records:,} journal records")
    print(f"  backtest with journal  {run_seconds:.2f} s (journal {size / 2**20:.1f} MB)")
    print(f"  replay from journal    {replay_seconds:.2f} s")
    print(f"  final equity           {original.final_equity} / {replayed.final_equity}")
    print(f"  summary identical: {same_summary}; trades identical: {same_trades};"
          f" fill ids identical: {same_fills}")  # fmt: skip
    ok = same_summary and same_trades and same_fills
    print("PASS" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
