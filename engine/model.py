"""Domain model: instruments, bars, quotes, orders, fills, positions, portfolio.

Number representation (see docs/model.md):

* At the edges (config, records a user sees, accounting) prices, quantities, cash
  and fees are :class:`decimal.Decimal`: exact for any tick size.
* Inside the hot loop prices are **integer ticks** of the instrument's tick size
  (``price = ticks * tick_size``). Integer arithmetic is exact and as fast as
  Python gets, so indicators computed on ticks (sums, comparisons) give the same
  answer as a reference loop, bar for bar. A price that is not on the tick grid is
  a data error, reported with its file and row.
* Accounting (cash, FIFO lots, realised PnL, fees) happens once per fill, in
  Decimal, so ``cash + position value == equity`` holds exactly after every fill.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from enum import Enum

import attrs
from attrs import field, frozen

from engine.statemachine import TransitionTable

__all__ = [
    "ZERO",
    "Bar",
    "Fill",
    "Instrument",
    "InstrumentKind",
    "Lot",
    "Order",
    "OrderIntent",
    "OrderState",
    "OrderType",
    "Portfolio",
    "Position",
    "Quote",
    "Side",
    "Trade",
]

ZERO = Decimal(0)


class Side(Enum):
    """Order side."""

    # members are singletons compared by identity: hash them by identity too, in C
    __hash__ = object.__hash__

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return _SIGN[self]

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


_SIGN = {Side.BUY: 1, Side.SELL: -1}


class OrderType(Enum):
    """How an order executes."""

    # members are singletons compared by identity: hash them by identity too, in C
    __hash__ = object.__hash__

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class InstrumentKind(Enum):
    """What kind of product an instrument is.

    A spot fill pays or receives the notional in cash. A perpetual future is
    margined: a fill moves cash only by realised PnL and fees, the open position
    counts in equity by its unrealised PnL, and funding is paid from cash.
    """

    SPOT = "spot"
    PERPETUAL = "perpetual"


@frozen
class Instrument:
    """A tradable instrument and its grid: prices in ``tick_size`` steps, sizes in ``lot_size``.

    >>> btc = Instrument("BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"))
    >>> btc.to_ticks(Decimal("101.25")), btc.price(10125)
    (10125, Decimal('101.25'))
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)
    kind: InstrumentKind = InstrumentKind.SPOT
    quote_currency: str = "USD"
    multiplier: Decimal = Decimal(1)
    #: perpetuals: margin rates as fractions of notional (0.2 is 5x leverage)
    initial_margin: Decimal = Decimal(1)
    maintenance_margin: Decimal = Decimal("0.5")
    #: perpetuals: funding every ``funding_interval_ns`` (aligned to the epoch, so 8h
    #: pays at 00:00, 08:00 and 16:00 UTC) at ``funding_rate`` unless the feed has a
    #: ``funding_rate`` column
    funding_interval_ns: int = 0
    funding_rate: Decimal = Decimal(0)
    #: True for a perpetual future (a plain field: read on the order path)
    is_perpetual: bool = field(init=False)

    @is_perpetual.default
    def _perpetual(self) -> bool:
        return self.kind is InstrumentKind.PERPETUAL

    def price(self, ticks: int) -> Decimal:
        """The exact price of ``ticks`` ticks."""
        return ticks * self.tick_size

    def to_ticks(self, price: Decimal) -> int:
        """Ticks of an exact price; ``ValueError`` when it is off the tick grid."""
        ticks, rest = divmod(price, self.tick_size)
        if rest:
            raise ValueError(f"price {price} is not a multiple of tick size {self.tick_size}")
        return int(ticks)

    def round_ticks(self, price: Decimal, side: Side) -> int:
        """Ticks of ``price`` rounded against the trader (up for buys, down for sells)."""
        ticks, rest = divmod(price, self.tick_size)
        if rest and side is Side.BUY:
            ticks += 1
        return int(ticks)

    def is_lot_multiple(self, quantity: Decimal) -> bool:
        """True when ``quantity`` is a whole number of lots."""
        return not (quantity % self.lot_size)


@frozen
class Bar:
    """One OHLCV bar as a record (the hot loop uses columns and a reused view instead).

    ``ts`` is the bar's timestamp in nanoseconds since the epoch (UTC).
    """

    instrument: str
    ts: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@frozen
