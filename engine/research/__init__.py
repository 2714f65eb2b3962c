"""Research at scale: parameter sweeps and walk-forward optimisation.

Each run of a sweep is a full engine backtest with its own plugin manager, run by an
executor (a record of the ``engine_executors`` hook: ``sequential``, ``local``, or a
plugin's, such as ``dask`` from ``engine-plugin-dask``). See ``docs/sweeps.md``.
"""

from __future__ import annotations

from engine.research.ledger import Ledger
from engine.research.params import ParamSpec, apply_params, grid, parse_param, random_draws
from engine.research.settings import SweepSection, default_executor
from engine.research.sweep import SweepResult, run_sweep
from engine.research.tasks import (
    RunOutcome,
    SweepJob,
    SweepTask,
    WorkerPayload,
    prime_worker,
    run_task,
)
from engine.research.walkforward import WalkForwardResult, run_walk_forward, windows

__all__ = [
    "Ledger",
    "ParamSpec",
    "RunOutcome",
    "SweepJob",
    "SweepResult",
    "SweepSection",
    "SweepTask",
    "WalkForwardResult",
    "WorkerPayload",
    "apply_params",
    "default_executor",
    "grid",
    "parse_param",
    "prime_worker",
    "random_draws",
    "run_sweep",
    "run_task",
    "run_walk_forward",
    "windows",
]
