"""Journal replay of a large backtest: the report rebuilt from the journal alone must
equal the run's own, figure for figure.

    python -m benchmarks.journal_replay [--quick] [--bars 1000000]

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

from benchmarks.common import config, row, scenario_main


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("elapsed_seconds", "mode")}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Backtest with the journal, replay it, compare; the rows."""
    from engine import Engine, SqliteJournal, SqliteJournalConfig

    bars = args.bars or (200_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.journal")
        cfg = config(bars) | {"journal": {"type": "sqlite", "path": path}}
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
    ok = same_summary and same_trades and same_fills
    scenario = f"journal replay, {bars:,} bars, {records:,} records, {size / 2**20:.1f} MB"
    return [
        row(
            "5",
            scenario,
            "replay time",
            round(replay_seconds, 2),
            "s",
            reference="backtest with journal",
            reference_value=round(run_seconds, 2),
            ratio=replay_seconds / run_seconds,
        ),
        row(
            "5",
            scenario,
            "identical report (summary, trades, fill ids)",
            ok,
            "",
            met=ok,
            note=f"final equity {original.final_equity} / {replayed.final_equity}",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's own options."""
    parser.add_argument("--bars", type=int, help="bars (default 1,000,000)")


def main(argv: list[str] | None = None) -> int:
    """Run and print the rows."""
    return scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