class Quote:
    """Top of book at one instant."""

    instrument: str
    ts: int
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal

    @property
    def mid(self) -> Decimal:
        """Mid price."""
        return (self.bid + self.ask) / 2


@frozen
class OrderIntent:
    """What a strategy wants: the input of the order pipeline.

    ``quantity`` is always positive; ``side`` says the direction.
    """

    strategy: str
    instrument: str
    side: Side
    quantity: Decimal
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    tag: str = ""


class OrderState(Enum):
    """Order lifecycle states (see ``ORDER_TRANSITIONS``)."""

    # members are singletons compared by identity: hash them by identity too, in C
    __hash__ = object.__hash__

    INITIALIZED = "initialized"
    DENIED = "denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"


_S = OrderState
ORDER_TRANSITIONS: TransitionTable[OrderState] = TransitionTable(
    "order",
    {
        _S.INITIALIZED: [_S.DENIED, _S.SUBMITTED],
        _S.SUBMITTED: [_S.ACCEPTED, _S.REJECTED, _S.CANCELED],
        _S.ACCEPTED: [_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELED, _S.EXPIRED],
        _S.PARTIALLY_FILLED: [
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            _S.PENDING_CANCEL,
            _S.CANCELED,
            _S.EXPIRED,
        ],
        _S.PENDING_CANCEL: [_S.CANCELED, _S.PARTIALLY_FILLED, _S.FILLED],
    },
)

#: States no transition leaves.
TERMINAL_ORDER_STATES = frozenset(s for s in OrderState if ORDER_TRANSITIONS.is_terminal(s))
_NEXT_STATES = {s: ORDER_TRANSITIONS.allowed(s) for s in OrderState}


@attrs.define(slots=True)
class Order:
    """An order the engine tracks from intent to a terminal state.

    Mutable on purpose: its state changes, always through :meth:`transition`,
    which enforces the state machine and keeps an auditable history.
    """

    client_id: str
    intent: OrderIntent
    created_ts: int
    state: OrderState = OrderState.INITIALIZED
    filled_quantity: Decimal = ZERO
    average_price: Decimal | None = None
    history: list[tuple[int, OrderState, str]] = field(factory=list)

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.intent.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        """True until the order reaches a terminal state."""
        return self.state not in TERMINAL_ORDER_STATES

    def transition(self, state: OrderState, ts: int, reason: str = "") -> None:
        """Move to ``state``; raises :class:`~engine.errors.IllegalTransition` if illegal."""
        if state not in _NEXT_STATES[self.state]:
            ORDER_TRANSITIONS.check(self.state, state)  # raises with the allowed states
        self.state = state
        self.history.append((ts, state, reason))

    def record_fill(self, quantity: Decimal, price: Decimal, ts: int) -> None:
        """Account a fill of ``quantity`` at ``price`` and move to (partially) filled."""
        filled = self.filled_quantity
        total = filled + quantity
        if filled:
            self.average_price = (self.average_price * filled + price * quantity) / total  # type: ignore[operator]
        else:
            self.average_price = price
        self.filled_quantity = total
        self.transition(
            OrderState.FILLED if total >= self.intent.quantity else OrderState.PARTIALLY_FILLED, ts
        )


@frozen
class Fill:
    """An execution: ``quantity`` (positive) of ``instrument`` at ``price``, paying ``fee``."""

    client_id: str
    strategy: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: int
    #: the venue's id of this execution (``<client id>#<cumulative quantity>`` when the
    #: venue gives none); a second fill with the same id is a duplicate and ignored
    fill_id: str = ""


@frozen
class Trade:
    """A closed round trip (FIFO matched), net of the fees of both legs."""

    instrument: str
    strategy: str
    direction: str  # "long" or "short"
    quantity: Decimal
    entry_ts: int
    entry_price: Decimal
    exit_ts: int
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal


@attrs.define(slots=True)
class Lot:
    """An open FIFO lot: signed quantity at a price, with the entry fee not yet matched."""

    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: int
    strategy: str


