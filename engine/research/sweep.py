"""Parameter sweeps: many full backtests of one config, gathered into one table.

:func:`run_sweep` expands the parameters (a grid, or ``samples`` random draws),
turns each combination into a :class:`~engine.research.tasks.SweepTask` (the whole
config of the run), skips the runs an output folder's ledger already holds, and
hands the rest to an executor. Outcomes are recorded as they arrive; the table is
sorted by run number, so every executor gives the same table.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from engine.config import RawConfig, resolve
from engine.errors import ConfigError, EngineError, Problem
from engine.research.ledger import Ledger
from engine.research.params import (
    ParamSpec,
    apply_params,
    config_path,
    grid,
    parse_params,
    random_draws,
)
from engine.research.settings import SweepSection, make_executor, sweep_settings
from engine.research.tasks import (
    RunOutcome,
    SweepJob,
    SweepTask,
    WorkerPayload,
    canonical,
    data_key,
    finite_or_none,
)

if TYPE_CHECKING:
    import pandas as pd

    from engine.data import BarSeries
    from engine.engine import Engine

__all__ = ["SweepProgress", "SweepResult", "execute", "make_tasks", "run_sweep"]

#: ``progress(done, total, failed)`` after each finished run
SweepProgress = Callable[[int, int, int], None]


def _run_id(config: Mapping[str, Any], window: tuple[int, int] | None) -> str:
    text = canonical({"config": config, "window": list(window) if window else None})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_config(engine: Engine) -> dict[str, Any]:
    """The engine's raw config without ``[sweep]`` (what every run starts from)."""
    data = dict(engine.config.raw)
    data.pop("sweep", None)
    return data


def check_paths(engine: Engine, params: Sequence[ParamSpec], combo: Mapping[str, Any]) -> None:
    """Fail with the parameter's path when it names no key of its component (the
    first combination is resolved against the plugins; invalid values are left to
    the runs, which report them as failures)."""
    base = base_config(engine)
    where = {p.path: config_path(base, p.path) for p in params}
    applied = apply_params(base, combo)
    cfg = engine.config
    try:
        resolve(RawConfig(applied, cfg.base_dir, cfg.source), engine.plugins)
    except ConfigError as exc:
        bad = [
            Problem(path, f"{p.where}: {p.message}")
            for p in exc.problems
            for path, target in where.items()
            if p.where.startswith(target)
            and (p.message.startswith("unknown key") or "takes no options" in p.message)
        ]
        if bad:
            raise ConfigError(bad) from None


def make_tasks(
    engine: Engine,
    combos: Sequence[Mapping[str, Any]],
    *,
    windows: Sequence[tuple[int, int] | None] = (None,),
    keep_equity: bool = False,
    first: int = 0,
) -> list[SweepTask]:
    """One task per combination and window, numbered from ``first``."""
    base = base_config(engine)
    base_dir = str(engine.config.base_dir)
    tasks: list[SweepTask] = []
    for window in windows:
        for combo in combos:
            applied = apply_params(base, combo)
            tasks.append(
                SweepTask(
                    run=first + len(tasks),
                    run_id=_run_id(applied, window),
                    params=dict(combo),
                    config=applied,
                    data_key=data_key(applied, base_dir),
                    window=window,
                    keep_equity=keep_equity,
                )
            )
    return tasks


def _plugins_blob(engine: Engine) -> bytes:
    registered = engine.plugins.registered()
    if not registered:
        return b""
    import cloudpickle

    return bytes(cloudpickle.dumps(registered))


