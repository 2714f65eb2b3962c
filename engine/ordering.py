"""Deterministic ordering of records: priority, then before/after, then name."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TypeVar

from engine.errors import PluginError
from engine.records import Record

__all__ = ["order_records"]

R = TypeVar("R", bound=Record)


def order_records(records: Sequence[R], kind: str = "record") -> list[R]:
    """Sort records by ``(priority, name)`` while honouring ``before``/``after``.

    The result never depends on registration or discovery order. Constraints
    naming an absent record are ignored (the other plugin may be disabled); a
    cycle raises :class:`PluginError` naming the records in it.

    >>> from engine.records import Analyzer
    >>> a = Analyzer(name="a", compute=dict, priority=5)
    >>> b = Analyzer(name="b", compute=dict, priority=1)
    >>> c = Analyzer(name="c", compute=dict, priority=9, before=("b",))
    >>> [r.name for r in order_records([a, b, c])]  # b waits for c, which comes after a
    ['a', 'c', 'b']
    """
    by_name = {r.name: r for r in records}
    succ: dict[str, set[str]] = {n: set() for n in by_name}
    indeg = dict.fromkeys(by_name, 0)

    def edge(first: str, then: str) -> None:
        if first in by_name and then in by_name and then not in succ[first]:
            succ[first].add(then)
            indeg[then] += 1

    for r in records:
        for other in r.before:
            edge(r.name, other)
        for other in r.after:
            edge(other, r.name)
    ready = [(by_name[n].priority, n) for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    out: list[R] = []
    while ready:
        _, name = heapq.heappop(ready)
        out.append(by_name[name])
        for nxt in sorted(succ[name]):
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                heapq.heappush(ready, (by_name[nxt].priority, nxt))
    if len(out) != len(by_name):
        stuck = sorted(n for n, d in indeg.items() if d > 0)
        raise PluginError(f"{kind} ordering has a before/after cycle among: {', '.join(stuck)}")
    return out
