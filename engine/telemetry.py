"""Logging set-up: loguru configured once, by the application (the CLI), never at import.

``diagnose=False`` keeps local variable values (secrets among them) out of
tracebacks; stdlib logging (and libraries that use it) is routed into loguru.
"""

from __future__ import annotations

import logging
import sys

from loguru import logger

__all__ = ["configure_logging"]


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
) -> None:
    """Replace loguru's sinks with one stderr sink at ``level`` (JSON lines with
    ``json``) and, with ``file``, a rotated file sink in the same format."""
    logger.remove()
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
