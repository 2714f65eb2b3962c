"""Every example config runs with the command written at its top, as a user copies it."""

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


def test_there_are_examples_of_every_kind() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "sma_crossover.toml",
        "risk_demo.toml",
        "perp_demo.toml",
        "paper.toml",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
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
