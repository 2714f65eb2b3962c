"""The kernel: one deterministic event path, bar -> strategies -> pipeline -> broker
-> order events and fills -> portfolio.

Backtest and paper/live loops differ only in *when* they call a stream's bar
runner (:meth:`Kernel.runner`): the backtest runs it over chunks of columns as
fast as possible, the paper loop over each bar when it arrives on the real
clock. Everything the runner does, and everything after it, is shared. Timed
work (runtime guards, funding) runs when a loop sees ``now >= next_due`` and
calls :meth:`Kernel.on_time`.
"""

from __future__ import annotations

import inspect
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence, Sized
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
from loguru import logger

from engine.data import PRICE_COLUMNS, BarSeries
from engine.errors import ExecutionError, IllegalTransition
from engine.kernel.context import BarView, StrategyContext
from engine.kernel.operations import OperationBook
from engine.kernel.pipeline import Denial, OrderPipeline
from engine.kernel.queries import KernelQueries
from engine.kernel.trading import StateChange, TradingState, TradingStateMachine
from engine.kernel.window import HistoryWindow
from engine.model import (
    TERMINAL_ORDER_STATES,
    ZERO,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderState,
    Portfolio,
    Side,
)
from engine.records import Alert, RuntimeDecision, Severity

__all__ = ["FundingPayment", "Kernel", "Liquidation", "RuntimeCheck", "Stream"]

NEVER = 2**63 - 1
_SUBMITTED = OrderState.SUBMITTED
_ACCEPTED = OrderState.ACCEPTED
_FILLED = OrderState.FILLED
_ALWAYS = (True,)  # a non-empty sized object: "always call the broker"
_BAR_COLUMNS = frozenset(("ts", *PRICE_COLUMNS, "volume"))


def _no_submit(intent: OrderIntent) -> None:
    """Warm-up: the order was decided before the restart (it is in the journal)."""
    return None


def _ignore_bar(instrument: Instrument, bar: BarView) -> None:
    """Stands in for a broker without ``on_bar``."""


def _fan_out(callbacks: tuple[Callable[[BarView], Any], ...]) -> Callable[[BarView], Any]:
    """One callable for a stream's strategies (the callback itself when there is one)."""
    if len(callbacks) == 1:
        return callbacks[0]

    def each(bar: BarView) -> None:
        for callback in callbacks:
            callback(bar)

    return each


@attrs.frozen
class FundingPayment:
    """One funding period paid (negative ``amount``) or received on a perpetual."""

    ts: int
    instrument: str
    quantity: Decimal
    mark: Decimal
    rate: Decimal
    amount: Decimal


@attrs.frozen
class Liquidation:
    """A position closed by the venue because equity fell to the maintenance margin."""

    ts: int
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidation_price: Decimal


@attrs.define
class RuntimeCheck:
    """A configured runtime guard and its schedule."""

    name: str
    plugin: str
    evaluate: Callable[[Any], RuntimeDecision | None]
    cadence_ns: int
    flatten: bool = False
    next_due: int = 0
    last: RuntimeDecision | None = None


