"""A paper session killed with SIGKILL at 20 seeded moments and restarted each time
ends exactly where an uninterrupted session of the same seed ends: same positions,
cash and order history, no order lost, none duplicated at the venue.

Both sessions trade an SMA crossover on the same CSV bars against the simulated
venue with a state file (a venue that outlives the engine process), journaling to
SQLite; the interrupted one resumes from its journal and reconciles with the venue
after every restart.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import SqliteJournal, SqliteJournalConfig

BARS = 1600
KILLS = 20
SEED = 20261125
SPEED = 24_000  # one-minute bars every 2.5 ms


def write_bars(path: Path) -> None:
    rng = random.Random(SEED)
    price, start = 2000.0, 1_767_225_600  # 2026-01-01T00:00:00Z
    rows = ["timestamp,open,high,low,close,volume"]
    for k in range(BARS):
        o = price
        c = round(max(1.0, o * (1 + rng.gauss(0, 0.004))), 2)
        h, lo = round(max(o, c) * 1.001, 2), round(min(o, c) * 0.999, 2)
        rows.append(f"{start + 60 * k},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},10")
        price = c
    path.write_text("\n".join(rows) + "\n")


def session(folder: Path, bars: Path) -> Path:
    folder.mkdir()
    config = folder / "paper.toml"
    config.write_text(
        f"""
[engine]
name = "crash"
initial_cash = "100000"
seed = 1

[[instruments]]
symbol = "ETH-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "csv"
path = "{bars}"

[broker]
type = "simulated"
fee_bps = "2"
state = "{folder / "venue.db"}"

[journal]
type = "sqlite"
path = "{folder / "journal.db"}"

[[strategies]]
type = "sma_crossover"
fast = 3
slow = 8
quantity = "1"
"""
    )
    return config


def start(config: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(config), "--paper", "--speed", str(SPEED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(config: Path) -> None:
    proc = start(config)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]


def outcome(folder: Path) -> dict[str, Any]:
    """The account and the order history, from the journal (replayed) and the venue."""
    import asyncio

    from engine import Engine

    store = SqliteJournal(SqliteJournalConfig(path=str(folder / "journal.db")))
    try:
        result = asyncio.run(
            Engine.from_journal(store.entries()).replay_journal(store.entries(), load_data=False)
        )
        bars = max((e.data["index"] for e in store.entries() if e.kind == "bar"), default=-1)
        reconciled = [e.data for e in store.entries() if e.kind == "reconcile"]
    finally:
        store.close()
    import sqlite3

    venue = sqlite3.connect(folder / "venue.db")
    venue_orders = venue.execute("SELECT client_id, state, filled_quantity FROM orders").fetchall()
    venue_fills = venue.execute("SELECT fill_id, quantity, price, ts FROM fills").fetchall()
    venue.close()
    return {
        "last_bar": bars,
        "reconciled": reconciled,
        "cash": str(result.portfolio.cash),
        "positions": {s: str(p.quantity) for s, p in result.portfolio.positions.items()},
        "orders": {
            cid: (
                o.state.value,
                str(o.filled_quantity),
                o.intent.side.value,
                str(o.intent.quantity),
            )
            for cid, o in sorted(result.orders.items())
        },
        "fills": sorted(
            (f.fill_id, str(f.quantity), str(f.price), f.ts) for f in result.fill_records
        ),
        "venue_orders": sorted(venue_orders),
        "venue_fills": sorted(venue_fills),
    }


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_twenty_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    write_bars(bars)
    reference = session(tmp_path / "uninterrupted", bars)
    finish(reference)
    expected = outcome(tmp_path / "uninterrupted")
    assert expected["last_bar"] == BARS - 1 and len(expected["orders"]) > 10

    crashed = session(tmp_path / "killed", bars)
    rng = random.Random(SEED)
    progress = []
    for _ in range(KILLS):
        # kill once the session has gone a random number of bars further, at a
        # random moment within a bar (bars are 2.5 ms apart)
        target = _last_bar(tmp_path / "killed") + rng.randint(5, 70)
        proc = start(crashed)
        deadline = time.monotonic() + 60
        while _last_bar(tmp_path / "killed") < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the session made no progress"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.003))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        progress.append(_last_bar(tmp_path / "killed"))
    finish(crashed)
    got = outcome(tmp_path / "killed")

    print(f"kills: {KILLS}; last complete bar after each: {progress}")
    findings = [line for r in got["reconciled"] for line in r["findings"]]
    print(f"restarts reconciled: {len(got['reconciled'])}; findings: {findings}")
    print(
        f"orders: {len(got['orders'])} (uninterrupted {len(expected['orders'])});"
        f" venue orders {len(got['venue_orders'])}; fills {len(got['fills'])}"
    )
    assert len(set(progress)) == KILLS and progress[-1] < BARS - 1  # 20 different points
    assert len(got["reconciled"]) >= KILLS  # every restart reconciled (and passed)
    assert all(r["passed"] for r in got["reconciled"])
    missing = sorted(set(expected["orders"]) ^ set(got["orders"]))
    changed = [
        c
        for c in expected["orders"]
        if c in got["orders"] and got["orders"][c] != expected["orders"][c]
    ]
    print(f"orders only on one side: {missing[:6]}; orders that differ: {changed[:6]}")
    assert got["positions"] == expected["positions"]
    assert Decimal(got["cash"]) == Decimal(expected["cash"])
    assert got["orders"] == expected["orders"]  # none lost, none added
    assert got["fills"] == expected["fills"]
    assert got["venue_orders"] == expected["venue_orders"]  # none duplicated at the venue
    assert got["venue_fills"] == expected["venue_fills"]


def _last_bar(folder: Path) -> int:
    path = folder / "journal.db"
    if not path.exists():
        return -1
    from engine.journal.sqlite import scan

    bars = [e.entry().data["index"] for e in scan(str(path), kinds=["bar"])]
    return max(bars, default=-1)


def test_a_torn_write_is_detected_on_start_and_the_run_goes_on(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    write_bars(bars)
    config = session(tmp_path / "torn", bars)
    journal = tmp_path / "torn" / "journal.db"
    proc = start(config)
    deadline = time.monotonic() + 60
    while _last_bar(tmp_path / "torn") < 100:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    wal = journal.with_name(journal.name + "-wal")
    assert wal.stat().st_size > 1000
    with wal.open("r+b") as fh:  # the last write was cut short by the crash
        fh.truncate(wal.stat().st_size - 100)
    proc = start(config)
    deadline = time.monotonic() + 60
    while _last_bar(tmp_path / "torn") < 150:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    torn = [line for line in err.splitlines() if "torn write" in line]
    print(torn)
    assert torn and f"journal {journal}" in torn[0] and "recovered up to record" in torn[0]
    check = subprocess.run(
        [sys.executable, "-m", "engine", "journal", "verify", str(journal)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
