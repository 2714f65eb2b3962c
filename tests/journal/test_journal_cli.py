"""`engine journal show|verify` through the engine CLI, the plugin registered by hand."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine import PluginSettings
from engine.builtins import journal_sqlite
from engine.cli import main
from engine.journal.sqlite import SqliteJournal, SqliteJournalConfig
from engine.plugins import PluginManager

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
CID = "sma-BTC-USD-1"


def run(*args: str) -> Result:
    plugins = PluginManager(PluginSettings(autoload=False))  # isolated from the host
    plugins.register(journal_sqlite, "journal_sqlite")
    return CliRunner().invoke(main, ["journal", *args], obj={"plugins": plugins})


def write(path: Path, *items: tuple[int, str, str, dict[str, Any]]) -> Path:
    with SqliteJournal(SqliteJournalConfig(path=str(path))) as store:
        for ts, kind, ref, data in items:
            store.append(ts, kind, ref, data)
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write(
        tmp_path / "run.db",
        (T0, "config", "test", {"raw": {"engine": {"name": "test"}}}),
        (T0 + 250_000_000, "order", CID, {"quantity": "1", "side": "buy"}),
        (T0 + 1_000_000_000, "event", CID, {"state": "accepted", "reason": ""}),
        (T0 + 1_000_000_001, "fill", CID, {"fill_id": "V-1", "quantity": "1", "price": "100"}),
        (T0 + 60_000_000_000, "bar", "BTC-USD", {"index": 1}),
    )


def test_the_plugin_provides_the_group_and_the_store() -> None:
    (command,) = journal_sqlite.engine_cli_commands()
    assert command.name == "journal"
    assert sorted(command.command.commands) == ["replay", "show", "verify"]
    (record,) = journal_sqlite.engine_journals()
    assert record.name == "sqlite" and record.factory is SqliteJournal
    assert record.config_type is SqliteJournalConfig
    result = run("--help")
    assert result.exit_code == 0 and "show" in result.output and "verify" in result.output


def test_show_prints_one_line_per_record(small: Path) -> None:
    result = run("show", str(small))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        '1  2023-11-14T22:13:20Z  config  test  {"raw":{"engine":{"name":"test"}}}',
        f'2  2023-11-14T22:13:20.250Z  order  {CID}  {{"quantity":"1","side":"buy"}}',
        f'3  2023-11-14T22:13:21Z  event  {CID}  {{"state":"accepted","reason":""}}',
        f"4  2023-11-14T22:13:21.000000001Z  fill  {CID}"
        '  {"fill_id":"V-1","quantity":"1","price":"100"}',
        '5  2023-11-14T22:14:20Z  bar  BTC-USD  {"index":1}',
    ]


def test_show_filters(small: Path) -> None:
    def seqs(*args: str) -> list[str]:
        result = run("show", str(small), *args)
        assert result.exit_code == 0, result.output
        return [line.split()[0] for line in result.output.splitlines()]

    assert seqs("--kind", "order", "--kind", "bar") == ["2", "5"]
    assert seqs("--ref", CID) == ["2", "3", "4"]
    assert seqs("--after", "2", "--limit", "2") == ["3", "4"]
    assert seqs("--kind", "nothing") == []


def test_show_json_lines(small: Path) -> None:
    result = run("show", str(small), "--json", "--kind", "fill")
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    assert json.loads(line) == {
        "seq": 4,
        "ts": T0 + 1_000_000_001,
        "time": "2023-11-14T22:13:21.000000001Z",
        "kind": "fill",
        "ref": CID,
        "data": {"fill_id": "V-1", "quantity": "1", "price": "100"},
    }


def test_verify_ok(small: Path) -> None:
    result = run("verify", str(small))
    assert result.exit_code == 0, result.output
    assert result.output == f"{small}: OK (5 records, last seq 5)\n"


def test_verify_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.db",
        (T0, "order", CID, {"quantity": "1"}),
        (T0, "fill", CID, {"fill_id": "V-1", "quantity": "1"}),
        (T0, "fill", CID, {"fill_id": "V-1", "quantity": "1"}),
        (T0, "event", "ghost-1", {"state": "accepted"}),
    )
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}: record 3 (fill {CID}): duplicate fill id 'V-1' (first in record 2)",
        f"{path}: record 4 (event ghost-1): event for an unknown client id (no order before it)",
        f"{path}: 2 problems (4 records, last seq 4)",
    ]


def test_verify_recovers_and_reports_a_torn_write(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    store = SqliteJournal(SqliteJournalConfig(path=str(live)))
    for k in range(40):
        store.append(T0 + k, "bar", "BTC-USD", {"index": k, "pad": "x" * 200})
        if k % 10 == 9:
            store.commit()
    crashed = tmp_path / "crashed.db"
    shutil.copyfile(live, crashed)
    shutil.copyfile(f"{live}-wal", f"{crashed}-wal")
    store.close()
    os.truncate(f"{crashed}-wal", os.path.getsize(f"{crashed}-wal") - 100)
    result = run("verify", str(crashed))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"{crashed}: recovered: journal {crashed}: torn write at the end of the write-ahead log"
        " (an incomplete 4120-byte frame, "
    )
    assert lines[0].endswith("; recovered up to record 30")
    assert lines[1:] == [f"{crashed}: OK (30 records, last seq 30)"]
    again = run("verify", str(crashed))  # repaired: nothing to report the second time
    assert again.output == f"{crashed}: OK (30 records, last seq 30)\n"


def test_a_damaged_block_is_one_line_for_show_and_a_problem_for_verify(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with SqliteJournal(SqliteJournalConfig(path=str(path))) as store:
        for k in range(30):
            store.append(T0 + k, "bar", "BTC-USD", {"index": k})
            if k % 10 == 9:
                store.commit()
    db = sqlite3.connect(path)
    db.execute("UPDATE blocks SET crc = crc + 1 WHERE first_seq = 11")
    db.commit()
    db.close()
    shown = run("show", str(path))
    assert shown.exit_code == 2
    assert len(shown.stdout.splitlines()) == 10  # the records before it
    assert shown.stderr == (
        f"journal {path}: records 11-20 (block): CRC mismatch, the block is damaged\n"
    )
    assert run("show", str(path), "--after", "20").output.splitlines()[0].startswith("21  ")
    checked = run("verify", str(path))
    assert checked.exit_code == 1
    assert checked.output.splitlines() == [
        f"{path}: records 11-20 (block): CRC mismatch, the block is damaged",
        f"{path}: 1 problem (30 records, last seq 30)",
    ]


def test_show_reads_a_large_journal_in_compressed_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with SqliteJournal(SqliteJournalConfig(path=str(path))) as store:
        for k in range(10_000):
            store.append(T0 + k, "bar", "BTC-USD", {"index": k, "mark": f"{100 + k / 8}"})
    db = sqlite3.connect(path)
    ((size, stored),) = db.execute("SELECT sum(size), sum(length(payload)) FROM blocks")
    db.close()
    assert stored * 5 < size  # compressed
    result = run("show", str(path), "--after", "9997", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["data"] for line in result.output.splitlines()] == [
        {"index": 9997, "mark": "1349.625"},
        {"index": 9998, "mark": "1349.75"},
        {"index": 9999, "mark": "1349.875"},
    ]
    assert run("verify", str(path)).output == f"{path}: OK (10000 records, last seq 10000)\n"


def test_not_a_journal_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 40)
    for command in ("show", "verify"):
        result = run(command, str(notes))
        assert result.exit_code == 2
        assert result.stderr == f"journal {notes}: not a journal (not a SQLite database)\n"
        assert "Traceback" not in result.output
    missing = run("show", str(tmp_path / "missing.db"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
