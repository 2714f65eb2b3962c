"""Order tracing (``[logging] trace_orders = true``): every order's path as log
lines sharing a correlation id, as spans (:mod:`engine.spans`), and as latency
histograms.

- Log lines (DEBUG; ``extra``: ``cid``, ``trace_id``, ``event`` and details):
  ``bar`` (once per bar that produced an intent), ``intent``, ``decision``
  (allowed, reduced or denied with its reason), ``submit`` and ``fill``. The
  correlation id is ``<instrument>-<bar index>`` of the bar whose event produced
  the intent.
- Spans: a root ``order`` span per intent with ``decision``, ``submit``, ``ack``
  and ``fill`` children, in :attr:`OrderTracer.spans` (``RunResult.spans``).
- Histograms: ``engine_order_span_seconds{span}`` and, per pipeline check,
  ``engine_pipeline_check_seconds{stage, check}``.

Installed by wrapping kernel methods on the instance: with tracing off nothing on
the order path changes and nothing is timed.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from engine.kernel.pipeline import CompiledCheck
from engine.model import Order, OrderIntent
from engine.spans import Span, span_id, trace_id

if TYPE_CHECKING:
    from engine.kernel.core import Kernel

__all__ = ["SPAN_BUCKETS", "OrderTracer", "install_order_tracing"]

#: histogram bounds for span durations: microseconds (processing) to an hour
#: (engine time between submit and fill in a backtest)
SPAN_BUCKETS = (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0)
_TERMINAL_ERROR = {"rejected"}


@attrs.define
class _Trace:
    """What is known of one order's trace while it is open."""

    trace_id: str
    root_id: str
    start_ns: int
    cid: str
    attributes: tuple[tuple[str, str], ...]
    submitted_ns: int = 0
    accepted_ns: int | None = None
    fills: int = 0


