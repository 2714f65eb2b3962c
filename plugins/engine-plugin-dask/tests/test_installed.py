"""``pip install`` the plugin (a copy of this folder, into a target directory): the
``engine`` command finds the ``dask`` executor through its entry point, and a sweep
on it writes the same table as the built-in ``sequential`` executor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

PLUGIN = Path(__file__).resolve().parents[1]

CONFIG = """
[engine]
name = "installed"
seed = 5

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 2000

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20
quantity = "0.1"
"""


@pytest.mark.slow
def test_installed_plugin_is_found_and_sweeps_from_the_cli(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"),
            *("--quiet", "--target", str(target), str(source)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["PYTHONPATH"] = str(target)  # the installed copy only, not this source folder

    def engine(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "engine", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = {p["name"]: p for p in json.loads(engine("plugins", "--json"))}
    assert listed["dask"]["distribution"] == "engine-plugin-dask"
    assert listed["dask"]["status"] == "loaded"
    assert listed["dask"]["hooks"] == ["engine_executors"]

    (tmp_path / "config.toml").write_text(CONFIG)
    grid = ["--grid", "strategy.fast=3..9:3", "--grid", "strategy.slow=20,40"]
    tables = {}
    for executor in ("dask", "sequential"):
        out = tmp_path / executor
        summary = json.loads(
            engine(
                "sweep", "config.toml", *grid, "-e", executor, "-w", "2", "-o", str(out), "--json"
            )
        )
        assert (summary["executor"], summary["runs"], summary["failed"]) == (executor, 6, 0)
        tables[executor] = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(tables["sequential"], tables["dask"])
