"""What runs in a sweep's worker: one task is one full engine backtest.

A :class:`SweepTask` carries a run's whole raw config (the base config with the
run's parameters applied). :func:`run_task` builds an :class:`~engine.Engine` with
its own plugin manager in the worker process, runs the backtest and returns a
:class:`RunOutcome`: the run's row of statistics, or its error. It never raises for
a failing run, so one bad parameter set never stops a sweep.

The data a sweep's runs share travels once per worker, not once per task: the
:class:`WorkerPayload` holds the plugin settings, the ad-hoc plugins (pickled with
cloudpickle, so a notebook's classes travel too) and, when the bars are shipped,
the bars. An executor either hands the payload to :func:`prime_worker` once per
worker process (and then calls ``run_task(task)``), or passes the same payload
object to every task (Dask: scattered once to each worker). When the bars are not
shipped, each worker loads them from the feed once (a shared path, or generated
from the config's seed) and keeps them for the following tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import socket
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from engine.data import BarSeries
from engine.errors import EngineError
from engine.plugins import PluginSettings

__all__ = [
    "RunOutcome",
    "SweepJob",
    "SweepTask",
    "WorkerPayload",
    "canonical",
    "data_key",
    "prime_worker",
    "run_task",
    "slice_window",
]

#: distinct data sets a worker keeps (sweeps over a feed's own options load several)
DATA_CACHE_SIZE = 2


def canonical(value: Any) -> str:
    """Canonical JSON of config data (sorted keys; dates and Decimals as strings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def data_key(config: Mapping[str, Any], base_dir: str) -> str:
    """What a run's bars depend on: the feed, the instruments, the seed, the folder
    relative paths start from. Runs with the same key share their bars."""
    engine = config.get("engine")
    seed = engine.get("seed") if isinstance(engine, Mapping) else None
    parts = [config.get("feed"), config.get("instruments"), seed, base_dir]
    return hashlib.sha256(canonical(parts).encode()).hexdigest()[:16]


@attrs.frozen
class SweepTask:
    """One run of a sweep.

    ``run`` is its position in the sweep (results are sorted by it), ``run_id`` a
    hash of its config and window (what a resumed sweep recognises), ``params`` the
    swept values by path, ``config`` the whole raw config of the run. ``window``
    limits the bars to ``[start, stop)`` (ns timestamps; walk-forward). With
    ``keep_equity`` the outcome carries the equity curve.
    """

    run: int
    run_id: str
    params: Mapping[str, Any]
    config: Mapping[str, Any]
    data_key: str
    window: tuple[int, int] | None = None
    keep_equity: bool = False


@attrs.frozen(eq=False)
class WorkerPayload:
    """What every task of a sweep shares, sent once per worker.

    ``token`` identifies it (workers cache what they derive from it); ``plugins``
    is a cloudpickled ``{name: plugin}`` of the ad-hoc plugins registered on the
    parent engine; ``data`` maps a :func:`data_key` to the bars when they are
    shipped (else each worker loads them once); ``log_level`` configures logging in
    worker processes (``None`` leaves logging alone: the sequential executor runs
    in the caller's process).
    """

    token: str
    base_dir: str
    source: str
    settings: PluginSettings
    plugins: bytes = b""
    data: Mapping[str, Mapping[str, BarSeries]] | None = None
    log_level: str | None = None

    def in_process(self) -> WorkerPayload:
        """This payload for runs in the calling process (logging left alone)."""
        return attrs.evolve(self, log_level=None)


@attrs.frozen
class SweepJob:
    """What an executor is asked to run: the tasks, their shared payload, and the
    number of workers wanted (``None``: the executor's default)."""

    tasks: tuple[SweepTask, ...]
    payload: WorkerPayload
    workers: int | None = None


@attrs.frozen
class RunOutcome:
    """The result of one task: ``row`` (statistics by name) or ``error`` (one line,
    ``Type: message``, with ``traceback`` for the record). ``equity`` is
    ``(ts, equity)`` when the task asked for it. ``seconds`` is the run's wall time
    in the worker, ``cpu_seconds`` the CPU time its process spent on it, ``worker``
    the host and process that ran it."""

    run: int
    run_id: str
    params: Mapping[str, Any]
    row: Mapping[str, Any] | None = None
    error: str | None = None
    traceback: str = ""
    equity: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
    seconds: float = 0.0
    worker: str = ""
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the run produced a row."""
        return self.error is None

    @classmethod
    def failed(cls, task: SweepTask, error: BaseException | str, tb: str = "") -> RunOutcome:
        """A failure outcome for ``task`` (executors use it for lost workers)."""
        text = error if isinstance(error, str) else _describe(error)
        return cls(task.run, task.run_id, dict(task.params), error=text, traceback=tb)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EngineError):
        return f"{type(exc).__name__}: {str(exc).replace(chr(10), '; ')}"
    return f"{type(exc).__name__}: {exc}"


def slice_window(series: BarSeries, start: int, stop: int) -> BarSeries:
    """The bars of ``series`` with ``start <= ts < stop``."""
    lo = int(np.searchsorted(series.ts, start, side="left"))
    hi = int(np.searchsorted(series.ts, stop, side="left"))
    return series.slice(lo, hi)


class _WorkerState:
    """What one process derives from a payload: plugins, logging, cached bars."""

    def __init__(self, payload: WorkerPayload) -> None:
        self.token = payload.token
        self.plugins: dict[str, object] = pickle.loads(payload.plugins) if payload.plugins else {}
        self.data: OrderedDict[str, Mapping[str, BarSeries]] = OrderedDict()
        if payload.data:
            self.data.update(payload.data)
        if payload.log_level is not None:
            from loguru import logger

            logger.remove()
            logger.add(sys.stderr, level=payload.log_level)


_STATE: dict[str, _WorkerState] = {}
_PRIMED: list[WorkerPayload] = []


def _state(payload: WorkerPayload) -> _WorkerState:
    state = _STATE.get(payload.token)
    if state is None:
        _STATE.clear()  # one sweep at a time per process: drop an earlier sweep's bars
        state = _STATE[payload.token] = _WorkerState(payload)
    return state


def prime_worker(payload: WorkerPayload) -> None:
    """Called once in each worker process (a process pool's initializer): keep the
    payload for the tasks that follow, which then call ``run_task(task)``."""
    _PRIMED[:] = [payload]
    _state(payload)


def _bars(state: _WorkerState, engine: Any, key: str) -> Mapping[str, BarSeries]:
    cached = state.data.get(key)
    if cached is not None:
        state.data.move_to_end(key)
        return cached
    from engine.aio import run_sync

    loaded: Mapping[str, BarSeries] = run_sync(engine.load_data)
    state.data[key] = loaded
    while len(state.data) > DATA_CACHE_SIZE:
        state.data.popitem(last=False)
    return loaded


def result_row(result: Any) -> dict[str, Any]:
    """A run's statistics as a flat row of plain numbers (the sweep table's columns)."""
    row: dict[str, Any] = {}
    for name, value in result.stats.items():
        if isinstance(value, bool | int | str):
            row[name] = value
        elif isinstance(value, float | np.floating):
            row[name] = float(value)
        elif isinstance(value, np.integer):
            row[name] = int(value)
    row["final_equity"] = float(result.final_equity)
    row["fees"] = float(result.portfolio.fees)
    row["fills"] = len(result.fill_records)
    row["orders_denied"] = len(result.denials)
    row["bars"] = result.bars
    return row


def run_task(task: SweepTask, payload: WorkerPayload | None = None) -> RunOutcome:
    """Run one task in this process: a fresh engine (its own plugin manager) over the
    shared bars. Never raises for a failing run: the error comes back in the outcome.
    Without ``payload`` the one given to :func:`prime_worker` is used."""
    from engine.config import RawConfig
    from engine.engine import Engine

    started = time.perf_counter()
    cpu = time.process_time()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if payload is None:
        if not _PRIMED:
            return RunOutcome.failed(task, "RuntimeError: the worker was not primed with a payload")
        payload = _PRIMED[0]
    try:
        state = _state(payload)
        raw = RawConfig(dict(task.config), Path(payload.base_dir), payload.source)
        engine = Engine(raw, settings=payload.settings)
        for name, plugin in state.plugins.items():
            engine.register(plugin, name)
        series = _bars(state, engine, task.data_key)
        if task.window is not None:
            start, stop = task.window
            series = {s: slice_window(b, start, stop) for s, b in series.items()}
        result = engine.backtest_sync(data=series)
        row = result_row(result)
    except Exception as exc:
        return attrs.evolve(
            RunOutcome.failed(task, exc, traceback.format_exc()),
            seconds=time.perf_counter() - started,
            worker=worker,
            cpu_seconds=time.process_time() - cpu,
        )
    equity = (result.curve.ts, result.curve.equity) if task.keep_equity else None
    return RunOutcome(
        task.run,
        task.run_id,
        dict(task.params),
        row=row,
        equity=equity,
        seconds=time.perf_counter() - started,
        worker=worker,
        cpu_seconds=time.process_time() - cpu,
    )


def finite_or_none(value: Any) -> Any:
    """``None`` for NaN (JSON summaries), the value otherwise."""
    return None if isinstance(value, float) and math.isnan(value) else value
