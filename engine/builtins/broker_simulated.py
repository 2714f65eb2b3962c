"""Built-in plugin ``simulated``: a venue simulated against bars.

Market orders fill at the next bar's open; limit orders when the bar trades
through the limit (at the open if it gaps past it); stop orders when the bar
reaches the stop (at the open on a gap). Fees in basis points of notional;
slippage in basis points, against the trader and rounded to the tick.

Like a real venue it deduplicates client order ids (a second ``submit`` of an id
it knows is ignored: the order it already has is neither rejected nor touched),
gives every execution an id (``<client id>:<n>``, the n-th fill of that order;
the kernel ignores a fill id it already applied) and answers reconciliation
queries (:mod:`engine.venue`): ``order_status(client_id)`` and ``snapshot()``.

Perpetual futures: an order that adds exposure is rejected when the account's
initial margin after it would exceed its equity; an open position is liquidated
when a bar reaches its liquidation price (at that price, or at the open when the
bar gaps through it), paying ``liquidation_fee_bps``. The venue records a
liquidation as its own order and fill, ``liquidation:<symbol>:<n>``.

Durability (``state = "venue.db"``): the venue keeps what it knows (every order
with its intent and state, every fill, its counters) in a SQLite file (WAL,
``synchronous=FULL``) and writes each change *before* reporting it, like a real
venue: what it reported is never forgotten. Built on an existing file it loads
that state, so a new engine process (after a crash) talks to a venue that
remembers every order and fill, and whose resting orders still fill on later
bars. The file belongs to one trading session: a new run started on it finds
its (deterministic) client ids already known and they are ignored, so start a
fresh session with a fresh file. The path is used as given (relative to the
working directory). Without ``state`` nothing is written and nothing costs more
per bar.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from engine import (
    BarView,
    Broker,
    ExecutionError,
    Instrument,
    Order,
    OrderIntent,
    OrderState,
    OrderType,
    Side,
    VenueFill,
    VenueOrder,
    VenueSnapshot,
    hookimpl,
    non_negative,
)

BPS = Decimal(10_000)
ZERO = Decimal(0)


@attrs.frozen
class SimulatedConfig:
    """``[broker] type = "simulated"`` options. ``state``: a SQLite file where the
    venue keeps its orders and fills across processes (none: memory only)."""

    fee_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)
    maker_fee_bps: Decimal | None = attrs.field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    slippage_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)
    liquidation_fee_bps: Decimal = attrs.field(default=Decimal(0), validator=non_negative)
    state: str | None = None


#: Kept in a symbol's resting list while a perpetual position is open, so the kernel
#: keeps showing this broker the symbol's bars (to watch for liquidation).
_WATCH: Any = ("liquidation watch",)

_ACCEPTED = OrderState.ACCEPTED
_PARTIAL = OrderState.PARTIALLY_FILLED
_FILLED = OrderState.FILLED
_OPEN = frozenset({_ACCEPTED, _PARTIAL})
LIQUIDATION = "liquidation"


class VenueRecord:
    """The venue's own record of one order: the intent it received, the state and
    filled quantity *it* knows (the engine's :class:`~engine.Order` is the engine's
    view). It has the ``client_id`` and ``intent`` of an order, so it stands for
    one in the resting lists."""

    __slots__ = (
        "client_id",
        "created_ts",
        "filled_quantity",
        "fills",
        "intent",
        "limit",
        "reason",
        "state",
        "stop",
    )

    def __init__(self, client_id: str, intent: OrderIntent, created_ts: int) -> None:
        self.client_id = client_id
        self.intent = intent
        self.created_ts = created_ts
        self.state = OrderState.SUBMITTED
        self.filled_quantity = ZERO
        #: fills so far: the n of the next fill id is ``fills + 1``
        self.fills = 0
        self.reason = ""
        #: matching parameters in ticks (-1: none)
        self.limit = -1
        self.stop = -1

    def view(self) -> VenueOrder:
        """As :class:`~engine.venue.VenueOrder`."""
        intent = self.intent
        return VenueOrder(
            self.client_id,
            intent.instrument,
            intent.side,
            intent.quantity,
            self.filled_quantity,
            self.state.value,
        )


#: one execution: (fill id, order record, quantity, price, fee, venue time ns)
_FillRow = tuple[str, VenueRecord, Decimal, Decimal, Decimal, int]


class SimulatedBroker:
    """Fills orders against bars; reports through the kernel's execution sink."""

    def __init__(self, config: SimulatedConfig) -> None:
        self.config = config
        self.taker = config.fee_bps / BPS
        self.maker = (
            config.fee_bps if config.maker_fee_bps is None else config.maker_fee_bps
        ) / BPS
        self.slippage = config.slippage_bps / BPS
        self.liquidation_fee = config.liquidation_fee_bps / BPS
        self.sink: Any = None
        #: symbol -> (portfolio version, liquidation price, its ticks) for one position
        self._liquidation_cache: dict[str, tuple[int, Decimal | None, int]] = {}
        self._is_perpetual: dict[str, bool] = {}
        #: every order the venue received, in arrival order
        self._orders: dict[str, VenueRecord] = {}
        #: every execution, in order
        self._fills: list[_FillRow] = []
        self._resting: dict[str, list[tuple[VenueRecord, int, int]]] = {}
        self._liquidations = 0
        self._store: _Store | None = None
        if config.state is not None:
            self._store = _Store(config.state)
            self._store.load(self)

    # -- wiring --------------------------------------------------------------------------

    def bind(self, sink: Any) -> None:
        """Receive the engine's execution sink. A venue reloaded from its state file
        watches its perpetual positions for liquidation again."""
        self.sink = sink
        if self._store is None:
            return
        for symbol in self.positions():
            try:
                perpetual = self._perpetual(symbol)
            except KeyError:  # an instrument the engine no longer trades
                continue
            resting = self.resting(symbol)
            if perpetual and _WATCH not in resting:
                resting.append(_WATCH)

    def close(self) -> None:
        """Close the state file (every change is already on disk)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- orders --------------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        """Accept (or reject) an order; it rests until a bar can fill it. A client id
        the venue already knows is ignored: the order it has is not touched."""
        cid = order.client_id
        if cid in self._orders:
            logger.debug("simulated venue: duplicate submit of {} ignored", cid)
            return
        intent = order.intent
        record = VenueRecord(cid, intent, order.created_ts)
        if intent.type is OrderType.LIMIT:
            inst = self.sink.instrument(intent.instrument)
            if intent.limit_price is None:
                self._reject(record, "limit order without a limit price")
                return
            record.limit = inst.round_ticks(intent.limit_price, intent.side.opposite)
        elif intent.type is OrderType.STOP:
            inst = self.sink.instrument(intent.instrument)
            if intent.stop_price is None:
                self._reject(record, "stop order without a stop price")
                return
            record.stop = inst.round_ticks(intent.stop_price, intent.side)
        perpetual = self._is_perpetual.get(intent.instrument)
        if perpetual is None:
            perpetual = self._perpetual(intent.instrument)
        if perpetual:
            reason = self._margin_problem(order)
            if reason:
                self._reject(record, reason)
                return
        record.state = _ACCEPTED
        self._orders[cid] = record
        if self._store is not None:
            self._store.put_order(record)
        resting = self._resting.get(intent.instrument)
        if resting is None:
            resting = self.resting(intent.instrument)
        resting.append((record, record.limit, record.stop))
        self.sink.order_accepted(cid)

    def _reject(self, record: VenueRecord, reason: str) -> None:
        record.state = OrderState.REJECTED
        record.reason = reason
        self._orders[record.client_id] = record
        if self._store is not None:
            self._store.put_order(record)
        self.sink.order_rejected(record.client_id, reason)

    def _perpetual(self, symbol: str) -> bool:
        known = self._is_perpetual.get(symbol)
        if known is None:
            known = self._is_perpetual[symbol] = self.sink.instrument(symbol).is_perpetual
        return known

    def _margin_problem(self, order: Order) -> str:
        """Why a perpetual order that opens exposure cannot be margined ('' if it can).
        A reversal (long to short) opens its whole new side."""
        intent = order.intent
        inst = self.sink.instrument(intent.instrument)
        held = self.sink.position(intent.instrument)
        after = held + (intent.quantity if intent.side is Side.BUY else -intent.quantity)
        reverses = after * held < 0
        if not reverses and abs(after) <= abs(held):
            return ""  # only reduces
        marks = self.sink.marks()
        price = intent.limit_price or intent.stop_price or marks.get(intent.instrument)
        if price is None:
            return ""
        portfolio = self.sink.portfolio
        rate = price * inst.multiplier * inst.initial_margin
        required = portfolio.initial_margin(marks) + (abs(after) - abs(held)) * rate
        equity = portfolio.equity(marks)
        if required > equity:
            return f"insufficient margin: {required:.2f} initial margin needed, equity {equity:.2f}"
        return ""

    def resting(self, symbol: str) -> list[Any]:
        """Orders resting on ``symbol``; the same list object for the whole run,
        so the kernel can skip ``on_bar`` while it is empty."""
        return self._resting.setdefault(symbol, [])

    def cancel(self, client_id: str) -> None:
        """Cancel a resting order (an order that is not resting: nothing happens)."""
        record = self._orders.get(client_id)
        if record is None or record.state not in _OPEN:
            return
        resting = self.resting(record.intent.instrument)
        for k, item in enumerate(resting):
            if item[0] is record:
                del resting[k]
                break
        # (not found: it is in the batch on_bar is matching right now, which skips
        # orders that are no longer open)
        record.state = OrderState.CANCELED
        record.reason = "canceled by request"
        if self._store is not None:
            self._store.put_order(record)
        self.sink.order_canceled(client_id, "canceled by request")

    # -- matching ------------------------------------------------------------------------

    def _match(self, side: Side, limit: int, stop: int, bar: BarView) -> tuple[int, bool] | None:
        """(fill price in ticks, is taker) or None when the bar does not fill it."""
        o, h, lo = bar.open, bar.high, bar.low
        if limit >= 0:
            if side is Side.BUY:
                return ((o, False) if o <= limit else (limit, False)) if lo <= limit else None
            return ((o, False) if o >= limit else (limit, False)) if h >= limit else None
        if stop >= 0:
            if side is Side.BUY:
                return ((o, True) if o >= stop else (stop, True)) if h >= stop else None
            return ((o, True) if o <= stop else (stop, True)) if lo <= stop else None
        return o, True

    def on_bar(self, instrument: Instrument, bar: BarView) -> None:
        """Fill what this bar can fill (orders placed during it wait for the next
        bar); then, for a perpetual position, liquidate it if the bar reaches its
        liquidation price."""
        resting = self.resting(instrument.symbol)
        if not resting:
            return
        batch = resting[:]
        resting.clear()
        waiting = []
        for item in batch:
            if item is _WATCH:
                continue  # re-added below while a perpetual position is open
            record, limit, stop = item
            if record.state not in _OPEN:  # canceled while this batch was matched
                continue
            if record.created_ts >= bar.ts:  # placed during this bar (or, after a
                waiting.append(item)  # restart, a bar seen again): the next bar decides
                continue
            intent = record.intent
            side = intent.side
            if limit < 0 and stop < 0:  # market: the open, as a taker
                ticks, taker = bar.open, True
            else:
                matched = self._match(side, limit, stop, bar)
                if matched is None:
                    waiting.append(item)
                    continue
                ticks, taker = matched
            price = ticks * instrument.tick_size
            if taker and self.slippage:
                price = instrument.price(
                    instrument.round_ticks(price * (1 + self.slippage * side.sign), side)
                )
            qty = intent.quantity - record.filled_quantity
            rate = self.taker if taker else self.maker
            fee = price * qty * instrument.multiplier * rate if rate else rate
            # the venue's books first, then the report (it fills the whole remainder)
            n = record.fills = record.fills + 1
            record.filled_quantity = intent.quantity
            record.state = _FILLED
            cid = record.client_id
            fill_id = f"{cid}:{n}"
            row = (fill_id, record, qty, price, fee, bar.ts)
            self._fills.append(row)
            if self._store is not None:
                self._store.put_fill(row)
            self.sink.order_filled(cid, qty, price, fee, fill_id)
        resting[:0] = waiting
        if instrument.is_perpetual:
            self._watch_liquidation(instrument, bar, resting)

    def _liquidation(self, instrument: Instrument) -> tuple[Decimal | None, int]:
        """The position's liquidation price and its ticks (rounded against the
        trader), cached while the account holds just this position and nothing
        changed its cash or lots."""
        portfolio = self.sink.portfolio
        symbol = instrument.symbol
        cached = self._liquidation_cache.get(symbol)
        alone = sum(1 for p in portfolio.positions.values() if p.quantity) == 1
        if cached is not None and alone and cached[0] == portfolio.version:
            return cached[1], cached[2]
        price = self.sink.liquidation_price(symbol)
        held = self.sink.position(symbol)
        # first tick at which the account is liquidatable: at or below the price for a
        # long (rounded down), at or above it for a short (rounded up)
        closing = Side.SELL if held > 0 else Side.BUY
        ticks = -1 if price is None else instrument.round_ticks(price, closing)
        self._liquidation_cache[symbol] = (portfolio.version, price, ticks)
        return price, ticks

    def _watch_liquidation(self, instrument: Instrument, bar: BarView, resting: list[Any]) -> None:
        held = self.sink.position(instrument.symbol)
        if held:
            price, ticks = self._liquidation(instrument)
            if price is not None and ticks > 0:
                if held > 0 and bar.low <= ticks:
                    fill = min(bar.open, ticks)
                elif held < 0 and bar.high >= ticks:
                    fill = max(bar.open, ticks)
                else:
                    fill = -1
                if fill > 0:
                    at = instrument.price(fill)
                    fee = abs(held) * at * instrument.multiplier * self.liquidation_fee
                    self._record_liquidation(instrument.symbol, held, at, fee, bar.ts)
                    self.sink.liquidate(instrument.symbol, at, fee, price)
                    held = self.sink.position(instrument.symbol)
        watching = _WATCH in resting
        if held and not watching:
            resting.append(_WATCH)
        elif not held and watching:
            resting.remove(_WATCH)

    def _record_liquidation(
        self, symbol: str, held: Decimal, price: Decimal, fee: Decimal, ts: int
    ) -> None:
        """The venue's own order and fill closing ``held`` (before it reports)."""
        self._liquidations += 1
        cid = f"{LIQUIDATION}:{symbol}:{self._liquidations}"
        side = Side.SELL if held > 0 else Side.BUY
        intent = OrderIntent(
            LIQUIDATION, symbol, side, abs(held), reduce_only=True, tag=LIQUIDATION
        )
        record = self._orders[cid] = VenueRecord(cid, intent, ts)
        record.state = _FILLED
        record.filled_quantity = abs(held)
        record.fills = 1
        row = (f"{cid}:1", record, abs(held), price, fee, ts)
        self._fills.append(row)
        if self._store is not None:
            self._store.put_fill(row)

    # -- reconciliation (engine.venue) -------------------------------------------------

    def order_status(self, client_id: str) -> VenueOrder | None:
        """The venue's view of one order; ``None`` if it never received it."""
        record = self._orders.get(client_id)
        return None if record is None else record.view()

    def positions(self) -> dict[str, Decimal]:
        """Signed positions by instrument from the venue's own fills (flat ones left out)."""
        held: dict[str, Decimal] = {}
        for _fill_id, record, qty, _price, _fee, _ts in self._fills:
            intent = record.intent
            signed = qty if intent.side is Side.BUY else -qty
            held[intent.instrument] = held.get(intent.instrument, ZERO) + signed
        return {symbol: q for symbol, q in held.items() if q}

    def snapshot(self) -> VenueSnapshot:
        """Open orders, every order, every fill and the positions, as the venue knows them."""
        orders = tuple(r.view() for r in self._orders.values())
        fills = tuple(
            VenueFill(fill_id, r.client_id, r.intent.instrument, r.intent.side, q, p, f, ts)
            for fill_id, r, q, p, f, ts in self._fills
        )
        records = self._orders.values()
        return VenueSnapshot(
            open_orders=tuple(o for o, r in zip(orders, records, strict=True) if r.state in _OPEN),
            fills=fills,
            positions=self.positions(),
            orders=orders,
        )


