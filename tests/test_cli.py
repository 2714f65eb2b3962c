"""End-to-end runs of the ``engine`` command, as a user types them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from constants import BUILTINS

ROOT = Path(__file__).resolve().parents[1]
ENGINE = str(Path(sys.executable).with_name("engine"))


def engine(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENGINE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def small_config(tmp_path: Path, **feed: object) -> Path:
    text = (
        (ROOT / "examples" / "sma_crossover.toml")
        .read_text()
        .replace("bars = 525600", "bars = 20000")
    )
    path = tmp_path / "small.toml"
    path.write_text(text)
    return path


def test_backtest_of_the_example_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = engine("backtest", "examples/sma_crossover.toml", "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    for label in (
        "bars",
        "525,600",
        "final equity",
        "sharpe",
        "max drawdown",
        "win rate",
        "exposure",
        "trades",
    ):
        assert label in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bars"] == 525_600 and summary["stats"]["trades"] > 1000
    trades = (out / "trades.csv").read_text().splitlines()
    assert trades[0].startswith("instrument,strategy,direction,quantity,entry_ts")
    assert len(trades) - 1 == summary["stats"]["trades"]
    assert len((out / "equity.csv").read_text().splitlines()) == 525_601


def test_backtest_json_summary(tmp_path: Path) -> None:
    proc = engine("backtest", str(small_config(tmp_path)), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["mode"] == "backtest" and summary["bars"] == 20_000
    assert set(summary) >= {
        "final_equity",
        "fees",
        "orders",
        "orders_denied",
        "denials_by_reason",
        "stats",
    }


def test_a_bad_config_prints_path_problem_lines_and_exits_2() -> None:
    for args in (
        ("config", "check", "tests/data/bad_config.toml"),
        ("backtest", "tests/data/bad_config.toml"),
    ):
        proc = engine(*args)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            "config.feed.bars: expected an integer, got a string ('many')",
            "config.strategies[0].slow: must be > 0, got -30",
            "config.strategies[0].fats: unknown key (did you mean 'fast'?)",
        ]
        assert "Traceback" not in proc.stdout + proc.stderr


def test_config_check_ok_and_show() -> None:
    proc = engine("config", "check", "examples/sma_crossover.toml", "--show")
    assert proc.returncode == 0
    assert "OK (1 instrument(s); strategies: sma_crossover)" in proc.stdout
    assert '"fee_bps": "1"' in proc.stdout


def test_plugins_lists_every_builtin() -> None:
    proc = engine("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    infos = {i["name"]: i for i in json.loads(proc.stdout)}
    assert set(infos) >= BUILTINS
    assert all(
        infos[n]["status"] == "loaded" and infos[n]["distribution"] == "engine" for n in BUILTINS
    )
    table = engine("plugins").stdout
    assert all(name in table for name in BUILTINS)


def test_hooks_documents_every_hook() -> None:
    from engine import hookspecs

    proc = engine("hooks")
    names = [n for n in dir(hookspecs) if n.startswith("engine_")]
    assert len(names) >= 17
    assert all(n in proc.stdout for n in names) and "Example" in proc.stdout


def test_disabling_a_plugin_removes_its_component() -> None:
    proc = engine(
        "--disable-plugin", "sma_crossover", "config", "check", "examples/sma_crossover.toml"
    )
    assert proc.returncode == 2
    assert "config.strategies[0].type: unknown strategy type 'sma_crossover'" in proc.stderr


def test_run_needs_paper_with_a_simulated_broker() -> None:
    proc = engine("run", "examples/paper.toml")
    assert proc.returncode == 2
    assert "config.broker.type: 'simulated' is a simulated broker: pass --paper" in proc.stderr


def test_paper_run_with_a_bar_limit() -> None:
    proc = engine("run", "examples/paper.toml", "--paper", "--speed", "50", "--max-bars", "40")
    assert proc.returncode == 0, proc.stderr
    assert "stopped after 40 bars" in proc.stderr
    assert "paper report" in proc.stdout


@pytest.mark.slow
def test_paper_run_stops_cleanly_on_sigint_with_a_summary() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [ENGINE, "run", "examples/paper.toml", "--paper", "--speed", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped after" in err and "Traceback" not in err
    assert "paper report" in out and "final equity" in out


def test_help_does_not_import_plugins_but_plugin_commands_run(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "hello_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "hello_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hello-plugin\nVersion: 0.1\n"
    )
    (site / "hello_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[engine]\nhello = hello_plugin\n"
    )
    (site / "hello_plugin.py").write_text(
        "import click, pathlib\n"
        "from engine import CliCommand, hookimpl\n"
        "pathlib.Path(__file__).with_name('imported').write_text('yes')\n"
        "@click.command()\n"
        "def hello():\n"
        "    click.echo('hello from a plugin')\n"
        "@hookimpl\n"
        "def engine_cli_commands():\n"
        "    return [CliCommand(name='hello', command=hello)]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = engine("--help", env=env)
    assert proc.returncode == 0 and "engine plugins" in proc.stdout
    assert not (site / "imported").exists()
    proc = engine("hello", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "hello from a plugin"


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.toml")))
def test_every_example_config_checks(example: str) -> None:
    proc = engine("config", "check", f"examples/{example}", "--show")
    assert proc.returncode == 0, proc.stderr
    assert f"examples/{example}: OK" in proc.stdout
