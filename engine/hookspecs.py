"""Hook specifications: the whole contract between the core and its plugins.

A plugin is a module or object with functions marked ``@engine.hookimpl`` whose
names match the specs below. Record hooks return a list of records and take no
arguments; the core calls each plugin's implementation separately (so one
failing plugin cannot hide another's records), stamps provenance, validates and
orders the records. Lifecycle hooks receive the engine and may be ``async``.

pluggy runs at configuration and lifecycle time only: the per-event hot path
calls the plain callables compiled from records.

``docs/hooks.md`` is generated from these docstrings (``python -m engine.docs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from engine.records import (
        AlertSink,
        Analyzer,
        Broker,
        CliCommand,
        ConfigSection,
        Coordinator,
        Executor,
        Exporter,
        Feed,
        Filter,
        Guard,
        HealthReport,
        Journal,
        MetricsStore,
        ReconciliationPolicy,
        RuntimeGuard,
        Strategy,
        ValidationRule,
    )

PROJECT = "engine"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def engine_strategies() -> list[Strategy]:
    """Strategies this plugin provides.

    Example::

        from engine import Strategy, hookimpl

        class BuyOnce:
            def __init__(self, config):
                self.done = False
            def on_start(self, ctx):
                self.ctx = ctx
            def on_bar(self, bar):
                if not self.done:
                    self.ctx.buy(1)
                    self.done = True

        @hookimpl
        def engine_strategies():
            return [Strategy(name="buy_once", factory=BuyOnce)]

    Config: ``[[strategies]] type = "buy_once" instrument = "BTC-USD"``.
    """
    raise NotImplementedError


@hookspec
def engine_feeds() -> list[Feed]:
    """Market-data feeds this plugin provides.

    Example::

        from engine import BarSeries, Feed, hookimpl

        class Constant:
            def __init__(self, config):
                pass
            def load(self, instrument, ctx):
                return BarSeries.from_prices(instrument, [100.0] * 50)

        @hookimpl
        def engine_feeds():
            return [Feed(name="constant", factory=Constant)]

    Config: ``[feed] type = "constant"``.
    """
    raise NotImplementedError


@hookspec
def engine_brokers() -> list[Broker]:
    """Brokers (execution venues) this plugin provides.

    Example::

        from engine import Broker, hookimpl

        @hookimpl
        def engine_brokers():
            return [Broker(name="myvenue", factory=MyVenue, config_type=MyVenueConfig,
                           live=True, deduplicates=True)]

    ``MyVenue(config)`` implements ``bind(sink)``, ``submit(order)`` and
    ``cancel(client_id)``; it reports back through ``sink.order_accepted(id)``,
    ``sink.order_rejected(id, reason)``, ``sink.order_filled(id, qty, price, fee)``,
    ``sink.order_canceled(id)`` and ``sink.order_expired(id)``. A simulated venue
    also has ``on_bar(instrument, bar)`` and may expose ``resting(symbol)`` (a list
    that is empty when nothing rests) so the kernel skips it on quiet bars.
    """
    raise NotImplementedError


@hookspec
def engine_filters() -> list[Filter]:
    """Market-condition filters (pipeline stage 1: may the strategy trade now?).

    Example::

        from datetime import datetime, timezone
        from engine import Deny, Filter, hookimpl

        def no_mondays(config):
            def check(intent, ctx):
                day = datetime.fromtimestamp(ctx.now / 1e9, timezone.utc).weekday()
                if day == 0:
                    return Deny("monday", "no trading on Mondays")
                return None
            return check

        @hookimpl
        def engine_filters():
            return [Filter(name="no_mondays", factory=no_mondays)]
    """
    raise NotImplementedError


@hookspec
def engine_validation_rules() -> list[ValidationRule]:
    """Validation rules (pipeline stage 2: is the intent well formed?).

    Example::

        from engine import Deny, ValidationRule, hookimpl

        def positive(config):
            def check(intent, ctx):
                return None if intent.quantity > 0 else Deny("non_positive", "quantity <= 0")
            return check

        @hookimpl
        def engine_validation_rules():
            return [ValidationRule(name="positive_quantity", factory=positive, priority=-10)]
    """
    raise NotImplementedError


@hookspec
def engine_guards() -> list[Guard]:
    """Risk guards (pipeline stage 3: allow, deny, or reduce).

    Example::

        from decimal import Decimal
        import attrs
        from engine import Deny, Guard, Reduce, hookimpl

        @attrs.frozen
        class MaxQtyConfig:
            limit: Decimal

        def max_qty(config):
            def check(intent, ctx):
                if intent.quantity > config.limit:
                    return Reduce(config.limit, "too_big", f"capped at {config.limit}")
                return None
            return check

        @hookimpl
        def engine_guards():
            return [Guard(name="max_qty", factory=max_qty, config_type=MaxQtyConfig)]

    Config: ``[[guards]] type = "max_qty" limit = "5"``.
    """
    raise NotImplementedError


@hookspec
def engine_runtime_guards() -> list[RuntimeGuard]:
    """Runtime guards, evaluated on a cadence, that move the trading state.

    Example::

        from engine import RuntimeDecision, RuntimeGuard, hookimpl

        def drawdown(config):
            def evaluate(ctx):
                if ctx.drawdown() > 0.1:
                    return RuntimeDecision("halted", "drawdown", "10% below the peak")
                return None
            return evaluate

        @hookimpl
        def engine_runtime_guards():
            return [RuntimeGuard(name="drawdown_10", factory=drawdown, cadence_seconds=60)]

    Config: ``[[runtime_guards]] type = "drawdown_10" cadence = "1m" flatten = true``.
    """
    raise NotImplementedError


@hookspec
def engine_alert_sinks() -> list[AlertSink]:
    """Where alerts go (trading-state changes, liquidations): log, webhook, chat...

    Example::

        from engine import AlertSink, hookimpl

        def to_stdout(config):
            def deliver(alert):
                print(alert.severity.value, alert.title, alert.message)
            return deliver

        @hookimpl
        def engine_alert_sinks():
            return [AlertSink(name="stdout", factory=to_stdout)]

    Config: ``[[alert_sinks]] type = "stdout"`` (default: the built-in ``log`` sink).
    """
    raise NotImplementedError


@hookspec
def engine_metrics_stores() -> list[MetricsStore]:
    """Metrics stores (where metric records are kept).

    Example::

        from engine import MetricsStore, hookimpl

        @hookimpl
        def engine_metrics_stores():
            return [MetricsStore(name="memory", factory=MemoryStore)]
    """
    raise NotImplementedError


@hookspec
def engine_exporters() -> list[Exporter]:
    """Metrics exporters (log, Prometheus ``/metrics``, JSON...).

    Example::

        from engine import Exporter, hookimpl

        @hookimpl
        def engine_exporters():
            return [Exporter(name="log", factory=LogExporter)]
    """
    raise NotImplementedError


@hookspec
def engine_coordinators() -> list[Coordinator]:
    """Long-lived services started in order before trading and stopped in reverse.

    Example::

        from engine import Coordinator, hookimpl

        class Heartbeat:
            def __init__(self, config):
                pass
            async def start(self, engine):
                ...
            async def stop(self):
                ...

        @hookimpl
        def engine_coordinators():
            return [Coordinator(name="heartbeat", factory=Heartbeat, after=("telemetry",))]
    """
    raise NotImplementedError


@hookspec
def engine_journals() -> list[Journal]:
    """Event journal stores (the ``[journal]`` section picks one by ``type``).

    Example::

        from engine import Journal, hookimpl

        @hookimpl
        def engine_journals():
            return [Journal(name="mystore", factory=MyStore, config_type=MyStoreConfig)]

    ``MyStore(config)`` implements :class:`engine.journal.JournalStore`: ``append``
    entries, ``commit`` them durably, read them back in order, report damage.
    """
    raise NotImplementedError


@hookspec
def engine_reconciliation_policies() -> list[ReconciliationPolicy]:
    """Policies for what reconciliation finds after a restart (an order the venue has
    and the journal does not, a position mismatch...).

    Example::

        from engine import ReconciliationPolicy, hookimpl
        from engine.journal.reconcile import Action

        def adopt_external(finding):
            if finding.kind == "external_order":
                return Action.ADOPT
            return None  # let the next policy decide

        @hookimpl
        def engine_reconciliation_policies():
            return [ReconciliationPolicy(name="adopt_external", decide=adopt_external)]
    """
    raise NotImplementedError


@hookspec
def engine_executors() -> list[Executor]:
    """Executors that run a sweep's backtests (``engine sweep``, ``engine walkforward``).

    ``factory(options)`` gets the structured ``[sweep.NAME]`` table (an instance of
    ``config_type``, or ``None``) and returns an object whose ``run(job)`` yields one
    :class:`~engine.RunOutcome` per task of the :class:`~engine.SweepJob`, in any
    order, and may have ``close()``. Each task runs as ``run_task(task, payload)``
    in a worker: a full backtest with its own plugin manager, which never raises (a
    failing run comes back as an outcome with its error). Send ``job.payload`` (the
    sweep's plugins and bars) once per worker, not once per task. The built-ins are
    ``sequential`` and ``local`` (a process pool); ``engine-plugin-dask`` adds ``dask``.

    Example::

        from engine import Executor, hookimpl, run_task

        class InThisProcess:
            def __init__(self, options):
                pass
            def run(self, job):
                payload = job.payload.in_process()  # logging left as it is here
                for task in job.tasks:
                    yield run_task(task, payload)

        @hookimpl
        def engine_executors():
            return [Executor(name="here", factory=InThisProcess)]

    Config: ``[sweep] executor = "here"``, or ``engine sweep CONFIG --executor here``.
    """
    raise NotImplementedError


@hookspec
def engine_analyzers() -> list[Analyzer]:
    """Report statistics computed from a finished backtest.

    Example::

        from engine import Analyzer, hookimpl

        def count_fills(result):
            return {"fills": len(result.fills)}

        @hookimpl
        def engine_analyzers():
            return [Analyzer(name="fill_count", compute=count_fills)]
    """
    raise NotImplementedError


@hookspec
def engine_config_sections() -> list[ConfigSection]:
    """Top-level TOML sections this plugin owns.

    Example::

        import attrs
        from engine import ConfigSection, hookimpl

        @attrs.frozen
        class PrometheusConfig:
            host: str = "127.0.0.1"
            port: int = 9464

        @hookimpl
        def engine_config_sections():
            return [ConfigSection(name="prometheus", config_type=PrometheusConfig)]

    The structured section is available as ``engine.config.sections["prometheus"]``.
    """
    raise NotImplementedError


@hookspec
def engine_cli_commands() -> list[CliCommand]:
    """Extra ``engine`` sub-commands (click commands).

    Example::

        import click
        from engine import CliCommand, hookimpl

        @click.command()
        def hello():
            click.echo("hello")

        @hookimpl
        def engine_cli_commands():
            return [CliCommand(name="hello", command=hello)]
    """
    raise NotImplementedError


@hookspec
def engine_startup(engine: Any) -> None:
    """Called once before the first event of a run (backtest or paper); may be async.

    Example::

        from engine import hookimpl

        @hookimpl
        async def engine_startup(engine):
            engine.log.info("starting {}", engine.config.engine.name)
    """


@hookspec
def engine_shutdown(engine: Any) -> None:
    """Called once after the last event of a run, also after an error; may be async.

    Example::

        from engine import hookimpl

        @hookimpl
        def engine_shutdown(engine):
            print("done")
    """


@hookspec
def engine_health(engine: Any) -> list[HealthReport]:
    """Health of this plugin's components; may be async.

    Example::

        from engine import HealthReport, HealthStatus, hookimpl

        @hookimpl
        def engine_health(engine):
            return [HealthReport(component="myfeed", status=HealthStatus.OK)]
    """
    raise NotImplementedError


#: Record hooks: hook name -> record type each returned item must be.
RECORD_HOOKS: dict[str, str] = {
    "engine_strategies": "Strategy",
    "engine_feeds": "Feed",
    "engine_brokers": "Broker",
    "engine_filters": "Filter",
    "engine_validation_rules": "ValidationRule",
    "engine_guards": "Guard",
    "engine_runtime_guards": "RuntimeGuard",
    "engine_alert_sinks": "AlertSink",
    "engine_metrics_stores": "MetricsStore",
    "engine_exporters": "Exporter",
    "engine_coordinators": "Coordinator",
    "engine_executors": "Executor",
    "engine_journals": "Journal",
    "engine_reconciliation_policies": "ReconciliationPolicy",
    "engine_analyzers": "Analyzer",
    "engine_config_sections": "ConfigSection",
    "engine_cli_commands": "CliCommand",
}
