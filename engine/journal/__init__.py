"""The event journal: every order intent, decision, order event, fill, trading-state
change and config baseline, appended before it takes effect.

A :class:`JournalStore` (from a plugin's ``engine_journals`` record; the built-in
``sqlite`` one is the default) holds :class:`Entry` values in sequence. The kernel
appends as events happen and commits (durably) before anything leaves the process
(an order to the venue) and at the end of every chunk of bars or paper bar.

Entry kinds and their ``data`` (all values JSON-ready: decimals as strings):

=========== ================= ========================================================
kind        ref               data
=========== ================= ========================================================
config      engine name       ``{"raw", "base_dir", "source", "mode"}``: the config
                              baseline (the TOML data as written, where it was read)
order       client order id   the intent after the pipeline (``strategy``,
                              ``instrument``, ``side``, ``quantity``, ``type``,
                              ``limit``, ``stop``, ``reduce_only``, ``tag``) and, when
                              a guard reduced it, ``reduction`` (``check``, ``plugin``,
                              ``reason``, ``before``); committed before the venue
                              sees the order
denied      client order id   the intent plus ``stage``, ``check``, ``plugin``,
                              ``reason``, ``message``
cancel      client order id   ``{}``: cancellation requested
event       client order id   ``{"state", "reason"}``: the venue accepted, rejected,
                              canceled or expired the order
fill        client order id   ``{"fill_id", "quantity", "price", "fee"}``
state       source            ``{"previous", "state", "reason"}``: trading state
funding     instrument        ``{"mark", "rate"}``: a funding payment
liquidation instrument        ``{"price", "fee", "liquidation_price"}``
bar         instrument        ``{"index"}``: the bar was processed completely
                              (paper and live runs)
op          operation id      one step of a multi-step operation
reconcile   ``""``            what reconciliation after a restart found and did
=========== ================= ========================================================
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
