"""The sqlite journal store: round trips, the block format, reopening, format checks,
torn writes."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import JournalError
from engine.journal import Entry, JournalStore, Recovered
from engine.journal import sqlite as journal_sqlite
from engine.journal.codec import COMPRESS_AT, KINDS, MAX_BLOCK, ZSTD_MAGIC, RawBlock, block_crc
from engine.journal.sqlite import (
    FORMAT_VERSION,
    SqliteJournal,
    SqliteJournalConfig,
    inspect_wal,
    scan,
)

T0 = 1_700_000_000_000_000_000

#: one entry of every kind, with the data the recorder writes
EVERY_KIND: list[tuple[str, str, dict[str, Any]]] = [
    ("config", "test", {"raw": {"engine": {"name": "test"}}, "base_dir": ".", "mode": "paper"}),
    (
        "order",
        "sma-BTC-USD-1",
        {
            "strategy": "sma",
            "instrument": "BTC-USD",
            "side": "buy",
            "quantity": "0.5",
            "type": "limit",
            "limit": "101.25",
            "stop": None,
            "reduce_only": False,
            "tag": "entry ✓",
            "reduction": {"check": "max_qty", "plugin": "guards", "reason": "r", "before": "1"},
        },
    ),
    (
        "denied",
        "sma-BTC-USD-2",
        {"quantity": "1", "stage": "guard", "check": "max_position", "message": "too big"},
    ),
    ("event", "sma-BTC-USD-1", {"state": "accepted", "reason": ""}),
    ("cancel", "sma-BTC-USD-1", {}),
    ("fill", "sma-BTC-USD-1", {"fill_id": "V-1", "quantity": "0.5", "price": "101", "fee": "0"}),
    ("state", "drawdown", {"previous": "active", "state": "halted", "reason": "dd"}),
    ("funding", "BTC-PERP", {"mark": "100", "rate": "0.0001"}),
    ("liquidation", "BTC-PERP", {"price": "90", "fee": "1", "liquidation_price": "91"}),
    ("bar", "BTC-USD", {"index": 41}),
    ("op", "op-7", {"step": 2, "of": 3, "values": [1, 2.5, None, True, "x"]}),
    ("reconcile", "", {"passed": True, "findings": []}),
]


def open_store(path: Path, **options: Any) -> SqliteJournal:
    return SqliteJournal(SqliteJournalConfig(path=str(path), **options))


def fill_store(
    store: SqliteJournal, count: int, per_commit: int, payload: int = 40, noise: bool = False
) -> None:
    """``count`` bar entries, a commit every ``per_commit``; ``noise``: the padding is
    random (blocks that do not compress)."""
    rng = random.Random(count)
    for k in range(count):
        pad = rng.randbytes(payload // 2).hex() if noise else "x" * payload
        store.append(T0 + k, "bar", "BTC-USD", {"index": k, "pad": pad})
        if (k + 1) % per_commit == 0:
            store.commit()
    store.commit()


def rows(path: Path) -> list[tuple[int, int, int, int, bytes]]:
    """The blocks table as stored."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT first_seq, last_seq, crc, size, payload FROM blocks ORDER BY first_seq"
        ).fetchall()
    finally:
        db.close()


def damage(path: Path, sql: str, *params: Any) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


def damage_payload(path: Path, first_seq: int, old: bytes, new: bytes) -> None:
    """Replace bytes in the stored payload of a block (its CRC left as it was)."""
    ((payload,),) = sqlite3.connect(path).execute(
        "SELECT payload FROM blocks WHERE first_seq = ?", (first_seq,)
    )
    assert old in payload
    damage(
        path,
        "UPDATE blocks SET payload = ? WHERE first_seq = ?",
        payload.replace(old, new),
        first_seq,
    )


def crash_copy(path: Path, dest: Path) -> None:
    """The files as a crash would leave them: the database and its log, not closed."""
    shutil.copyfile(path, dest)
    shutil.copyfile(f"{path}-wal", f"{dest}-wal")


def wal_page_size(path: Path) -> int:
    with open(f"{path}-wal", "rb") as f:
        return int(struct.unpack(">I", f.read(12)[8:12])[0])


