"""Built-in plugin ``parquet``: OHLCV bars from Parquet files (same columns as ``csv``)."""

from __future__ import annotations

from engine import (
    BarSeries,
    DataError,
    Feed,
    FeedContext,
    Instrument,
    Problem,
    bars_from_table,
    hookimpl,
)
from engine.builtins.feed_files import FileFeedConfig, file_for


class ParquetFeed:
    """Reads one Parquet file per instrument."""

    def __init__(self, config: FileFeedConfig) -> None:
        self.config = config

    def load(self, instrument: Instrument, ctx: FeedContext) -> BarSeries:
        """All bars of the instrument's file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = file_for(self.config, instrument, ctx)
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError([Problem(str(path), f"unreadable Parquet file: {exc}")]) from None
        return bars_from_table(
            table,
            instrument,
            source=str(path),
            timestamp_column=self.config.timestamp_column,
            timestamp_unit=self.config.timestamp_unit,
            first_row=1,
        )


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
