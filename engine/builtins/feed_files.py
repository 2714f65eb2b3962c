"""What the file feeds (CSV, Parquet) share: options, locating the file, loading."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from engine import DataError, Problem

if TYPE_CHECKING:
    from engine import BarSeries, FeedContext, Instrument


def _unit(_inst: object, _attr: object, value: str) -> None:
    if value not in ("s", "ms", "us", "ns"):
        raise ValueError(f"expected one of 's', 'ms', 'us', 'ns', got {value!r}")


@attrs.frozen
class FileFeedConfig:
    """Options shared by ``csv`` and ``parquet``. ``path`` may contain ``{symbol}``."""

    path: str
    timestamp_column: str = "timestamp"
    timestamp_unit: str = attrs.field(default="s", validator=_unit)


class FileFeed:
    """One file per instrument; a subclass says how to read it into an Arrow table."""

    #: The file row of the table's first row, for messages (a CSV header is row 1).
    first_row = 1

    def __init__(self, config: FileFeedConfig) -> None:
        self.config = config

    def read(self, path: Path) -> Any:
        """The file as an Arrow table; a :class:`DataError` when it cannot be read."""
        raise NotImplementedError

    def path_of(self, instrument: Instrument, ctx: FeedContext) -> Path:
        """The instrument's file; a :class:`DataError` when there is none."""
        path = ctx.resolve_path(self.config.path.format(symbol=instrument.symbol))
        if not path.is_file():
            raise DataError([Problem(str(path), f"data file not found (for {instrument.symbol})")])
        return path

    def bars(self, table: Any, instrument: Instrument, path: Path, first_row: int) -> BarSeries:
        """Bars from an Arrow table (all of a file, or a part of it whose first row is
        the file's row ``first_row``), checked row by row."""
        from engine import bars_from_table

        return bars_from_table(
            table,
            instrument,
            source=str(path),
            timestamp_column=self.config.timestamp_column,
            timestamp_unit=self.config.timestamp_unit,
            first_row=first_row,
        )

    def load(self, instrument: Instrument, ctx: FeedContext) -> BarSeries:
        """All bars of the instrument's file, checked row by row."""
        path = self.path_of(instrument, ctx)
        return self.bars(self.read(path), instrument, path, self.first_row)