@attrs.define(slots=True)
class Position:
    """A signed position in one instrument, made of FIFO lots."""

    instrument: Instrument
    lots: deque[Lot] = field(factory=deque)
    quantity: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @property
    def cost(self) -> Decimal:
        """Signed cost of the open lots (quantity times entry price, summed)."""
        return sum((lot.quantity * lot.price for lot in self.lots), ZERO)

    @property
    def average_price(self) -> Decimal | None:
        """Average entry price of the open quantity (for display)."""
        return self.cost / self.quantity if self.quantity else None

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """PnL of the open lots marked at ``mark`` (fees excluded)."""
        return (mark * self.quantity - self.cost) * self.instrument.multiplier

    def apply(self, fill: Fill) -> list[Trade]:
        """Apply a fill FIFO; returns the round trips it closes."""
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        lots = self.lots
        if not lots or (lots[0].quantity > 0) == (signed > 0):  # opening or adding: no match
            lots.append(Lot(signed, fill.price, fill.fee, fill.ts, fill.strategy))
            self.quantity += signed
            return []
        mult = self.instrument.multiplier
        lot = lots[0]
        if lot.quantity == -signed:  # closing exactly one lot: the common round trip
            lots.popleft()
            self.quantity += signed
            gross = (fill.price - lot.price) * lot.quantity * mult
            self.realized_pnl += gross
            fees = lot.fee + fill.fee
            return [
                Trade(
                    self.instrument.symbol,
                    lot.strategy,
                    "long" if lot.quantity > 0 else "short",
                    fill.quantity,
                    lot.ts,
                    lot.price,
                    fill.ts,
                    fill.price,
                    fees,
                    gross - fees,
                )
            ]
        trades: list[Trade] = []
        remaining = signed
        fee_left = fill.fee
        while remaining and self.lots and (self.lots[0].quantity > 0) != (remaining > 0):
            lot = self.lots[0]
            closed = min(abs(lot.quantity), abs(remaining))
            entry_fee = (
                lot.fee if closed == abs(lot.quantity) else lot.fee * closed / abs(lot.quantity)
            )
            exit_fee = fee_left if closed == abs(remaining) else fill.fee * closed / fill.quantity
            direction = 1 if lot.quantity > 0 else -1
            gross = (fill.price - lot.price) * closed * direction * mult
            self.realized_pnl += gross
            trades.append(
                Trade(
                    instrument=self.instrument.symbol,
                    strategy=lot.strategy,
                    direction="long" if direction > 0 else "short",
                    quantity=closed,
                    entry_ts=lot.ts,
                    entry_price=lot.price,
                    exit_ts=fill.ts,
                    exit_price=fill.price,
                    fees=entry_fee + exit_fee,
                    pnl=gross - entry_fee - exit_fee,
                )
            )
            fee_left -= exit_fee
            lot.fee -= entry_fee
            lot.quantity -= closed * direction
            remaining += closed * direction
            if not lot.quantity:
                self.lots.popleft()
        if remaining:
            self.lots.append(Lot(remaining, fill.price, fee_left, fill.ts, fill.strategy))
        self.quantity += signed
        return trades


