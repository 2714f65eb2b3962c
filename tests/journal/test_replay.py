"""A journaled backtest replays into the same report; replay refuses damaged input."""

from __future__ import annotations

import asyncio
import copy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError, Engine, JournalError, PluginSettings
from engine.journal import Entry
from engine.journal.sqlite import SqliteJournal, SqliteJournalConfig

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = PluginSettings(builtin_only=True)


def journaled(config: dict[str, Any], path: Path) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["journal"] = {"type": "sqlite", "path": str(path)}
    return config


def entries(path: Path) -> Iterator[Entry]:
    store = SqliteJournal(SqliteJournalConfig(path=str(path)))
    try:
        yield from store.entries()
    finally:
        store.close()


def replayed(path: Path) -> Any:
    eng = Engine.from_journal(entries(path), settings=SETTINGS)
    return asyncio.run(eng.replay_journal(entries(path)))


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("elapsed_seconds", "mode")}


def test_replay_reproduces_a_backtest_with_denials_and_reductions(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["guards"] = [{"type": "max_position", "limit": "0.5"}]
    base_config["filters"] = [
        {
            "type": "trading_hours",
            "sessions": ["00:00-12:00"],
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        }
    ]
    path = tmp_path / "run.journal"
    original = Engine.from_config(journaled(base_config, path), settings=SETTINGS).backtest_sync()
    assert original.denials and original.reductions
    again = replayed(path)
    assert comparable(again.summary()) == comparable(original.summary())
    assert again.trades.equals(original.trades)
    assert [f.fill_id for f in again.fill_records] == [f.fill_id for f in original.fill_records]
    assert again.stats == original.stats


def test_replay_reproduces_perpetuals_funding_and_liquidations(tmp_path: Path) -> None:
    config = tomllib.loads((ROOT / "examples" / "perp_demo.toml").read_text())
    path = tmp_path / "perp.journal"
    original = Engine.from_config(journaled(config, path), settings=SETTINGS).backtest_sync()
    assert original.funding_payments and original.liquidations
    again = replayed(path)
    assert comparable(again.summary()) == comparable(original.summary())
    assert [(p.ts, p.amount) for p in again.funding_payments] == [
        (p.ts, p.amount) for p in original.funding_payments
    ]


def test_a_backtest_will_not_append_to_an_earlier_run(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    Engine.from_config(journaled(base_config, path), settings=SETTINGS).backtest_sync()
    with pytest.raises(ConfigError, match=r"already holds .* records"):
        Engine.from_config(journaled(base_config, path), settings=SETTINGS).backtest_sync()


def test_missing_records_are_refused(base_config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    Engine.from_config(journaled(base_config, path), settings=SETTINGS).backtest_sync()
    kept = [e for e in entries(path) if e.seq != 5]
    eng = Engine.from_journal(iter(kept), settings=SETTINGS)
    with pytest.raises(
        JournalError, match="journal record 6 follows record 4: records are missing"
    ):
        asyncio.run(eng.replay_journal(iter(kept)))


def test_a_journal_without_its_baseline_is_refused() -> None:
    with pytest.raises(JournalError, match="does not start with a config baseline"):
        Engine.from_journal(iter([Entry(1, 0, "bar", "X", {"index": 0})]))


def test_the_replay_command_prints_the_report(base_config: dict[str, Any], tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from engine.cli import main

    path = tmp_path / "run.journal"
    original = Engine.from_config(journaled(base_config, path), settings=SETTINGS).backtest_sync()
    result = CliRunner().invoke(main, ["--no-plugins", "journal", "replay", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["final_equity"] == original.summary()["final_equity"]
    assert summary["orders"] == original.summary()["orders"] and summary["open_orders"] == []
    text = CliRunner().invoke(main, ["--no-plugins", "journal", "replay", str(path)]).output
    assert f"{path}: replayed 'test'" in text and "final equity" in text
