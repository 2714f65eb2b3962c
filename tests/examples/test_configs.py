"""Every example config runs with the command written at its top, as a user copies it
(backtests and paper runs as they are; other commands on fewer bars)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
ENGINE = str(Path(sys.executable).with_name("engine"))
#: the documented command, in a comment line near the top: "#   engine ... (remark)"
COMMAND = re.compile(r"^#\s+(engine \S.*?)(?:\s{2,}\(.*\))?\s*$", re.MULTILINE)


def documented_command(path: Path) -> list[str]:
    head = "\n".join(path.read_text().splitlines()[:5])
    match = COMMAND.search(head)
    assert match, f"{path.name}: no '#   engine ...' command line in its first five lines"
    return shlex.split(match[1])


#: the commands whose examples this module runs
RUN_HERE = ("backtest", "run")


def test_there_are_examples_of_every_kind() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "sma_crossover.toml",
        "risk_demo.toml",
        "perp_demo.toml",
        "paper.toml",
    }


@pytest.mark.parametrize(
    "example",
    [p for p in EXAMPLES if documented_command(p)[1] not in RUN_HERE],
    ids=lambda p: p.name,
)
def test_an_example_of_another_command_runs_as_documented_on_fewer_bars(
    example: Path, tmp_path: Path
) -> None:
    """``engine sweep`` / ``engine walkforward`` examples: the documented command, on
    3,000 bars instead of hundreds of thousands (their own tests check the results)."""
    args = documented_command(example)
    assert args[0] == "engine" and f"examples/{example.name}" in args
    (tmp_path / "examples").mkdir()
    text, count = re.subn(r"(?m)^bars\s*=\s*\d+", "bars = 3000", example.read_text())
    assert count == 1, f"{example.name}: expected one 'bars = N' line"
    (tmp_path / "examples" / example.name).write_text(text)
    proc = subprocess.run(
        [ENGINE, *args[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    if "--output" in args:
        out = tmp_path / args[args.index("--output") + 1]
        assert out.is_dir() and any(out.iterdir())


@pytest.mark.parametrize(
    "example",
    [p for p in EXAMPLES if documented_command(p)[1] in RUN_HERE],
    ids=lambda p: p.name,
)
def test_the_example_runs_as_documented(example: Path, tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "examples",
        tmp_path / "examples",
        ignore=lambda d, n: [f for f in n if not f.endswith(".toml")],
    )
    args = documented_command(example)
    assert args[0] == "engine" and f"examples/{example.name}" in args
    if args[1] == "run":  # paper trading runs until Ctrl-C: stop it after a few bars
        args += ["--speed", "50", "--max-bars", "30"]
    proc = subprocess.run(
        [ENGINE, *args[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    mode = "paper" if args[1] == "run" else "backtest"
    assert re.search(rf"{mode}\s+report", proc.stdout), proc.stdout  # the title may wrap
    assert "final equity" in proc.stdout
    trades = re.search(r"│ trades +│ +([\d,]+) │", proc.stdout)
    assert trades is not None
    if mode == "backtest":
        assert int(trades[1].replace(",", "")) > 0
    if "--output" in args:
        out = tmp_path / args[args.index("--output") + 1]
        assert {p.name for p in out.iterdir()} >= {"summary.json", "trades.csv", "equity.csv"}
