"""Spans: timed steps of one order's path, shaped like OpenTelemetry spans.

With order tracing on (``[logging] trace_orders = true``) every intent becomes a
trace: a root ``order`` span (intent to terminal state) with children
``decision`` (the trading-state gate and the order pipeline), ``submit`` (the
broker's submit call), ``ack`` (submitted to accepted by the venue) and one
``fill`` per fill. Ids are deterministic (derived from the client order id), so
a backtest gives the same trace ids every run.

Times are engine time in nanoseconds since the epoch: the bar's time in a
backtest, the wall clock in paper and live runs. ``decision`` and ``submit``
measure processing (wall-clock) time, added to the engine time they started at;
``ack``, ``fill`` and ``order`` measure engine time (simulated time in a
backtest). :meth:`Span.to_otlp` gives the OTLP/JSON form an OpenTelemetry
exporter plugin can send as is.
"""

from __future__ import annotations

import hashlib
from typing import Any

from attrs import frozen

__all__ = ["Span", "span_id", "trace_id"]


def trace_id(key: str) -> str:
    """A 16-byte trace id (32 hex digits) derived from ``key``."""
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def span_id(key: str) -> str:
    """An 8-byte span id (16 hex digits) derived from ``key``."""
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


@frozen
class Span:
    """One timed step. ``parent_id`` is empty for a root span; ``status`` is
    ``ok``, ``error`` (with ``message``) or ``unset``."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: tuple[tuple[str, str], ...] = ()
    status: str = "ok"
    message: str = ""

    @property
    def duration_s(self) -> float:
        """End minus start, in seconds."""
        return (self.end_ns - self.start_ns) / 1e9

    def attribute(self, key: str) -> str | None:
        """One attribute's value."""
        return dict(self.attributes).get(key)

    def to_otlp(self) -> dict[str, Any]:
        """The span in OTLP/JSON form (``resourceSpans[].scopeSpans[].spans[]``)."""
        codes = {"unset": 0, "ok": 1, "error": 2}
        out: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": 1,  # SPAN_KIND_INTERNAL
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(self.end_ns),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in self.attributes],
            "status": {"code": codes[self.status], "message": self.message},
        }
        if self.parent_id:
            out["parentSpanId"] = self.parent_id
        return out
