"""The simulated venue as a reconcilable, durable venue (engine/builtins/broker_simulated.py):
fill ids, idempotent submit, ``order_status``/``snapshot``, and the state file that
lets a new engine process talk to a venue that remembers. Driven directly with a
recording sink, no engine."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scripted import RecordingSink

from engine import (
    Instrument,
    InstrumentKind,
    Order,
    OrderIntent,
    OrderType,
    Side,
    VenueFill,
    VenueOrder,
)
from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig

D = Decimal
TICK = D("0.01")
X = Instrument("X", TICK)
Y = Instrument("Y", TICK)
MIN = 60_000_000_000


class Sink(RecordingSink):
    """The recording sink, with instruments X and Y unless told otherwise."""

    def __init__(self, *instruments: Instrument) -> None:
        super().__init__(*(instruments or (X, Y)))


def order(
    cid: str,
    side: Side = Side.BUY,
    qty: str = "1",
    *,
    symbol: str = "X",
    limit: str | None = None,
    stop: str | None = None,
) -> Order:
    kind = OrderType.LIMIT if limit else OrderType.STOP if stop else OrderType.MARKET
    intent = OrderIntent(
        "s",
        symbol,
        side,
        D(qty),
        kind,
        None if limit is None else D(limit),
        None if stop is None else D(stop),
    )
    return Order(cid, intent, 0)


def bar(ts: int, o: str, h: str, lo: str, c: str) -> Any:
    """A bar view: prices in ticks."""
    t = [int(D(p) / TICK) for p in (o, h, lo, c)]
    return SimpleNamespace(ts=ts, open=t[0], high=t[1], low=t[2], close=t[3], volume=1.0)


def venue(sink: Sink | None = None, **options: Any) -> tuple[SimulatedBroker, Sink]:
    broker = SimulatedBroker(SimulatedConfig(**options))
    sink = sink or Sink()
    broker.bind(sink)
    return broker, sink


FLAT = ("100", "101", "99", "100")


# -- fill ids ---------------------------------------------------------------------------


def test_every_fill_carries_a_deterministic_venue_fill_id() -> None:
    broker, sink = venue(fee_bps=D(10))
    broker.submit(order("a-1"))
    broker.submit(order("a-2", Side.SELL, "2", limit="100.50"))
    broker.on_bar(X, bar(MIN, *FLAT))
    broker.on_bar(X, bar(2 * MIN, "100", "101", "99", "100"))
    fills = [e for e in sink.events if e[0] == "filled"]
    assert fills == [
        ("filled", "a-1", D(1), D(100), D("0.100"), "a-1:1"),
        ("filled", "a-2", D(2), D("100.50"), D("0.20100"), "a-2:1"),
    ]


# -- idempotent submit -----------------------------------------------------------------


def test_a_second_submit_of_a_known_client_id_is_a_noop() -> None:
    broker, sink = venue()
    first = order("a-1", limit="90")
    broker.submit(first)
    broker.submit(order("a-1", Side.SELL, "5"))  # same id, another intent: ignored
    broker.submit(first)
    assert sink.events == [("accepted", "a-1")]
    assert len(broker.resting("X")) == 1
    status = broker.order_status("a-1")
    assert status is not None
    assert (status.side, status.quantity, status.state) == (Side.BUY, D(1), "accepted")
    broker.on_bar(X, bar(MIN, "90", "91", "89", "90"))
    broker.submit(first)  # after the fill: still nothing
    assert sink.kinds() == ["accepted", "filled"]


def test_a_resubmitted_rejected_order_stays_rejected_without_a_second_report() -> None:
    broker, sink = venue()
    bad = Order("a-1", OrderIntent("s", "X", Side.BUY, D(1), OrderType.LIMIT), 0)
    broker.submit(bad)
    broker.submit(bad)
    assert sink.events == [("rejected", "a-1", "limit order without a limit price")]
    assert broker.order_status("a-1") == VenueOrder("a-1", "X", Side.BUY, D(1), D(0), "rejected")


# -- order_status and snapshot ------------------------------------------------------------


def test_order_status_and_snapshot_describe_the_venue_state() -> None:
    broker, _ = venue()
    assert broker.order_status("nope") is None
    broker.submit(order("a-1"))  # market: fills on the next bar
    broker.submit(order("a-2", Side.SELL, "3", symbol="Y"))
    broker.submit(order("a-3", limit="50"))  # rests
    broker.submit(order("a-4", Side.SELL, stop="10"))  # canceled below
    broker.on_bar(X, bar(MIN, *FLAT))
    broker.on_bar(Y, bar(MIN, "20", "21", "19", "20"))
    broker.cancel("a-4")
    broker.cancel("a-1")  # already filled: nothing
    snap = broker.snapshot()
    assert snap.orders == (
        VenueOrder("a-1", "X", Side.BUY, D(1), D(1), "filled"),
        VenueOrder("a-2", "Y", Side.SELL, D(3), D(3), "filled"),
        VenueOrder("a-3", "X", Side.BUY, D(1), D(0), "accepted"),
        VenueOrder("a-4", "X", Side.SELL, D(1), D(0), "canceled"),
    )
    assert snap.open_orders == (VenueOrder("a-3", "X", Side.BUY, D(1), D(0), "accepted"),)
    assert snap.fills == (
        VenueFill("a-1:1", "a-1", "X", Side.BUY, D(1), D(100), D(0), MIN),
        VenueFill("a-2:1", "a-2", "Y", Side.SELL, D(3), D(20), D(0), MIN),
    )
    assert snap.positions == {"X": D(1), "Y": D(-3)}
    assert broker.order_status("a-4") == snap.orders[3]


def test_positions_net_out_and_flat_ones_are_left_out() -> None:
    broker, _ = venue()
    broker.submit(order("a-1", qty="2"))
    broker.on_bar(X, bar(MIN, *FLAT))
    broker.submit(order("a-2", Side.SELL, "2"))
    broker.on_bar(X, bar(2 * MIN, *FLAT))
    assert broker.snapshot().positions == {}
    assert [f.fill_id for f in broker.snapshot().fills] == ["a-1:1", "a-2:1"]


# -- the state file -----------------------------------------------------------------------


def test_a_venue_rebuilt_from_its_state_file_remembers_everything(tmp_path: Path) -> None:
    path = tmp_path / "venue.db"
    broker, _ = venue(state=str(path))
    broker.submit(order("a-1"))
    broker.submit(order("a-2", Side.SELL, "2", limit="105"))  # rests
    broker.submit(order("a-3", stop="120"))  # rests
    broker.submit(order("a-4", limit="1"))  # canceled
    broker.submit(Order("a-5", OrderIntent("s", "X", Side.BUY, D(1), OrderType.LIMIT), 0))
    broker.on_bar(X, bar(MIN, *FLAT))
    broker.cancel("a-4")
    before = broker.snapshot()
    del broker  # "a crash": dropped without close()

    reborn, sink2 = venue(state=str(path))
    assert reborn.snapshot() == before
    assert reborn.order_status("a-5") == VenueOrder("a-5", "X", Side.BUY, D(1), D(0), "rejected")
    # a new engine process resubmits what it is unsure of: the venue knows it
    reborn.submit(order("a-2", Side.SELL, "2", limit="105"))
    reborn.submit(order("a-1"))
    assert sink2.events == []
    # resting orders still fill on later bars, in their original order
    reborn.on_bar(X, bar(2 * MIN, "104", "121", "103", "110"))
    assert sink2.events == [
        ("filled", "a-2", D(2), D(105), D(0), "a-2:1"),
        ("filled", "a-3", D(1), D(120), D(0), "a-3:1"),
    ]
    # new orders get new ids and the numbering carries on
    reborn.submit(order("a-6"))
    reborn.on_bar(X, bar(3 * MIN, *FLAT))
    snap = reborn.snapshot()
    assert [f.fill_id for f in snap.fills] == ["a-1:1", "a-2:1", "a-3:1", "a-6:1"]
    assert snap.open_orders == ()
    assert snap.positions == {"X": D(1)}

    third, _ = venue(state=str(path))
    assert third.snapshot() == snap


def test_the_state_is_written_before_each_report(tmp_path: Path) -> None:
    path = tmp_path / "venue.db"

    class Peeking(Sink):
        """Reads the file from another connection whenever the venue reports."""

        def seen(self) -> tuple[Any, ...]:
            db = sqlite3.connect(path)
            try:
                orders = db.execute("SELECT client_id, state FROM orders ORDER BY seq").fetchall()
                fills = db.execute("SELECT fill_id FROM fills ORDER BY seq").fetchall()
            finally:
                db.close()
            return tuple(orders), tuple(f[0] for f in fills)

        def order_accepted(self, client_id: str) -> None:
            self.events.append(("accepted", self.seen()))

        def order_filled(self, client_id: str, *args: Any, **kwargs: Any) -> None:
            self.events.append(("filled", self.seen()))

        def order_canceled(self, client_id: str, reason: str = "") -> None:
            self.events.append(("canceled", self.seen()))

    broker, sink = venue(Peeking(), state=str(path))
    broker.submit(order("a-1"))
    broker.submit(order("a-2", limit="1"))
    broker.on_bar(X, bar(MIN, *FLAT))
    broker.cancel("a-2")
    assert sink.events == [
        ("accepted", ((("a-1", "accepted"),), ())),
        ("accepted", ((("a-1", "accepted"), ("a-2", "accepted")), ())),
        ("filled", ((("a-1", "filled"), ("a-2", "accepted")), ("a-1:1",))),
        ("canceled", ((("a-1", "filled"), ("a-2", "canceled")), ("a-1:1",))),
    ]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_without_a_state_file_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def no_sqlite(*_: Any, **__: Any) -> Any:
        raise AssertionError("sqlite3.connect called without state")

    monkeypatch.setattr(sqlite3, "connect", no_sqlite)
    broker, sink = venue()
    broker.submit(order("a-1"))
    broker.on_bar(X, bar(MIN, *FLAT))
    assert sink.kinds() == ["accepted", "filled"]
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    from engine import ExecutionError

    path = tmp_path / "venue.db"
    path.write_text("not a database, " * 100)
    with pytest.raises(ExecutionError, match="cannot open the simulated venue's state file"):
        SimulatedBroker(SimulatedConfig(state=str(path)))


class PerpSink(Sink):
    """A sink holding a perpetual position (for the liquidation watch)."""

    def __init__(self, held: Decimal) -> None:
        super().__init__(Instrument("P", TICK, kind=InstrumentKind.PERPETUAL))
        self.held = held

    def position(self, symbol: str) -> Decimal:
        return self.held

    def marks(self) -> dict[str, Decimal]:
        return {}


def test_a_reloaded_venue_watches_its_perpetual_positions_again(tmp_path: Path) -> None:
    path = str(tmp_path / "venue.db")
    broker, _ = venue(PerpSink(D(0)), state=path)
    broker.submit(order("a-1", symbol="P"))
    perp = Instrument("P", TICK, kind=InstrumentKind.PERPETUAL)
    broker.sink.held = D(0)  # no kernel position: no watch kept after the bar
    broker.on_bar(perp, bar(MIN, *FLAT))
    assert broker.snapshot().positions == {"P": D(1)}
    reborn, _ = venue(PerpSink(D(1)), state=path)
    assert len(reborn.resting("P")) == 1  # the liquidation watch, not an order
    assert reborn.snapshot().open_orders == ()


class LiquidatingSink(PerpSink):
    """A perpetual long whose liquidation price is 90."""

    def __init__(self) -> None:
        super().__init__(D(0))
        self.portfolio = SimpleNamespace(positions={}, version=0)
        self.liquidated: list[tuple[Any, ...]] = []

    def order_filled(self, client_id: str, qty: Decimal, *args: Any) -> None:
        super().order_filled(client_id, qty, *args)
        self.held += qty  # buys only here

    def liquidation_price(self, symbol: str) -> Decimal:
        return D(90)

    def liquidate(self, symbol: str, price: Decimal, fee: Decimal, at: Decimal) -> None:
        self.liquidated.append((symbol, price, fee, at))
        self.held = D(0)


def test_a_liquidation_is_the_venues_own_order_and_fill(tmp_path: Path) -> None:
    path = str(tmp_path / "venue.db")
    perp = Instrument("P", TICK, kind=InstrumentKind.PERPETUAL)
    sink = LiquidatingSink()
    broker, _ = venue(sink, state=path, liquidation_fee_bps=D(100))
    broker.submit(order("a-1", symbol="P"))
    broker.on_bar(perp, bar(MIN, *FLAT))
    assert sink.held == D(1) and sink.liquidated == []
    broker.on_bar(perp, bar(2 * MIN, "95", "96", "80", "85"))
    assert sink.liquidated == [("P", D(90), D("0.90"), D(90))]
    snap = broker.snapshot()
    assert snap.orders[-1] == VenueOrder("liquidation:P:1", "P", Side.SELL, D(1), D(1), "filled")
    assert snap.fills[-1] == VenueFill(
        "liquidation:P:1:1", "liquidation:P:1", "P", Side.SELL, D(1), D(90), D("0.90"), 2 * MIN
    )
    assert snap.positions == {}
    reborn, _ = venue(LiquidatingSink(), state=path)
    assert reborn.snapshot() == snap
    assert reborn._liquidations == 1
