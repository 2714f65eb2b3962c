"""Built-in plugin ``csv``: OHLCV bars from CSV files (read with pyarrow).

Columns: ``timestamp`` (ISO-8601 or epoch in ``timestamp_unit``), ``open``,
``high``, ``low``, ``close`` and optional ``volume``. Errors name file, row
(the file's line number) and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from engine import DataError, Feed, Problem, hookimpl
from engine.builtins.feed_files import FileFeed, FileFeedConfig


@attrs.frozen
class CsvConfig(FileFeedConfig):
    """``[feed] type = "csv"`` options."""

    delimiter: str = ","


class CsvFeed(FileFeed):
    """Reads one CSV file per instrument."""

    first_row = 2  # the header is row 1
    config: CsvConfig

    def _read(self, path: str, as_text: bool) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        parse = pacsv.ParseOptions(delimiter=self.config.delimiter)
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in ("open", "high", "low", "close", "volume")}
            if as_text
            else None,
            strings_can_be_null=True,
            null_values=[""],  # a literal NaN is a bad price, not an empty cell
        )
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)

    def read(self, path: Path) -> Any:
        """The CSV as an Arrow table (numeric columns as text if a cell does not parse)."""
        import pyarrow as pa

        try:
            try:
                return self._read(str(path), as_text=False)
            except pa.ArrowInvalid:
                # a malformed cell: re-read as text so each bad cell is reported by row
                return self._read(str(path), as_text=True)
        except pa.ArrowInvalid as exc:
            raise DataError([Problem(str(path), f"unreadable CSV: {exc}")]) from None


def _build(config: CsvConfig) -> CsvFeed:
    return CsvFeed(config)


@hookimpl
def engine_feeds() -> list[Feed]:
    """The ``csv`` feed."""
    return [
        Feed(
            name="csv",
            factory=_build,
            config_type=CsvConfig,
            description="OHLCV bars from CSV files.",
        )
    ]