class OrderTracer:
    """Records the spans of every order of one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.spans: list[Span] = []
        self._open: dict[str, _Trace] = {}
        metrics = kernel.metrics
        self._hist = {
            name: metrics.histogram(
                "engine_order_span_seconds",
                "order path step durations (decision and submit: processing time;"
                " ack, fill and order: engine time)",
                buckets=SPAN_BUCKETS,
                span=name,
            )
            for name in ("decision", "submit", "ack", "fill", "order")
        }
        self._decision_ns = 0
        self._submit_ns = 0
        self._in_submit = False

    def _span(
        self,
        trace: _Trace,
        name: str,
        start: int,
        end: int,
        *attrs_: tuple[str, str],
        status: str = "ok",
        message: str = "",
        key: str = "",
    ) -> Span:
        end = max(end, start)
        span = Span(
            trace.trace_id,
            span_id(f"{trace.trace_id}/{name}/{key}"),
            trace.root_id,
            name,
            start,
            end,
            attrs_,
            status,
            message,
        )
        self.spans.append(span)
        self._hist[name].observe((end - start) / 1e9)
        return span

    def _close(self, client_id: str, order: Order | None, status: str, message: str) -> None:
        trace = self._open.pop(client_id, None)
        if trace is None:
            return
        end = max(self.kernel.now, trace.submitted_ns)
        state = order.state.value if order is not None else "denied"
        span = Span(
            trace.trace_id,
            trace.root_id,
            "",
            "order",
            trace.start_ns,
            end,
            (*trace.attributes, ("state", state)),
            status,
            message,
        )
        self.spans.append(span)
        self._hist["order"].observe(span.duration_s)

    # -- wrappers ---------------------------------------------------------------------

    def install(self) -> None:
        """Wrap the kernel's order path (submit, pipeline, broker, execution sink)."""
        k = self.kernel
        submit = k.submit
        evaluate = k.pipeline.evaluate
        broker_submit = k._broker_submit
        sinks = {
            name: getattr(k, name)
            for name in ("order_accepted", "order_rejected", "order_canceled", "order_expired")
        }
        filled = k.order_filled
        bars_logged: set[str] = set()

        def timed_evaluate(intent: OrderIntent, client_id: str, ctx: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return evaluate(intent, client_id, ctx)
            finally:
                self._decision_ns = time.perf_counter_ns() - t0

        def timed_broker_submit(order: Order) -> Any:
            trace = self._open.get(order.client_id)
            if trace is not None:  # provisional: events during the call start here
                trace.submitted_ns = trace.start_ns + self._decision_ns
            self._in_submit = True
            t0 = time.perf_counter_ns()
            try:
                return broker_submit(order)
            finally:
                self._submit_ns = time.perf_counter_ns() - t0
                self._in_submit = False

        def traced_submit(intent: OrderIntent, *, checked: bool = True) -> Order | None:
            view = k.streams[intent.instrument].view
            cid = f"{intent.instrument}-{view.index}"
            client_id = (
                f"{intent.strategy}-{intent.instrument}-{k._seq.get(intent.strategy, 0) + 1}"
            )
            tid = trace_id(client_id)
            log = logger.bind(cid=cid, trace_id=tid)
            if cid not in bars_logged:
                bars_logged.add(cid)
                log.bind(event="bar", ts=view.ts, close=str(view.record().close)).debug(
                    "bar {} close {}", cid, view.record().close
                )
            log.bind(
                event="intent",
                strategy=intent.strategy,
                side=intent.side.value,
                quantity=str(intent.quantity),
                order_type=intent.type.value,
            ).debug(
                "intent {} {} {} {}",
                intent.strategy,
                intent.side.value,
                intent.quantity,
                intent.instrument,
            )
            start = k.now
            trace = self._open[client_id] = _Trace(
                tid,
                span_id(f"{tid}/order"),
                start,
                cid,
                (
                    ("client_id", client_id),
                    ("strategy", intent.strategy),
                    ("instrument", intent.instrument),
                    ("side", intent.side.value),
                    ("quantity", str(intent.quantity)),
                    ("correlation_id", cid),
                ),
            )
            self._decision_ns = self._submit_ns = 0
            denials = len(k.pipeline.denials)
            order = submit(intent, checked=checked)
            decided = start + self._decision_ns
            if order is None:
                reason = k.pipeline.denials[-1].reason if len(k.pipeline.denials) > denials else ""
                self._span(trace, "decision", start, decided, ("outcome", "denied"),
                           status="error", message=reason)  # fmt: skip
                trace.submitted_ns = decided
                self._close(client_id, None, "error", f"denied: {reason}")
                log.bind(event="decision", outcome="denied", reason=reason).debug(
                    "decision denied: {}", reason
                )
                return None
            outcome = "reduced" if order.intent.quantity != intent.quantity else "allowed"
            self._span(trace, "decision", start, decided, ("outcome", outcome))
            trace.submitted_ns = decided + self._submit_ns
            self._span(trace, "submit", decided, trace.submitted_ns, ("broker", k.broker_name))
            if trace.accepted_ns is not None:  # accepted within the submit call
                trace.accepted_ns = trace.submitted_ns
                self._span(trace, "ack", trace.submitted_ns, trace.submitted_ns)
            log.bind(event="decision", outcome=outcome, client_id=order.client_id).debug(
                "decision {} {}", outcome, order.client_id
            )
            log.bind(event="submit", client_id=order.client_id).debug("submit {}", order.client_id)
            return order

        def traced_accepted(client_id: str) -> None:
            sinks["order_accepted"](client_id)
            trace = self._open.get(client_id)
            if trace is not None and trace.accepted_ns is None:
                trace.accepted_ns = max(k.now, trace.submitted_ns)
                if not self._in_submit:  # else the span follows the submit span
                    self._span(trace, "ack", trace.submitted_ns, trace.accepted_ns)

        def terminal(name: str, status: str) -> Any:
            sink = sinks[name]

            def traced(client_id: str, *args: Any) -> None:
                sink(client_id, *args)
                order = k.orders.get(client_id)
                if order is not None and not order.is_open:
                    message = str(args[0]) if args else ""
                    self._close(client_id, order, status, message if status == "error" else "")

            return traced

        def traced_filled(
            client_id: str,
            quantity: Decimal,
            price: Decimal,
            fee: Decimal,
            fill_id: str | None = None,
        ) -> None:
            before = len(k.fills)
            filled(client_id, quantity, price, fee, fill_id)
            if len(k.fills) == before:  # ignored (duplicate or overfill)
                return
            trace = self._open.get(client_id)
            if trace is not None:
                trace.fills += 1
                since = trace.accepted_ns if trace.accepted_ns is not None else trace.submitted_ns
                self._span(trace, "fill", since, k.now, ("quantity", str(quantity)),
                           ("price", str(price)), key=str(trace.fills))  # fmt: skip
            logger.bind(
                cid=trace.cid if trace is not None else "",
                trace_id=trace.trace_id if trace is not None else "",
                event="fill",
                client_id=client_id,
                quantity=str(quantity),
                price=str(price),
                fee=str(fee),
            ).debug("fill {} {} at {}", client_id, quantity, price)
            order = k.orders.get(client_id)
            if order is not None and not order.is_open:
                self._close(client_id, order, "ok", "")

        metrics = k.metrics
        k.pipeline.checks = tuple(
            CompiledCheck(c.stage, c.name, c.plugin, _timed_check(c, metrics))
            for c in k.pipeline.checks
        )
        k.pipeline.evaluate = timed_evaluate  # type: ignore[method-assign]
        k._broker_submit = timed_broker_submit
        k.submit = traced_submit  # type: ignore[method-assign]
        k.order_accepted = traced_accepted  # type: ignore[method-assign]
        k.order_rejected = terminal("order_rejected", "error")  # type: ignore[method-assign]
        k.order_canceled = terminal("order_canceled", "ok")  # type: ignore[method-assign]
        k.order_expired = terminal("order_expired", "ok")  # type: ignore[method-assign]
        k.order_filled = traced_filled  # type: ignore[method-assign]


def _timed_check(compiled: CompiledCheck, metrics: Any) -> Any:
    check = compiled.check
    hist = metrics.histogram(
        "engine_pipeline_check_seconds",
        "time one pipeline check takes (with order tracing on)",
        stage=compiled.stage,
        check=compiled.name,
    )
    observe, clock = hist.observe, time.perf_counter_ns

    def timed(intent: OrderIntent, ctx: Any) -> Any:
        t0 = clock()
        try:
            return check(intent, ctx)
        finally:
            observe((clock() - t0) / 1e9)

    return timed


def install_order_tracing(kernel: Kernel) -> OrderTracer:
    """Make ``kernel`` trace every order (logs, spans, histograms)."""
    tracer = OrderTracer(kernel)
    tracer.install()
    kernel.tracer = tracer
    return tracer