class Portfolio:
    """Cash, positions, fees, funding and PnL of one account, updated exactly.

    Invariants (checked by property tests), after every fill and funding payment:
    ``equity(marks) == cash + position_value(marks)`` and
    ``equity(marks) == initial_cash + realized - fees + funding + unrealized``.
    """

    def __init__(self, initial_cash: Decimal, instruments: dict[str, Instrument]) -> None:
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.fees = ZERO
        #: funding received (positive) or paid (negative), all instruments
        self.funding = ZERO
        self.instruments = instruments
        self.positions: dict[str, Position] = {s: Position(i) for s, i in instruments.items()}
        self.trades: list[Trade] = []
        #: bumped by every change of cash or positions (lets callers cache derived figures)
        self.version = 0

    def position(self, symbol: str) -> Decimal:
        """Signed quantity held in ``symbol``."""
        return self.positions[symbol].quantity

    @property
    def realized_pnl(self) -> Decimal:
        """Realised PnL of all closed lots, before fees."""
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def apply_fill(self, fill: Fill) -> list[Trade]:
        """Account one fill: cash, fees, FIFO lots; returns the round trips it closed."""
        pos = self.positions[fill.instrument]
        self.version += 1
        self.fees += fill.fee
        if pos.instrument.kind is InstrumentKind.PERPETUAL:
            before = pos.realized_pnl
            trades = pos.apply(fill)
            self.cash += pos.realized_pnl - before - fill.fee
        else:
            notional = fill.quantity * fill.price * pos.instrument.multiplier
            self.cash -= (notional if fill.side is Side.BUY else -notional) + fill.fee
            trades = pos.apply(fill)
        if trades:
            self.trades.extend(trades)
        return trades

    def apply_funding(self, symbol: str, mark: Decimal, rate: Decimal) -> Decimal:
        """Pay or receive one funding period on a perpetual position: longs pay
        ``quantity * mark * multiplier * rate`` when the rate is positive, shorts
        receive it. Returns the amount credited to cash (negative when paid)."""
        pos = self.positions[symbol]
        amount = -pos.quantity * mark * pos.instrument.multiplier * rate
        if amount:
            self.cash += amount
            self.funding += amount
            self.version += 1
        return amount

    def position_value(self, marks: dict[str, Decimal]) -> Decimal:
        """What positions add to equity at ``marks``: market value for spot,
        unrealised PnL for perpetuals."""
        total = ZERO
        for s, p in self.positions.items():
            if p.quantity:
                if p.instrument.kind is InstrumentKind.PERPETUAL:
                    total += p.unrealized_pnl(marks[s])
                else:
                    total += p.quantity * marks[s] * p.instrument.multiplier
        return total

    def notional(self, symbol: str, mark: Decimal) -> Decimal:
        """Absolute notional of the position in ``symbol`` at ``mark``."""
        pos = self.positions[symbol]
        return abs(pos.quantity) * mark * pos.instrument.multiplier

    def maintenance_margin(self, marks: dict[str, Decimal], exclude: str = "") -> Decimal:
        """Maintenance margin of all perpetual positions (but ``exclude``) at ``marks``."""
        return sum(
            (
                self.notional(s, marks[s]) * p.instrument.maintenance_margin
                for s, p in self.positions.items()
                if p.quantity and p.instrument.is_perpetual and s != exclude
            ),
            ZERO,
        )

    def initial_margin(self, marks: dict[str, Decimal]) -> Decimal:
        """Initial margin of all perpetual positions at ``marks``."""
        return sum(
            (
                self.notional(s, marks[s]) * p.instrument.initial_margin
                for s, p in self.positions.items()
                if p.quantity and p.instrument.is_perpetual
            ),
            ZERO,
        )

    def margin_ratio(self, marks: dict[str, Decimal]) -> Decimal:
        """Maintenance margin over equity: 0 with no perpetual position, >= 1 means
        the account is liquidatable (``Decimal('Infinity')`` when equity <= 0)."""
        required = self.maintenance_margin(marks)
        if not required:
            return ZERO
        equity = self.equity(marks)
        return required / equity if equity > 0 else Decimal("Infinity")

    def liquidation_price(
        self,
        symbol: str,
        marks: dict[str, Decimal],
        add: tuple[Decimal, Decimal] | None = None,
    ) -> Decimal | None:
        """Price of ``symbol`` at which equity falls to the maintenance margin, other
        positions held at ``marks`` (cross margin). ``None`` when there is no
        perpetual position or no positive such price.

        With ``q`` the signed quantity, ``C`` the signed cost of the open lots,
        ``m`` the multiplier, ``mmr`` the maintenance rate, ``E`` the equity of the
        rest of the account and ``M`` its maintenance margin, solving
        ``E + m*(q*p - C) = M + mmr*m*|q|*p`` gives
        ``p = (m*C - (E - M)) / (m*(q - mmr*|q|))``.

        ``add=(signed quantity, price)`` answers for the position after a
        hypothetical fill (fees ignored).
        """
        pos = self.positions[symbol]
        inst = pos.instrument
        q, cost = pos.quantity, pos.cost
        if add is not None:
            q, cost = q + add[0], cost + add[0] * add[1]
        if not q or not inst.is_perpetual:
            return None
        m = inst.multiplier
        rest = self.equity(marks) - pos.unrealized_pnl(marks[symbol])
        rest -= self.maintenance_margin(marks, exclude=symbol)
        denominator = m * (q - inst.maintenance_margin * abs(q))
        if not denominator:
            return None
        price = (m * cost - rest) / denominator
        return price if price > 0 else None

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Decimal:
        """Unrealised PnL of all positions at ``marks``."""
        return sum(
            (p.unrealized_pnl(marks[s]) for s, p in self.positions.items() if p.quantity), ZERO
        )

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash plus the market value of all positions."""
        return self.cash + self.position_value(marks)
