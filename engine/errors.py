"""The engine's error hierarchy.

Every error the engine raises on purpose is an :class:`EngineError`. User mistakes
(bad config, bad data, a plugin that does not load) carry the place they happened
(config path, file and row, plugin name) so the CLI can print one clear line per
problem and exit with code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

import attrs

__all__ = [
    "BulkheadFull",
    "CircuitOpen",
    "ConfigError",
    "DataError",
    "EngineError",
    "ExecutionError",
    "IllegalTransition",
    "JournalError",
    "MissingDependency",
    "NetworkError",
    "PluginError",
    "Problem",
    "RateLimited",
    "Recovery",
    "RiskLimitError",
    "ValidationError",
]


class Recovery(Enum):
    """What the engine does about an error of a kind (``EngineError.recovery``)."""

    RETRY = "retry"  # transient: try again (idempotent calls only), with backoff
    FALLBACK = "fallback"  # use another source or a safe default
    CIRCUIT_BREAK = "circuit_break"  # count towards the breaker; stop calling while open
    FAIL_FAST = "fail_fast"  # a mistake: stop and say where
    DEGRADE = "degrade"  # go on with less (reducing or halted trading, a skipped sink)


@attrs.frozen
class Problem:
    """One user-facing problem: where (``config.strategies[0].fast``) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class EngineError(Exception):
    """Base class of every error the engine raises deliberately.

    ``context`` holds whatever locates the error (plugin, instrument, order id).
    ``recovery`` says what the engine does about errors of the class.
    """

    exit_code = 1
    recovery = Recovery.FAIL_FAST

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({ctx})"


class _ProblemsError(EngineError):
    """An error made of one or more located problems."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem], **context: object) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems), **context)

    def __str__(self) -> str:
        return self.message


class ConfigError(_ProblemsError):
    """The configuration is invalid; ``problems`` lists every ``path: problem``."""


class DataError(_ProblemsError):
    """Market data is unusable; each problem names file, row and column."""


class PluginError(EngineError):
    """A plugin failed to load, register, or returned invalid records."""

    exit_code = 3
    recovery = Recovery.FAIL_FAST


class ValidationError(EngineError):
    """An intent or order is malformed (a validation rule or the kernel says so)."""


class RiskLimitError(EngineError):
    """A risk limit forbids the action (the pipeline reports denials as events; this
    is for APIs that must raise, e.g. a multi-step operation refused as a whole)."""

    recovery = Recovery.DEGRADE


class ExecutionError(EngineError):
    """An order could not be handled by the execution path (broker, kernel)."""

    recovery = Recovery.CIRCUIT_BREAK


class NetworkError(ExecutionError):
    """A call to a venue or service failed in transit (connection, timeout, 5xx):
    worth retrying when the call is idempotent."""

    recovery = Recovery.RETRY


class CircuitOpen(ExecutionError):
    """A circuit breaker is open: the call was not made."""

    recovery = Recovery.DEGRADE


class RateLimited(ExecutionError):
    """A rate limiter refused the call (its wait would exceed the allowed time)."""

    recovery = Recovery.RETRY


class BulkheadFull(ExecutionError):
    """Too many calls in flight and queued: the call was rejected, not queued."""

    recovery = Recovery.DEGRADE


class JournalError(EngineError):
    """The event journal is unreadable, damaged or inconsistent; the message names
    the file and the record."""

    exit_code = 2


class MissingDependency(EngineError):
    """An optional package a feature needs is not installed; the message says what to
    install (``pip install 'engine[plot]'``)."""

    exit_code = 2


class IllegalTransition(EngineError):
    """An order was asked to move to a state its state machine forbids."""
