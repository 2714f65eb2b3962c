"""The ``engine`` command line.

Commands: ``backtest``, ``run --paper``, ``plugins``, ``hooks``, ``config check``,
plus any command a plugin adds through ``engine_cli_commands``. A user mistake
(bad config, bad data, a plugin that does not load in strict mode) prints one
``path: problem`` line per problem and exits with code 2 (3 for plugin errors),
never a traceback. Heavy imports happen inside commands so ``engine --help``
stays fast.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.plugins import PluginManager, PluginSettings
    from engine.results import RunResult

F = TypeVar("F", bound=Callable[..., Any])


def _settings(ctx: click.Context) -> PluginSettings:
    from engine.plugins import PluginSettings

    opts = ctx.find_root().params
    return PluginSettings.from_env(
        strict=True if opts.get("strict_plugins") else None,
        disable=frozenset(opts.get("disable_plugin") or ()),
        builtin_only=True if opts.get("no_plugins") else None,
    )


def _manager(ctx: click.Context) -> PluginManager:
    from engine.plugins import PluginManager

    obj = ctx.find_root().ensure_object(dict)
    if "plugins" not in obj:
        obj["plugins"] = PluginManager(_settings(ctx))
    manager: PluginManager = obj["plugins"]
    return manager


def _engine(ctx: click.Context, config: Path) -> Engine:
    """The engine of CONFIG, with the config's [logging] applied (flags win)."""
    from engine.engine import Engine
    from engine.telemetry import configure_logging, secrets_of

    eng = Engine.from_config(config, plugins=_manager(ctx))
    section = eng.config.logging  # resolving reports every config problem
    opts = ctx.find_root().params
    cfg = eng.config
    options = [s.options for specs in cfg.components.values() for s in specs]
    configure_logging(
        opts.get("log_level") or section.level,
        json=section.json if opts.get("log_json") is None else bool(opts["log_json"]),
        file=section.file,
        rotation=section.rotation,
        secrets=secrets_of([options, dict(cfg.sections)]),
    )
    return eng


def user_errors(func: F) -> F:
    """Turn engine errors into ``path: problem`` lines and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from engine.errors import EngineError

        try:
            return func(*args, **kwargs)
        except EngineError as exc:
            problems = getattr(exc, "problems", None)
            lines = [str(p) for p in problems] if problems else [str(exc)]
            for line in lines:
                click.secho(line, fg="red", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


class EngineGroup(click.Group):
    """Finds commands that plugins add (``engine_cli_commands``) when they are used.

    Listing them would import every installed plugin on each ``engine --help``;
    ``engine plugins`` shows which plugins provide commands instead.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        try:
            records = _manager(ctx).records("engine_cli_commands")
        except Exception as exc:  # a broken plugin must not break the CLI
            click.secho(f"plugin commands unavailable: {exc}", fg="yellow", err=True)
            return None
        record = records.get(cmd_name)
        return None if record is None else record.command


@click.group(
    cls=EngineGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Plugins may add commands; `engine plugins` lists the plugins that provide"
    " them (hook cli_commands). Run one as `engine NAME`.",
)
@click.option("--strict-plugins", is_flag=True, help="Any plugin that fails to load is fatal.")
@click.option(
    "--disable-plugin", multiple=True, metavar="NAME", help="Do not load this plugin (repeatable)."
)
@click.option("--no-plugins", is_flag=True, help="Load only the built-in plugins.")
@click.option(
    "--log-level", default=None, help="Log level on stderr (default: [logging] level, or WARNING)."
)
@click.option(
    "--log-json", is_flag=True, default=None, help="Log JSON lines (default: [logging] json)."
)
@click.version_option(package_name="engine", prog_name="engine")
@click.pass_context
def main(
    ctx: click.Context,
    strict_plugins: bool,
    disable_plugin: tuple[str, ...],
    no_plugins: bool,
    log_level: str | None,
    log_json: bool | None,
) -> None:
    """A plugin-based trading engine: backtest, paper trade, inspect plugins."""
    from engine.telemetry import configure_logging

    configure_logging(log_level or "WARNING", json=bool(log_json))
    ctx.ensure_object(dict)


