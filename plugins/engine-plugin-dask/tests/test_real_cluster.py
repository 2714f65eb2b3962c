"""A sweep through a real scheduler's address from the config: ``dask scheduler`` and
two ``dask worker`` processes on 127.0.0.1 give the same table as ``sequential``."""

from __future__ import annotations

import copy
from pathlib import Path

import engine_plugin_dask
import pandas as pd
import pytest
from sweep_plugins import GRID_60, SWEEP_CONFIG, FragilePlugin

from engine import Engine, PluginSettings

CONFIG = """
[engine]
name = "sweep-test"
initial_cash = "100000"
seed = 11

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 3000
start_price = "100"
volatility = 0.003

[broker]
type = "simulated"
fee_bps = "1"

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20
quantity = "1"

[sweep]
executor = "dask"

[sweep.dask]
address = "{address}"
"""


@pytest.mark.slow
def test_a_sweep_on_real_scheduler_and_worker_processes_gives_the_same_table(
    dask_cluster: str, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.format(address=dask_cluster))
    eng = Engine.from_config(path, settings=PluginSettings(builtin_only=True))
    eng.register(engine_plugin_dask, "dask")
    assert eng.config.raw["sweep"]["dask"]["address"] == dask_cluster
    on_cluster = eng.sweep_sync(GRID_60)
    assert on_cluster.executor == "dask"
    reference = Engine.from_config(
        copy.deepcopy(SWEEP_CONFIG), settings=PluginSettings(builtin_only=True)
    ).sweep_sync(GRID_60, executor="sequential")
    assert len(reference.results) == 60
    pd.testing.assert_frame_equal(reference.results, on_cluster.results)
    workers = {w.rsplit(":", 1)[1] for w in _workers(eng, tmp_path)}
    assert len(workers) == 2  # both worker processes ran tasks


def _workers(eng: Engine, folder: Path) -> list[str]:
    """Run 8 more tasks with an output folder and read which processes ran them."""
    import json

    eng.sweep_sync({"strategy.fast": "2..9"}, output=folder / "out")
    lines = (folder / "out" / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line)["worker"] for line in lines]


@pytest.mark.slow
def test_failures_on_the_cluster_come_back_with_their_parameters(dask_cluster: str) -> None:
    config = copy.deepcopy(SWEEP_CONFIG) | {
        "strategies": [{"type": "fragile", "fail": ["4:20", "6:30"], "at_bar": 40}],
        "sweep": {"executor": "dask", "dask": {"address": dask_cluster}},
    }
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))
    eng.register(engine_plugin_dask, "dask")
    eng.register(FragilePlugin(), "fragile")
    result = eng.sweep_sync({"strategy.fast": [2, 4, 6], "strategy.slow": [20, 30]})
    assert len(result.results) == 4
    assert result.failures[["strategy.fast", "strategy.slow"]].values.tolist() == [
        [4, 20],
        [6, 30],
    ]
    assert set(result.failures["error"]) == {"RuntimeError: fragile strategy gave up at bar 40"}
