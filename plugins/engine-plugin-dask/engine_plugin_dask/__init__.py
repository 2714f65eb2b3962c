"""engine-plugin-dask: run a sweep's backtests on Dask distributed.

Install it into the engine's environment (and into the workers' environments) and
choose it::

    engine sweep config.toml --grid strategy.fast=5..20:5 --executor dask --workers 4

Without an address it starts a ``LocalCluster`` on this machine (``--workers``
worker processes, one thread each). With an address it uses that scheduler's
workers::

    [sweep]
    executor = "dask"

    [sweep.dask]
    address = "tcp://10.0.0.5:8786"

The sweep's payload (the ad-hoc plugins and, when shipped, the bars) is scattered
once to every worker; each task refers to it by key. Each task is one full engine
backtest in the worker process; a failing run comes back as a failure with its
parameters, and a worker lost mid-run fails only the runs it held.
"""

from __future__ import annotations

from engine import Executor, hookimpl
from engine_plugin_dask.executor import DaskConfig, DaskExecutor

__all__ = ["DaskConfig", "DaskExecutor", "engine_executors"]


@hookimpl
def engine_executors() -> list[Executor]:
    """The ``dask`` executor."""
    return [
        Executor(
            name="dask",
            factory=DaskExecutor,
            config_type=DaskConfig,
            description="Dask distributed: a LocalCluster, or the scheduler at"
            " [sweep.dask] address.",
        )
    ]