# -- reports -----------------------------------------------------------------------


def _report(result: RunResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.name}: {result.mode} report", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for label, value in result.report_rows():
        table.add_row(label, value)
    console = Console()
    console.print(table)
    if result.trade_records:
        recent = Table(title="last trades")
        for col in ("direction", "quantity", "entry_price", "exit_price", "pnl"):
            recent.add_column(col, justify="right")
        for t in result.trade_records[-5:]:
            recent.add_row(
                t.direction,
                f"{t.quantity:,}",
                f"{t.entry_price:,}",
                f"{t.exit_price:,}",
                f"{t.pnl.quantize(Decimal('0.01')):,}",
            )
        console.print(recent)


# -- backtest ----------------------------------------------------------------------

_html_option = click.option(
    "--html",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report (summary, equity and drawdown charts,"
    " trades) to this file; needs matplotlib (pip install 'engine[plot]').",
)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write trades.csv, fills.csv, equity.csv and summary.json here.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table."
)
@_html_option
@click.pass_context
@user_errors
def backtest(
    ctx: click.Context,
    config: Path,
    output: Path | None,
    no_progress: bool,
    as_json: bool,
    html: Path | None,
) -> None:
    """Backtest the strategies of CONFIG (a TOML file) and print the report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    eng = _engine(ctx, config)
    eng.check()
    if html is not None:
        from engine.report import require_matplotlib

        require_matplotlib()  # before the run, not after it
    if no_progress or as_json:
        result = eng.backtest_sync()
    else:
        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("backtest", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = eng.backtest_sync(progress)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, default=str))
    else:
        _report(result)
    if output is not None:
        paths = result.write(output)
        if not as_json:
            click.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    if html is not None:
        written = result.write_html(html)
        if not as_json:
            click.echo(f"wrote {written}")


# -- paper / live ------------------------------------------------------------------


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--paper", is_flag=True, help="Paper trade against the simulated broker.")
@click.option(
    "--speed", type=float, help="Clock speed (2 = twice real time). Default: [paper] speed."
)
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--max-bars", type=int, help="Stop after this many bars.")
@click.option(
    "--output", "-o", type=click.Path(file_okay=False, path_type=Path), help="Write results here."
)
@_html_option
@click.pass_context
@user_errors
def run(
    ctx: click.Context,
    config: Path,
    paper: bool,
    speed: float | None,
    duration: float | None,
    max_bars: int | None,
    output: Path | None,
    html: Path | None,
) -> None:
    """Trade CONFIG on the real clock until Ctrl-C (or --duration / --max-bars)."""
    from rich.console import Console

    from engine.errors import ConfigError, Problem

    eng = _engine(ctx, config)
    cfg = eng.check()
    if html is not None:
        from engine.report import require_matplotlib

        require_matplotlib()
    broker = cfg.component("broker")
    if not paper:
        if not broker.record.live:
            raise ConfigError(
                [
                    Problem(
                        f"{broker.path}.type",
                        f"{broker.type!r} is a simulated broker: pass --paper"
                        " or configure a live venue",
                    )
                ]
            )
        raise ConfigError([Problem("engine run", "live trading is not available yet; use --paper")])
    console = Console(stderr=True)

    async def go() -> RunResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[Any]] = set()

        def reload() -> None:  # SIGHUP: read the config again (engine.drift)
            task = loop.create_task(eng.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        try:
            with console.status("paper trading: Ctrl-C stops"):
                return await eng.run(speed=speed, duration=duration, max_bars=max_bars, stop=stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    result = asyncio.run(go())
    console.print(f"stopped after {result.bars} bars in {result.elapsed_seconds:.1f}s")
    _report(result)
    if output is not None:
        result.write(output)
    if html is not None:
        console.print(f"wrote {result.write_html(html)}")


# -- introspection -----------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Everything, by distribution: version, location, each plugin's module, hooks,"
    " the records it returns and its errors, and packages that look like plugins but"
    " declare no entry point in the group 'engine'.",
)
@click.pass_context
@user_errors
def plugins(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List plugins: name, distribution, version, hooks, status and load error."""
    import attrs
    from rich.console import Console
    from rich.table import Table

    if show_all:
        _plugins_all(_manager(ctx), as_json)
        return
    infos = _manager(ctx).infos()
    if as_json:
        click.echo(json.dumps([attrs.asdict(i) for i in infos], indent=2))
        return
    table = Table(title="plugins")
    table.add_column("name", no_wrap=True)
    for col in ("distribution", "version", "status", "hooks", "error"):
        table.add_column(col, overflow="fold")
    for i in infos:
        style = {"failed": "red", "disabled": "dim"}.get(i.status, "")
        table.add_row(
            i.name,
            i.distribution or "-",
            i.version or "-",
            i.status + (" (built-in)" if i.builtin else ""),
            ", ".join(h.removeprefix("engine_") for h in i.hooks),
            i.error or "",
            style=style,
        )
    Console().print(table)


