"""Logging: loguru configured once, by the application (the CLI), never at import,
and :class:`log_operation` for timed, logged operations.

``diagnose=False`` keeps local variable values (secrets among them) out of
tracebacks; stdlib logging (and libraries that use it) is routed into loguru.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from loguru import logger

__all__ = ["configure_logging", "log_operation", "secrets_of"]

F = TypeVar("F", bound=Callable[..., Any])


def _redactor(hidden: list[str]) -> Callable[[Any], None]:
    def redact(text: str) -> str:
        for secret in hidden:
            text = text.replace(secret, "***")
        return text

    def patch(record: Any) -> None:
        record["message"] = redact(record["message"])
        for key, value in record["extra"].items():
            if isinstance(value, str):
                record["extra"][key] = redact(value)

    return patch


def secrets_of(obj: Any) -> list[str]:
    """Every :class:`~engine.config.Secret` value inside a structured config."""
    import attrs

    from engine.config import Secret

    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Secret):
            found.append(value.reveal())
        elif attrs.has(type(value)):
            for a in attrs.fields(type(value)):
                walk(getattr(value, a.name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(obj)
    return found


class _InterceptHandler(logging.Handler):
    """Send stdlib log records to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(
    level: str = "WARNING",
    *,
    json: bool = False,
    debug: bool = False,
    file: str | None = None,
    rotation: str = "100 MB",
    secrets: Iterable[str] = (),
) -> None:
    """Replace loguru's sinks with one stderr sink at ``level`` (JSON lines with
    ``json``) and, with ``file``, a rotated file sink in the same format. Every
    value in ``secrets`` is replaced by ``***`` in messages and string extras."""
    logger.remove()
    hidden = sorted({s for s in secrets if s}, key=len, reverse=True)
    logger.configure(patcher=_redactor(hidden) if hidden else None)
    text = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> {message}"
    logger.add(
        sys.stderr,
        level=level.upper(),
        serialize=json,
        diagnose=debug,
        backtrace=debug,
        format=text,
    )
    if file:
        logger.add(
            file,
            level=level.upper(),
            serialize=json,
            diagnose=debug,
            backtrace=debug,
            rotation=rotation,
            format=text,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)


class log_operation:
    """Time an operation, log it, and record its duration in a histogram.

    As a context manager (``with`` or ``async with``) or a decorator (sync or
    async functions)::

        with log_operation("load history", metrics=engine.metrics, symbol="BTC-USD"):
            ...

        @log_operation("refresh quotes", metrics=ctx.metrics)
        async def refresh(): ...

    Each run logs one line at ``level`` (extra: ``operation``, ``duration_s``,
    ``outcome`` ``ok``/``error`` and ``fields``) and, with ``metrics``, observes
    ``engine_operation_seconds{operation, outcome}``. Exceptions propagate.
    """

    def __init__(
        self, name: str, *, metrics: Any = None, level: str = "DEBUG", **fields: Any
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.level = level
        self.fields = fields
        self._t0 = 0.0

    def _start(self) -> None:
        self._t0 = time.perf_counter()

    def _finish(self, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._t0
        outcome = "ok" if error is None else "error"
        if self.metrics is not None:
            self.metrics.histogram(
                "engine_operation_seconds",
                "timed operations (log_operation)",
                operation=self.name,
                outcome=outcome,
            ).observe(elapsed)
        detail = "" if error is None else f": {type(error).__name__}: {error}"
        logger.bind(
            operation=self.name, duration_s=round(elapsed, 6), outcome=outcome, **self.fields
        ).opt(depth=2).log(self.level, "{} {} in {:.3f}s{}", self.name, outcome, elapsed, detail)

    def __enter__(self) -> log_operation:
        self._start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    async def __aenter__(self) -> log_operation:
        self._start()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._finish(exc)

    def _fresh(self) -> log_operation:
        return log_operation(self.name, metrics=self.metrics, level=self.level, **self.fields)

    def __call__(self, func: F) -> F:
        """Decorate ``func``: every call is one timed operation."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
