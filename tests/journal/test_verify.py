"""verify(): every kind of problem is found and names its record; a real journal is clean."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, PluginSettings
from engine.builtins import journal_sqlite
from engine.journal import Entry
from engine.journal.codec import RawBlock, RawEntry, block_crc
from engine.journal.sqlite import SqliteJournal, SqliteJournalConfig
from engine.journal.verify import verify

CID = "sma-BTC-USD-1"


def order(quantity: str = "1") -> dict[str, Any]:
    return {
        "strategy": "sma",
        "instrument": "BTC-USD",
        "side": "buy",
        "quantity": quantity,
        "type": "market",
        "limit": None,
        "stop": None,
        "reduce_only": False,
        "tag": "",
    }


def fill(quantity: str, fill_id: str | None = None) -> dict[str, Any]:
    return {"fill_id": fill_id, "quantity": quantity, "price": "100", "fee": "0.1"}


def event(state: str) -> dict[str, Any]:
    return {"state": state, "reason": ""}


def journal(*items: tuple[str, str, dict[str, Any]]) -> list[Entry]:
    return [Entry(k + 1, 1000 * k, kind, ref, data) for k, (kind, ref, data) in enumerate(items)]


def test_a_consistent_journal_has_no_problems() -> None:
    entries = journal(
        ("config", "test", {"raw": {}, "base_dir": ".", "mode": "paper"}),
        ("order", CID, order("2")),
        ("event", CID, event("accepted")),
        ("fill", CID, fill("0.5", "V-1")),
        ("cancel", CID, {}),  # partially filled -> pending cancel
        ("fill", CID, fill("0.5", "V-2")),  # a fill may still arrive
        ("event", CID, event("canceled")),
        ("order", "sma-BTC-USD-2", order()),
        ("fill", "sma-BTC-USD-2", fill("1")),  # a fill implies accepted; no fill id
        ("denied", "sma-BTC-USD-3", {**order(), "stage": "guard", "check": "max_qty"}),
        ("order", "sma-BTC-USD-4", order()),
        ("cancel", "sma-BTC-USD-4", {}),  # not accepted yet: stays submitted
        ("event", "sma-BTC-USD-4", event("rejected")),
        ("order", "sma-BTC-USD-5", order()),
        ("event", "sma-BTC-USD-5", event("accepted")),
        ("event", "sma-BTC-USD-5", event("expired")),
        ("state", "drawdown", {"previous": "active", "state": "halted", "reason": "dd"}),
        ("funding", "BTC-PERP", {"mark": "100", "rate": "0.0001"}),
        ("liquidation", "BTC-PERP", {"price": "90", "fee": "1", "liquidation_price": "91"}),
        ("bar", "BTC-USD", {"index": 3}),
        ("op", "op-1", {"step": 1}),
        ("reconcile", "", {"passed": True, "findings": []}),
    )
    assert verify(entries) == []
    assert verify(iter(entries)) == []  # one pass over any iterable


@pytest.mark.parametrize(
    ("items", "problems"),
    [
        pytest.param(
            [("bar", "A", {"index": 1}), ("bar", "A", {"index": 2})],
            [],
            id="clean",
        ),
        pytest.param(
            [("unheard", "x", {})],
            ["record 1 (unheard x): unknown kind 'unheard'"],
            id="unknown-kind",
        ),
        pytest.param(
            [("order", CID, order()), ("order", CID, order())],
            [f"record 2 (order {CID}): duplicate client id (first used in record 1)"],
            id="duplicate-client-id",
        ),
        pytest.param(
            [("denied", CID, order()), ("order", CID, order())],
            [f"record 2 (order {CID}): duplicate client id (first used in record 1)"],
            id="order-after-denied",
        ),
        pytest.param(
            [("event", "ghost-1", event("accepted"))],
            ["record 1 (event ghost-1): event for an unknown client id (no order before it)"],
            id="event-unknown-id",
        ),
        pytest.param(
            [("fill", "ghost-1", fill("1"))],
            ["record 1 (fill ghost-1): fill for an unknown client id (no order before it)"],
            id="fill-unknown-id",
        ),
        pytest.param(
            [("cancel", "ghost-1", {})],
            ["record 1 (cancel ghost-1): cancel for an unknown client id (no order before it)"],
            id="cancel-unknown-id",
        ),
        pytest.param(
            [
                ("order", CID, order()),
                ("event", CID, event("accepted")),
                ("event", CID, event("accepted")),
            ],
            [
                f"record 3 (event {CID}): illegal order transition accepted -> accepted (allowed:"
                " canceled, expired, filled, partially_filled, pending_cancel)"
            ],
            id="illegal-transition",
        ),
        pytest.param(
            [
                ("order", CID, order()),
                ("event", CID, event("rejected")),
                ("event", CID, event("accepted")),
            ],
            [
                f"record 3 (event {CID}): illegal order transition rejected -> accepted (rejected is terminal)"
            ],
            id="after-terminal",
        ),
        pytest.param(
            [("order", CID, order()), ("event", CID, event("filled"))],
            [f"record 2 (event {CID}): filled is not an order event"],
            id="not-a-venue-event",
        ),
        pytest.param(
            [("order", CID, order()), ("event", CID, event("melted"))],
            [f"record 2 (event {CID}): unknown order state 'melted'"],
            id="unknown-state",
        ),
        pytest.param(
            [("order", CID, order("1")), ("fill", CID, fill("0.6")), ("fill", CID, fill("0.6"))],
            [
                f"record 3 (fill {CID}): fills total 1.2, more than the order's quantity 1 (record 1)"
            ],
            id="overfill",
        ),
        pytest.param(
            [
                ("order", CID, order("2")),
                ("fill", CID, fill("1", "V-1")),
                ("fill", CID, fill("1", "V-1")),
            ],
            [f"record 3 (fill {CID}): duplicate fill id 'V-1' (first in record 2)"],
            id="duplicate-fill-id",
        ),
        pytest.param(
            [
                ("order", CID, order("2")),
                ("order", "sma-BTC-USD-2", order("2")),
                ("fill", CID, fill("1", "V-1")),
                ("fill", "sma-BTC-USD-2", fill("1", "V-1")),
            ],
            ["record 4 (fill sma-BTC-USD-2): duplicate fill id 'V-1' (first in record 3)"],
            id="duplicate-fill-id-across-orders",
        ),
        pytest.param(
            [("denied", CID, order()), ("fill", CID, fill("1"))],
            [f"record 2 (fill {CID}): fill of an order already denied"],
            id="fill-of-denied",
        ),
        pytest.param(
            [("order", CID, order()), ("event", CID, event("canceled")), ("fill", CID, fill("1"))],
            [f"record 3 (fill {CID}): fill of an order already canceled"],
            id="fill-after-cancel",
        ),
        pytest.param(
            [("order", CID, order()), ("fill", CID, fill("1")), ("cancel", CID, {})],
            [f"record 3 (cancel {CID}): cancel of an order already filled"],
            id="cancel-of-filled",
        ),
        pytest.param(
            [("order", CID, order("-1")), ("fill", CID, fill("zero"))],
            [
                f"record 1 (order {CID}): quantity '-1' is not positive",
                f"record 2 (fill {CID}): quantity 'zero' is not positive",
            ],
            id="bad-quantities",
        ),
    ],
)
def test_each_kind_of_problem_is_found(
    items: list[tuple[str, str, dict[str, Any]]], problems: list[str]
) -> None:
    assert verify(journal(*items)) == problems


def test_sequence_gaps_and_repeats() -> None:
    entries = [
        Entry(1, 0, "bar", "A", {"index": 1}),
        Entry(2, 0, "bar", "A", {"index": 2}),
        Entry(4, 0, "bar", "A", {"index": 4}),
        Entry(8, 0, "bar", "A", {"index": 8}),
        Entry(8, 0, "bar", "A", {"index": 8}),
        Entry(9, 0, "bar", "A", {"index": 9}),
    ]
    assert verify(entries) == [
        "record 4 (bar A): record 3 missing before it",
        "record 8 (bar A): records 5-7 missing before it",
        "record 8 (bar A): out of sequence (after record 8)",
    ]
    assert verify(entries[2:3]) == ["record 4 (bar A): records 1-3 missing before it"]
    assert verify(entries[2:3], first=4) == []


def block(first: int, *records: Any, crc: int | None = None, last: int | None = None) -> RawBlock:
    """A stored block holding ``records`` (JSON values, one line), its CRC right unless given."""
    payload = (json.dumps(list(records), separators=(",", ":")) + "\n").encode()
    last = first + len(records) - 1 if last is None else last
    right = block_crc(first, last, len(payload), payload)
    return RawBlock(first, last, right if crc is None else crc, len(payload), payload)


def test_crc_mismatches_and_unreadable_blocks() -> None:
    raws = [
        block(1, [1, 5, "bar", "A", {"index": 1}], [2, 5, "bar", "A", {"index": 2}]),
        block(3, [3, 5, "bar", "A", {"index": 3}], crc=0),  # damaged, still readable
        RawBlock(4, 5, 0, 9, b'[[4,5,"b\n'),  # damaged, unreadable: its range is skipped
        block(6, [6, 5, "bar", "A", [1]], [7, 5, "bar", "A", {"index": 7}]),
        block(8, [8, 5, "bar", "A", {}], last=9),  # its range says more than it holds
        block(10, [11, 5, "bar", "A", {}]),  # misnumbered
        block(11, [11, 5, "bar", "A", {}]),
    ]
    assert verify(raws) == [
        "record 3 (block): CRC mismatch, the block is damaged",
        "records 4-5 (block): CRC mismatch, the block is damaged",
        "records 4-5 (block): unreadable (line 1 is not JSON (unexpected end of data: line 1"
        " column 9 (char 8)))",
        "record 6 (bar A): data is not a JSON object (a JSON array)",
        "records 8-9 (block): unreadable (holds records 8-8, not up to record 9)",
        "record 10 (block): unreadable (record 10 is numbered 11)",
    ]


def test_raw_entries_are_checked_like_entries() -> None:
    raws = [RawEntry(1, 5, "bar", "A", {"index": 1}), RawEntry(3, 5, "bar", "A", "text")]
    assert verify(raws) == [
        "record 3 (bar A): record 2 missing before it",
        "record 3 (bar A): data is not a JSON object (a JSON string)",
    ]


def test_a_journaled_backtest_verifies_clean(base_config: dict[str, Any], tmp_path: Path) -> None:
    """The model verify keeps of orders matches what the kernel journals."""
    config = copy.deepcopy(base_config)
    config["guards"] = [{"type": "max_position", "limit": "0.5"}]  # denials and reductions
    path = tmp_path / "run.db"
    config["journal"] = {"type": "sqlite", "path": str(path)}
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))
    if "sqlite" not in eng.plugins.records("engine_journals"):  # before the entry point
        eng.register(journal_sqlite, "journal_sqlite")
    result = eng.backtest_sync()
    assert result.fill_records
    with SqliteJournal(SqliteJournalConfig(path=str(path))) as store:
        kinds = {e.kind for e in store.entries()}
        assert {"config", "order", "fill"} <= kinds
        assert store.verify() == []