def _plugins_all(manager: PluginManager, as_json: bool) -> None:
    import attrs

    from engine.installed import inventory

    dists = inventory(manager)
    if as_json:
        click.echo(json.dumps([attrs.asdict(d) for d in dists], indent=2))
        return
    colour = {"loaded": "green", "registered": "green", "failed": "red", "disabled": "yellow"}
    counts: dict[str, int] = {}
    for d in dists:
        where = f"editable, {d.location}" if d.editable else d.location
        notes = ", ".join(n for n in ("built-in" if d.builtin else "", where or "") if n)
        click.secho(f"{d.name} {d.version or ''}".rstrip(), bold=True, nl=False)
        click.echo(f"  ({notes})" if notes else "")
        if d.problem:
            click.secho(f"  no plugin: {d.problem}", fg="red")
        for p in d.plugins:
            counts[p.status] = counts.get(p.status, 0) + 1
            status = click.style(f"{p.status:<10}", fg=colour.get(p.status))
            click.echo(f"  {p.name:<16} {status} {p.module or ''}".rstrip())
            if p.hooks:
                click.echo(f"      {'hooks:':<18}" + ", ".join(p.hooks))
            for hook, names in p.records.items():
                label = f"{hook.removeprefix('engine_')}:"
                click.echo(f"      {label:<18}" + ", ".join(names))
            if p.error:
                click.secho(f"      {'error:':<18}{p.error}", fg="red")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    suspects = sum(1 for d in dists if d.problem)
    click.echo(
        f"{len(dists) - suspects} distribution(s) with {sum(counts.values())} plugin(s):"
        f" {summary or 'none'}" + (f"; {suspects} package(s) without a plugin" if suspects else "")
    )


# -- installing plugins ------------------------------------------------------------


def _pip_then_report(ctx: click.Context, args: tuple[str, ...]) -> None:
    from engine.installed import installed_plugins, pip, plugin_changes, require_pip

    require_pip()
    before = installed_plugins()
    code = pip(args)
    if code == 0:
        changed, removed = plugin_changes(before, installed_plugins())
        for p in changed:
            status = p["status"] + (f": {p['error']}" if p.get("error") else "")
            click.secho(
                f"engine: plugin {p['name']} ({p['distribution']} {p['version']}): {status}",
                fg="red" if p["status"] == "failed" else "green",
            )
        for p in removed:
            click.secho(f"engine: plugin {p['name']} ({p['distribution']}) removed", fg="green")
        if not changed and not removed:
            click.echo("engine: no plugin was added, changed or removed")
    sys.exit(code)


