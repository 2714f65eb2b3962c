"""Walk-forward: windows, the in-sample choice, the out-of-sample runs and the
stitched equity, checked against backtests run by hand on the same bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import ConfigError, Engine, PluginSettings
from engine.research.tasks import slice_window
from engine.research.walkforward import windows


def test_rolling_windows_tile_the_end_of_the_timeline() -> None:
    ts = np.arange(900, dtype=np.int64) * 60
    cut = windows(ts, n=5, in_sample=4.0)
    # 900 bars = (4 + 5) units of 100: IS 400 bars, then OOS windows of 100
    assert [(w.is_start, w.is_stop, w.oos_start, w.oos_stop) for w in cut] == [
        (
            ts[100 * k],
            ts[400 + 100 * k],
            ts[400 + 100 * k],
            ts[500 + 100 * k] if k < 4 else ts[-1] + 1,
        )
        for k in range(5)
    ]
    anchored = windows(ts, n=5, in_sample=4.0, anchored=True)
    assert {w.is_start for w in anchored} == {0}
    assert [w.oos_start for w in anchored] == [w.oos_start for w in cut]


def test_too_few_bars_for_the_windows_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="10 bars are too few for 5 windows"):
        windows(np.arange(10, dtype=np.int64), n=5)


def test_walk_forward_picks_the_in_sample_best_and_stitches_the_out_of_sample_runs(
    sweep_config: dict[str, Any], tmp_path: Path
) -> None:
    sweep_config["feed"]["bars"] = 6000
    eng = Engine.from_config(sweep_config, settings=PluginSettings(builtin_only=True))
    grid = {"strategy.fast": [3, 6], "strategy.slow": [15, 40]}
    result = eng.walk_forward_sync(
        grid, windows=3, in_sample=3.0, executor="sequential", metric="total_return",
        output=tmp_path,
    )  # fmt: skip
    assert result.bars == 6000 and len(result.windows) == 3
    assert len(result.in_sample) == 12 and result.failures.empty
    data = eng.backtest_sync().series
    capital = 100_000.0
    for row in result.windows.to_dict("records"):
        start, stop = row["is_start"].value, row["is_end"].value
        scores = {}
        for fast in (3, 6):
            for slow in (15, 40):
                by_hand = Engine.from_config(
                    sweep_config
                    | {
                        "strategies": [
                            {"type": "sma_crossover", "fast": fast, "slow": slow, "quantity": "1"}
                        ]
                    },
                    settings=PluginSettings(builtin_only=True),
                ).backtest_sync(data={s: slice_window(b, start, stop) for s, b in data.items()})
                scores[(fast, slow)] = by_hand.stats["total_return"]
        best = max(scores, key=lambda k: scores[k])  # ties: dict order is run order
        assert (row["strategy.fast"], row["strategy.slow"]) == best
        assert row["is_total_return"] == scores[best]
        oos = result.oos_equity[result.oos_equity["window"] == row["window"]]
        assert oos.index[0].value == row["oos_start"].value
        assert oos["equity"].iloc[0] == pytest.approx(capital)
        assert oos["equity"].iloc[-1] == pytest.approx(capital * (1 + row["oos_total_return"]))
        capital = float(oos["equity"].iloc[-1])
    assert result.total_return == pytest.approx(capital / 100_000 - 1)
    for name in (
        "windows.csv",
        "in_sample.parquet",
        "oos_equity.csv",
        "summary.json",
        "walkforward.png",
    ):
        assert (tmp_path / name).exists(), name
    again = eng.walk_forward_sync(
        grid, windows=3, in_sample=3.0, executor="sequential", metric="total_return",
        output=tmp_path,
    )  # fmt: skip
    assert (again.computed, again.resumed) == (0, 15)
    assert list(again.oos_equity["equity"]) == list(result.oos_equity["equity"])


def test_the_parameters_may_not_change_the_history(sweep_config: dict[str, Any]) -> None:
    eng = Engine.from_config(sweep_config, settings=PluginSettings(builtin_only=True))
    with pytest.raises(ConfigError, match="may not change the feed, the instruments or the seed"):
        eng.walk_forward_sync({"feed.bars": [2000, 3000]}, executor="sequential")
