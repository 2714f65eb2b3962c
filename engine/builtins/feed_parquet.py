"""Built-in plugin ``parquet``: OHLCV bars from Parquet files (same columns as ``csv``).

Streamed backtests (``[feed] stream = true``) read each file in batches of rows
(:meth:`ParquetFeed.chunks`), one row group at a time, so a file of any length
runs in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import DataError, Feed, Problem, hookimpl
from engine.builtins.feed_files import FileFeed, FileFeedConfig

if TYPE_CHECKING:
    from engine import BarSeries, FeedContext, Instrument


def _unreadable(path: Path, exc: Exception) -> DataError:
    return DataError([Problem(str(path), f"unreadable Parquet file: {exc}")])


class ParquetFeed(FileFeed):
    """Reads one Parquet file per instrument."""

    def read(self, path: Path) -> Any:
        """The Parquet file as an Arrow table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable(path, exc) from None

    def _open(self, path: Path) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # pre_buffer keeps every row group's buffers read so far: memory would grow
            # with the file (about 30 MB a million rows)
            return pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable(path, exc) from None

    def count(self, instrument: Instrument, ctx: FeedContext) -> int:
        """The number of rows of the instrument's file (from its footer)."""
        return int(self._open(self.path_of(instrument, ctx)).metadata.num_rows)

    def chunks(self, instrument: Instrument, ctx: FeedContext, size: int) -> Iterator[BarSeries]:
        """The instrument's bars in consecutive chunks of at most ``size`` rows, read
        row group by row group; each chunk is checked like :meth:`load` checks the
        whole file, and timestamps must also increase from one chunk to the next.
        Errors name the file's row."""
        import pyarrow as pa

        path = self.path_of(instrument, ctx)
        reader = self._open(path)
        row = self.first_row
        last_ts: int | None = None
        batches = reader.iter_batches(batch_size=size)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as exc:
                raise _unreadable(path, exc) from None
            chunk = self.bars(pa.Table.from_batches([batch]), instrument, path, row)
            if len(chunk) and last_ts is not None and int(chunk.ts[0]) <= last_ts:
                raise DataError(
                    [
                        Problem(
                            f"{path} row {row}, column {self.config.timestamp_column}",
                            "timestamp does not increase"
                            " (previous row has the same or a later time)",
                        )
                    ]
                )
            if len(chunk):
                last_ts = int(chunk.ts[-1])
            row += len(chunk)
            yield chunk


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
            description="OHLCV bars from Parquet files (streamed in row groups on request).",
        )
    ]
