"""Garbage-collector policy for tight loops.

A backtest allocates a few long-lived objects per order (order, history, fill,
trade) and almost no reference cycles. With CPython's default thresholds the
cyclic collector keeps re-scanning every object the run has kept, which measured
here doubled the cost of the order path. During a run we therefore freeze the
objects that exist at start (they are never scanned again) and make young
collections rarer; both are undone afterwards. Reference counting still frees
everything as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_gc", "settle"]

YOUNG_THRESHOLD = 50_000

# The collector's settings are process-wide: the first run in applies the policy,
# the last run out restores what was there (runs may overlap in threads).
_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] = (0, 0, 0)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Freeze existing objects and collect less often for the duration."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, _saved[1], _saved[2])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()


def settle() -> None:
    """Inside :func:`quiet_gc`, between chunks of a run: collect the young
    generations, then freeze what survived. What a long run keeps (orders, fills,
    round trips) is then never scanned again, so the collector's cost stays
    proportional to what each chunk allocates, not to everything kept so far (which
    made time per bar grow with the run's length). Garbage frozen this way (rare:
    the kernel makes few cycles) is collected after the run."""
    if _active:
        gc.collect(1)
        gc.freeze()
