"""The record of a sweep's finished runs, so that running the same sweep again skips
them.

``ledger.jsonl`` in the output folder gets one JSON line per finished run, keyed by
the run's id (a hash of its whole config and window), appended and flushed to disk
as each run finishes. A process killed mid-write leaves at most a torn last line,
which is ignored on reading. Failed runs are recorded too, but a sweep run again
retries them (a worker lost to a machine failure should not fail forever).
Equity curves that a run keeps (walk-forward) go to ``equity/<run id>.npz``,
written before the run's line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.research.tasks import RunOutcome

__all__ = ["Ledger"]


class Ledger:
    """Finished runs of the sweeps written to ``directory`` (``None``: in memory)."""

    FILE = "ledger.jsonl"

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.done: dict[str, RunOutcome] = {}
        self._file: Any = None
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.FILE
        if path.exists():
            self._read(path)
        self._file = path.open("a", encoding="utf-8")

    def _read(self, path: Path) -> None:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                if not isinstance(entry, dict) or "row" not in entry:
                    continue
                equity = None
                if entry.get("equity"):
                    try:
                        with np.load(path.parent / entry["equity"]) as saved:
                            equity = (saved["ts"], saved["equity"])
                    except (OSError, KeyError, ValueError):
                        continue  # the curve was lost: run it again
                outcome = RunOutcome(
                    run=int(entry["run"]),
                    run_id=str(entry["run_id"]),
                    params=entry.get("params", {}),
                    row=entry["row"],
                    error=entry.get("error"),
                    traceback=entry.get("traceback", ""),
                    equity=equity,
                    seconds=float(entry.get("seconds", 0.0)),
                    worker=str(entry.get("worker", "")),
                    cpu_seconds=float(entry.get("cpu_seconds", 0.0)),
                )
                if outcome.ok:
                    self.done[outcome.run_id] = outcome
                else:
                    self.done.pop(outcome.run_id, None)

    def finished(self, run_id: str) -> RunOutcome | None:
        """The recorded successful outcome of ``run_id``, if any."""
        return self.done.get(run_id)

    def record(self, outcome: RunOutcome) -> RunOutcome:
        """Append ``outcome`` durably; returns it as read back later would be (its row
        through JSON, so fresh and resumed runs give identical tables)."""
        entry: dict[str, Any] = {
            "run": outcome.run,
            "run_id": outcome.run_id,
            "params": dict(outcome.params),
            "row": None if outcome.row is None else dict(outcome.row),
            "error": outcome.error,
            "traceback": outcome.traceback,
            "seconds": outcome.seconds,
            "cpu_seconds": outcome.cpu_seconds,
            "worker": outcome.worker,
        }
        text = json.dumps(entry, default=str)
        if self._file is not None and self.directory is not None:
            if outcome.equity is not None:
                folder = self.directory / "equity"
                folder.mkdir(exist_ok=True)
                name = f"equity/{outcome.run_id}.npz"
                with (self.directory / name).open("wb") as out:
                    np.savez(out, ts=outcome.equity[0], equity=outcome.equity[1])
                entry["equity"] = name
                text = json.dumps(entry, default=str)
            self._file.write(text + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        read = json.loads(text)
        stored = RunOutcome(
            run=outcome.run,
            run_id=outcome.run_id,
            params=read["params"],
            row=read["row"],
            error=outcome.error,
            traceback=outcome.traceback,
            equity=outcome.equity,
            seconds=outcome.seconds,
            worker=outcome.worker,
            cpu_seconds=outcome.cpu_seconds,
        )
        if stored.ok:
            self.done[stored.run_id] = stored
        return stored

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def count_lines(directory: Path) -> int:
        """Lines in a folder's ledger (tests and progress watchers)."""
        path = directory / Ledger.FILE
        return sum(1 for _ in path.open()) if path.exists() else 0