def _payload(
    engine: Engine,
    tasks: Sequence[SweepTask],
    settings: SweepSection,
    log_level: str,
    loaded: Mapping[str, Mapping[str, BarSeries]] | None = None,
) -> WorkerPayload:
    from engine.aio import run_sync
    from engine.engine import Engine as EngineClass

    cfg = engine.config
    data = None
    keys = {t.data_key for t in tasks}
    if settings.data == "ship" and loaded is not None and keys <= set(loaded):
        data = {k: loaded[k] for k in keys}
    elif settings.data == "ship" and len(keys) == 1:
        # the base config with the runs' feed, instruments and seed (what the bars
        # depend on); if they cannot be loaded here, each run reports the problem
        first = dict(tasks[0].config)
        raw = base_config(engine) | {k: first[k] for k in ("feed", "instruments") if k in first}
        seed = (first.get("engine") or {}).get("seed")
        if seed is not None:
            raw["engine"] = {**raw.get("engine", {}), "seed": seed}
        loader = EngineClass(RawConfig(raw, cfg.base_dir, cfg.source), plugins=engine.plugins)
        try:
            data = {tasks[0].data_key: run_sync(loader.load_data)}
        except EngineError as exc:
            logger.warning("the bars cannot be loaded once for all runs: {}", exc)
    return WorkerPayload(
        token=uuid.uuid4().hex,
        base_dir=str(cfg.base_dir),
        source=cfg.source,
        settings=engine.plugins.settings,
        plugins=_plugins_blob(engine),
        data=data,
        log_level=log_level,
    )


@attrs.frozen
class Execution:
    """Every outcome of a batch of tasks, in run order, and how they were obtained."""

    outcomes: tuple[RunOutcome, ...]
    computed: int
    resumed: int
    executor: str
    workers: int | None
    wall_seconds: float


def execute(
    engine: Engine,
    tasks: Sequence[SweepTask],
    settings: SweepSection,
    ledger: Ledger,
    *,
    progress: SweepProgress | None = None,
    log_level: str = "WARNING",
    data: Mapping[str, Mapping[str, BarSeries]] | None = None,
) -> Execution:
    """Run ``tasks`` on the configured executor, skipping those the ledger holds.
    ``data`` (data key -> bars) is what the caller already loaded."""
    started = time.perf_counter()
    outcomes: dict[int, RunOutcome] = {}
    pending: list[SweepTask] = []
    for task in tasks:
        done = ledger.finished(task.run_id)
        if done is not None and (done.equity is not None or not task.keep_equity):
            outcomes[task.run] = attrs.evolve(done, run=task.run, params=dict(task.params))
        else:
            pending.append(task)
    resumed = len(outcomes)
    failed = 0
    if progress is not None:
        progress(len(outcomes), len(tasks), failed)
    name = settings.executor_name
    if pending:
        payload = _payload(engine, pending, settings, log_level, data)
        executor = make_executor(engine, settings)
        by_run = {t.run: t for t in pending}
        try:
            for outcome in executor.run(SweepJob(tuple(pending), payload, settings.workers)):
                if outcome.run not in by_run:
                    continue  # not ours, or a duplicate
                task = by_run.pop(outcome.run)
                stored = ledger.record(outcome)
                outcomes[task.run] = stored
                failed += not stored.ok
                if progress is not None:
                    progress(len(outcomes), len(tasks), failed)
        finally:
            close = getattr(executor, "close", None)
            if close is not None:
                close()
        for task in by_run.values():  # an executor that lost tasks without saying so
            outcomes[task.run] = ledger.record(
                RunOutcome.failed(task, f"the {name} executor returned no result for this run")
            )
    return Execution(
        tuple(outcomes[t.run] for t in tasks),
        computed=len(pending),
        resumed=resumed,
        executor=name,
        workers=settings.workers,
        wall_seconds=time.perf_counter() - started,
    )


def _uniform_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """A parameter column mixing types (``1,abc``) becomes text (Parquet needs one type)."""
    for col in columns:
        kinds = {type(v) for v in frame[col] if v is not None}
        if len(kinds - {int, float}) and len(kinds) > 1:
            frame[col] = frame[col].map(str)


