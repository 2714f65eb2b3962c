"""The GC policy of runs: fewer young collections, kept objects frozen chunk by chunk
(never rescanned), everything restored and collectable after the run."""

from __future__ import annotations

import gc
import weakref

from engine.kernel.gcpolicy import quiet_gc, settle


class Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: object = None


def test_settle_freezes_what_survives_and_the_run_end_restores_everything() -> None:
    threshold = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with quiet_gc():
        assert gc.get_threshold()[0] > threshold[0]  # young collections are rarer
        kept = [Node() for _ in range(1000)]
        settle()
        assert gc.get_freeze_count() >= frozen_before + len(kept)
        # a cycle that becomes garbage after it was frozen...
        a, b = Node(), Node()
        a.other, b.other = b, a
        settle()
        probe = weakref.ref(a)
        del a, b
        gc.collect()
        assert probe() is not None  # ...is not collected during the run
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == frozen_before
    gc.collect()
    assert probe() is None  # but right after it
    assert len(kept) == 1000


def test_settle_outside_a_run_does_nothing() -> None:
    frozen = gc.get_freeze_count()
    settle()
    assert gc.get_freeze_count() == frozen