# -- round trips ------------------------------------------------------------------------


def test_every_kind_round_trips_and_survives_reopening(tmp_path: Path) -> None:
    assert {kind for kind, _, _ in EVERY_KIND} == KINDS
    path = tmp_path / "runs" / "deep" / "j.db"  # missing folders are created
    store = open_store(path)
    assert isinstance(store, JournalStore) and store.recovered is None
    seqs = [store.append(T0 + k, kind, ref, data) for k, (kind, ref, data) in enumerate(EVERY_KIND)]
    assert seqs == list(range(1, len(EVERY_KIND) + 1)) and store.last_seq == len(EVERY_KIND)
    store.commit()
    expected = [Entry(k + 1, T0 + k, *item) for k, item in enumerate(EVERY_KIND)]
    assert list(store.entries()) == expected
    store.close()
    store.close()  # twice is fine
    again = open_store(path)
    assert again.recovered is None and again.last_seq == len(EVERY_KIND)
    assert list(again.entries()) == expected
    assert list(again.entries(after=10)) == expected[10:]
    assert again.verify() == [] and again.count() == len(EVERY_KIND)
    again.close()


def test_each_commit_is_one_row_written_by_one_insert(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    store = open_store(path)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    store.append(T0, "bar", "A", {"index": 1})
    store.append(T0 + 1, "order", "s-A-1", {"quantity": "1", "tag": "é"})
    store.append(T0 + 2, "fill", "s-A-1", {"quantity": "1"})
    store.commit()
    # one statement (SQLite traces it again when the temporary trigger that keeps the
    # blocks contiguous fires)
    assert len(set(statements)) == 1 and statements[0].startswith("INSERT INTO blocks")
    statements.clear()
    store.append(T0 + 3, "bar", "A", {"index": 2})
    store.commit()
    assert len(set(statements)) == 1 and statements[0].startswith("INSERT INTO blocks")
    store.close()
    db = sqlite3.connect(path)
    assert {r[0] for r in db.execute("SELECT type FROM sqlite_master")} == {"table", "index"}
    db.close()  # the trigger is the writer's, not the file's
    (first, second) = rows(path)
    assert first[:2] == (1, 3) and second[:2] == (4, 4)
    # small blocks are the JSON text itself: lines of [seq, ts, kind, ref, data] arrays
    _, _, crc, size, payload = first
    assert size == len(payload) and crc == block_crc(1, 3, size, payload)
    assert payload.endswith(b"\n")
    records = [r for line in payload.splitlines() for r in json.loads(line)]
    assert records == [
        [1, T0, "bar", "A", {"index": 1}],
        [2, T0 + 1, "order", "s-A-1", {"quantity": "1", "tag": "é"}],
        [3, T0 + 2, "fill", "s-A-1", {"quantity": "1"}],
    ]


def test_a_large_commit_is_compressed_and_split_into_blocks(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    count = 2 * MAX_BLOCK + 5
    with open_store(path) as store:
        fill_store(store, count, per_commit=count)
        assert store.count() == count
    stored = rows(path)
    assert [(r[0], r[1]) for r in stored] == [
        (1, MAX_BLOCK),
        (MAX_BLOCK + 1, 2 * MAX_BLOCK),
        (2 * MAX_BLOCK + 1, count),
    ]
    for first, last, crc, size, payload in stored[:2]:
        assert payload.startswith(ZSTD_MAGIC) and len(payload) < size / 10  # compressed
        assert RawBlock(first, last, crc, size, payload).crc_ok
    assert stored[2][3] < COMPRESS_AT and stored[2][4].startswith(b"[[")  # 5 records: text
    with open_store(path) as again:
        assert [e.seq for e in again.entries()] == list(range(1, count + 1))
        assert [e.seq for e in again.entries(after=MAX_BLOCK - 1)][:3] == [
            MAX_BLOCK,
            MAX_BLOCK + 1,
            MAX_BLOCK + 2,
        ]
        assert again.verify() == []


@pytest.mark.parametrize("chunk", [1, 100, 256, 5000])
def test_appends_are_encoded_in_chunks_and_committed_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Appends are encoded in chunks as they come (nothing is written before the
    commit); blocks never hold more than MAX_BLOCK records, whatever the chunking."""
    monkeypatch.setattr(journal_sqlite, "CHUNK", chunk)
    path = tmp_path / "j.db"
    count = 2 * MAX_BLOCK + 1000
    with open_store(path) as store:
        for k in range(count):
            store.append(T0 + k, "bar", "BTC-USD", {"index": k})
            if k == MAX_BLOCK + 10:
                assert store.count() == 0  # still nothing written
                store.commit()
        store.commit()
        stored = rows(path)
        assert stored[0][0] == 1 and stored[-1][1] == count
        for before, after in itertools.pairwise(stored):
            assert after[0] == before[1] + 1
        assert all(last - first < MAX_BLOCK for first, last, *_ in stored)
        assert [e.data["index"] for e in store.entries()] == list(range(count))
        assert store.verify() == []


def test_entries_after_reads_only_the_blocks_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "j.db")
    fill_store(store, 300, per_commit=3)  # 100 blocks
    decoded: list[int] = []
    decode = journal_sqlite.decode_block

    def spy(first_seq: int, *args: Any) -> list[list[Any]]:
        decoded.append(first_seq)
        return decode(first_seq, *args)

    monkeypatch.setattr(journal_sqlite, "decode_block", spy)
    assert [e.seq for e in store.entries(after=250)] == list(range(251, 301))
    assert decoded == list(range(250, 301, 3))  # from the block holding record 251
    decoded.clear()
    assert next(store.entries(after=299)).seq == 300
    assert decoded == [298]
    assert list(store.entries(after=300)) == []
    store.close()


def test_append_only_buffers_until_commit(tmp_path: Path) -> None:
    store = open_store(tmp_path / "j.db")
    store.append(T0, "bar", "A", {"index": 1})
    assert list(store.entries()) == [] and store.count() == 0
    # another reader sees nothing either: nothing was written
    assert list(scan(tmp_path / "j.db")) == []
    store.commit()
    assert [e.seq for e in store.entries()] == [1]
    store.commit()  # nothing to commit: no-op
    store.close()


def test_close_commits_and_a_closed_store_refuses_to_commit(tmp_path: Path) -> None:
    store = open_store(tmp_path / "j.db")
    store.append(T0, "bar", "A", {"index": 1})
    store.close()
    store.commit()  # nothing to commit
    store.append(T0, "bar", "A", {"index": 2})  # append only buffers: the commit says it
    with pytest.raises(JournalError, match=r"journal .*j\.db: closed"):
        store.commit()
    with open_store(tmp_path / "j.db") as again:
        assert [e.data for e in again.entries()] == [{"index": 1}]


def test_the_sequence_continues_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(path) as store:
        fill_store(store, 25, per_commit=10)
    with open_store(path) as store:
        assert store.last_seq == 25
        assert store.append(T0, "bar", "A", {"index": 99}) == 26
    with open_store(path) as store:
        assert [e.seq for e in store.entries()] == list(range(1, 27))
        assert store.verify() == []


def test_entries_stream_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.journal.sqlite.BATCH", 7)
    store = open_store(tmp_path / "j.db")
    fill_store(store, 30, per_commit=30)
    stream = store.entries(after=3)
    assert next(stream).seq == 4  # a generator: nothing read before it is consumed
    # committed while streaming: later batches see it
    store.append(T0, "bar", "A", {"index": 30})
    store.commit()
    assert [e.seq for e in stream] == list(range(5, 32))
    store.close()


def test_data_is_encoded_at_commit_and_bad_data_names_the_record(tmp_path: Path) -> None:
    store = open_store(tmp_path / "j.db")
    store.append(T0, "bar", "A", {"index": 1})
    data: dict[str, Any] = {"quantity": object()}
    store.append(T0, "fill", "sma-A-1", data)
    with pytest.raises(
        JournalError, match=r"record 2 \(fill sma-A-1\) cannot be stored: TypeError"
    ):
        store.commit()
    assert list(store.entries()) == []  # nothing was written; still buffered
    data["quantity"] = "1"  # data is kept by reference until the commit
    store.commit()
    assert [e.data for e in store.entries()] == [{"index": 1}, {"quantity": "1"}]
    store.close()


def test_bad_data_in_a_chunk_encoded_early_is_named_at_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_sqlite, "CHUNK", 4)
    store = open_store(tmp_path / "j.db")
    data: dict[str, Any] = {"quantity": object()}
    for k in range(12):  # chunks of 4 are encoded as they are appended ...
        store.append(T0 + k, "fill", f"s-A-{k}", data if k == 6 else {"index": k})
    with pytest.raises(JournalError, match=r"record 7 \(fill s-A-6\) cannot be stored"):
        store.commit()  # ... but the one holding record 7 could not be: named at commit
    assert list(store.entries()) == [] and store.last_seq == 12
    data["quantity"] = "1"
    store.commit()
    assert [e.seq for e in store.entries()] == list(range(1, 13))
    assert next(e.data for e in store.entries() if e.seq == 7) == {"quantity": "1"}
    store.close()


def test_values_only_the_standard_library_encodes_round_trip(tmp_path: Path) -> None:
    weird = {"big": 2**70 + 1, "keys": {1: "one"}, "surrogate": "\ud800", "deep": [[[[1]]]] * 2}
    store = open_store(tmp_path / "j.db")
    store.append(T0, "op", "x", weird)
    store.append(T0, "op", "y", {"nan": math.nan, "inf": -math.inf})  # orjson: null
    store.append(T0, "op", "z", {"big": 2**70 + 1, "nan": math.nan})  # the standard library: NaN
    for _ in range(COMPRESS_AT // 10):  # and the same in a compressed block
        store.append(T0, "op", "x", weird)
    store.close()
    with open_store(tmp_path / "j.db") as again:
        entries = list(again.entries())
        assert entries[0].data == {**weird, "keys": {"1": "one"}}
        assert entries[1].data == {"nan": None, "inf": None}
        assert entries[2].data["big"] == 2**70 + 1 and math.isnan(entries[2].data["nan"])
        assert all(e.data == entries[0].data for e in entries[3:])
        assert again.verify() == []
    assert rows(tmp_path / "j.db")[0][4].startswith(ZSTD_MAGIC)


def test_a_line_the_standard_library_writes_starts_with_a_space(tmp_path: Path) -> None:
    """orjson reads the lines back, but those only the standard library reads exactly."""
    path = tmp_path / "j.db"
    with open_store(path) as store:
        store.append(T0, "op", "x", {"big": 2**64})
        store.commit()
        store.append(T0, "op", "x", {"small": 2**63 - 1})
        store.commit()
        assert [e.data for e in store.entries()] == [{"big": 2**64}, {"small": 2**63 - 1}]
    first, second = (r[4] for r in rows(path))
    assert first == f' [[1,{T0},"op","x",{{"big":18446744073709551616}}]]\n'.encode()
    assert second == f'[[2,{T0},"op","x",{{"small":9223372036854775807}}]]\n'.encode()


def test_config_is_validated() -> None:
    assert SqliteJournalConfig(path="j.db") == SqliteJournalConfig("j.db", "full", 1000)
    with pytest.raises(ValueError, match="must be 'full' or 'normal', got 'off'"):
        SqliteJournalConfig(path="j.db", synchronous="off")
    with pytest.raises(ValueError, match="must be > 0"):
        SqliteJournalConfig(path="j.db", checkpoint_every=0)
    with pytest.raises(ValueError, match="must not be empty"):
        SqliteJournalConfig(path=" ")


def test_synchronous_and_checkpoint_cadence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "j.db", synchronous="normal", checkpoint_every=3)
    db = store._connection()
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    modes: list[str] = []
    monkeypatch.setattr(store, "checkpoint", lambda mode="PASSIVE": modes.append(mode))
    fill_store(store, 7, per_commit=1)  # 7 commits: checkpoints after the 3rd and 6th
    assert modes == ["PASSIVE", "PASSIVE"]
    store.close()
    with open_store(tmp_path / "j.db") as full:
        assert full._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# -- what is not a journal ----------------------------------------------------------------


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 10)
    with pytest.raises(JournalError, match=r"journal .*notes\.txt: not a journal \(not a SQLite"):
        open_store(text)
    assert text.read_text().startswith("hello")
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE prices (t INTEGER, p REAL)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=r"journal .*other\.db: not a journal \(a SQLite"):
        open_store(other)
    with pytest.raises(JournalError, match="not a journal"):
        list(scan(other))
    # the other database was not touched (not switched to WAL)
    db = sqlite3.connect(other)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_a_journal_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(path) as store:
        store.append(T0, "bar", "A", {"index": 1})
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta"))["format"] == "engine-journal"
    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(FORMAT_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(
        JournalError,
        match=rf"journal .*j\.db: format version {FORMAT_VERSION + 1} is newer than this engine"
        rf" reads \(up to {FORMAT_VERSION}\)",
    ):
        open_store(path)


def test_a_journal_of_format_version_1_is_refused(tmp_path: Path) -> None:
    """Version 1 stored one row per record (an ``entries`` table): not read any more."""
    assert FORMAT_VERSION == 2
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,"
        " ref TEXT NOT NULL, data TEXT NOT NULL, crc INTEGER NOT NULL)"
    )
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("format", "engine-journal"), ("version", "1")]
    )
    db.commit()
    db.close()
    message = (
        r"journal .*old\.db: format version 1 \(one row per record\) is no longer read;"
        r" this engine reads version 2 \(one row per commit\): start a new journal"
    )
    with pytest.raises(JournalError, match=message):
        open_store(path)
    with pytest.raises(JournalError, match=message):
        list(scan(path))


# -- torn writes ----------------------------------------------------------------------------


def test_a_torn_write_ahead_log_tail_is_detected_and_the_complete_commits_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.db"
    store = open_store(path)
    fill_store(store, 3000, per_commit=100)  # 30 commits, all in the log
    expected = list(store.entries())
    crashed = tmp_path / "crashed.db"
    crash_copy(path, crashed)
    store.close()
    frame = wal_page_size(crashed) + 24
    size = os.path.getsize(f"{crashed}-wal")
    assert (size - 32) % frame == 0
    os.truncate(f"{crashed}-wal", size - 1000)  # inside the last frame
    partial = frame - 1000
    assert inspect_wal(crashed) is not None

    again = open_store(crashed)
    assert again.recovered is not None
    assert again.recovered.last_seq == 2900  # the last commit (2901-3000) was torn
    assert again.recovered.message == (
        f"journal {crashed}: torn write at the end of the write-ahead log (an incomplete"
        f" {frame}-byte frame, {partial} bytes written); recovered up to record 2900"
    )
    assert list(again.entries()) == expected[:2900]
    assert again.append(T0, "bar", "A", {"index": 0}) == 2901  # continues from there
    again.close()
    with open_store(crashed) as reopened:  # reported once: the log was emptied
        assert reopened.recovered is None and reopened.last_seq == 2901
        assert reopened.verify() == []


def test_a_log_ending_in_a_transaction_without_its_commit_frame_is_detected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.db"
    store = open_store(path)
    # each commit spans several frames (random padding: the blocks do not compress much)
    fill_store(store, 200, per_commit=100, payload=200, noise=True)
    crashed = tmp_path / "crashed.db"
    crash_copy(path, crashed)
    store.close()
    frame = wal_page_size(crashed) + 24
    os.truncate(f"{crashed}-wal", os.path.getsize(f"{crashed}-wal") - frame)  # no commit frame
    with open_store(crashed) as again:
        assert again.recovered is not None and again.recovered.last_seq == 100
        assert re.fullmatch(
            rf"journal {re.escape(str(crashed))}: torn write at the end of the write-ahead log"
            r" \(a transaction of \d+ frames without its commit frame\); recovered up to record 100",
            again.recovered.message,
        )
        assert [e.seq for e in again.entries()] == list(range(1, 101))


def test_a_torn_log_header_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    store = open_store(path)
    fill_store(store, 10, per_commit=10)
    store.checkpoint("TRUNCATE")  # the records are in the database file
    store.append(T0, "bar", "A", {"index": 10})
    store.commit()
    crashed = tmp_path / "crashed.db"
    crash_copy(path, crashed)
    store.close()
    os.truncate(f"{crashed}-wal", 20)
    with open_store(crashed) as again:
        assert again.recovered == Recovered(
            10,
            f"journal {crashed}: torn write at the end of the write-ahead log (an incomplete"
            " 32-byte header, 20 bytes written); recovered up to record 10",
        )


@pytest.mark.parametrize(
    ("cut", "damage"),
    [
        (1500, r"an incomplete 4096-byte page, 2596 bytes written"),
        (5000, r"an incomplete 4096-byte page, 3192 bytes written"),
        (8192, None),  # whole pages: shorter than its header says
    ],
)
def test_a_torn_database_file_is_recovered_into_a_fresh_file(
    tmp_path: Path, cut: int, damage: str | None
) -> None:
    path = tmp_path / "live.db"
    store = open_store(path)
    fill_store(store, 3000, per_commit=50, noise=True)  # 60 blocks over many pages
    expected = list(store.entries())
    assert store.checkpoint("TRUNCATE")[0] == 0  # everything is in the database file
    crashed = tmp_path / "crashed.db"
    shutil.copyfile(path, crashed)
    store.close()
    size = os.path.getsize(crashed)
    os.truncate(crashed, size - cut)

    again = open_store(crashed)
    assert again.recovered is not None
    last = again.recovered.last_seq
    assert 2500 <= last < 3000 and last % 50 == 0  # whole blocks
    pages = size // 4096
    what = (
        rf"torn write at the end of the database file \({damage}\)"
        if damage
        else rf"the database file is cut short \({pages - 2} of its {pages} pages\)"
    )
    stop = (
        rf"the block of records {last + 1}-{last + 50} fails its CRC check"
        rf"|record {last + 1} is missing or damaged: the next block starts at record \d+"
        rf"|record {last + 1} and later are unreadable: .+"
    )
    assert re.fullmatch(
        rf"journal {re.escape(str(crashed))}: {what}; copied records 1-{last} into a fresh"
        rf" file \(({stop})\); the damaged file is kept as {re.escape(str(crashed))}\.damaged-1;"
        rf" recovered up to record {last}",
        again.recovered.message,
    ), again.recovered.message
    damaged = Path(f"{crashed}.damaged-1")
    assert damaged.stat().st_size == size - cut  # kept as it was
    assert list(again.entries()) == expected[:last]
    assert again.append(T0, "bar", "A", {"index": 0}) == last + 1
    again.close()
    with open_store(crashed) as reopened:
        assert reopened.recovered is None and reopened.last_seq == last + 1
        assert reopened.verify() == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crashed")) == [
        "crashed.db",
        "crashed.db.damaged-1",
    ]


def test_a_damaged_block_is_found_by_its_crc(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(path) as store:
        fill_store(store, 50, per_commit=10)
    damage_payload(path, 41, b'"index":49', b'"index":48')
    with open_store(path) as again:
        assert again.recovered is not None and again.recovered.last_seq == 40
        assert again.recovered.message == (
            f"journal {path}: the database file is damaged (the block of records 41-50 fails"
            " its CRC check); copied records 1-40 into a fresh file (the block of records 41-50"
            f" fails its CRC check); the damaged file is kept as {path}.damaged-1; recovered"
            " up to record 40"
        )
        assert again.last_seq == 40 and again.verify() == []
    # a second recovery keeps the first damaged file
    damage(path, "UPDATE blocks SET crc = crc + 1 WHERE first_seq = 31")
    with open_store(path) as again:
        assert again.recovered is not None and again.recovered.last_seq == 30
        assert f"kept as {path}.damaged-2;" in again.recovered.message
    assert Path(f"{path}.damaged-1").exists()


def test_the_copy_of_a_damaged_file_stops_at_the_first_bad_block(tmp_path: Path) -> None:
    """Blocks are copied in order while they are whole: a CRC failure, a gap or a block
    that does not decode stops the copy, even with good blocks after it."""
    for sql, stop in [
        (
            "UPDATE blocks SET crc = crc + 1 WHERE first_seq = 21",
            "the block of records 21-30 fails its CRC check",
        ),
        (
            "DELETE FROM blocks WHERE first_seq = 21",
            "record 21 is missing or damaged: the next block starts at record 31",
        ),
        (
            "UPDATE blocks SET last_seq = 31 WHERE first_seq = 21",  # and its CRC, below
            "the block of records 21-31 is unreadable: holds records 21-30, not up to record 31",
        ),
    ]:
        path = tmp_path / f"j{len(stop)}.db"
        with open_store(path) as store:
            fill_store(store, 50, per_commit=10)
        damage(path, sql)
        for first, last, _crc, size, payload in rows(path):  # a CRC that matches the damage
            if first == 21 and last == 31:
                crc = block_crc(first, last, size, payload)
                damage(path, "UPDATE blocks SET crc = ? WHERE first_seq = 21", crc)
        damage(path, "UPDATE blocks SET crc = crc + 1 WHERE first_seq = 41")  # found at open
        with open_store(path) as again:
            assert again.recovered is not None and again.recovered.last_seq == 20
            assert f"copied records 1-20 into a fresh file ({stop});" in again.recovered.message
            assert [e.seq for e in again.entries()] == list(range(1, 21))


def test_damage_in_an_earlier_block_is_reported_by_verify_and_when_read(tmp_path: Path) -> None:
    """Opening checks the last block only (as the old format checked the last record):
    verify and every reader find a damaged earlier one."""
    path = tmp_path / "j.db"
    with open_store(path) as store:
        fill_store(store, 50, per_commit=10)
    damage_payload(path, 11, b'"index":15', b'"index":51')
    with open_store(path) as again:
        assert again.recovered is None
        assert again.verify() == ["records 11-20 (block): CRC mismatch, the block is damaged"]
        stream = again.entries()
        assert [next(stream).seq for _ in range(10)] == list(range(1, 11))
        with pytest.raises(
            JournalError,
            match=r"journal .*j\.db: records 11-20 \(block\): CRC mismatch, the block is damaged$",
        ):
            next(stream)
        assert [e.seq for e in again.entries(after=20)] == list(range(21, 51))
    with pytest.raises(JournalError, match=r"records 11-20 \(block\): CRC mismatch"):
        list(scan(path))


def test_an_interrupted_recovery_is_finished_or_started_over(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(tmp_path / "fresh.db") as fresh:
        fill_store(fresh, 5, per_commit=5)
    # interrupted after the damaged file was moved aside: the fresh copy takes its place
    Path(tmp_path / "fresh.db").rename(f"{path}.recovering")
    Path(f"{path}.damaged-1").write_bytes(b"damaged")
    with open_store(path) as store:
        assert store.recovered is None and store.last_seq == 5
    assert not Path(f"{path}.recovering").exists()
    # interrupted while copying: the partial copy is dropped
    Path(f"{path}.recovering").write_bytes(b"partial")
    with open_store(path) as store:
        assert store.last_seq == 5
    assert not Path(f"{path}.recovering").exists()


# -- reading without writing ---------------------------------------------------------------


def test_scan_filters_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(path) as store:
        for k, (kind, ref, data) in enumerate(EVERY_KIND):
            store.append(T0 + k, kind, ref, data)
    assert [r.seq for r in scan(path)] == list(range(1, len(EVERY_KIND) + 1))
    assert [r.kind for r in scan(path, kinds=["fill", "cancel"])] == ["cancel", "fill"]
    assert [r.seq for r in scan(path, ref="sma-BTC-USD-1")] == [2, 4, 5, 6]
    assert [r.seq for r in scan(path, after=4, limit=2)] == [5, 6]
    assert [r.seq for r in scan(path, limit=0)] == []
    raw = next(scan(path, kinds=["bar"]))
    assert raw.entry() == Entry(10, T0 + 9, "bar", "BTC-USD", {"index": 41})
    assert raw.text == '{"index":41}'
    mtime = path.stat().st_mtime_ns
    list(scan(path))
    assert path.stat().st_mtime_ns == mtime
    with pytest.raises(JournalError, match="no such file"):
        list(scan(tmp_path / "missing.db"))


def test_scan_reads_compressed_blocks_from_any_record(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_store(path) as store:
        fill_store(store, 3 * MAX_BLOCK, per_commit=3 * MAX_BLOCK)
    assert all(r[4].startswith(ZSTD_MAGIC) for r in rows(path))
    assert [r.seq for r in scan(path, after=MAX_BLOCK - 2, limit=4)] == [
        MAX_BLOCK - 1,
        MAX_BLOCK,
        MAX_BLOCK + 1,
        MAX_BLOCK + 2,
    ]
    assert sum(1 for _ in scan(path, kinds=["bar"])) == 3 * MAX_BLOCK


def test_the_block_crc_covers_its_range_size_and_payload() -> None:
    payload = b'[[7,5,"fill","a",{"q":"1"}],[8,5,"fill","a",{"q":"2"}]]\n'
    size = len(payload)
    base = RawBlock(7, 8, block_crc(7, 8, size, payload), size, payload)
    assert base.crc_ok
    assert [r.seq for r in base.records()] == [7, 8]
    for changed in (
        RawBlock(6, 8, base.crc, size, payload),
        RawBlock(7, 9, base.crc, size, payload),
        RawBlock(78, 8, block_crc(7, 88, size, payload), size, payload),  # other split
        RawBlock(7, 8, base.crc, size + 1, payload),
        RawBlock(7, 8, base.crc, size, payload.replace(b'"2"', b'"3"')),
    ):
        assert not changed.crc_ok


# -- property: whatever goes in comes back -------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
entries_strategy = st.lists(
    st.tuples(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        names,
        names,
        st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=entries_strategy,
    commit_every=st.integers(min_value=1, max_value=10),
    chunk=st.sampled_from([1, 3, 256]),
    compress_at=st.sampled_from([1, 8192]),
)
def test_random_entries_survive_commit_and_reopen_exactly(
    items: list[tuple[int, str, str, dict[str, Any]]],
    commit_every: int,
    chunk: int,
    compress_at: int,
) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(journal_sqlite, "CHUNK", chunk)  # encoded early, in chunks
        patch.setattr("engine.journal.codec.COMPRESS_AT", compress_at)  # 1: every block
        path = Path(folder) / "j.db"
        store = open_store(path)
        for k, (ts, kind, ref, data) in enumerate(items):
            store.append(ts, kind, ref, data)
            if (k + 1) % commit_every == 0:
                store.commit()
        store.close()
        expected = [Entry(k + 1, *item) for k, item in enumerate(items)]
        with open_store(path) as again:
            assert again.recovered is None and again.last_seq == len(items)
            assert list(again.entries()) == expected
            blocks = list(again.raw_entries())
            assert all(block.crc_ok for block in blocks)
            assert [r.seq for block in blocks for r in block.records()] == [e.seq for e in expected]


def test_a_failed_commit_is_a_journal_error_and_keeps_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first, second = open_store(path), open_store(path)  # two writers: a mistake
    first.append(T0, "bar", "A", {"index": 1})
    first.commit()
    second.append(T0, "bar", "B", {"index": 1})  # seq 1 as well
    message = (
        r"journal .*j\.db: commit of records 1-1 failed: the file ends at record 1, not 0"
        r" \(another store writes it\?\)"
    )
    with pytest.raises(JournalError, match=message):
        second.commit()
    with pytest.raises(JournalError, match=message):  # still buffered: the same again
        second.commit()
    assert second.last_seq == 1 and second.count() == 1
    first.append(T0, "bar", "A", {"index": 2})  # the writer that owns the file goes on
    first.commit()
    second._ready.clear()  # drop what cannot be written
    second.close()
    first.close()
    with open_store(path) as store:
        assert [e.data for e in store.entries()] == [{"index": 1}, {"index": 2}]


def test_a_commit_that_sqlite_refuses_keeps_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    store = open_store(path)
    store.append(T0, "bar", "A", {"index": 1})
    store.commit()
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store._connection().execute("PRAGMA busy_timeout = 0")
    store.append(T0, "bar", "A", {"index": 2})
    with pytest.raises(JournalError, match=r"commit of records 2-2 failed: database is locked"):
        store.commit()
    other.execute("ROLLBACK")
    other.close()
    store.commit()
    assert [e.seq for e in store.entries()] == [1, 2]
    store.close()
