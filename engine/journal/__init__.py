"""The event journal: every order intent, decision, order event, fill, trading-state
change and config baseline, appended before it takes effect.

A :class:`JournalStore` (from a plugin's ``engine_journals`` record; the built-in
``sqlite`` one is the default) holds :class:`Entry` values in sequence. The kernel
appends as events happen and commits (durably) before anything leaves the process
(an order to the venue) and at the end of every chunk of bars or paper bar.

Entry kinds and their ``data`` (all values JSON-ready: decimals as strings):

========== ======================= ==================================================
kind       ref                     data
========== ======================= ==================================================
config     engine name             ``{"config": <effective config dump>}``
order      client order id         ``{"strategy", "instrument", "side", "quantity",
                                   "type", "limit", "stop", "reduce_only", "tag",
                                   "asked"}`` (the intent after guards; ``asked``: the
                                   quantity before a reduction); written before submit
denied     client order id         the same fields plus ``{"stage", "check",
                                   "plugin", "reason", "message"}``
event      client order id         ``{"state": <OrderState value>, "reason"}``
fill       client order id         ``{"fill_id", "quantity", "price", "fee"}``
state      source                  ``{"previous", "state", "reason"}`` (trading state)
bar        instrument              ``{"index"}``: the bar was processed completely
                                   (paper and live runs)
op         operation id            a multi-step operation's step
reconcile  ``""``                  what reconciliation found and did
========== ======================= ==================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from attrs import frozen

__all__ = ["Entry", "JournalStore", "Recovered"]


@frozen
class Entry:
    """One journal record. ``seq`` starts at 1 and has no gaps; ``ts`` is engine
    time (ns) when it was appended."""

    seq: int
    ts: int
    kind: str
    ref: str
    data: dict[str, Any]


@frozen
class Recovered:
    """What opening a damaged journal found and did: the last complete record kept,
    and a message naming the file and the damage."""

    last_seq: int
    message: str


@runtime_checkable
class JournalStore(Protocol):
    """Where entries go. ``append`` is on the hot path of a backtest: it must only
    buffer; ``commit`` makes everything appended so far durable, in one transaction."""

    #: set when opening found damage (a torn write) and recovered from it
    recovered: Recovered | None

    def append(self, ts: int, kind: str, ref: str, data: dict[str, Any]) -> int:
        """Buffer one entry; returns its sequence number."""
        ...

    def commit(self) -> None:
        """Make every appended entry durable (one transaction, fsync per config)."""
        ...

    def entries(self, after: int = 0) -> Iterator[Entry]:
        """Committed entries with ``seq > after``, in order."""
        ...

    @property
    def last_seq(self) -> int:
        """The sequence number of the last appended entry (0 when empty)."""
        ...

    def close(self) -> None:
        """Commit and close."""
        ...
