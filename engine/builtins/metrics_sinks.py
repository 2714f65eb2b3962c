"""Built-in plugin ``metrics_sinks``: where collected metrics go.

- ``memory`` store: keeps the last value of every series per time bucket, with a
  bound on the buckets kept per series (``store.series(name, **labels)``).
- ``sqlite`` store: the same buckets in a SQLite file, queryable after the run
  with ``engine metrics query FILE --name NAME``.
- ``log`` exporter: one JSON line per collection (INFO), for log pipelines.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from engine import (
    Exporter,
    MetricBatch,
    MetricRecord,
    MetricsStore,
    hookimpl,
    interval,
    parse_interval,
    positive,
)

Key = tuple[str, tuple[tuple[str, str], ...]]


@attrs.frozen
class MemoryConfig:
    """``[[metrics_stores]] type = "memory"``: time buckets and how many are kept."""

    bucket: str = attrs.field(default="1m", validator=interval)
    retention: int = attrs.field(default=10_000, validator=positive)


class Points:
    """One series' points, (bucket start, value), in two typed arrays (16 bytes a
    point, not a tuple of two objects); at most ``retention`` are kept (the oldest
    are dropped, in batches, so dropping costs nothing per point)."""

    __slots__ = ("retention", "starts", "values")

    def __init__(self, retention: int) -> None:
        self.retention = retention
        self.starts = array("q")
        self.values = array("d")

    def put(self, start: int, value: float) -> None:
        """The last value of bucket ``start`` (replaces the bucket's earlier one)."""
        if self.starts and self.starts[-1] == start:
            self.values[-1] = value
        else:
            self.starts.append(start)
            self.values.append(value)
            self._trim()

    def extend(self, starts: list[int], values: list[float]) -> None:
        """Several buckets, in time order (the first may replace the last kept)."""
        if starts and self.starts and self.starts[-1] == starts[0]:
            self.starts.pop()
            self.values.pop()
        self.starts.extend(starts)
        self.values.extend(values)
        self._trim()

    def _trim(self) -> None:
        extra = len(self.starts) - self.retention
        if extra > max(self.retention, 1024):  # amortised: at most 2x retention kept
            del self.starts[: len(self.starts) - self.retention]
            del self.values[: len(self.values) - self.retention]

    def points(self) -> list[tuple[int, float]]:
        """The last ``retention`` points, oldest first."""
        keep = min(len(self.starts), self.retention)
        first = len(self.starts) - keep
        return list(zip(self.starts[first:], self.values[first:], strict=True))


class MemoryStore:
    """Series of (bucket start, value), the last value of each bucket, bounded."""

    def __init__(self, config: MemoryConfig) -> None:
        self.bucket_ns = parse_interval(config.bucket)
        self.retention = config.retention
        self.data: dict[Key, Points] = {}

    def _points(self, key: Key) -> Points:
        points = self.data.get(key)
        if points is None:
            points = self.data[key] = Points(self.retention)
        return points

    def write(self, records: Iterable[MetricRecord]) -> None:
        """Store one collection."""
        for r in records:
            self._points((r.name, r.labels)).put(r.ts - r.ts % self.bucket_ns, r.value)

    def write_batch(self, batch: MetricBatch) -> None:
        """Store several collections at once (a backtest's): the same points as
        writing them one by one, built column by column."""
        if not batch.ts:
            return
        starts = [t - t % self.bucket_ns for t in batch.ts]
        # the last collection of each bucket is the one kept
        last = [i for i in range(len(starts) - 1) if starts[i] != starts[i + 1]]
        last.append(len(starts) - 1)
        kept_starts = [starts[i] for i in last]
        kept_rows = [batch.rows[i] for i in last]
        for k, (name, _kind, labels) in enumerate(batch.keys):
            column = [(t, row[k]) for t, row in zip(kept_starts, kept_rows, strict=True)]
            present = [(t, v) for t, v in column if v is not None]
            self._points((name, labels)).extend(
                [t for t, _ in present], [v for _, v in present if v is not None]
            )

    def series(self, name: str, **labels: object) -> list[tuple[int, float]]:
        """The points of one series (labels must match exactly)."""
        key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        points = self.data.get(key)
        return points.points() if points is not None else []

    def snapshot(self) -> dict[Key, list[tuple[int, float]]]:
        """Every series' points, by (name, labels)."""
        return {key: points.points() for key, points in self.data.items()}


@attrs.frozen
class SqliteConfig:
    """``[[metrics_stores]] type = "sqlite"``: a SQLite file (relative to the working
    directory), bucketed like the memory store."""

    path: str
    bucket: str = attrs.field(default="1m", validator=interval)


SCHEMA = """
CREATE TABLE IF NOT EXISTS metrics (
    name TEXT NOT NULL, labels TEXT NOT NULL, kind TEXT NOT NULL,
    bucket INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (name, labels, bucket)
)
"""


class SqliteStore:
    """One row per series and bucket: the last value seen in the bucket."""

    def __init__(self, config: SqliteConfig) -> None:
        self.bucket_ns = parse_interval(config.bucket)
        Path(config.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(config.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    def write(self, records: Iterable[MetricRecord]) -> None:
        """Store one collection (one transaction)."""
        rows = [
            (
                r.name,
                json.dumps(dict(r.labels), sort_keys=True),
                r.kind.value,
                r.ts - r.ts % self.bucket_ns,
                r.ts,
                r.value,
            )
            for r in records
        ]
        with self.db:
            self.db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, labels, bucket)"
                " DO UPDATE SET ts = excluded.ts, value = excluded.value",
                rows,
            )

    def write_batch(self, batch: MetricBatch) -> None:
        """Store several collections (one transaction)."""
        labels = [json.dumps(dict(key[2]), sort_keys=True) for key in batch.keys]
        rows = [
            (name, labels[k], kind.value, t - t % self.bucket_ns, t, value)
            for t, row in zip(batch.ts, batch.rows, strict=True)
            for k, ((name, kind, _), value) in enumerate(zip(batch.keys, row, strict=True))
            if value is not None
        ]
        with self.db:
            self.db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, labels, bucket)"
                " DO UPDATE SET ts = excluded.ts, value = excluded.value",
                rows,
            )

    def close(self) -> None:
        """Close the file."""
        self.db.close()


