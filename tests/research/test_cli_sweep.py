"""``engine sweep`` and ``engine walkforward`` from the command line: tables and files,
clear errors, and a sweep killed with SIGKILL that resumes without recomputing the
runs it had finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.research.ledger import Ledger

CONFIG = """
[engine]
name = "cli-sweep"
seed = 9

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = {bars}
volatility = 0.003

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20
quantity = "0.1"

[sweep]
metric = "total_return"
top = 3
"""

GRID = ["--grid", "strategy.fast=2..8:2", "--grid", "strategy.slow=10..38:2"]  # 60 runs


def engine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["COLUMNS"] = "200"  # rich wraps tables at the terminal width
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=600,
    )


def config(tmp_path: Path, bars: int = 2000) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.format(bars=bars))
    return path


def test_sweep_prints_the_best_runs_and_writes_the_tables(tmp_path: Path) -> None:
    config(tmp_path)
    out = tmp_path / "out"
    done = engine(
        "sweep", "sweep.toml", "--grid", "strategy.fast=5,10,20", "--grid", "strategy.slow=10,30",
        "-e", "sequential", "-o", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best 3 of 6 runs by total_return (highest first)" in done.stdout
    assert "2 failed run(s)" in done.stdout
    assert "fast (10) must be smaller than slow (10)" in done.stdout
    assert "6 runs: 4 succeeded, 2 failed; computed 6;" in done.stdout
    results = pd.read_parquet(out / "results.parquet")
    assert list(results.columns[:4]) == ["run", "run_id", "strategy.fast", "strategy.slow"]
    assert list(results["run"]) == [0, 1, 3, 5]
    assert (out / "heatmap.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert [b["run"] for b in summary["best"]] == list(
        results.sort_values(["total_return", "run"], ascending=[False, True])["run"][:3]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--grid", "strategy.fsat=5,10"],
            "strategy.fsat: config.strategies[0].fsat: unknown key (did you mean 'fast'?)",
        ),
        (
            ["--grid", "strategy.fast=9..3"],
            "strategy.fast: empty range '9..3': the start is above the end",
        ),
        (
            ["--grid", "strategy.fast=5", "-e", "dask"],
            "--executor: unknown executor 'dask'; available: local, sequential; it belongs to a plugin: pip install engine-plugin-dask",
        ),
        ([], "--grid: no parameters given (e.g. --grid strategy.fast=5..20:5)"),
        (["--grid", "strategy.fast=5", "-w", "0"], "--workers: must be > 0, got 0"),
    ],
)
def test_sweep_mistakes_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    config(tmp_path)
    done = engine("--no-plugins", "sweep", "sweep.toml", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_recomputing_finished_runs(tmp_path: Path) -> None:
    config(tmp_path, bars=20_000)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    args = [sys.executable, "-m", "engine", "sweep", "sweep.toml", *GRID, "-e", "sequential"]
    proc = subprocess.Popen(
        [*args, "-o", str(out), "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while Ledger.count_lines(out) < 5 and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = Ledger(out)
    recorded = dict(finished.done)
    finished.close()
    assert 5 <= len(recorded) < 60, "the sweep was killed mid-way"

    done = engine(*args[3:], "-o", str(out), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] == len(recorded)
    assert summary["computed"] == 60 - len(recorded)
    assert summary["runs"] == 60 and summary["failed"] == 0
    lines = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    ids = [line["run_id"] for line in lines if "run_id" in line]
    assert len(ids) == 60 == len(set(ids)), "no run was computed twice"
    # and the table is the one an uninterrupted sweep writes
    whole = engine(*args[3:], "-o", str(tmp_path / "whole"), "--json", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "results.parquet"),
        pd.read_parquet(tmp_path / "whole" / "results.parquet"),
    )


def test_walkforward_prints_the_windows_and_writes_report_and_plot(tmp_path: Path) -> None:
    config(tmp_path, bars=6000)
    out = tmp_path / "wf"
    done = engine(
        "walkforward", "sweep.toml", "--grid", "strategy.fast=3,6", "--grid", "strategy.slow=20,40",
        "--windows", "3", "--in-sample", "2", "-e", "sequential", "-o", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "walk-forward windows" in done.stdout
    assert "out-of-sample: total return" in done.stdout
    assert "15 runs computed, 0 resumed" in done.stdout  # 3 windows x 4 in sample + 3 out
    windows = pd.read_csv(out / "windows.csv")
    assert list(windows["window"]) == [0, 1, 2]
    assert (out / "walkforward.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "oos_equity.csv").exists()
