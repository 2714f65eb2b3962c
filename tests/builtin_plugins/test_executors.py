"""The built-in executors: the same 60-run grid gives the same table on ``sequential``
and on ``local`` (worker processes from a fork server, or spawned)."""

from __future__ import annotations

import copy
import os
from typing import Any

import pandas as pd
import pytest
from sweep_plugins import GRID_60, SWEEP_CONFIG

from engine import Engine, PluginSettings
from engine.research.settings import default_executor


def sweep(executor: str, **extra: Any) -> Any:
    config = copy.deepcopy(SWEEP_CONFIG) | extra
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))
    return eng.sweep_sync(GRID_60, executor=executor, workers=2)


def test_the_same_60_run_grid_gives_the_same_table_on_sequential_and_local() -> None:
    sequential = sweep("sequential")
    local = sweep("local")
    assert len(sequential.results) == 60 and sequential.failures.empty
    assert (sequential.executor, local.executor) == ("sequential", "local")
    pd.testing.assert_frame_equal(sequential.results, local.results)
    pd.testing.assert_frame_equal(sequential.failures, local.failures)
    assert sequential.results["trades"].nunique() > 10  # the runs really differ


def test_spawned_workers_give_the_same_table() -> None:
    fork_server = sweep("local")
    spawned = sweep("local", sweep={"local": {"start_method": "spawn"}})
    pd.testing.assert_frame_equal(fork_server.results, spawned.results)


def test_local_runs_in_other_processes_and_sequential_in_this_one() -> None:
    config = copy.deepcopy(SWEEP_CONFIG)
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))
    from engine.research.ledger import Ledger
    from engine.research.settings import sweep_settings
    from engine.research.sweep import execute, make_tasks

    tasks = make_tasks(eng, [{"strategy.fast": f} for f in (2, 3, 4, 5)])
    with Ledger(None) as ledger:
        local = execute(eng, tasks, sweep_settings(eng, executor="local", workers=2), ledger)
        here = execute(eng, tasks, sweep_settings(eng, executor="sequential"), ledger)
    assert here.resumed == 4  # the in-memory ledger kept the local runs
    pids = {o.worker.rsplit(":", 1)[1] for o in local.outcomes}
    assert str(os.getpid()) not in pids
    assert 1 <= len(pids) <= 2


def test_the_default_executor_depends_on_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert default_executor() == "sequential"
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert default_executor() == "local"