def query(path: str, name: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of one metric from a SQLite metrics file, oldest first."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT labels, kind, bucket, ts, value FROM metrics WHERE name = ?"
            " ORDER BY labels, bucket",
            (name,),
        ).fetchall()
    finally:
        db.close()
    out = []
    for raw, kind, bucket, ts, value in rows:
        got = json.loads(raw)
        if labels and any(got.get(k) != v for k, v in labels.items()):
            continue
        out.append({"labels": got, "kind": kind, "bucket": bucket, "ts": ts, "value": value})
    return out


class LogExporter:
    """Logs each collection as one JSON line at INFO."""

    def __init__(self, config: None) -> None:
        pass

    def export(self, records: Iterable[MetricRecord]) -> None:
        """One line: {"ts": ..., "metrics": {"name{label=value}": value, ...}}."""
        records = list(records)

        def line() -> str:  # built only if INFO is logged somewhere
            values = {}
            for r in records:
                labels = ",".join(f"{k}={v}" for k, v in r.labels)
                values[f"{r.name}{{{labels}}}" if labels else r.name] = r.value
            ts = max((r.ts for r in records), default=0)
            return json.dumps({"ts": ts, "metrics": values}, sort_keys=True)

        logger.opt(lazy=True).info("metrics {}", line)

    def export_batch(self, batch: MetricBatch) -> None:
        """One line per collection of the batch (built only if INFO is logged)."""
        names = [
            f"{name}{{{','.join(f'{k}={v}' for k, v in labels)}}}" if labels else name
            for name, _kind, labels in batch.keys
        ]
        for ts, row in zip(batch.ts, batch.rows, strict=True):

            def line(ts: int = ts, row: tuple[float | None, ...] = row) -> str:
                values = {n: v for n, v in zip(names, row, strict=True) if v is not None}
                return json.dumps({"ts": ts, "metrics": values}, sort_keys=True)

            logger.opt(lazy=True).info("metrics {}", line)


@hookimpl
def engine_metrics_stores() -> list[MetricsStore]:
    """The ``memory`` and ``sqlite`` stores."""
    return [
        MetricsStore(
            name="memory",
            factory=MemoryStore,
            config_type=MemoryConfig,
            description="Bucketed series in memory.",
        ),
        MetricsStore(
            name="sqlite",
            factory=SqliteStore,
            config_type=SqliteConfig,
            description="Bucketed series in a SQLite file.",
        ),
    ]


@hookimpl
def engine_exporters() -> list[Exporter]:
    """The ``log`` exporter."""
    return [
        Exporter(name="log", factory=LogExporter, description="One JSON log line per collection.")
    ]


def _metrics_cli() -> Any:
    import click

    @click.group(name="metrics")
    def metrics() -> None:
        """Metrics tools (from the metrics_sinks plugin)."""

    @metrics.command(name="query")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", required=True, help="Metric name, e.g. engine_equity.")
    @click.option(
        "--label",
        "labels",
        multiple=True,
        metavar="KEY=VALUE",
        help="Filter by label (repeatable).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def query_command(file: str, name: str, labels: tuple[str, ...], as_json: bool) -> None:
        """Print one metric's buckets from a SQLite metrics FILE."""
        wanted = {}
        for item in labels:
            key, sep, value = item.partition("=")
            if not sep:
                raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--label")
            wanted[key] = value
        rows = query(file, name, wanted)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo(f"no rows for {name}")
        for row in rows:
            labels_text = ",".join(f"{k}={v}" for k, v in row["labels"].items())
            click.echo(f"{row['bucket']}  {name}{{{labels_text}}}  {row['value']:g}")

    return metrics


@hookimpl
def engine_cli_commands() -> list[Any]:
    """``engine metrics query FILE --name NAME``."""
    from engine import CliCommand

    return [CliCommand(name="metrics", command=_metrics_cli())]