class Stream:
    """One instrument's view, strategies and bars: in a backtest the whole series
    (the runner gets chunks of it as lists); in paper/live runs Python lists grown
    in place, one bar at a time."""

    __slots__ = (
        "_cumsums",
        "close",
        "extra",
        "high",
        "instrument",
        "low",
        "open",
        "series",
        "strategies",
        "ts",
        "view",
        "volume",
        "window",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.view = BarView(instrument)
        self.strategies: list[Any] = []
        self.series: BarSeries | None = None
        #: a streamed backtest's bounded history (engine.kernel.window); it answers
        #: history() and window_sum() instead of ``series``
        self.window: HistoryWindow | None = None
        self.ts: list[int] = []
        self.open: list[int] = []
        self.high: list[int] = []
        self.low: list[int] = []
        self.close: list[int] = []
        self.volume: list[float] = []
        self.extra: dict[str, list[float]] = {}
        self._cumsums: dict[str, np.ndarray[Any, Any]] = {}

    def columns(self) -> tuple[list[int], list[int], list[int], list[int], list[int], list[float]]:
        """The growing history lists (paper/live), in runner order."""
        return self.ts, self.open, self.high, self.low, self.close, self.volume

    def append(self, series: BarSeries, k: int) -> None:
        """Append bar ``k`` of ``series`` to the history lists."""
        self.ts.append(int(series.ts[k]))
        self.open.append(int(series.open[k]))
        self.high.append(int(series.high[k]))
        self.low.append(int(series.low[k]))
        self.close.append(int(series.close[k]))
        self.volume.append(float(series.volume[k]))
        for name, values in series.extra.items():
            self.extra.setdefault(name, []).append(float(values[k]))

    def history(self, column: str, n: int) -> np.ndarray[Any, Any]:
        """The last ``n`` values of ``column`` up to the current bar."""
        if self.window is not None:
            return self.window.history(column, self.view.index, n)
        i = self.view.index
        lo = max(0, i - n + 1)
        if i < 0:
            return np.empty(0)
        if self.series is not None:
            values = (
                getattr(self.series, column)
                if column in _BAR_COLUMNS
                else self.series.extra.get(column)
            )
            return np.empty(0) if values is None else values[lo : i + 1]
        listed = getattr(self, column) if column in _BAR_COLUMNS else self.extra.get(column)
        return np.empty(0) if listed is None else np.asarray(listed[lo : i + 1])

    def window_sum(self, column: str, n: int) -> float:
        """Sum of the last ``n`` values of ``column`` up to the current bar: O(1) in a
        backtest (a cumulative sum computed once per column)."""
        if self.window is not None:
            return self.window.window_sum(column, self.view.index, n)
        i = self.view.index
        if i < 0:
            return 0.0
        if self.series is None:
            return float(sum(self.history(column, n).tolist()))
        cums = self._cumsums.get(column)
        if cums is None:
            values = (
                getattr(self.series, column)
                if column in _BAR_COLUMNS
                else self.series.extra[column]
            )
            cums = self._cumsums[column] = np.cumsum(values, dtype=np.float64)
        return cums.item(i) - (cums.item(i - n) if i >= n else 0.0)  # type: ignore[no-any-return]

    def to_series(self) -> BarSeries:
        """The bars seen so far as a columnar :class:`BarSeries`."""
        i64 = np.int64
        return BarSeries(
            self.instrument,
            np.asarray(self.ts, dtype=i64),
            np.asarray(self.open, dtype=i64),
            np.asarray(self.high, dtype=i64),
            np.asarray(self.low, dtype=i64),
            np.asarray(self.close, dtype=i64),
            np.asarray(self.volume, dtype=np.float64),
            {name: np.asarray(v, dtype=np.float64) for name, v in self.extra.items()},
        )


class Kernel(KernelQueries):
    """Holds the run's state, runs the order path and implements the broker's
    execution sink. Read-only queries for checks come from :class:`KernelQueries`."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        portfolio: Portfolio,
        pipeline: OrderPipeline,
        broker: Any,
        broker_name: str = "broker",
        *,
        resume_after_ns: int = 0,
        runtime_checks: Sequence[RuntimeCheck] = (),
        alert_sinks: Sequence[tuple[str, Callable[[Alert], Any]]] = (),
        strict_transitions: bool = False,
        collect: Callable[[int], object] | None = None,
        collect_every_ns: int = 0,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.portfolio = portfolio
        self.pipeline = pipeline
        self.broker = broker
        self.broker_name = broker_name
        self.streams = {i.symbol: Stream(i) for i in instruments}
        #: the view of the bar being processed: the kernel's clock reads its ``ts``
        self._clock: BarView = next(iter(self.streams.values())).view
        self.orders: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.order_counts: Counter[OrderState] = Counter()
        self.illegal_transitions = 0
        self.strict_transitions = strict_transitions
        self._seq: dict[str, int] = {}
        self._open_by_strategy: dict[str, dict[str, Order]] = {}
        self._fill_listeners: dict[str, Callable[[Fill], Any]] = {}
        self._order_listeners: dict[str, Callable[[Order], Any]] = {}
        self._spawn: Callable[[Any], None] | None = None
        self._submitted: list[int] = []
        #: every open order (usually a handful: checks scan it when they ask)
        self._open: dict[str, Order] = {}
        self.strategy_positions: dict[tuple[str, str], Decimal] = {}
        self.trading = TradingStateMachine(resume_after_ns)
        self.alerts: list[Alert] = []
        self.alert_failures = 0
        self._alert_sinks = list(alert_sinks)
        self.funding_payments: list[FundingPayment] = []
        self.liquidations: list[Liquidation] = []
        self._runtime = list(runtime_checks)
        self._next_funding = {
            i.symbol: 0 for i in instruments if i.is_perpetual and i.funding_interval_ns
        }
        self._collect = collect if collect_every_ns > 0 else None
        self._collect_every_ns = collect_every_ns
        self._next_collect = 0
        scheduled = self._runtime or self._next_funding or self._collect is not None
        self.next_due = 0 if scheduled else NEVER
        self._init_queries()
        #: the run's metrics (set by the engine; plugins create handles on it)
        self.metrics: Any = None
        #: the order tracer when ``[logging] trace_orders`` is on (engine.kernel.tracing)
        self.tracer: Any = None
        #: the journal recorder when a journal is on (engine.journal.recorder)
        self.journal: Any = None
        #: each strategy's context, by strategy id
        self.contexts: dict[str, StrategyContext] = {}
        self._resend: set[str] = set()
        self._hidden: dict[str, Order] = {}
        #: multi-step operations (brackets, batches)
        self.operations = OperationBook(self)
        #: venue fill ids applied (duplicates are ignored); fills ignored, by reason
        self._fill_ids: set[str] = set()
        self.ignored_fills: dict[str, int] = {}
        broker.bind(self)
        self._broker_on_bar = getattr(broker, "on_bar", None)
        self._broker_submit = broker.submit

    @property
    def now(self) -> int:
        """Engine time in nanoseconds: the timestamp of the bar being processed."""
        return self._clock.ts

    # -- wiring ----------------------------------------------------------------------

    def add_strategy(self, strategy_id: str, symbol: str, strategy: Any) -> StrategyContext:
        """Attach a strategy instance to an instrument's stream; returns its context."""
        ctx = StrategyContext(self, strategy_id, self.instruments[symbol])
        self.contexts[strategy_id] = ctx
        self.streams[symbol].strategies.append(strategy)
        self._open_by_strategy[strategy_id] = {}
        on_fill = getattr(strategy, "on_fill", None)
        if on_fill is not None:
            self._fill_listeners[strategy_id] = on_fill
        on_order = getattr(strategy, "on_order", None)
        if on_order is not None:
            self._order_listeners[strategy_id] = on_order
        return ctx

    def set_spawner(self, spawn: Callable[[Any], None] | None) -> None:
        """How to run awaitables returned by an async broker (paper/live loops)."""
        self._spawn = spawn

    def runner(
        self,
        symbol: str,
        columns: Sequence[Any] | None = None,
        offset: int = 0,
        active: Sequence[int] | None = None,
    ) -> Callable[[int, int], None]:
        """The bar runner of one stream: ``run(start, stop)`` processes rows
        ``start:stop`` of ``columns`` (ts, open, high, low, close, volume), row
        ``j`` being bar ``offset + j`` of the instrument. Without ``columns`` the
        stream's own growing history is used (paper/live).

        This is the hot path, shared by every loop: for each bar it fills the
        reused view, lets the broker match resting orders against the bar, then
        calls each strategy's ``on_bar``.

        With ``active`` (sorted bar indices where the strategies can act; the
        columns may then be numpy arrays) bars are skipped while nothing rests at
        the venue and the bar is not active; the last row of every ``run`` call is
        always processed, so the view is exact where timed work is due and where a
        chunk ends (``[backtest] vectorised``).
        """
        st = self.streams[symbol]
        view = st.view
        ts, o, h, lo, c, v = columns if columns is not None else st.columns()
        inst = st.instrument
        kernel = self
        shared_clock = len(self.streams) > 1
        self._clock = view
        # Specialise once, so the loop body below is the same for every set-up.
        broker_on_bar = self._broker_on_bar or _ignore_bar
        resting_of = getattr(self.broker, "resting", None)
        if self._broker_on_bar is None:
            resting: Sized = ()  # nothing to match, ever
        elif resting_of is None:
            resting = _ALWAYS  # the broker wants every bar
        else:
            resting = resting_of(symbol)  # a live list: empty means nothing to match
        on_bar = _fan_out(tuple(s.on_bar for s in st.strategies))
        if active is not None:
            assert columns is not None, "the vectorised mode runs over given columns"
            return self._skipping_runner(view, inst, columns, offset, active, resting, on_bar)

        def run(start: int, stop: int) -> None:
            if shared_clock:
                kernel._clock = view
            i = offset + start
            for t, op, hi, lw, cl, vo in zip(
                ts[start:stop],
                o[start:stop],
                h[start:stop],
                lo[start:stop],
                c[start:stop],
                v[start:stop],
                strict=True,
            ):
                view.index = i
                view.ts = t
                view.open = op
                view.high = hi
                view.low = lw
                view.close = cl
                view.volume = vo
                i += 1
                if resting:
                    broker_on_bar(inst, view)
                on_bar(view)

        return run

    def stepper(
        self, symbol: str, columns: Sequence[Any], offset: int = 0
    ) -> Callable[[int], None]:
        """One bar at a time: ``step(j)`` processes row ``j`` of ``columns`` (bar
        ``offset + j``) exactly as :meth:`runner` does. Merged runs over several
        instruments call it once per event: no slicing, the shared clock set."""
        st = self.streams[symbol]
        view = st.view
        ts, o, h, lo, c, v = columns
        inst = st.instrument
        kernel = self
        broker_on_bar = self._broker_on_bar or _ignore_bar
        resting_of = getattr(self.broker, "resting", None)
        resting: Sized
        if self._broker_on_bar is None:
            resting = ()
        elif resting_of is None:
            resting = _ALWAYS
        else:
            resting = resting_of(symbol)
        on_bar = _fan_out(tuple(s.on_bar for s in st.strategies))

        def step(j: int) -> None:
            kernel._clock = view
            view.index = offset + j
            view.ts = ts[j]
            view.open = o[j]
            view.high = h[j]
            view.low = lo[j]
            view.close = c[j]
            view.volume = v[j]
            if resting:
                broker_on_bar(inst, view)
            on_bar(view)

        return step

    def _skipping_runner(
        self,
        view: Any,
        inst: Instrument,
        columns: Sequence[Any],
        offset: int,
        active: Sequence[int],
        resting: Sized,
        on_bar: Callable[[Any], None],
    ) -> Callable[[int, int], None]:
        """The runner of the vectorised mode (see :meth:`runner`): processes the
        rows of ``start:stop`` that are active, that follow a bar that left orders
        resting, and the last row."""
        ts, o, h, lo, c, v = (getattr(col, "item", col.__getitem__) for col in columns)
        broker_on_bar = self._broker_on_bar or _ignore_bar
        kernel = self
        shared_clock = len(self.streams) > 1
        n_active = len(active)

        def run(start: int, stop: int) -> None:
            if shared_clock:
                kernel._clock = view
            j = start
            last = stop - 1
            while j < stop:
                if not resting:  # nothing to match: on to the next active row
                    k = bisect_left(active, offset + j)
                    nxt = active[k] - offset if k < n_active else last
                    j = nxt if nxt < last else last
                view.index = offset + j
                view.ts = ts(j)
                view.open = o(j)
                view.high = h(j)
                view.low = lo(j)
                view.close = c(j)
                view.volume = v(j)
                if resting:
                    broker_on_bar(inst, view)
                on_bar(view)
                j += 1

        return run

    def warm_up(self, symbol: str, series: BarSeries) -> None:
        """Show ``series`` (bars processed before a restart) to the strategies of
        ``symbol`` so they rebuild their state: no order leaves them, the broker does
        not see the bars, nothing is due (funding, runtime guards, metrics)."""
        st = self.streams[symbol]
        for k in range(len(series)):
            st.append(series, k)
        contexts = [c for c in self.contexts.values() if c.symbol == symbol]
        saved = [c._submit for c in contexts]
        for c in contexts:
            c._submit = _no_submit
        broker_on_bar, self._broker_on_bar = self._broker_on_bar, None
        try:
            n = len(st.ts)
            self.runner(symbol)(n - len(series), n)
        finally:
            self._broker_on_bar = broker_on_bar
            for c, submit in zip(contexts, saved, strict=True):
                c._submit = submit

    def open_orders_of(self, strategy_id: str) -> list[Order]:
        """One strategy's open orders."""
        return list(self._open_by_strategy[strategy_id].values())

    # -- timed work: runtime guards, funding -------------------------------------------------

    def on_time(self) -> None:
        """Do what is due at ``now``: funding payments, then runtime guards; sets
        :attr:`next_due`. Loops call it once ``now >= next_due``."""
        now = self.now
        for symbol, due in self._next_funding.items():
            if now >= due:
                if due:  # the first call only aligns the schedule
                    self._pay_funding(symbol)
                step = self.instruments[symbol].funding_interval_ns
                self._next_funding[symbol] = (now // step + 1) * step
        if self._runtime:
            self._evaluate_runtime(now)
        dues = [*self._next_funding.values(), *(r.next_due for r in self._runtime)]
        if self._collect is not None:
            if now >= self._next_collect:
                if self._next_collect:  # the first call only aligns the schedule
                    self._collect(now)
                step = self._collect_every_ns
                self._next_collect = (now // step + 1) * step
            dues.append(self._next_collect)
        self.next_due = min(dues) if dues else NEVER

    def _pay_funding(self, symbol: str) -> None:
        inst = self.instruments[symbol]
        held = self.position(symbol)
        mark = self.last_price(symbol)
        if not held or mark is None:
            return
        column = self.column(symbol, "funding_rate")
        rate = inst.funding_rate if column is None else Decimal(repr(column))
        amount = self.portfolio.apply_funding(symbol, mark, rate)
        self.funding_payments.append(
            FundingPayment(self._clock.ts, symbol, held, mark, rate, amount)
        )

    def _evaluate_runtime(self, now: int) -> None:
        for check in self._runtime:
            if now < check.next_due:
                continue
            try:
                decision = check.evaluate(self)
                if decision is not None and not isinstance(decision.state, TradingState):
                    decision = attrs.evolve(decision, state=TradingState(decision.state))
            except Exception as exc:  # a risk check that fails, fails closed
                logger.exception("runtime guard {} ({}) raised; halting", check.name, check.plugin)
                decision = RuntimeDecision(
                    TradingState.HALTED, "error", f"{type(exc).__name__}: {exc}"
                )
            check.last = decision
            check.next_due = now + check.cadence_ns
        worst = max(
            (c for c in self._runtime if c.last is not None),
            key=lambda c: c.last.state.severity,  # type: ignore[union-attr]
            default=None,
        )
        if worst is None or worst.last is None:
            desired, reason, source, flatten = (
                TradingState.ACTIVE,
                "all runtime guards pass",
                "engine",
                False,
            )
        else:
            d = worst.last
            desired, reason, source = d.state, f"{worst.name}.{d.reason}", worst.name
            reason = f"{reason}: {d.message}" if d.message else reason
            flatten = worst.flatten or d.flatten
        change = self.trading.request(desired, now, reason, source)
        if change is not None:
            self._announce(change)
            if flatten and change.state.severity > change.previous.severity:
                self.flatten(reason)

    def _announce(self, change: StateChange) -> None:
        severity = {
            TradingState.ACTIVE: Severity.INFO,
            TradingState.REDUCING: Severity.WARNING,
            TradingState.HALTED: Severity.CRITICAL,
        }[change.state]
        self.alert(
            severity,
            f"trading {change.previous.value} -> {change.state.value}",
            change.reason,
            change.source,
        )

    def set_trading_state(self, state: TradingState, reason: str, source: str = "operator") -> None:
        """Set the trading state now, without hysteresis (a manual kill switch)."""
        change = self.trading.force(state, self._clock.ts, reason, source)
        if change is not None:
            self._announce(change)

    def alert(self, severity: Severity, title: str, message: str = "", source: str = "") -> None:
        """Record an alert and deliver it to every alert sink (sinks fail open)."""
        alert = Alert(
            ts=self._clock.ts, severity=severity, title=title, message=message, source=source
        )
        self.alerts.append(alert)
        for name, deliver in self._alert_sinks:
            try:
                deliver(alert)
            except Exception:
                self.alert_failures += 1
                logger.exception("alert sink {} failed", name)

    def _holders(self, symbol: str) -> list[tuple[str, Decimal]]:
        """Who holds ``symbol``: (strategy id, signed quantity) per strategy, plus
        ``("risk", rest)`` for any part no strategy's fills account for."""
        holders = [
            (sid, held)
            for (sid, sym), held in self.strategy_positions.items()
            if sym == symbol and held
        ]
        rest = self.position(symbol) - sum((h for _, h in holders), ZERO)
        return [*holders, ("risk", rest)] if rest else holders

    def flatten(self, reason: str) -> None:
        """Cancel every open order and close every position at market. Each
        strategy's holding is closed under its own id (it sees the fills); the
        orders are reduce-only and skip the pipeline: they only reduce risk."""
        for order in self.open_orders():
            self.cancel(order.client_id)
        for symbol in self.instruments:
            for sid, held in self._holders(symbol):
                side = Side.SELL if held > 0 else Side.BUY
                intent = OrderIntent(sid, symbol, side, abs(held), reduce_only=True, tag="flatten")
                self.submit(intent, checked=False)

    # -- order path ----------------------------------------------------------------------

    def _transition(self, order: Order, state: OrderState, reason: str = "") -> bool:
        try:
            order.transition(state, self._clock.ts, reason)
        except IllegalTransition as exc:
            self._illegal(order, exc)
            return False
        counts = self.order_counts
        counts[state] = counts.get(state, 0) + 1
        if state in TERMINAL_ORDER_STATES:
            self._close(order)
        listener = self._order_listeners.get(order.intent.strategy)
        if listener is not None:
            listener(order)
        return True

    def _close(self, order: Order) -> None:
        """An order reached a terminal state: it is no longer open."""
        if self._open.pop(order.client_id, None) is not None:
            self._open_by_strategy.get(order.intent.strategy, {}).pop(order.client_id, None)

    def _illegal(self, order: Order, exc: IllegalTransition) -> None:
        """Illegal transitions raise in strict mode (tests), else are logged and counted."""
        self.illegal_transitions += 1
        if self.strict_transitions:
            raise exc
        logger.error("order {}: {}", order.client_id, exc)

    def _deny(self, intent: OrderIntent, client_id: str, denial: Denial) -> None:
        order = Order(client_id, intent, self._clock.ts)
        self.orders[client_id] = order
        self._transition(order, OrderState.DENIED, denial.reason)

    def _state_denial(self, intent: OrderIntent, client_id: str) -> Denial | None:
        state = self.trading.state
        if state is TradingState.REDUCING and self.is_reducing(intent):
            return None
        last = self.trading.history[-1].reason if self.trading.history else ""
        denial = Denial(
            ts=self._clock.ts,
            client_id=client_id,
            strategy=intent.strategy,
            instrument=intent.instrument,
            side=intent.side.value,
            quantity=intent.quantity,
            stage="trading_state",
            check="trading_state",
            plugin="engine",
            reason=f"trading_state.{state.value}",
            message=f"trading is {state.value} ({last})",
        )
        self.pipeline.denials.append(denial)
        return denial

    def submit(self, intent: OrderIntent, *, checked: bool = True) -> Order | None:
        """Run an intent through the trading-state gate and the pipeline and, if
        allowed, to the broker. ``checked=False`` (the engine's own risk-reducing
        orders) skips the pipeline.

        Client order ids are deterministic: ``<strategy>-<instrument>-<sequence>``.
        Returns the order, or ``None`` when it was denied.
        """
        key = intent.strategy
        seq = self._seq[key] = self._seq.get(key, 0) + 1
        client_id = f"{key}-{intent.instrument}-{seq}"
        if client_id in self.orders:  # re-derived after a restart: never sent twice
            known = self.orders[client_id]
            if self._hidden.pop(client_id, None) is not None and known.is_open:
                self._open_by_strategy[key][client_id] = known
            if client_id in self._resend:  # journaled, but the venue never got it
                self._resend.discard(client_id)
                self._send(known)
            return None if known.state is OrderState.DENIED else known
        if checked:
            if self.trading.state is not TradingState.ACTIVE:
                denial = self._state_denial(intent, client_id)
                if denial is not None:
                    self._deny(intent, client_id, denial)
                    return None
            if self.pipeline.checks:
                decided = self.pipeline.evaluate(intent, client_id, self)
                if isinstance(decided, Denial):
                    self._deny(intent, client_id, decided)
                    return None
                intent = decided
        order = Order(client_id, intent, self._clock.ts)
        self.orders[client_id] = order
        self._open_by_strategy.setdefault(key, {})[client_id] = order
        self._open[client_id] = order
        ts = self._clock.ts
        self._submitted.append(ts)
        # INITIALIZED -> SUBMITTED is always legal for a new order: no check needed
        order.state = _SUBMITTED
        order.history.append((ts, _SUBMITTED, ""))
        counts = self.order_counts
        counts[_SUBMITTED] = counts.get(_SUBMITTED, 0) + 1
        listener = self._order_listeners.get(key)
        if listener is not None:
            listener(order)
        self._send(order, self._broker_submit)
        return order

    def _send(self, order: Order, submit: Callable[[Order], Any] | None = None) -> None:
        """Hand ``order`` to the venue (``submit``: the journaled path; by default the
        broker itself, for an order already journaled)."""
        result = (submit or self.broker.submit)(order)
        if result is not None and inspect.isawaitable(result):
            if self._spawn is None:
                if inspect.iscoroutine(result):
                    result.close()
                raise ExecutionError(
                    "an async broker cannot run in a backtest; use a synchronous simulated broker",
                    plugin=self.broker_name,
                )
            self._spawn(result)

    def hide_until_derived(self, client_ids: Iterable[str]) -> None:
        """After a restart: the bar that was in progress is processed again, and its
        strategies must see the state they saw then, so the orders it had produced
        are not among their open orders until they derive them again."""
        for cid in client_ids:
            order = self.orders.get(cid)
            if order is not None and order.is_open:
                self._open_by_strategy[order.intent.strategy].pop(cid, None)
                self._hidden[cid] = order

    def reveal_hidden(self) -> None:
        """End of the bar processed again: orders not derived again (a strategy that
        decided differently) are shown anyway, and reported."""
        for cid, order in self._hidden.items():
            logger.warning("order {} was not derived again after the restart", cid)
            if order.is_open:
                self._open_by_strategy[order.intent.strategy][cid] = order
        self._hidden.clear()

    def resend_when_derived(self, client_id: str) -> None:
        """After a restart: send this journaled order (the venue never received it)
        when its strategy derives it again, on the bar that decided it."""
        self._resend.add(client_id)

    def adopt_order(self, client_id: str, intent: OrderIntent, reason: str = "") -> Order:
        """Track an order without the pipeline and without sending it: one submitted
        before (journal replay) or one the venue reports (an external order). It is
        SUBMITTED; the venue's events move it on."""
        order = Order(client_id, intent, self._clock.ts)
        self.orders[client_id] = order
        self._open_by_strategy.setdefault(intent.strategy, {})[client_id] = order
        self._open[client_id] = order
        self._note_sequence(client_id, intent.strategy)
        self._transition(order, OrderState.SUBMITTED, reason)
        return order

    def _note_sequence(self, client_id: str, strategy: str) -> None:
        """Keep ``strategy``'s order sequence at least at ``client_id``'s."""
        head, _, tail = client_id.rpartition("-")
        if head.startswith(strategy) and tail.isdigit():
            self._seq[strategy] = max(self._seq.get(strategy, 0), int(tail))

    def replay_funding(self, symbol: str, mark: Decimal, rate: Decimal) -> None:
        """Apply a journaled funding payment (mark and rate as they were)."""
        held = self.position(symbol)
        amount = self.portfolio.apply_funding(symbol, mark, rate)
        self.funding_payments.append(
            FundingPayment(self._clock.ts, symbol, held, mark, rate, amount)
        )

    def cancel(self, client_id: str) -> None:
        """Request cancellation of an open order (no risk checks). An accepted order
        is PENDING_CANCEL until the venue confirms (CANCELED) or fills it first."""
        order = self.orders.get(client_id)
        if order is None or not order.is_open:
            return
        if order.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED):
            self._transition(order, OrderState.PENDING_CANCEL, "cancel requested")
        result = self.broker.cancel(client_id)
        if result is not None and inspect.isawaitable(result) and self._spawn is not None:
            self._spawn(result)

    # -- execution sink (called by the broker) ----------------------------------------------

    def _order(self, client_id: str) -> Order | None:
        order = self.orders.get(client_id)
        if order is None:
            logger.error("broker {} reported unknown order {}", self.broker_name, client_id)
        return order

    def order_accepted(self, client_id: str) -> None:
        """The venue accepted the order."""
        order = self.orders.get(client_id)
        if order is not None and order.state is _SUBMITTED:  # the legal, usual case
            order.state = _ACCEPTED
            order.history.append((self._clock.ts, _ACCEPTED, ""))
            counts = self.order_counts
            counts[_ACCEPTED] = counts.get(_ACCEPTED, 0) + 1
            listener = self._order_listeners.get(order.intent.strategy)
            if listener is not None:
                listener(order)
            return
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.ACCEPTED)

    def order_rejected(self, client_id: str, reason: str) -> None:
        """The venue rejected the order."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.REJECTED, reason)

    def order_canceled(self, client_id: str, reason: str = "") -> None:
        """The order was canceled (by request or by the venue)."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.CANCELED, reason)

    def order_expired(self, client_id: str) -> None:
        """The order expired."""
        order = self._order(client_id)
        if order is not None:
            self._transition(order, OrderState.EXPIRED)

    def order_filled(
        self,
        client_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        fill_id: str | None = None,
    ) -> None:
        """The venue executed ``quantity`` at ``price``, charging ``fee``.

        ``fill_id`` is the venue's execution id: a fill whose id was seen before is a
        duplicate report and is ignored (counted, logged). A fill of a closed order, or
        beyond the order's quantity, is ignored the same way: nothing is accounted twice.
        """
        order = self._order(client_id)
        if order is None:
            return
        if fill_id is not None:
            if fill_id in self._fill_ids:
                self._ignore_fill(order, "duplicate", f"fill {fill_id} was already applied")
                return
            self._fill_ids.add(fill_id)
        if quantity > order.intent.quantity - order.filled_quantity or not order.is_open:
            self._ignore_fill(
                order,
                "overfill",
                f"fill of {quantity} on a {order.state.value} order with"
                f" {order.intent.quantity - order.filled_quantity} left",
            )
            return
        if order.state is _SUBMITTED:  # an execution implies the venue accepted it
            self._transition(order, OrderState.ACCEPTED, "implied by a fill")
        intent = order.intent
        ts = self._clock.ts
        fill = Fill(
            client_id,
            intent.strategy,
            intent.instrument,
            intent.side,
            quantity,
            price,
            fee,
            ts,
            fill_id if fill_id is not None else f"{client_id}#{order.filled_quantity + quantity}",
        )
        self.fills.append(fill)
        self.portfolio.apply_fill(fill)
        key = (intent.strategy, intent.instrument)
        signed = quantity if intent.side is Side.BUY else -quantity
        self.strategy_positions[key] = self.strategy_positions.get(key, ZERO) + signed
        if order.state is _ACCEPTED and not order.filled_quantity and quantity == intent.quantity:
            # the usual case, a whole order filled at once: ACCEPTED -> FILLED
            order.filled_quantity = quantity
            order.average_price = price
            order.state = _FILLED
            order.history.append((ts, _FILLED, ""))
            counts = self.order_counts
            counts[_FILLED] = counts.get(_FILLED, 0) + 1
            if self._open.pop(client_id, None) is not None:
                self._open_by_strategy[intent.strategy].pop(client_id, None)
            moved = True
        else:
            try:
                order.record_fill(quantity, price, ts)
            except IllegalTransition as exc:
                self._illegal(order, exc)
                moved = False
            else:
                self.order_counts[order.state] += 1
                if not order.is_open:
                    self._close(order)
                moved = True
        if moved:
            on_order = self._order_listeners.get(intent.strategy)
            if on_order is not None:
                on_order(order)
        listener = self._fill_listeners.get(intent.strategy)
        if listener is not None:
            listener(fill)

    def _ignore_fill(self, order: Order, reason: str, detail: str) -> None:
        self.ignored_fills[reason] = self.ignored_fills.get(reason, 0) + 1
        logger.error(
            "broker {} reported a {} fill for {}: {}; ignored",
            self.broker_name,
            reason,
            order.client_id,
            detail,
        )

    def liquidate(
        self, symbol: str, price: Decimal, fee: Decimal, liquidation_price: Decimal
    ) -> None:
        """The venue liquidated the whole position in ``symbol`` at ``price``."""
        held = self.position(symbol)
        if not held:
            return
        for order in self.open_orders(symbol):
            self.cancel(order.client_id)
        side = Side.SELL if held > 0 else Side.BUY
        for sid, part in self._holders(symbol):
            qty = abs(part)
            intent = OrderIntent(sid, symbol, side, qty, reduce_only=True, tag="liquidation")
            seq = self._seq[sid] = self._seq.get(sid, 0) + 1
            client_id = f"{sid}-{symbol}-{seq}"
            order = Order(client_id, intent, self._clock.ts)
            self.orders[client_id] = order
            self._open_by_strategy.setdefault(sid, {})[client_id] = order
            self._open[client_id] = order
            self._transition(order, OrderState.SUBMITTED, "liquidation")
            self._transition(order, OrderState.ACCEPTED, "liquidation")
            self.order_filled(client_id, qty, price, fee * qty / abs(held))
        self.liquidations.append(
            Liquidation(
                self._clock.ts, symbol, side.value, abs(held), price, fee, liquidation_price
            )
        )
        self.alert(
            Severity.CRITICAL,
            f"{symbol} position liquidated",
            f"{abs(held)} at {price} (liquidation price {liquidation_price}, fee {fee})",
            self.broker_name,
        )
