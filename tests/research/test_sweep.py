"""Sweeps through the API: failures reported with their parameters, resuming from the
output folder, the notebook API, the files written, errors naming the bad path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sweep_plugins import FragilePlugin

from engine import ConfigError, Engine, PluginSettings
from engine.research.ledger import Ledger
from engine.research.sweep import SweepResult


def engine_of(config: dict[str, Any]) -> Engine:
    return Engine.from_config(config, settings=PluginSettings(builtin_only=True))


def fragile_engine(config: dict[str, Any]) -> Engine:
    config["strategies"] = [
        {"type": "fragile", "fast": 5, "slow": 20, "fail": ["7:20", "7:40", "9:30"], "at_bar": 150}
    ]
    eng = engine_of(config)
    eng.register(FragilePlugin(), "fragile")
    return eng


FRAGILE_GRID = {"strategy.fast": "1..10", "strategy.slow": [20, 30, 40, 50]}


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_three_of_forty_runs_raise_and_the_sweep_reports_them_and_goes_on(
    sweep_config: dict[str, Any], executor: str
) -> None:
    eng = fragile_engine(sweep_config)
    seen: list[tuple[int, int, int]] = []
    result = eng.sweep_sync(
        FRAGILE_GRID, executor=executor, workers=2, progress=lambda *a: seen.append(a)
    )
    assert (len(result.results), len(result.failures), result.runs) == (37, 3, 40)
    failed = result.failures[["strategy.fast", "strategy.slow", "error"]].to_dict("records")
    assert failed == [
        {
            "strategy.fast": fast,
            "strategy.slow": slow,
            "error": "RuntimeError: fragile strategy gave up at bar 150",
        }
        for fast, slow in [(7, 20), (7, 40), (9, 30)]
    ]
    assert list(result.failures["run"]) == [24, 26, 33]
    assert "Traceback" in result.tracebacks[24]
    assert set(result.results["run"]) == set(range(40)) - {24, 26, 33}
    assert (result.results["trades"] > 0).all()
    assert seen[-1] == (40, 40, 3)
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)


def test_a_sweep_run_again_resumes_from_its_output_folder(
    sweep_config: dict[str, Any], tmp_path: Path
) -> None:
    eng = fragile_engine(sweep_config)
    first = eng.sweep_sync(FRAGILE_GRID, executor="sequential", output=tmp_path)
    assert (first.computed, first.resumed) == (40, 0)
    assert Ledger.count_lines(tmp_path) == 40
    again = fragile_engine(sweep_config).sweep_sync(
        FRAGILE_GRID, executor="sequential", output=tmp_path
    )
    # the 37 successes are skipped; the 3 failures are tried again (and fail again)
    assert (again.computed, again.resumed) == (3, 37)
    assert Ledger.count_lines(tmp_path) == 43
    pd.testing.assert_frame_equal(first.results, again.results)
    pd.testing.assert_frame_equal(first.failures, again.failures)
    # a different sweep into the same folder shares the runs it has in common
    wider = fragile_engine(sweep_config).sweep_sync(
        {"strategy.fast": "1..11", "strategy.slow": [20, 30, 40, 50]},
        executor="sequential",
        output=tmp_path,
    )
    assert (wider.computed, wider.resumed) == (7, 37)


def test_a_torn_last_line_is_ignored_and_that_run_computed_again(
    sweep_config: dict[str, Any], tmp_path: Path
) -> None:
    eng = engine_of(sweep_config)
    grid = {"strategy.fast": [3, 5], "strategy.slow": [20, 30]}
    first = eng.sweep_sync(grid, executor="sequential", output=tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    lines = ledger.read_text().splitlines(keepends=True)
    ledger.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    again = engine_of(sweep_config).sweep_sync(grid, executor="sequential", output=tmp_path)
    assert (again.computed, again.resumed) == (1, 3)
    pd.testing.assert_frame_equal(first.results, again.results)


def test_output_files(sweep_config: dict[str, Any], tmp_path: Path) -> None:
    result = engine_of(sweep_config).sweep_sync(
        {"strategy.fast": [3, 5, 8], "strategy.slow": [8, 20, 30]},
        executor="sequential",
        metric="total_return",
        output=tmp_path,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "failures.csv",
        "heatmap.png",
        "ledger.jsonl",
        "results.csv",
        "results.parquet",
        "summary.json",
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), result.results)
    assert list(pd.read_csv(tmp_path / "results.csv")["run"]) == list(result.results["run"])
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures.drop(columns="run_id").to_dict("records") == [
        {
            "run": 6,
            "strategy.fast": 8,
            "strategy.slow": 8,
            "error": "ConfigError: config.strategies[0]: fast (8) must be smaller than slow (8)",
        }
    ]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["runs"], summary["succeeded"], summary["failed"]) == (9, 8, 1)
    best = result.best()
    assert list(best["total_return"]) == sorted(best["total_return"], reverse=True)
    assert [b["run"] for b in summary["best"]] == list(best["run"])
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_the_notebook_api_awaits_a_sweep(sweep_config: dict[str, Any]) -> None:
    eng = engine_of(sweep_config)
    result = await eng.sweep(
        ["strategy.fast=3,5", "strategy.slow=20..30:10"], executor="sequential"
    )
    assert isinstance(result, SweepResult)
    assert result.results[["strategy.fast", "strategy.slow"]].values.tolist() == [
        [3, 20],
        [3, 30],
        [5, 20],
        [5, 30],
    ]
    assert "<table" in result._repr_html_()


def test_random_search_draws_the_same_runs_for_the_same_seed(
    sweep_config: dict[str, Any],
) -> None:
    eng = engine_of(sweep_config)
    grid = {"strategy.fast": "2..9", "strategy.slow": "12..60"}
    a = eng.sweep_sync(grid, samples=6, seed=4, executor="sequential")
    b = eng.sweep_sync(grid, samples=6, seed=4, executor="sequential")
    pd.testing.assert_frame_equal(a.results, b.results)
    assert len(a.results) == 6
    assert not a.grid


def test_shipped_and_worker_loaded_bars_give_the_same_table(
    sweep_config: dict[str, Any],
) -> None:
    grid = {"strategy.fast": [3, 6], "strategy.slow": [20, 40]}
    shipped = engine_of(sweep_config).sweep_sync(grid, executor="local", workers=2)
    sweep_config["sweep"] = {"data": "load"}
    loaded = engine_of(sweep_config).sweep_sync(grid, executor="local", workers=2)
    pd.testing.assert_frame_equal(shipped.results, loaded.results)


def test_a_sweep_over_the_feed_loads_each_history(sweep_config: dict[str, Any]) -> None:
    result = engine_of(sweep_config).sweep_sync(
        {"feed.bars": [1000, 2000], "strategy.fast": [3, 5]}, executor="sequential"
    )
    assert list(result.results["bars"]) == [1000, 1000, 2000, 2000]


def test_a_path_naming_no_key_of_its_component_is_an_error(
    sweep_config: dict[str, Any],
) -> None:
    eng = engine_of(sweep_config)
    with pytest.raises(ConfigError) as info:
        eng.sweep_sync({"strategy.fsat": [3, 5]}, executor="sequential")
    assert str(info.value) == (
        "strategy.fsat: config.strategies[0].fsat: unknown key (did you mean 'fast'?)"
    )
    with pytest.raises(ConfigError) as info:
        eng.sweep_sync({"feed.bras": [3, 5]}, executor="sequential")
    assert str(info.value).startswith(
        "feed.bras: config.feed.bras: unknown key (did you mean 'bars'?)"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"executor": "dsak"},
            "config.sweep.executor: unknown executor 'dsak'; available: local, sequential",
        ),
        (
            {"dask": {"address": "tcp://127.0.0.1:8786"}},
            "config.sweep.dask: unknown executor 'dask'; available: local, sequential;"
            " it belongs to a plugin: pip install engine-plugin-dask",
        ),
        (
            {"wrokers": 2},
            "config.sweep.wrokers: unknown key (did you mean 'workers'?);"
            " known keys: data, executor, metric, minimize, top, workers",
        ),
        ({"workers": 0}, "config.sweep.workers: must be > 0, got 0"),
        (
            {"sequential": {"x": 1}},
            "config.sweep.sequential: executor 'sequential' takes no options",
        ),
    ],
)
def test_sweep_section_problems_are_config_errors(
    sweep_config: dict[str, Any], section: dict[str, Any], message: str
) -> None:
    sweep_config["sweep"] = section
    with pytest.raises(ConfigError) as info:
        engine_of(sweep_config).check()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"data": "copy"}, "config.sweep.data: "),
        (
            {"local": {"start_method": "teleport"}},
            "config.sweep.local.start_method: expected one of",
        ),
    ],
)
def test_sweep_option_values_are_checked(
    sweep_config: dict[str, Any], section: dict[str, Any], match: str
) -> None:
    sweep_config["sweep"] = section
    with pytest.raises(ConfigError, match=match):
        engine_of(sweep_config).check()
