"""Built-in plugin ``executors``: run a sweep's backtests one after another in this
process (``sequential``) or in a pool of worker processes (``local``).

``local`` is the default on a machine with more than one core. Its workers start
from a fork server (``forkserver``, which imports the engine once and forks each
worker from it) unless ``[sweep.local] start_method`` says otherwise; each worker
receives the sweep's payload (plugins, and the bars when they are shipped) once,
when it starts, and then one task at a time.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

import attrs

from engine import Executor, hookimpl, positive

if TYPE_CHECKING:  # the sweep machinery (numpy...) loads when a sweep runs, not at listing
    from engine import RunOutcome, SweepJob, SweepTask


class SequentialExecutor:
    """Runs every task in the calling process, in order."""

    def __init__(self, config: None = None) -> None:
        pass

    def run(self, job: SweepJob) -> Iterator[RunOutcome]:
        """Each task's outcome, in order."""
        from engine import run_task

        payload = job.payload.in_process()
        for task in job.tasks:
            yield run_task(task, payload)


def _default_start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _start_method(_inst: object, _attr: object, value: str) -> None:
    methods = multiprocessing.get_all_start_methods()
    if value not in methods:
        raise ValueError(f"expected one of {', '.join(map(repr, methods))}, got {value!r}")


@attrs.frozen
class LocalConfig:
    """``[sweep.local]`` options."""

    #: how worker processes start: forkserver (default where available), spawn or fork
    start_method: str = attrs.field(factory=_default_start_method, validator=_start_method)
    #: replace a worker after this many runs (bounds memory a strategy leaks); none: never
    max_runs_per_worker: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(positive)
    )


class LocalExecutor:
    """A process pool (``concurrent.futures``) on this machine, one worker per core
    unless the sweep asks for another number."""

    def __init__(self, config: LocalConfig | None = None) -> None:
        self.config = config or LocalConfig()

    def run(self, job: SweepJob) -> Iterator[RunOutcome]:
        """Outcomes as the workers finish them; a task whose worker died comes back
        as a failure (the pool cannot go on: the remaining tasks fail too, and a
        second run of the sweep retries them)."""
        from engine import RunOutcome, prime_worker, run_task

        if not job.tasks:
            return
        workers = max(1, min(job.workers or os.cpu_count() or 1, len(job.tasks)))
        method = self.config.start_method
        context = multiprocessing.get_context(method)
        if method == "forkserver":  # workers fork from a server that imported the engine
            context.set_forkserver_preload(["engine.research.tasks", "engine.engine"])
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=prime_worker,
            initargs=(job.payload,),
            max_tasks_per_child=self.config.max_runs_per_worker,
        )
        try:
            futures: dict[Future[RunOutcome], SweepTask] = {
                pool.submit(run_task, task): task for task in job.tasks
            }
            for future in as_completed(futures):
                task = futures[future]
                try:
                    yield future.result()
                except Exception as exc:  # the worker died, or the task did not pickle
                    yield RunOutcome.failed(task, exc)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _sequential(config: None) -> SequentialExecutor:
    return SequentialExecutor(config)


def _local(config: LocalConfig) -> LocalExecutor:
    return LocalExecutor(config)


@hookimpl
def engine_executors() -> list[Executor]:
    """The ``sequential`` and ``local`` executors."""
    return [
        Executor(
            name="sequential",
            factory=_sequential,
            description="Every run in this process, one after another.",
        ),
        Executor(
            name="local",
            factory=_local,
            config_type=LocalConfig,
            description="A process pool on this machine (concurrent.futures).",
        ),
    ]
