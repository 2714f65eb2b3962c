"""Deterministic record ordering."""

from __future__ import annotations

import itertools

import pytest

from engine import Analyzer, PluginError
from engine.ordering import order_records


def rec(
    name: str, priority: int = 0, before: tuple[str, ...] = (), after: tuple[str, ...] = ()
) -> Analyzer:
    return Analyzer(name=name, compute=dict, priority=priority, before=before, after=after)


def names(records: list[Analyzer]) -> list[str]:
    return [r.name for r in records]


def test_priority_then_name_whatever_the_input_order() -> None:
    records = [rec("b", 1), rec("a", 1), rec("c", 0), rec("d", 5)]
    for perm in itertools.permutations(records):
        assert names(order_records(list(perm))) == ["c", "a", "b", "d"]


def test_before_and_after_override_priority() -> None:
    records = [rec("risk", 0), rec("late", 10, before=("risk",)), rec("first", 0, after=("late",))]
    assert names(order_records(records)) == ["late", "first", "risk"]


def test_constraints_on_absent_records_are_ignored() -> None:
    assert names(order_records([rec("a", before=("missing",)), rec("b", after=("gone",))])) == [
        "a",
        "b",
    ]


def test_cycle_is_an_error_naming_the_records() -> None:
    with pytest.raises(PluginError, match="cycle among: a, b"):
        order_records([rec("a", before=("b",)), rec("b", before=("a",)), rec("c")])
