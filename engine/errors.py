"""The engine's error hierarchy.

Every error the engine raises on purpose is an :class:`EngineError`. User mistakes
(bad config, bad data, a plugin that does not load) carry the place they happened
(config path, file and row, plugin name) so the CLI can print one clear line per
problem and exit with code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "ConfigError",
    "DataError",
    "EngineError",
    "ExecutionError",
    "IllegalTransition",
    "PluginError",
    "Problem",
]


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
    """

    exit_code = 1

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


class ExecutionError(EngineError):
    """An order could not be handled by the execution path (broker, kernel)."""


class IllegalTransition(EngineError):
    """An order was asked to move to a state its state machine forbids."""
