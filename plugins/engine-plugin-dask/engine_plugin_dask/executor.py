"""The Dask executor: one Dask task per run, the payload scattered once per worker."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import attrs

from engine import RunOutcome, SweepJob, SweepTask, positive, run_task

__all__ = ["DaskConfig", "DaskExecutor"]


def _address(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and "://" not in value:
        raise ValueError(f"expected a scheduler address like tcp://host:8786, got {value!r}")


@attrs.frozen
class DaskConfig:
    """``[sweep.dask]`` options."""

    #: the scheduler (``tcp://host:8786``); none: a LocalCluster on this machine
    address: str | None = attrs.field(default=None, validator=_address)
    #: seconds to wait for the scheduler to answer
    timeout: float = attrs.field(default=30.0, validator=positive)
    #: LocalCluster only: threads per worker process (a backtest holds the GIL: keep 1)
    threads_per_worker: int = attrs.field(default=1, validator=positive)
    #: LocalCluster only: where its dashboard listens (``":8787"``); none: no dashboard
    dashboard: str | None = None


class DaskExecutor:
    """Runs a sweep's tasks on a Dask cluster (see :class:`DaskConfig`)."""

    def __init__(self, config: DaskConfig | None = None) -> None:
        self.config = config or DaskConfig()

    def _client(self, workers: int | None) -> tuple[Any, Any]:
        from distributed import Client, LocalCluster

        cfg = self.config
        if cfg.address is not None:
            try:
                client = Client(cfg.address, timeout=cfg.timeout, set_as_default=False)  # type: ignore[no-untyped-call]
                return client, None
            except OSError as exc:
                from engine import ConfigError, Problem

                raise ConfigError(
                    [
                        Problem(
                            "config.sweep.dask.address",
                            f"no Dask scheduler answers at {cfg.address}: {exc}",
                        )
                    ]
                ) from None
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=cfg.threads_per_worker,
            processes=True,
            dashboard_address=cfg.dashboard,
            silence_logs=logging.ERROR,
        )
        return Client(cluster, set_as_default=False), cluster  # type: ignore[no-untyped-call]

    def run(self, job: SweepJob) -> Iterator[RunOutcome]:
        """Outcomes as the workers finish them."""
        if not job.tasks:
            return
        from distributed import as_completed

        client, cluster = self._client(job.workers)
        try:
            # one copy per worker; every task names it by key (workers that join
            # later fetch it once from a peer)
            payload = client.scatter(job.payload, broadcast=True, hash=False)
            token = uuid.uuid4().hex[:8]
            keys = [f"engine-run-{t.run}-{t.run_id}-{token}" for t in job.tasks]
            futures = client.map(run_task, job.tasks, payload=payload, key=keys, pure=False)
            task_of: dict[str, SweepTask] = dict(zip(keys, job.tasks, strict=True))
            for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
                task = task_of[future.key]
                try:
                    outcome = future.result()
                except Exception as exc:  # a lost worker, a task that did not pickle...
                    outcome = RunOutcome.failed(task, exc)
                future.release()
                yield outcome
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