# -- the state file -------------------------------------------------------------------

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,             -- arrival order at the venue (set on insert)
    strategy TEXT NOT NULL,
    instrument TEXT NOT NULL,
    side TEXT NOT NULL,               -- buy | sell
    quantity TEXT NOT NULL,           -- decimal
    type TEXT NOT NULL,               -- market | limit | stop
    limit_price TEXT,                 -- decimal or NULL
    stop_price TEXT,
    reduce_only INTEGER NOT NULL,
    tag TEXT NOT NULL,
    created_ts INTEGER NOT NULL,      -- engine time the order was created (ns)
    state TEXT NOT NULL,              -- OrderState value: accepted, filled, canceled...
    reason TEXT NOT NULL,             -- why rejected / canceled
    filled_quantity TEXT NOT NULL,
    fills INTEGER NOT NULL,           -- fills so far (n of the next fill id - 1)
    limit_ticks INTEGER NOT NULL,     -- matching parameters (-1: none)
    stop_ticks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,             -- execution order at the venue
    client_id TEXT NOT NULL REFERENCES orders (client_id),
    quantity TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL,
    ts INTEGER NOT NULL               -- venue time (engine time of the bar, ns)
);
"""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class _Store:
    """The venue's SQLite state file. Every write commits (fsync'd) before the
    venue reports the change it records."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None)  # autocommit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise ExecutionError(
                f"cannot open the simulated venue's state file {path}: {exc}"
            ) from None
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise ExecutionError(
                f"{path}: venue state schema {row[0]}, this engine reads {SCHEMA_VERSION}"
            )
        count = "SELECT COALESCE(MAX(seq), 0) FROM "
        self._order_seq: int = self.db.execute(count + "orders").fetchone()[0]
        self._fill_seq: int = self.db.execute(count + "fills").fetchone()[0]

    def load(self, venue: SimulatedBroker) -> None:
        """Restore ``venue``'s orders, fills, resting orders and counters."""
        rows = self.db.execute(
            "SELECT client_id, strategy, instrument, side, quantity, type, limit_price,"
            " stop_price, reduce_only, tag, created_ts, state, reason, filled_quantity, fills,"
            " limit_ticks, stop_ticks FROM orders ORDER BY seq"
        ).fetchall()
        for (
            cid,
            strategy,
            instrument,
            side,
            quantity,
            type_,
            limit_price,
            stop_price,
            reduce_only,
            tag,
            created_ts,
            state,
            reason,
            filled,
            fills,
            limit_ticks,
            stop_ticks,
        ) in rows:
            intent = OrderIntent(
                strategy,
                instrument,
                Side(side),
                Decimal(quantity),
                OrderType(type_),
                _decimal(limit_price),
                _decimal(stop_price),
                bool(reduce_only),
                tag,
            )
            record = VenueRecord(cid, intent, created_ts)
            record.state = OrderState(state)
            record.reason = reason
            record.filled_quantity = Decimal(filled)
            record.fills = fills
            record.limit = limit_ticks
            record.stop = stop_ticks
            venue._orders[cid] = record
            if record.state in _OPEN:
                venue.resting(instrument).append((record, limit_ticks, stop_ticks))
            if cid.startswith(f"{LIQUIDATION}:"):
                venue._liquidations += 1
        for fill_id, cid, qty, price, fee, ts in self.db.execute(
            "SELECT fill_id, client_id, quantity, price, fee, ts FROM fills ORDER BY seq"
        ):
            venue._fills.append(
                (fill_id, venue._orders[cid], Decimal(qty), Decimal(price), Decimal(fee), ts)
            )

    def put_order(self, r: VenueRecord) -> None:
        """Insert an order, or update the state of one already there (its ``seq``,
        the arrival order, is kept). Outside :meth:`put_fill`, one autocommitted
        statement."""
        self._order_seq += 1
        i = r.intent
        self.db.execute(
            "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (client_id) DO UPDATE SET state = excluded.state,"
            " reason = excluded.reason, filled_quantity = excluded.filled_quantity,"
            " fills = excluded.fills",
            (
                r.client_id,
                self._order_seq,
                i.strategy,
                i.instrument,
                i.side.value,
                str(i.quantity),
                i.type.value,
                _text(i.limit_price),
                _text(i.stop_price),
                int(i.reduce_only),
                i.tag,
                r.created_ts,
                r.state.value,
                r.reason,
                str(r.filled_quantity),
                r.fills,
                r.limit,
                r.stop,
            ),
        )

    def put_fill(self, row: _FillRow) -> None:
        """One fill and its order's new state, atomically."""
        fill_id, record, qty, price, fee, ts = row
        self._fill_seq += 1
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO fills VALUES (?,?,?,?,?,?,?)",
                (fill_id, self._fill_seq, record.client_id, str(qty), str(price), str(fee), ts),
            )
            self.put_order(record)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def _build(config: SimulatedConfig) -> SimulatedBroker:
    return SimulatedBroker(config)


@hookimpl
def engine_brokers() -> list[Broker]:
    """The ``simulated`` broker."""
    return [
        Broker(
            name="simulated",
            factory=_build,
            config_type=SimulatedConfig,
            live=False,
            deduplicates=True,
            description="Fills against bars: market at next open, limit/stop when crossed.",
        )
    ]
