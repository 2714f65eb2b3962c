"""Built-in plugin ``parquet``: OHLCV bars from Parquet files (same columns as ``csv``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import DataError, Feed, Problem, hookimpl
from engine.builtins.feed_files import FileFeed, FileFeedConfig


class ParquetFeed(FileFeed):
    """Reads one Parquet file per instrument."""

    def read(self, path: Path) -> Any:
        """The Parquet file as an Arrow table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError([Problem(str(path), f"unreadable Parquet file: {exc}")]) from None


def _build(config: FileFeedConfig) -> ParquetFeed:
    return ParquetFeed(config)


@hookimpl
def engine_feeds() -> list[Feed]:
    """The ``parquet`` feed."""
    return [
        Feed(
            name="parquet",
            factory=_build,
            config_type=FileFeedConfig,
            description="OHLCV bars from Parquet files.",
        )
    ]
