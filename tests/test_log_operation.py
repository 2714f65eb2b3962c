"""log_operation: a timed, logged operation as context manager or decorator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from engine import Metrics, log_operation


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    sink = logger.add(lambda m: got.append(m.record), level="DEBUG")
    yield got
    logger.remove(sink)


def hist(metrics: Metrics, operation: str, outcome: str) -> Any:
    return next(
        r
        for r in metrics.collect(0)
        if r.name == "engine_operation_seconds"
        and r.label("operation") == operation
        and r.label("outcome") == outcome
    )


def test_context_manager_logs_and_times(lines: list[dict[str, Any]]) -> None:
    metrics = Metrics()
    with log_operation("load", metrics=metrics, symbol="BTC-USD"):
        pass
    (record,) = [r for r in lines if r["extra"].get("operation") == "load"]
    assert record["level"].name == "DEBUG"
    assert record["extra"]["outcome"] == "ok" and record["extra"]["symbol"] == "BTC-USD"
    assert record["extra"]["duration_s"] >= 0
    assert record["message"].startswith("load ok in ")
    assert record["function"] == "test_context_manager_logs_and_times"  # the caller's line
    assert hist(metrics, "load", "ok").count == 1


def test_errors_propagate_and_count_as_errors(lines: list[dict[str, Any]]) -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="bad"), log_operation("parse", metrics=metrics):
        raise ValueError("bad")
    record = next(r for r in lines if r["extra"].get("operation") == "parse")
    assert record["extra"]["outcome"] == "error"
    assert record["message"].endswith(": ValueError: bad")
    assert hist(metrics, "parse", "error").count == 1


def test_decorates_sync_functions_per_call() -> None:
    metrics = Metrics()

    @log_operation("square", metrics=metrics, level="INFO")
    def square(x: int) -> int:
        return x * x

    assert square.__name__ == "square"
    assert [square(k) for k in range(3)] == [0, 1, 4]
    assert hist(metrics, "square", "ok").count == 3


async def test_decorates_async_functions_and_async_with(lines: list[dict[str, Any]]) -> None:
    metrics = Metrics()

    @log_operation("fetch", metrics=metrics)
    async def fetch() -> str:
        async with log_operation("inner"):
            return "done"

    assert await fetch() == "done"
    assert hist(metrics, "fetch", "ok").count == 1
    assert [r["extra"]["operation"] for r in lines if "operation" in r["extra"]] == [
        "inner",
        "fetch",
    ]


def test_without_metrics_only_logs(lines: list[dict[str, Any]]) -> None:
    with log_operation("plain"):
        pass
    assert [r["extra"]["operation"] for r in lines if "operation" in r["extra"]] == ["plain"]
