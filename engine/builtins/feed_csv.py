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

    def read(self, path: Path) -> Any:
        """The CSV as an Arrow table. pyarrow widens a column with a bad cell to text,
        so such cells reach :func:`bars_from_table`, which names their row; a
        malformed line (wrong number of fields) is an unreadable file."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        parse = pacsv.ParseOptions(delimiter=self.config.delimiter)
        convert = pacsv.ConvertOptions(
            strings_can_be_null=True,
            null_values=[""],  # a literal NaN is a bad price, not an empty cell
        )
        try:
            return pacsv.read_csv(str(path), parse_options=parse, convert_options=convert)
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
