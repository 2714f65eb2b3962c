"""Research at scale: parameter sweeps and walk-forward optimisation.

Each run of a sweep is a full engine backtest with its own plugin manager, run by an
executor (a record of the ``engine_executors`` hook: ``sequential``, ``local``, or a
plugin's, such as ``dask`` from ``engine-plugin-dask``). See ``docs/sweeps.md``.

Names load lazily (PEP 562): importing one module of the package (a worker importing
:mod:`engine.research.tasks`) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_WHERE = {
    "Ledger": "ledger",
    "ParamSpec": "params",
    "apply_params": "params",
    "grid": "params",
    "parse_param": "params",
    "random_draws": "params",
    "SweepSection": "settings",
    "default_executor": "settings",
    "SweepResult": "sweep",
    "run_sweep": "sweep",
    "RunOutcome": "tasks",
    "SweepJob": "tasks",
    "SweepTask": "tasks",
    "WorkerPayload": "tasks",
    "prime_worker": "tasks",
    "run_task": "tasks",
    "WalkForwardResult": "walkforward",
    "run_walk_forward": "walkforward",
    "windows": "walkforward",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.research' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.research.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
