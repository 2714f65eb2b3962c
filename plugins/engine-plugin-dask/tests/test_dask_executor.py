"""The ``dask`` executor on a LocalCluster: the same 60-run grid gives the same table
as ``sequential`` and ``local``; failures come back with their parameters."""

from __future__ import annotations

import copy
from typing import Any

import engine_plugin_dask
import pandas as pd
import pytest
from sweep_plugins import GRID_60, SWEEP_CONFIG, FragilePlugin

from engine import ConfigError, Engine, PluginSettings


def make_engine(**extra: Any) -> Engine:
    eng = Engine.from_config(
        copy.deepcopy(SWEEP_CONFIG) | extra, settings=PluginSettings(builtin_only=True)
    )
    eng.register(engine_plugin_dask, "dask")
    return eng


@pytest.mark.slow
def test_the_same_60_run_grid_gives_identical_tables_on_sequential_local_and_dask() -> None:
    tables = {
        executor: make_engine().sweep_sync(GRID_60, executor=executor, workers=2)
        for executor in ("sequential", "local", "dask")
    }
    assert len(tables["sequential"].results) == 60
    assert tables["dask"].executor == "dask"
    for executor in ("local", "dask"):
        pd.testing.assert_frame_equal(tables["sequential"].results, tables[executor].results)
        pd.testing.assert_frame_equal(tables["sequential"].failures, tables[executor].failures)


@pytest.mark.slow
def test_failing_runs_come_back_with_their_parameters() -> None:
    eng = make_engine(
        strategies=[{"type": "fragile", "fast": 5, "slow": 20, "fail": ["3:30"], "at_bar": 50}]
    )
    eng.register(FragilePlugin(), "fragile")
    result = eng.sweep_sync(
        {"strategy.fast": [2, 3], "strategy.slow": [20, 30]}, executor="dask", workers=2
    )
    assert len(result.results) == 3
    assert result.failures[["strategy.fast", "strategy.slow", "error"]].to_dict("records") == [
        {
            "strategy.fast": 3,
            "strategy.slow": 30,
            "error": "RuntimeError: fragile strategy gave up at bar 50",
        }
    ]


def test_a_scheduler_that_does_not_answer_is_a_config_error() -> None:
    from engine.testing.services import free_port

    eng = make_engine(sweep={"dask": {"address": f"tcp://127.0.0.1:{free_port()}", "timeout": 1}})
    with pytest.raises(
        ConfigError, match=r"config\.sweep\.dask\.address: no Dask scheduler answers"
    ):
        eng.sweep_sync({"strategy.fast": [2, 3]}, executor="dask")


def test_the_address_must_look_like_one() -> None:
    eng = make_engine(sweep={"dask": {"address": "localhost"}})
    with pytest.raises(ConfigError) as info:
        eng.check()
    assert str(info.value) == (
        "config.sweep.dask.address: expected a scheduler address like tcp://host:8786,"
        " got 'localhost'"
    )
