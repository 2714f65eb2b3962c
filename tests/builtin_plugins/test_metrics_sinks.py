"""The built-in metrics stores and exporter, and `engine metrics query`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loguru import logger

from engine import MetricKind, MetricRecord
from engine.builtins.metrics_sinks import (
    LogExporter,
    MemoryConfig,
    MemoryStore,
    SqliteConfig,
    SqliteStore,
    query,
)

MIN = 60_000_000_000


def rec(name: str, value: float, ts: int, **labels: str) -> MetricRecord:
    return MetricRecord(name, MetricKind.GAUGE, tuple(sorted(labels.items())), value, ts)


def test_memory_store_keeps_the_last_value_per_bucket_within_retention() -> None:
    store = MemoryStore(MemoryConfig(bucket="1m", retention=3))
    for k, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        store.write([rec("x", v, k * 30_000_000_000, side="a")])  # two writes per minute
    # minutes 0, 1, 2 hold the later value of each; retention 3 drops nothing yet
    assert store.series("x", side="a") == [(0, 2.0), (MIN, 4.0), (2 * MIN, 5.0)]
    store.write([rec("x", 6.0, 3 * MIN, side="a")])
    assert store.series("x", side="a") == [(MIN, 4.0), (2 * MIN, 5.0), (3 * MIN, 6.0)]
    assert store.series("x", side="b") == []


def test_sqlite_store_and_query(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = SqliteStore(SqliteConfig(path=str(db), bucket="1m"))
    store.write(
        [rec("eq", 10.0, 0), rec("pos", 1.0, 0, instrument="A"), rec("pos", 2.0, 0, instrument="B")]
    )
    store.write([rec("eq", 11.0, 30_000_000_000)])  # same bucket: replaces
    store.write([rec("eq", 12.0, MIN)])
    store.close()
    assert [(r["bucket"], r["value"]) for r in query(str(db), "eq")] == [(0, 11.0), (MIN, 12.0)]
    assert [r["value"] for r in query(str(db), "pos", {"instrument": "B"})] == [2.0]
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("engine")),
            "metrics",
            "query",
            str(db),
            "--name",
            "pos",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [r["labels"] for r in json.loads(proc.stdout)] == [
        {"instrument": "A"},
        {"instrument": "B"},
    ]


def test_log_exporter_writes_one_json_line_per_collection() -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        LogExporter(None).export([rec("eq", 10.0, 5), rec("pos", 1.0, 5, instrument="A")])
    finally:
        logger.remove(sink)
    (line,) = lines
    payload = json.loads(line.removeprefix("metrics "))
    assert payload == {"ts": 5, "metrics": {"eq": 10.0, "pos{instrument=A}": 1.0}}


def test_memory_store_stays_bounded_over_a_long_run() -> None:
    store = MemoryStore(MemoryConfig(bucket="1m", retention=5))
    for k in range(5000):
        store.write([rec("x", float(k), k * MIN)])
    assert store.series("x") == [(k * MIN, float(k)) for k in range(4995, 5000)]
    points = store.data[("x", ())]
    assert len(points.starts) <= 5 + 1024 + 1  # dropped in batches, never unbounded
