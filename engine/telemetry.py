"""Logging set-up: loguru configured once, by the application (the CLI), never at import.

``diagnose=False`` keeps local variable values (secrets among them) out of
tracebacks; stdlib logging (and libraries that use it) is routed into loguru.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger

__all__ = ["configure_logging", "secrets_of"]


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
