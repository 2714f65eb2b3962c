"""Config drift: diffs, reload of risk limits in a running engine, drift on restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from engine import Engine, PluginSettings
from engine.cli import main
from engine.drift import Change, diff

CONFIG = """
[engine]
name = "drift"
initial_cash = "100000"

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
interval = "1s"
start_price = "100"

[[strategies]]
type = "sma_crossover"
fast = {fast}
slow = 6
quantity = "1"

[[guards]]
type = "max_position"
limit = "{limit}"
{journal}
"""


def write(path: Path, *, limit: str = "0.5", fast: int = 2, journal: str = "") -> Path:
    path.write_text(CONFIG.format(limit=limit, fast=fast, journal=journal))
    return path


def test_diff_names_every_changed_leaf() -> None:
    old = {"guards": [{"type": "max_position", "limit": "0.5"}], "engine": {"name": "a"}}
    new = {"guards": [{"type": "max_position", "limit": "0.2"}, {"type": "kill_switch"}]}
    assert diff(old, new) == [
        Change("engine", {"name": "a"}, None),
        Change("guards[0].limit", "0.5", "0.2"),
        Change("guards[1]", None, {"type": "kill_switch"}),
    ]
    assert str(Change("guards[0].limit", "0.5", "0.2")) == "guards[0].limit: '0.5' -> '0.2'"
    assert diff({"a": Decimal("1.0")}, {"a": "1.0"}) == []


async def test_reload_applies_risk_limits_and_reports_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path / "paper.toml")
    eng = Engine.from_config(path, settings=PluginSettings(builtin_only=True))
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=200.0))
    while eng.active_run is None or len(eng.active_run.kernel.fills) < 2:
        await asyncio.sleep(0.01)
    write(path, limit="0.2", fast=3)
    report = await eng.reload()
    reduced_before = {r.after for r in eng.active_run.kernel.pipeline.reductions}
    seen = len(eng.active_run.kernel.pipeline.reductions)
    while len(eng.active_run.kernel.pipeline.reductions) < seen + 2:
        await asyncio.sleep(0.01)
    after = {r.after for r in eng.active_run.kernel.pipeline.reductions[seen:]}
    stop.set()
    await task
    assert [str(c) for c in report.applied] == ["guards[0].limit: '0.5' -> '0.2'"]
    assert [str(c) for c in report.needs_restart] == ["strategies[0].fast: 2 -> 3"]
    assert reduced_before == {Decimal("0.500")} and after <= {Decimal("0.200"), Decimal("0.2")}


async def test_an_invalid_config_is_refused_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "paper.toml")
    eng = Engine.from_config(path, settings=PluginSettings(builtin_only=True))
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=200.0))
    while eng.active_run is None:
        await asyncio.sleep(0.01)
    checks = eng.active_run.kernel.pipeline.checks
    write(path, limit="-1")
    report = await eng.reload()
    stop.set()
    await task
    assert not report.ok
    assert report.lines() == [
        "refused (config invalid): config.guards[0].limit: must be > 0, got -1"
    ]
    assert eng.active_run is None and checks  # nothing was swapped


def test_a_restart_reports_drift_from_the_journal_baseline(tmp_path: Path) -> None:
    journal = f'[journal]\ntype = "sqlite"\npath = "{tmp_path / "j.db"}"\n'
    path = write(tmp_path / "paper.toml", journal=journal)
    Engine.from_config(path, settings=PluginSettings(builtin_only=True))
    asyncio.run(
        Engine.from_config(path, settings=PluginSettings(builtin_only=True)).run(
            max_bars=3, speed=1000.0
        )
    )
    write(path, limit="0.3", journal=journal)
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        asyncio.run(
            Engine.from_config(path, settings=PluginSettings(builtin_only=True)).run(
                max_bars=2, speed=1000.0
            )
        )
    finally:
        logger.remove(sink)
    assert any(
        "config changed since the journal's baseline: guards[0].limit: '0.5' -> '0.3'" in line
        for line in lines
    )
    from engine import SqliteJournal, SqliteJournalConfig

    store = SqliteJournal(SqliteJournalConfig(path=str(tmp_path / "j.db")))
    drift = [e.data for e in store.entries() if e.kind == "config" and "drift" in e.data]
    store.close()
    assert drift == [{"drift": ["guards[0].limit: '0.5' -> '0.3'"]}]


def test_sighup_reloads_a_running_engine(tmp_path: Path) -> None:
    path = write(tmp_path / "paper.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "--log-level",
            "WARNING",
            "run",
            str(path),
            "--paper",
            "--speed",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(2.0)
        write(path, limit="0.25")
        result = CliRunner().invoke(main, ["reload", str(proc.pid)])
        assert result.exit_code == 0 and f"asked process {proc.pid}" in result.output
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "reload: applied: guards[0].limit: '0.5' -> '0.25'" in err


def test_reload_of_a_missing_process() -> None:
    result = CliRunner().invoke(main, ["reload", "999999"])
    assert result.exit_code == 2 and "no process 999999" in result.output
