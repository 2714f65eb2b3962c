"""``pip install`` the plugin (a copy of this folder, into a target directory) and
the ``engine`` command finds it through its entry point: a backtest of a TOML
config with ``[[metrics_stores]] type = "redis"`` writes to Redis."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from engine_plugin_redis import read

PLUGIN = Path(__file__).resolve().parents[1]

CONFIG = """
[engine]
name = "installed"
initial_cash = "10000"
seed = 4

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 600

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20
quantity = "0.1"

[[metrics_stores]]
type = "redis"
url = "{url}"
source = "cli"

[metrics]
interval = "1h"
"""


@pytest.mark.slow
def test_installed_plugin_is_found_and_the_cli_writes_to_redis(
    tmp_path: Path, redis_url: str
) -> None:
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
    assert listed["redis"]["distribution"] == "engine-plugin-redis"
    assert listed["redis"]["version"] == "0.1.0"
    assert listed["redis"]["status"] == "loaded"
    assert listed["redis"]["hooks"] == ["engine_metrics_stores"]

    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=redis_url))
    summary = json.loads(engine("backtest", str(config), "--json", "--no-progress"))
    (equity,) = read(redis_url, "engine_equity")
    assert equity.source == "cli"
    assert len(equity.points) == 10  # 01:00 ... 09:00, and the final collection at 09:59
    assert equity.last == float(Decimal(summary["final_equity"]))  # as the engine converts
    (filled,) = read(redis_url, "engine_orders_total", {"state": "filled"})
    assert filled.last == summary["orders"]["filled"]
