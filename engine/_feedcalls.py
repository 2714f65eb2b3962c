"""What the engine says when a feed misbehaves: its errors and its wrong return
values become :class:`~engine.errors.PluginError` naming the feed's config path,
type, plugin and the instrument (whole loads and streamed chunks alike)."""

from __future__ import annotations

from typing import Any

from engine.errors import PluginError


def feed_failed(spec: Any, doing: str, exc: Exception) -> PluginError:
    """The error for a feed that raised ``exc`` while ``doing`` (e.g. "failed to
    load BTC-USD")."""
    return PluginError(
        f"{spec.path}: feed {spec.type!r} {doing}: {type(exc).__name__}: {exc}",
        plugin=spec.record.plugin,
    )


def not_bars(spec: Any, got: object, what: str, where: str = "") -> PluginError:
    """The error for a feed whose ``what`` (e.g. "returned") was ``got``, not bars
    (``where``: " for SYMBOL")."""
    return PluginError(
        f"{spec.path}: feed {spec.type!r} {what} {type(got).__name__}{where}, expected BarSeries",
        plugin=spec.record.plugin,
    )
