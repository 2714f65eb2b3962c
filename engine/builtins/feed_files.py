"""Shared options of the file feeds (CSV, Parquet)."""

from __future__ import annotations

from pathlib import Path

import attrs

from engine import DataError, FeedContext, Instrument, Problem


def _unit(_inst: object, _attr: object, value: str) -> None:
    if value not in ("s", "ms", "us", "ns"):
        raise ValueError(f"expected one of 's', 'ms', 'us', 'ns', got {value!r}")


@attrs.frozen
class FileFeedConfig:
    """Options shared by ``csv`` and ``parquet``. ``path`` may contain ``{symbol}``."""

    path: str
    timestamp_column: str = "timestamp"
    timestamp_unit: str = attrs.field(default="s", validator=_unit)


def file_for(config: FileFeedConfig, instrument: Instrument, ctx: FeedContext) -> Path:
    """The data file of ``instrument``; a :class:`DataError` when it does not exist."""
    path = ctx.resolve_path(config.path.format(symbol=instrument.symbol))
    if not path.is_file():
        raise DataError([Problem(str(path), f"data file not found (for {instrument.symbol})")])
    return path