def outcome_tables(
    outcomes: Sequence[RunOutcome],
    params: Sequence[str],
    extra: Mapping[int, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, failures) tables of ``outcomes``, sorted by run."""
    import pandas as pd

    extra = extra or {}
    rows, failures = [], []
    for o in sorted(outcomes, key=lambda o: o.run):
        head = {"run": o.run, "run_id": o.run_id, **dict(extra.get(o.run, {}))}
        head |= {p: o.params.get(p) for p in params}
        if o.ok:
            assert o.row is not None
            rows.append(head | dict(o.row))
        else:
            failures.append(head | {"error": o.error})
    extra_cols = list(next(iter(extra.values()))) if extra else []
    head_cols = ["run", "run_id", *extra_cols, *params]
    results = pd.DataFrame(rows) if rows else pd.DataFrame(columns=head_cols)
    fails = pd.DataFrame(failures) if failures else pd.DataFrame(columns=[*head_cols, "error"])
    _uniform_columns(results, params)
    _uniform_columns(fails, params)
    return results, fails


@attrs.define
class SweepResult:
    """A sweep's table and how it ran.

    ``results``: one row per successful run (``run``, ``run_id``, the parameters by
    path, then the statistics), sorted by run. ``failures``: one row per failed
    run with its parameters and ``error``. In a notebook it renders the best runs.
    """

    params: tuple[str, ...]
    results: pd.DataFrame
    failures: pd.DataFrame
    metric: str
    minimize: bool
    top: int
    executor: str
    workers: int | None
    computed: int
    resumed: int
    wall_seconds: float
    grid: bool = True
    #: the full error text of each failed run (tracebacks), by run
    tracebacks: dict[int, str] = attrs.field(factory=dict)

    @property
    def runs(self) -> int:
        """Runs in the sweep (succeeded and failed)."""
        return len(self.results) + len(self.failures)

    def best(self, n: int | None = None, metric: str | None = None) -> pd.DataFrame:
        """The ``n`` best runs by ``metric`` (default: the sweep's); ties keep run order."""
        metric = metric or self.metric
        if metric not in self.results.columns:
            known = [c for c in self.results.columns if c not in ("run", "run_id", *self.params)]
            raise ConfigError(
                [Problem("metric", f"unknown metric {metric!r}; the table has: {', '.join(known)}")]
            )
        ordered = self.results.sort_values(
            [metric, "run"], ascending=[self.minimize, True], na_position="last", kind="mergesort"
        )
        return ordered.head(self.top if n is None else n).reset_index(drop=True)

    def heatmap(self, metric: str | None = None, ax: Any = None) -> Any:
        """A heatmap of ``metric`` over two parameters (matplotlib); returns the figure."""
        return heatmap(self, metric or self.metric, ax)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts and the best runs."""
        cols = ["run", *self.params, self.metric]
        best = self.best() if len(self.results) else self.results
        return {
            "runs": self.runs,
            "succeeded": len(self.results),
            "failed": len(self.failures),
            "computed": self.computed,
            "resumed": self.resumed,
            "executor": self.executor,
            "workers": self.workers,
            "wall_seconds": round(self.wall_seconds, 3),
            "metric": self.metric,
            "minimize": self.minimize,
            "params": list(self.params),
            "best": [
                {k: finite_or_none(_plain(v)) for k, v in row.items()}
                for row in best[[c for c in cols if c in best.columns]].to_dict("records")
            ],
            "failures": [
                {k: _plain(v) for k, v in row.items()} for row in self.failures.to_dict("records")
            ],
        }

    def write(self, directory: str | Path) -> dict[str, Path]:
        """``results.parquet``, ``results.csv``, ``failures.csv``, ``summary.json`` and,
        for two parameters, ``heatmap.png``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "parquet": out / "results.parquet",
            "csv": out / "results.csv",
            "failures": out / "failures.csv",
            "summary": out / "summary.json",
        }
        self.results.to_parquet(paths["parquet"], index=False)
        self.results.to_csv(paths["csv"], index=False)
        self.failures.to_csv(paths["failures"], index=False)
        paths["summary"].write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        if len(self.params) == 2 and len(self.results) and self.metric in self.results:
            paths["heatmap"] = out / "heatmap.png"
            figure = self.heatmap()
            figure.savefig(paths["heatmap"], dpi=110, bbox_inches="tight")
        return paths

    def _repr_html_(self) -> str:
        head = (
            f"<p>{self.runs} runs ({len(self.failures)} failed) on {self.executor};"
            f" best by {self.metric}:</p>"
        )
        return head + str(self.best().to_html(index=False))

    def __repr__(self) -> str:
        return (
            f"SweepResult(runs={self.runs}, failed={len(self.failures)},"
            f" params={list(self.params)}, executor={self.executor!r})"
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def heatmap(result: SweepResult, metric: str, ax: Any = None) -> Any:
    """Draw ``metric`` over the first parameter (rows) and the second (columns)."""
    import numpy as np

    from engine.research.plots import figure_and_axes

    if len(result.params) != 2:
        raise ConfigError(
            [
                Problem(
                    "heatmap", f"needs exactly two parameters, the sweep has {len(result.params)}"
                )
            ]
        )
    rows, cols = result.params
    table = result.results.pivot_table(index=rows, columns=cols, values=metric, aggfunc="mean")
    fig, ax = figure_and_axes(ax, figsize=(1.2 + 0.9 * len(table.columns), 1.0 + 0.6 * len(table)))
    values = table.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    cmap = "viridis_r" if result.minimize else "viridis"
    image = ax.imshow(values, cmap=cmap, aspect="auto", origin="lower")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.set_title(f"{metric} by {rows} and {cols}")
    if values.size <= 400 and finite.size:
        mid = (finite.max() + finite.min()) / 2
        for (i, j), v in np.ndenumerate(values):
            if math.isfinite(v):
                colour = "black" if (v > mid) != result.minimize else "white"
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def combinations(
    params: Sequence[ParamSpec], samples: int | None, seed: int
) -> list[dict[str, Any]]:
    """The grid, or ``samples`` random draws with ``seed``."""
    if not params:
        raise ConfigError(
            [Problem("--grid", "no parameters given (e.g. --grid strategy.fast=5..20:5)")]
        )
    return grid(params) if samples is None else random_draws(params, samples, seed)


def run_sweep(
    engine: Engine,
    params: Sequence[str] | Mapping[str, Any] | Sequence[ParamSpec],
    *,
    samples: int | None = None,
    seed: int = 0,
    executor: str | None = None,
    workers: int | None = None,
    metric: str | None = None,
    minimize: bool | None = None,
    top: int | None = None,
    output: str | Path | None = None,
    progress: SweepProgress | None = None,
    log_level: str = "WARNING",
) -> SweepResult:
    """Run a sweep of ``engine``'s config (blocking); see :meth:`Engine.sweep`."""
    specs = _specs(params)
    settings = sweep_settings(
        engine, executor=executor, workers=workers, metric=metric, minimize=minimize, top=top
    )
    combos = combinations(specs, samples, seed)
    check_paths(engine, specs, combos[0])
    tasks = make_tasks(engine, combos)
    with Ledger(Path(output) if output is not None else None) as ledger:
        done = execute(engine, tasks, settings, ledger, progress=progress, log_level=log_level)
    names = tuple(p.path for p in specs)
    results, failures = outcome_tables(done.outcomes, names)
    result = SweepResult(
        params=names,
        results=results,
        failures=failures,
        metric=settings.metric,
        minimize=settings.minimize,
        top=settings.top,
        executor=done.executor,
        workers=done.workers,
        computed=done.computed,
        resumed=done.resumed,
        wall_seconds=done.wall_seconds,
        grid=samples is None,
        tracebacks={o.run: o.traceback for o in done.outcomes if not o.ok},
    )
    if output is not None:
        result.write(output)
    return result


def _specs(params: Sequence[str] | Mapping[str, Any] | Sequence[ParamSpec]) -> list[ParamSpec]:
    if isinstance(params, Mapping):
        return parse_params(params)
    items = list(params)
    if items and all(isinstance(p, ParamSpec) for p in items):
        return [p for p in items if isinstance(p, ParamSpec)]
    return parse_params([str(p) for p in items])
