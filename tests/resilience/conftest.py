"""Fixtures of the resilience tests: a fake monotonic clock, no retry backoff,
captured log lines, and no registry left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina
from loguru import logger

from engine.resilience import set_registry


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock starting at 1000 s."""
    return FakeClock()


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """stamina test mode: no waits between attempts; the policy's own attempt count
    still applies (``cap=True`` keeps the smaller of the two)."""
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


@pytest.fixture(autouse=True)
def no_registry() -> Iterator[None]:
    """Each test starts and ends without a process-wide policy registry."""
    set_registry(None)
    yield
    set_registry(None)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Messages logged through loguru (DEBUG and up) while the test runs."""
    lines: list[str] = []
    sink = logger.add(
        lambda message: lines.append(message.rstrip("\n")),
        level="DEBUG",
        format="{level} {message}",
    )
    yield lines
    logger.remove(sink)
