"""Walk-forward optimisation: choose parameters on in-sample bars, judge them on the
out-of-sample bars that follow, window after window.

The bar timeline (every instrument's timestamps, merged) is cut into ``n`` out-of-
sample (OOS) windows of equal length at its end, each preceded by its in-sample (IS)
window: ``in_sample`` times the OOS length (rolling), or every bar from the start
(anchored)::

    rolling   [ IS 0 ][OOS 0]
                     [ IS 1 ][OOS 1]
                            [ IS 2 ][OOS 2]
    anchored  [ IS 0 ][OOS 0]
              [    IS 1     ][OOS 1]
              [       IS 2         ][OOS 2]

For each window the whole grid runs on the IS bars (all windows' IS runs form one
batch, so they spread over the workers together); the best run by the metric
(ties: the earlier run) gives the window's parameters, which then run once on the
OOS bars. Each OOS run starts flat with the initial cash and its indicators start
from nothing at the window's first bar; the stitched OOS equity compounds the
windows' returns: window k's curve is scaled so it starts where window k-1 ended.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from engine.errors import ConfigError, Problem
from engine.research.ledger import Ledger
from engine.research.params import ParamSpec, apply_params
from engine.research.settings import sweep_settings
from engine.research.sweep import (
    SweepProgress,
    _specs,
    base_config,
    check_paths,
    combinations,
    execute,
    outcome_tables,
)
from engine.research.tasks import RunOutcome, SweepTask, data_key, finite_or_none

if TYPE_CHECKING:
    import pandas as pd

    from engine.engine import Engine

__all__ = ["WalkForwardResult", "Window", "run_walk_forward", "windows"]


@attrs.frozen
class Window:
    """One window: in-sample ``[is_start, is_stop)`` and out-of-sample
    ``[oos_start, oos_stop)``, as ns timestamps (stops exclusive)."""

    index: int
    is_start: int
    is_stop: int
    oos_start: int
    oos_stop: int


def windows(
    timeline: npt.NDArray[np.int64], n: int, in_sample: float = 4.0, anchored: bool = False
) -> list[Window]:
    """Cut ``timeline`` (sorted bar timestamps) into ``n`` walk-forward windows."""
    if n < 1:
        raise ConfigError([Problem("--windows", f"must be >= 1, got {n}")])
    if not in_sample > 0:
        raise ConfigError([Problem("--in-sample", f"must be > 0, got {in_sample}")])
    bars = len(timeline)
    unit = bars / (in_sample + n)
    is_bars = round(unit * in_sample)
    if round(unit) < 2 or is_bars < 2:
        raise ConfigError(
            [
                Problem(
                    "--windows",
                    f"{bars} bars are too few for {n} windows with in-sample {in_sample}x"
                    " the out-of-sample length",
                )
            ]
        )
    cuts = [round(unit * (in_sample + k)) for k in range(n + 1)]
    cuts[-1] = bars

    def at(i: int) -> int:
        return int(timeline[i]) if i < bars else int(timeline[-1]) + 1

    out = []
    for k in range(n):
        start = 0 if anchored else cuts[k] - is_bars
        out.append(Window(k, at(start), at(cuts[k]), at(cuts[k]), at(cuts[k + 1])))
    return out


def _better(a: float, b: float, minimize: bool) -> bool:
    if math.isnan(b):
        return not math.isnan(a)
    if math.isnan(a):
        return False
    return a < b if minimize else a > b


def choose(outcomes: Sequence[RunOutcome], metric: str, minimize: bool) -> RunOutcome | None:
    """The best successful outcome by ``metric`` (NaN last; ties: the earlier run)."""
    best: RunOutcome | None = None
    for o in sorted(outcomes, key=lambda o: o.run):
        if not o.ok or o.row is None:
            continue
        value = o.row.get(metric)
        if value is None:
            raise ConfigError(
                [Problem("metric", f"unknown metric {metric!r}; runs report: {', '.join(o.row)}")]
            )
        if best is None or _better(float(value), float(best.row[metric]), minimize):  # type: ignore[index]
            best = o
    return best


@attrs.define
class WalkForwardResult:
    """What a walk-forward produced.

    ``windows``: one row per window (its IS and OOS spans, the chosen parameters,
    the IS metric, OOS statistics, or ``error``). ``in_sample``: every IS run (a
    sweep table with a ``window`` column). ``oos_equity``: the stitched OOS equity,
    indexed by UTC timestamp, with the window of each point.
    """

    params: tuple[str, ...]
    windows: pd.DataFrame
    in_sample: pd.DataFrame
    failures: pd.DataFrame
    oos_equity: pd.DataFrame
    metric: str
    minimize: bool
    initial_cash: float
    anchored: bool
    executor: str
    computed: int
    resumed: int
    wall_seconds: float
    bars: int

    @property
    def total_return(self) -> float:
        """Return of the stitched OOS equity over all windows."""
        if not len(self.oos_equity):
            return math.nan
        return float(self.oos_equity["equity"].iloc[-1]) / self.initial_cash - 1.0

    @property
    def max_drawdown(self) -> float:
        """Largest drop of the stitched OOS equity from its running peak (<= 0)."""
        eq = self.oos_equity["equity"].to_numpy(dtype=float)
        if not len(eq):
            return math.nan
        return float((eq / np.maximum.accumulate(eq) - 1.0).min())

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts and the windows."""
        rows = []
        for row in self.windows.to_dict("records"):
            rows.append({k: finite_or_none(_plain(v)) for k, v in row.items()})
        return {
            "windows": rows,
            "params": list(self.params),
            "metric": self.metric,
            "minimize": self.minimize,
            "anchored": self.anchored,
            "bars": self.bars,
            "oos_total_return": finite_or_none(self.total_return),
            "oos_max_drawdown": finite_or_none(self.max_drawdown),
            "in_sample_runs": len(self.in_sample) + len(self.failures),
            "failed_runs": len(self.failures),
            "computed": self.computed,
            "resumed": self.resumed,
            "executor": self.executor,
            "wall_seconds": round(self.wall_seconds, 3),
        }

    def plot(self, ax: Any = None) -> Any:
        """The stitched OOS equity, windows shaded and labelled with their parameters,
        over each window's OOS return; returns the figure."""
        from engine.research.plots import new_figure

        if ax is None:
            fig = new_figure((11, 6))
            ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        else:
            fig, ax2 = ax.figure, None
        eq = self.oos_equity
        ax.plot(eq.index, eq["equity"], color="tab:blue", linewidth=1)
        ax.axhline(self.initial_cash, color="grey", linewidth=0.6, linestyle=":")
        ax.set_title(
            f"walk-forward ({'anchored' if self.anchored else 'rolling'}, {len(self.windows)}"
            f" windows, by {self.metric}): out-of-sample equity, total return"
            f" {self.total_return:+.2%}"
        )
        ax.set_ylabel("equity")
        for k, row in enumerate(self.windows.to_dict("records")):
            start, stop = row["oos_start"], row["oos_end"]
            ax.axvspan(start, stop, color="tab:orange" if k % 2 else "tab:green", alpha=0.08)
            label = "\n".join(f"{p.split('.')[-1]}={row.get(p)}" for p in self.params)
            ax.annotate(
                f"W{k}\n{label}" if not row.get("error") else f"W{k}\nfailed",
                xy=(start, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                va="top",
                fontsize=8,
            )
        if ax2 is not None:
            mids, rets = [], []
            for row in self.windows.to_dict("records"):
                mids.append(row["oos_start"] + (row["oos_end"] - row["oos_start"]) / 2)
                rets.append(row.get("oos_total_return", math.nan))
            widths = [
                (r["oos_end"] - r["oos_start"]) * 0.9 for r in self.windows.to_dict("records")
            ]
            colours = ["tab:green" if (r or 0) >= 0 else "tab:red" for r in rets]
            ax2.bar(mids, rets, width=widths, color=colours)
            ax2.axhline(0, color="grey", linewidth=0.6)
            ax2.set_ylabel("OOS return")
        return fig

    def write(self, directory: str | Path) -> dict[str, Path]:
        """``windows.csv``, ``in_sample.parquet``/``.csv``, ``failures.csv``,
        ``oos_equity.csv``, ``summary.json`` and ``walkforward.png``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "windows": out / "windows.csv",
            "in_sample": out / "in_sample.parquet",
            "in_sample_csv": out / "in_sample.csv",
            "failures": out / "failures.csv",
            "oos_equity": out / "oos_equity.csv",
            "summary": out / "summary.json",
            "plot": out / "walkforward.png",
        }
        self.windows.to_csv(paths["windows"], index=False)
        self.in_sample.to_parquet(paths["in_sample"], index=False)
        self.in_sample.to_csv(paths["in_sample_csv"], index=False)
        self.failures.to_csv(paths["failures"], index=False)
        self.oos_equity.to_csv(paths["oos_equity"])
        paths["summary"].write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        self.plot().savefig(paths["plot"], dpi=110)
        return paths

    def _repr_html_(self) -> str:
        return (
            f"<p>walk-forward: {len(self.windows)} windows, OOS total return"
            f" {self.total_return:+.2%}</p>" + str(self.windows.to_html(index=False))
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _timeline(data: Mapping[str, Any]) -> npt.NDArray[np.int64]:
    parts = [s.ts for s in data.values() if len(s)]
    if not parts:
        raise ConfigError([Problem("config.feed", "the feed returned no bars")])
    return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))


def run_walk_forward(
    engine: Engine,
    params: Sequence[str] | Mapping[str, Any] | Sequence[ParamSpec],
    *,
    n_windows: int = 5,
    in_sample: float = 4.0,
    anchored: bool = False,
    samples: int | None = None,
    seed: int = 0,
    executor: str | None = None,
    workers: int | None = None,
    metric: str | None = None,
    minimize: bool | None = None,
    output: str | Path | None = None,
    progress: SweepProgress | None = None,
    log_level: str = "WARNING",
) -> WalkForwardResult:
    """Run a walk-forward of ``engine``'s config (blocking); see :meth:`Engine.walk_forward`."""
    import pandas as pd

    from engine.aio import run_sync

    specs = _specs(params)
    settings = sweep_settings(
        engine, executor=executor, workers=workers, metric=metric, minimize=minimize
    )
    combos = combinations(specs, samples, seed)
    check_paths(engine, specs, combos[0])
    base = base_config(engine)
    base_dir = str(engine.config.base_dir)
    keys = {data_key(apply_params(base, c), base_dir) for c in combos}
    if len(keys) != 1:
        raise ConfigError(
            [
                Problem(
                    "--grid",
                    "a walk-forward cuts one history into windows: the parameters may not"
                    " change the feed, the instruments or the seed",
                )
            ]
        )
    data = run_sync(engine.load_data)
    timeline = _timeline(data)
    cuts = windows(timeline, n_windows, in_sample, anchored)
    names = tuple(p.path for p in specs)
    tasks: list[SweepTask] = []
    for w in cuts:
        for combo in combos:
            applied = apply_params(base, combo)
            tasks.append(_task(len(tasks), combo, applied, base_dir, (w.is_start, w.is_stop)))
    total = len(tasks) + len(cuts)

    def stage_progress(offset: int) -> SweepProgress | None:
        if progress is None:
            return None
        return lambda done, _total, failed: progress(offset + done, total, failed)

    with Ledger(Path(output) if output is not None else None) as ledger:
        shared = {next(iter(keys)): data}
        first = execute(
            engine,
            tasks,
            settings,
            ledger,
            progress=stage_progress(0),
            log_level=log_level,
            data=shared,
        )
        per_window = len(combos)
        chosen: list[RunOutcome | None] = []
        oos: list[SweepTask] = []
        for w in cuts:
            batch = first.outcomes[w.index * per_window : (w.index + 1) * per_window]
            best = choose(batch, settings.metric, settings.minimize)
            chosen.append(best)
            if best is not None:
                combo = dict(best.params)
                applied = apply_params(base, combo)
                oos.append(
                    _task(
                        len(tasks) + w.index,
                        combo,
                        applied,
                        base_dir,
                        (w.oos_start, w.oos_stop),
                        keep_equity=True,
                    )
                )
        second = execute(
            engine,
            oos,
            settings,
            ledger,
            progress=stage_progress(len(tasks)),
            log_level=log_level,
            data=shared,
        )
    by_window = {t.run - len(tasks): o for t, o in zip(oos, second.outcomes, strict=True)}
    initial = float(engine.config.engine.initial_cash)
    rows, pieces = [], []
    capital = initial
    for w, best in zip(cuts, chosen, strict=True):
        row: dict[str, Any] = {
            "window": w.index,
            "is_start": pd.Timestamp(w.is_start, unit="ns", tz="UTC"),
            "is_end": pd.Timestamp(w.is_stop, unit="ns", tz="UTC"),
            "oos_start": pd.Timestamp(w.oos_start, unit="ns", tz="UTC"),
            "oos_end": pd.Timestamp(w.oos_stop, unit="ns", tz="UTC"),
        }
        row |= {p: (best.params.get(p) if best is not None else None) for p in names}
        row[f"is_{settings.metric}"] = (
            best.row.get(settings.metric) if best is not None and best.row is not None else None
        )
        outcome = by_window.get(w.index)
        if best is None:
            row["error"] = "every in-sample run failed"
        elif outcome is None or not outcome.ok or outcome.row is None or outcome.equity is None:
            row["error"] = outcome.error if outcome is not None else "no out-of-sample result"
        else:
            stats = outcome.row
            for key in ("total_return", "sharpe", "max_drawdown", "trades", "final_equity"):
                row[f"oos_{key}"] = stats.get(key)
            row["error"] = None
            ts, curve = outcome.equity
            scaled = np.asarray(curve, dtype=float) * (capital / initial)
            pieces.append(
                pd.DataFrame(
                    {"equity": scaled, "window": w.index},
                    index=pd.to_datetime(np.asarray(ts), unit="ns", utc=True),
                )
            )
            if len(scaled):
                capital = float(scaled[-1])
        rows.append(row)
    equity = (
        pd.concat(pieces)
        if pieces
        else pd.DataFrame({"equity": [], "window": []}, index=pd.DatetimeIndex([], tz="UTC"))
    )
    equity.index.name = "timestamp"
    is_table, failures = outcome_tables(
        [*first.outcomes, *second.outcomes],
        names,
        extra={
            t.run: {"window": _window_of(t, tasks, per_window), "phase": _phase(t, tasks)}
            for t in [*tasks, *oos]
        },
    )
    is_table = is_table[is_table["phase"] == "in_sample"].reset_index(drop=True)
    result = WalkForwardResult(
        params=names,
        windows=pd.DataFrame(rows),
        in_sample=is_table,
        failures=failures,
        oos_equity=equity,
        metric=settings.metric,
        minimize=settings.minimize,
        initial_cash=initial,
        anchored=anchored,
        executor=first.executor,
        computed=first.computed + second.computed,
        resumed=first.resumed + second.resumed,
        wall_seconds=first.wall_seconds + second.wall_seconds,
        bars=len(timeline),
    )
    if output is not None:
        result.write(output)
    return result


def _task(
    run: int,
    combo: Mapping[str, Any],
    applied: Mapping[str, Any],
    base_dir: str,
    window: tuple[int, int],
    keep_equity: bool = False,
) -> SweepTask:
    from engine.research.sweep import _run_id

    return SweepTask(
        run=run,
        run_id=_run_id(applied, window),
        params=dict(combo),
        config=applied,
        data_key=data_key(applied, base_dir),
        window=window,
        keep_equity=keep_equity,
    )


def _phase(task: SweepTask, in_sample: Sequence[SweepTask]) -> str:
    return "in_sample" if task.run < len(in_sample) else "out_of_sample"


def _window_of(task: SweepTask, in_sample: Sequence[SweepTask], per_window: int) -> int:
    if task.run < len(in_sample):
        return task.run // per_window
    return task.run - len(in_sample)