_PIP_ARGS = {"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


@main.command(context_settings=_PIP_ARGS)
@click.argument(
    "pip_args", metavar="NAME... [PIP OPTIONS]", nargs=-1, required=True, type=click.UNPROCESSED
)
@click.pass_context
@user_errors
def install(ctx: click.Context, pip_args: tuple[str, ...]) -> None:
    """Install plugin packages with pip, into the Python that runs the engine.

    NAME is anything `pip install` takes: a name, name==version, a folder, a
    wheel, -e FOLDER; other options (--upgrade, --index-url URL...) go to pip as
    they are. pip's output and exit code pass through; then each plugin the
    install added or changed is listed with its status (loaded, or failed and
    why).
    """
    _pip_then_report(ctx, ("install", *pip_args))


@main.command(context_settings=_PIP_ARGS)
@click.argument(
    "pip_args", metavar="NAME... [PIP OPTIONS]", nargs=-1, required=True, type=click.UNPROCESSED
)
@click.pass_context
@user_errors
def uninstall(ctx: click.Context, pip_args: tuple[str, ...]) -> None:
    """Remove plugin packages with pip from the Python that runs the engine.

    NAME is a distribution name (`engine plugins` shows them); -y / --yes and
    other options go to pip. pip's output and exit code pass through; then each
    plugin that went away is listed. The engine itself is not removed this way.
    """
    from engine.installed import canonical_name

    if any(canonical_name(a) == "engine" for a in pip_args if not a.startswith("-")):
        raise click.UsageError(
            "the engine does not uninstall itself; use `python -m pip uninstall engine`", ctx
        )
    _pip_then_report(ctx, ("uninstall", *pip_args))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def hooks(ctx: click.Context, as_json: bool) -> None:
    """Every hook the engine defines, with its documentation."""
    docs = _manager(ctx).hook_docs()
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    for name, doc in docs.items():
        click.secho(name, bold=True)
        click.echo("    " + doc.replace("\n", "\n    ") + "\n")


@main.command(name="reload")
@click.argument("pid", type=int)
def reload_command(pid: int) -> None:
    """Ask the `engine run` process PID to read its config again (SIGHUP).

    It validates the whole file, applies risk-limit changes (order checks, runtime
    guards, [trading]), journals them, and logs every change, including those that
    need a restart.
    """
    import os

    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        click.echo(f"error: no process {pid}", err=True)
        sys.exit(2)
    except PermissionError:
        click.echo(f"error: not allowed to signal process {pid}", err=True)
        sys.exit(2)
    click.echo(f"asked process {pid} to reload its config")


#: ``engine health`` exit codes by overall status; 3: no engine answered
HEALTH_EXIT = {"ok": 0, "degraded": 1, "failing": 2}


@main.command()
@click.option(
    "--url",
    default="http://127.0.0.1:9464/health",
    show_default=True,
    help="The running engine's /health (served by engine-plugin-prometheus).",
)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document as served.")
def health(url: str, timeout: float, as_json: bool) -> None:
    """Health of a running engine: every component's status and detail.

    Exit code 0 ok, 1 degraded, 2 failing, 3 when no engine answers at URL.
    """
    import urllib.error
    import urllib.request

    from rich.console import Console
    from rich.table import Table

    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as err:  # 503: failing, still a health document
        body = err.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        click.echo(
            f"error: no engine answers at {url} ({reason}); is a run going with"
            " engine-plugin-prometheus installed?",
            err=True,
        )
        sys.exit(3)
    try:
        document = json.loads(body)
        status = document["status"]
    except (ValueError, KeyError, TypeError):
        click.echo(f"error: {url} did not return a health document", err=True)
        sys.exit(3)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        table = Table(title=f"health: {status}")
        for col in ("component", "plugin", "status", "detail"):
            table.add_column(col, overflow="fold")
        colour = {"ok": "green", "degraded": "yellow", "failing": "red"}
        for c in document.get("components", ()):
            table.add_row(
                c["component"],
                c.get("plugin", ""),
                f"[{colour.get(c['status'], '')}]{c['status']}[/]",
                c.get("detail", ""),
            )
        if "detail" in document:
            table.caption = document["detail"]
        Console().print(table)
    sys.exit(HEALTH_EXIT.get(status, 2))


@main.group()
def config() -> None:
    """Configuration tools."""


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--show", is_flag=True, help="Print the effective configuration (secrets redacted).")
@click.pass_context
@user_errors
def config_check(ctx: click.Context, file: Path, show: bool) -> None:
    """Validate FILE; print every problem as 'path: problem' (exit 2) or OK."""
    cfg = _engine(ctx, file).check()
    if show:
        click.echo(json.dumps(cfg.dump(), indent=2, default=str))
    strategies = ", ".join(s.type for s in cfg.components["strategies"])
    click.echo(f"{file}: OK ({len(cfg.instruments)} instrument(s); strategies: {strategies})")


# -- research: sweeps and walk-forward -------------------------------------------------


def _research_options(func: F) -> F:
    """Options ``engine sweep`` and ``engine walkforward`` share."""
    options = [
        click.option(
            "--grid",
            "-g",
            "grid",
            multiple=True,
            metavar="PATH=VALUES",
            help="A parameter and its values (repeatable): strategy.fast=5..20:5 (an"
            " inclusive range with a step), strategy.slow=20,30,50 (a list) or one value."
            " PATH is SECTION.KEY, SECTION[N].KEY or SECTION.NAME.KEY (docs/sweeps.md).",
        ),
        click.option(
            "--random",
            "samples",
            type=int,
            help="Draw this many random combinations instead of the whole grid"
            " (a range without a step is drawn uniformly).",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random."),
        click.option(
            "--executor",
            "-e",
            help="sequential, local (a process pool: the default with more than one core)"
            " or a plugin's (dask). Default: [sweep] executor.",
        ),
        click.option(
            "--workers",
            "-w",
            type=int,
            help="Worker processes (default: [sweep] workers, else one per core).",
        ),
        click.option(
            "--metric",
            "-m",
            help="The statistic that ranks runs (default: [sweep] metric, sharpe).",
        ),
        click.option(
            "--minimize", is_flag=True, default=None, help="Lower values of the metric are better."
        ),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the summary as JSON instead of tables."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_with_progress(label: str, show: bool, work: Callable[[Any], Any]) -> Any:
    """Run ``work(progress)`` under a rich progress bar of runs (or none)."""
    if not show:
        return work(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int, failed: int) -> None:
            text = f"{label} ({failed} failed)" if failed else label
            bar.update(task, completed=done, total=total, description=text)

        return work(progress)


def _worker_log_level(ctx: click.Context, eng: Engine) -> str:
    return str(ctx.find_root().params.get("log_level") or eng.config.logging.level)


def _failures_table(failures: Any, params: tuple[str, ...]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(failures)} failed run(s)")
    for col in ("run", *params, "error"):
        table.add_column(col, overflow="fold")
    for row in failures.to_dict("records"):
        table.add_row(*(str(row.get(c)) for c in ("run", *params, "error")))
    return table


def _short(columns: list[str]) -> dict[str, str]:
    """Column headers: a parameter path by its last key when that is unambiguous."""
    last = [c.rsplit(".", 1)[-1] for c in columns]
    return {c: (k if last.count(k) == 1 else c) for c, k in zip(columns, last, strict=True)}


def _frame_table(title: str, frame: Any, columns: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    headers = _short(columns)
    for col in columns:
        table.add_column(
            headers[col].replace("_", " "),
            justify="right",
            min_width=len(_cell(frame[col].iloc[0])) if len(frame) else None,
        )
    for row in frame[columns].to_dict("records"):
        table.add_row(*(_cell(row[c]) for c in columns))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:,.3g}"
    return str(value)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_research_options
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record each run here as it finishes (running the same sweep again skips"
    " them) and write results.parquet, results.csv, failures.csv, summary.json and,"
    " for two parameters, heatmap.png.",
)
@click.option("--top", type=int, help="Rows of the best-runs table (default: [sweep] top, 10).")
@click.pass_context
@user_errors
def sweep(
    ctx: click.Context,
    config: Path,
    grid: tuple[str, ...],
    samples: int | None,
    seed: int,
    executor: str | None,
    workers: int | None,
    metric: str | None,
    minimize: bool | None,
    no_progress: bool,
    as_json: bool,
    output: Path | None,
    top: int | None,
) -> None:
    """Backtest CONFIG once per combination of the --grid parameters (or --random
    draws) and print the best runs.

    Each run is a full backtest with its own plugins, on the chosen executor; a run
    that fails is listed with its parameters and the sweep goes on. The table has
    one row per run, sorted by run number, the same on every executor.
    """
    from rich.console import Console

    from engine.research.sweep import run_sweep

    eng = _engine(ctx, config)
    eng.check()

    def work(progress: Any) -> Any:
        return run_sweep(
            eng,
            list(grid),
            samples=samples,
            seed=seed,
            executor=executor,
            workers=workers,
            metric=metric,
            minimize=minimize,
            top=top,
            output=output,
            progress=progress,
            log_level=_worker_log_level(ctx, eng),
        )

    result = _run_with_progress("sweep", not (no_progress or as_json), work)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, default=str))
    else:
        console = Console()
        if len(result.results):
            best = result.best()
            stats = [result.metric] + [
                c
                for c in ("total_return", "sharpe", "max_drawdown", "trades")
                if c in best.columns and c != result.metric
            ]
            order = "lowest" if result.minimize else "highest"
            title = f"best {len(best)} of {result.runs} runs by {result.metric} ({order} first)"
            console.print(_frame_table(title, best, ["run", *result.params, *stats]))
        if len(result.failures):
            console.print(_failures_table(result.failures, result.params))
        where = f", {result.resumed} resumed from {output}" if result.resumed else ""
        console.print(
            f"{result.runs} runs: {len(result.results)} succeeded, {len(result.failures)} failed;"
            f" computed {result.computed}{where}; {result.wall_seconds:.1f}s on {result.executor}"
        )
        if output is not None:
            console.print(f"wrote {output}")
    if not len(result.results):
        click.secho("every run failed", fg="red", err=True)
        sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_research_options
@click.option(
    "--windows", "n_windows", type=int, default=5, show_default=True, help="Out-of-sample windows."
)
@click.option(
    "--in-sample",
    type=float,
    default=4.0,
    show_default=True,
    help="In-sample length, as a multiple of the out-of-sample length (rolling windows).",
)
@click.option("--anchored", is_flag=True, help="Every in-sample window starts at the first bar.")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record runs here (running again resumes) and write windows.csv, in_sample.parquet,"
    " oos_equity.csv, summary.json and walkforward.png.",
)
@click.pass_context
@user_errors
def walkforward(
    ctx: click.Context,
    config: Path,
    grid: tuple[str, ...],
    samples: int | None,
    seed: int,
    executor: str | None,
    workers: int | None,
    metric: str | None,
    minimize: bool | None,
    no_progress: bool,
    as_json: bool,
    n_windows: int,
    in_sample: float,
    anchored: bool,
    output: Path | None,
) -> None:
    """Walk-forward optimisation of CONFIG: for each window, the best --grid
    combination on the in-sample bars runs on the out-of-sample bars that follow.

    Prints the chosen parameters and out-of-sample results per window and the
    stitched out-of-sample return.
    """
    from rich.console import Console

    from engine.research.walkforward import run_walk_forward

    eng = _engine(ctx, config)
    eng.check()

    def work(progress: Any) -> Any:
        return run_walk_forward(
            eng,
            list(grid),
            n_windows=n_windows,
            in_sample=in_sample,
            anchored=anchored,
            samples=samples,
            seed=seed,
            executor=executor,
            workers=workers,
            metric=metric,
            minimize=minimize,
            output=output,
            progress=progress,
            log_level=_worker_log_level(ctx, eng),
        )

    result = _run_with_progress("walk-forward", not (no_progress or as_json), work)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, default=str))
        return
    frame = result.windows.copy()
    frame["oos_start"] = frame["oos_start"].map(lambda t: t.strftime("%Y-%m-%d"))
    columns = ["window", "oos_start", *result.params, f"is_{result.metric}"]
    columns += [c for c in ("oos_total_return", "oos_sharpe", "oos_trades") if c in frame]
    console = Console()
    console.print(_frame_table("walk-forward windows", frame, columns))
    for row in result.windows.to_dict("records"):
        if row.get("error"):
            console.print(f"[red]window {row['window']}: {row['error']}[/]")
    console.print(
        f"out-of-sample: total return {result.total_return:+.2%}, max drawdown"
        f" {result.max_drawdown:.2%}; {result.computed} runs computed, {result.resumed}"
        f" resumed; {result.wall_seconds:.1f}s on {result.executor}"
    )
    if output is not None:
        console.print(f"wrote {output}")


if __name__ == "__main__":  # pragma: no cover
    main()
