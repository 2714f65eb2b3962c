"""The :class:`Engine`: one plugin manager, one config, and runs built from them."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from engine._feedcalls import feed_failed, not_bars
from engine.aio import maybe_await, run_sync
from engine.config import (
    COMPONENT_SECTIONS,
    ComponentSpec,
    EngineConfig,
    RawConfig,
    load_raw,
    parse_interval,
    resolve,
)
from engine.data import BarSeries, active_rows
from engine.drift import RISK_SECTIONS, Reload, diff
from engine.errors import ConfigError, EngineError, JournalError, PluginError, Problem
from engine.execution import GuardedVenue, is_async_broker
from engine.feeds import FeedContext
from engine.health import gather_health
from engine.journal import Entry
from engine.journal.reconcile import reconcile
from engine.journal.recorder import JournalRecorder
from engine.journal.replay import replay
from engine.kernel.catalogue import install as install_catalogue
from engine.kernel.compose import compose, scoped
from engine.kernel.core import Kernel, RuntimeCheck
from engine.kernel.gcpolicy import quiet_gc, settle
from engine.kernel.loops import backtest_chunks, paper_loop
from engine.kernel.pipeline import STAGES, CompiledCheck, OrderPipeline
from engine.kernel.tracing import install_order_tracing
from engine.kernel.trading import TradingState
from engine.metrics import Metrics, Publisher
from engine.model import Instrument, Portfolio
from engine.plugins import PluginManager, PluginSettings
from engine.records import HealthReport, Severity
from engine.resilience import (
    BreakerState,
    PolicyRegistry,
    get_registry,
    install_stamina_hooks,
    set_registry,
)
from engine.results import EquityCurve, RunResult, equity_curve
from engine.streaming import backtest_streamed

__all__ = ["Engine", "FeedContext", "Progress"]

Progress = Callable[[int, int], None]

_STAMINA_HOOKED = False

_HOOK_OF = {kind.section: kind.hook for kind in COMPONENT_SECTIONS}


@attrs.define
class _Run:
    kernel: Kernel
    feed: Any
    instruments: list[Instrument]
    strategies: list[tuple[str, Any]]
    #: (record, instance) of every coordinator, in start order
    coordinators: list[tuple[Any, Any]]
    instrument_of: dict[str, str] = attrs.Factory(dict)
    publisher: Any = None
    started: list[tuple[Any, Any]] = attrs.Factory(list)
    started_hooks: bool = False
    #: the journal store, when ``[journal]`` is configured
    journal: Any = None
    #: set when the run resumed a journal: what replaying it found
    resumed: Any = None
    #: what reconciliation with the venue found after resuming
    reconciliation: Any = None
    #: this run's resilience policies (the process-wide registry while it runs)
    registry: Any = None


class Engine:
    """A trading engine: plugins, config, and runs (backtest or paper).

    >>> from engine import Engine
    >>> eng = Engine.from_config({
    ...     "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01"}],
    ...     "feed": {"type": "synthetic", "bars": 500},
    ...     "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20}],
    ... })
    >>> result = eng.backtest_sync()
    >>> result.bars
    500
    """

    def __init__(
        self,
        config: RawConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        plugins: PluginManager | None = None,
        settings: PluginSettings | None = None,
    ) -> None:
        self.plugins = plugins if plugins is not None else PluginManager(settings)
        if config is None:
            config = {}
        self._raw = config if isinstance(config, RawConfig) else load_raw(config)
        self._config: EngineConfig | None = None
        self.log = logger.bind(engine=self._raw.source)
        #: the metrics of the current (or last) run: plugins create handles on it
        self.metrics = Metrics()
        #: ``backtest`` or ``paper`` for the current (or last) run, ``""`` before any
        self.mode = ""
        #: the run in progress (between start and stop), for health and coordinators
        self.active_run: _Run | None = None

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], **kwargs: Any
    ) -> Engine:
        """An engine from a TOML file path or a dict shaped like the TOML."""
        return cls(load_raw(source), **kwargs)

    # -- plugins and config -----------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register an ad-hoc plugin (a module, class or object with hookimpls)."""
        name = self.plugins.register(plugin, name)
        self._config = None
        return name

    @property
    def config(self) -> EngineConfig:
        """The resolved configuration; raises :class:`ConfigError` listing every problem."""
        if self._config is None:
            self._config = resolve(self._raw, self.plugins)
        return self._config

    def check(self) -> EngineConfig:
        """Resolve and validate the configuration (``engine config check``)."""
        return self.config

    # -- building a run ------------------------------------------------------------------

    async def _build(self, mode: str) -> _Run:
        cfg = self.config
        self.mode = mode
        if self.plugins.settings.strict and self.plugins.failed():
            failed = ", ".join(self.plugins.failed())
            raise PluginError(f"strict mode: plugin(s) failed to load: {failed}")
        instruments = self._instruments()
        portfolio = Portfolio(cfg.engine.initial_cash, {i.symbol: i for i in instruments})
        ids = self._strategy_ids()
        checks = await self._compile_pipeline(cfg, ids)
        runtime = await self._compile_runtime(cfg)
        stores = [(s.type, await self._make(s)) for s in cfg.components.get("metrics_stores", ())]
        exporters = [(s.type, await self._make(s)) for s in cfg.components.get("exporters", ())]
        metrics = Metrics()
        publisher = Publisher(metrics, stores, exporters, buffered=mode == "backtest")
        sinks = []
        for spec in cfg.components.get("alert_sinks", ()):
            deliver = await self._make(spec)
            self._require_sync_callable(spec, deliver, "deliver(alert)")
            sinks.append((spec.type, deliver))
        broker_spec = cfg.component("broker")
        if mode != "backtest" and broker_spec.record.live and mode == "paper":
            raise ConfigError(
                [
                    Problem(
                        f"{broker_spec.path}.type",
                        "paper trading needs a simulated broker, not a live venue",
                    )
                ]
            )
        journal_specs = cfg.components.get("journal")
        journal = await self._make(journal_specs[0]) if journal_specs else None
        broker = await self._make(broker_spec)
        global _STAMINA_HOOKED
        if not _STAMINA_HOOKED:  # once per process: stamina's hooks are global
            install_stamina_hooks()
            _STAMINA_HOOKED = True
        registry = PolicyRegistry(cfg.resilience, metrics=metrics, clock=lambda: now[0]() / 1e9)
        set_registry(registry)  # resilient("name") in plugins: this run's policies
        if mode != "backtest" and is_async_broker(broker):
            broker = GuardedVenue(
                broker,
                registry.get(broker_spec.type),
                deduplicates=broker_spec.record.deduplicates,
            )
        now: list[Callable[[], int]] = [lambda: 0]
        kernel = Kernel(
            instruments,
            portfolio,
            OrderPipeline(checks),
            broker,
            broker_spec.type,
            resume_after_ns=parse_interval(cfg.trading.resume_after),
            runtime_checks=runtime,
            alert_sinks=sinks,
            strict_transitions=os.environ.get("ENGINE_STRICT_TRANSITIONS", "") == "1",
            collect=publisher.publish if publisher else None,
            collect_every_ns=parse_interval(cfg.metrics.interval),
        )
        kernel.metrics = metrics
        now[0] = lambda: kernel.now  # breakers and rate limits run on engine time
        registry.on_breaker_change(_breaker_moves_trading(kernel, registry))
        install_catalogue(metrics, kernel)
        if cfg.logging.trace_orders:  # before strategies keep the kernel's submit
            install_order_tracing(kernel)
        self.metrics = metrics
        strategies = []
        for sid, spec in zip(ids, cfg.components["strategies"], strict=True):
            strategy = await self._make(spec)
            if not callable(getattr(strategy, "on_bar", None)):
                raise PluginError(
                    f"strategy {spec.type!r} has no on_bar(bar) method", plugin=spec.record.plugin
                )
            for name in ("on_bar", "on_fill", "on_order"):
                if inspect.iscoroutinefunction(getattr(strategy, name, None)):
                    raise PluginError(
                        f"strategy {spec.type!r}: {name} must be synchronous (events are handled"
                        " one at a time, in order); do async work in a coordinator",
                        plugin=spec.record.plugin,
                    )
            symbol = spec.instrument or instruments[0].symbol
            ctx = kernel.add_strategy(sid, symbol, strategy)
            strategies.append((sid, strategy, ctx))
        feed = await self._make(cfg.component("feed"))
        coordinators = [
            (r, await self._make_record(r)) for r in self.plugins.collect("engine_coordinators")
        ]
        for _sid, strategy, ctx in strategies:
            start = getattr(strategy, "on_start", None)
            if start is not None:
                await maybe_await(start(ctx))
        return _Run(
            kernel,
            feed,
            instruments,
            [(s, st) for s, st, _ in strategies],
            coordinators,
            {s: ctx.symbol for s, _, ctx in strategies},
            publisher=publisher,
            journal=journal,
            registry=registry,
        )

    def _instruments(self) -> list[Instrument]:
        cfg = self.config
        return [
            Instrument(
                i.symbol,
                i.tick_size,
                i.lot_size,
                i.kind,
                cfg.engine.currency,
                i.multiplier,
                initial_margin=i.initial_margin,
                maintenance_margin=i.maintenance_margin,
                funding_interval_ns=parse_interval(i.funding_interval),
                funding_rate=i.funding_rate,
            )
            for i in cfg.instruments
        ]

    async def _compile_pipeline(self, cfg: EngineConfig, ids: list[str]) -> list[CompiledCheck]:
        """The order pipeline's checks, stage by stage, in their deterministic order."""
        checks = []
        for stage, section in STAGES:
            # records in their deterministic order (priority, before/after, name);
            # combinators first; instances of one record keep the order of the config
            rank = {name: k for k, name in enumerate(self.plugins.records(_HOOK_OF[section]))}
            specs = sorted(cfg.components.get(section, ()), key=lambda sp: rank.get(sp.type, -1))
            for spec in specs:
                check = await self._compile_check(spec, set(ids))
                checks.append(CompiledCheck(stage, spec.type, spec.record.plugin, check))
        return checks

    async def _compile_runtime(self, cfg: EngineConfig) -> list[RuntimeCheck]:
        """The runtime guards."""
        runtime = []
        for spec in cfg.components.get("runtime_guards", ()):
            evaluate = await self._make(spec)
            self._require_sync_callable(spec, evaluate, "evaluate(ctx)")
            cadence = spec.core.cadence
            runtime.append(
                RuntimeCheck(
                    name=spec.type,
                    plugin=spec.record.plugin,
                    evaluate=evaluate,
                    cadence_ns=parse_interval(cadence)
                    if cadence
                    else int(spec.record.cadence_seconds * 1e9),
                    flatten=spec.core.flatten,
                )
            )
        return runtime

    def _strategy_ids(self) -> list[str]:
        """Each strategy's id: its ``id`` key, else its type (numbered when repeated)."""
        ids: list[str] = []
        for n, spec in enumerate(self.config.components["strategies"]):
            sid = spec.id or (spec.type if spec.type not in ids else f"{spec.type}-{n}")
            if sid in ids:
                raise ConfigError([Problem(f"{spec.path}.id", f"duplicate strategy id {sid!r}")])
            ids.append(sid)
        return ids

    @staticmethod
    def _require_sync_callable(spec: ComponentSpec, obj: Any, shape: str) -> None:
        if not callable(obj) or inspect.iscoroutinefunction(obj):
            raise PluginError(
                f"{spec.path}: {spec.type!r} must build a plain (synchronous) callable {shape}",
                plugin=spec.record.plugin,
            )

    async def _compile_check(self, spec: ComponentSpec, strategy_ids: set[str]) -> Any:
        """A pipeline check from its spec: a plugin's, or a combinator of children."""
        if spec.children:
            children = [(c.type, await self._compile_check(c, strategy_ids)) for c in spec.children]
            check = compose(spec.type, children)
        else:
            check = await self._make(spec)
            self._require_sync_callable(spec, check, "check(intent, ctx)")
        scope = spec.core.strategies
        if scope:
            unknown = sorted(set(scope) - strategy_ids)
            if unknown:
                raise ConfigError(
                    [
                        Problem(
                            f"{spec.path}.strategies",
                            f"unknown strategy id(s) {', '.join(unknown)};"
                            f" configured: {', '.join(sorted(strategy_ids))}",
                        )
                    ]
                )
            check = scoped(check, scope)
        return check

    async def _make(self, spec: ComponentSpec) -> Any:
        try:
            return await maybe_await(spec.record.factory(spec.options))
        except (ConfigError, PluginError):
            raise
        except Exception as exc:
            raise PluginError(
                f"{spec.path}: building {spec.type!r} failed: {type(exc).__name__}: {exc}",
                plugin=spec.record.plugin,
            ) from exc

    async def _make_record(self, record: Any) -> Any:
        section = self.config.sections.get(record.name)
        return await maybe_await(record.factory(section))

    def _open_journal(self, run: _Run, *, durable: bool) -> Any:
        """Start journaling ``run`` (a fresh journal: backtests, new paper sessions;
        or, for a paper run, resume the one found: replay it into the kernel)."""
        store = run.journal
        if store is None:
            return None
        spec = self.config.component("journal")
        if store.recovered is not None:
            logger.warning("{}", store.recovered.message)
        if store.last_seq and not durable:
            raise ConfigError(
                [
                    Problem(
                        f"{spec.path}",
                        f"the journal already holds {store.last_seq} records (an earlier run);"
                        " a backtest starts an empty journal: remove it or choose another path",
                    )
                ]
            )
        if store.last_seq:
            run.resumed = replay(store.entries(), run.kernel)
            baseline = (run.resumed.baseline or {}).get("raw")
            if baseline is not None:
                drift = [str(c) for c in diff(baseline, _json_ready(dict(self._raw.data)))]
                for line in drift:
                    logger.warning("config changed since the journal's baseline: {}", line)
                if drift:
                    store.append(
                        run.kernel.now, "config", self.config.engine.name, {"drift": drift}
                    )
        recorder = JournalRecorder(run.kernel, store, durable=durable)
        recorder.install()
        if not store.last_seq:
            raw = self._raw
            recorder.record_config(
                self.config.engine.name,
                {
                    "raw": _json_ready(dict(raw.data)),
                    "base_dir": str(raw.base_dir),
                    "source": raw.source,
                    "mode": self.mode,
                },
            )
        return store

    async def _resume(
        self,
        run: _Run,
        streams: dict[str, Iterable[BarSeries] | AsyncIterator[BarSeries]],
    ) -> None:
        """After replaying the journal: show the strategies the bars they already
        processed (replayed feeds), then reconcile with the venue; trading waits in
        ``[trading] until_reconciled`` until reconciliation passes."""
        kernel, state = run.kernel, run.resumed
        for symbol, last in state.bars.items():
            source = streams.get(symbol)
            if isinstance(source, list) and len(source) == 1:  # a history replayed
                series = source[0]
                kernel.warm_up(symbol, series.slice(0, last + 1))
                streams[symbol] = [series.slice(last + 1, len(series))]
        kernel._seq.clear()
        kernel._seq.update(state.sequences)  # later intents are derived again, same ids
        kernel.operations.reset_sequences(state.operation_sequences)
        kernel.hide_until_derived(state.in_flight)
        logger.info(
            "resumed the journal: {} records, bars {}, {} open orders",
            state.entries,
            state.bars,
            len(kernel.open_orders()),
        )
        if not hasattr(kernel.broker, "snapshot"):
            logger.warning("broker {} cannot be reconciled (no snapshot())", kernel.broker_name)
            for op in kernel.operations.compensate():
                logger.warning("operation {} was interrupted: rolled back", op.id)
            return
        prior = kernel.trading.state
        waiting = TradingState(self.config.trading.until_reconciled)
        kernel.set_trading_state(waiting, "reconciling with the venue after a restart", "engine")
        broker_spec = self.config.component("broker")
        outcome = await reconcile(
            kernel,
            kernel.broker,
            deduplicates=broker_spec.record.deduplicates,
            policies=self.plugins.collect("engine_reconciliation_policies"),
            in_flight=state.in_flight,
        )
        for line in outcome.lines():
            logger.warning("reconciliation: {}", line)
        for op in kernel.operations.compensate():
            logger.warning("operation {} was interrupted: rolled back", op.id)
        if outcome.passed:
            kernel.set_trading_state(prior, "reconciled with the venue", "engine")
        else:
            kernel.alert(
                Severity.CRITICAL,
                "reconciliation failed: trading stays " + waiting.value,
                "; ".join(outcome.lines()),
                "engine",
            )
        run.reconciliation = outcome

    def _feed_context(self, mode: str) -> FeedContext:
        return FeedContext(self.config.base_dir, self.config.engine.seed, mode)

    async def _start(self, run: _Run) -> None:
        run.started_hooks = True
        self.active_run = run
        await self.plugins.call_lifecycle("engine_startup", fail_fast=True, engine=self)
        for record, c in run.coordinators:
            await maybe_await(c.start(self))
            run.started.append((record, c))

    async def _stop(self, run: _Run | None) -> None:
        """Undo what started, in reverse; every step runs even if one fails."""
        if run is None:
            return
        self.active_run = None
        if run.journal is not None:
            try:
                run.journal.close()
            except Exception:
                logger.exception("closing the journal failed")
        if run.publisher is not None:
            run.publisher.close()
        for record, c in reversed(run.started):
            try:
                await maybe_await(c.stop())
            except Exception:
                logger.exception("coordinator {} ({}) failed to stop", record.name, record.plugin)
        for sid, strategy in run.strategies:
            stop = getattr(strategy, "on_stop", None)
            if stop is not None:
                try:
                    await maybe_await(stop())
                except Exception:
                    logger.exception("strategy {}: on_stop failed", sid)
        if run.started_hooks:
            await self.plugins.call_lifecycle(
                "engine_shutdown", fail_fast=False, reverse=True, engine=self
            )
        if get_registry() is run.registry:  # nothing keeps this run's kernel alive
            set_registry(None)

    async def _load(self, feed: Any, inst: Instrument, ctx: FeedContext) -> BarSeries:
        """One instrument's history from the feed; errors name the feed and symbol."""
        spec = self.config.component("feed")
        try:
            series = await maybe_await(feed.load(inst, ctx))
        except EngineError:
            raise
        except Exception as exc:
            raise feed_failed(spec, f"failed to load {inst.symbol}", exc) from exc
        if not isinstance(series, BarSeries):
            raise not_bars(spec, series, "returned")
        return series

    def _result(
        self,
        run: _Run,
        mode: str,
        series: Mapping[str, BarSeries],
        bars: int,
        elapsed: float,
        *,
        curve: EquityCurve | None = None,
        final_ts: int | None = None,
    ) -> RunResult:
        """The run's result; a streamed run gives its own ``curve`` and last time."""
        k = run.kernel
        result = RunResult(
            mode=mode,
            name=self.config.engine.name,
            bars=bars,
            fill_records=k.fills,
            trade_records=k.portfolio.trades,
            orders=k.orders,
            denials=k.pipeline.denials,
            reductions=k.pipeline.reductions,
            portfolio=k.portfolio,
            curve=equity_curve(series, k.fills, k.portfolio) if curve is None else curve,
            final_marks=k.marks(),
            elapsed_seconds=elapsed,
            series=dict(series),
            illegal_transitions=k.illegal_transitions,
            alerts=k.alerts,
            alert_failures=k.alert_failures,
            state_changes=k.trading.history,
            funding_payments=k.funding_payments,
            liquidations=k.liquidations,
            order_counts=k.order_counts,
            spans=k.tracer.spans if k.tracer is not None else [],
        )
        if final_ts is None:
            final_ts = max((int(s.ts[-1]) for s in series.values() if len(s)), default=0)
        publisher = run.publisher
        result.metrics = (
            publisher.publish(final_ts, final=True)
            if publisher
            else publisher.metrics.collect(final_ts)
        )
        for analyzer in self.plugins.collect("engine_analyzers"):
            try:
                result.add_stats(analyzer.compute(result), analyzer=analyzer.name)
            except Exception:
                logger.exception("analyzer {} ({}) failed", analyzer.name, analyzer.plugin)
        return result

    # -- journal replay -------------------------------------------------------------------

    @classmethod
    def from_journal(cls, entries: Iterable[Entry], **kwargs: Any) -> Engine:
        """An engine built from a journal's config baseline (its first entry)."""
        for entry in entries:
            if entry.kind == "config":
                data = dict(entry.data["raw"])
                data.pop("journal", None)  # replaying must not write a journal
                raw = RawConfig(data, Path(entry.data["base_dir"]), entry.data["source"])
                return cls(raw, **kwargs)
            break
        raise JournalError("the journal does not start with a config baseline")

    async def replay_journal(
        self, entries: Iterable[Entry], *, load_data: bool = True
    ) -> RunResult:
        """Rebuild a run from its journal: portfolio, orders, trading state through the
        kernel's own code paths, no strategy and no venue called. With ``load_data``
        the feed's bars give the equity curve and statistics (the run's report); a
        paper journal replays up to its last processed bar."""
        run: _Run | None = None
        started = time.perf_counter()
        try:
            run = await self._build("backtest")
            state = replay(entries, run.kernel)
            series: dict[str, BarSeries] = {}
            if load_data:
                ctx = self._feed_context("backtest")
                for inst in run.instruments:
                    s = await self._load(run.feed, inst, ctx)
                    last = state.bars.get(inst.symbol)
                    series[inst.symbol] = s if last is None else s.slice(0, last + 1)
                for symbol, s in series.items():  # marks: the last bar's close
                    if len(s):
                        view = run.kernel.streams[symbol].view
                        view.index, view.ts, view.close = (
                            len(s) - 1,
                            int(s.ts[-1]),
                            int(s.close[-1]),
                        )
            run.resumed = state
            bars = sum(len(s) for s in series.values())
            result = self._result(run, "replay", series, bars, time.perf_counter() - started)
            return result
        finally:
            await self._stop(run)

    # -- config drift ---------------------------------------------------------------------

    async def reload(
        self, source: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> Reload:
        """Read the config again (``source``, default: the file the engine came from),
        validate it whole, and apply its risk-limit changes to the running engine
        (order checks, runtime guards, ``[trading]``); other changes are reported as
        needing a restart. Applied changes are journaled. See :mod:`engine.drift`."""
        if source is None:
            if self._raw.source == "<dict>":
                raise ConfigError([Problem("config", "a config given as a dict cannot be re-read")])
            source = self._raw.source
        try:
            candidate = Engine(load_raw(source), plugins=self.plugins)
            new = candidate.config
            ids = candidate._strategy_ids()
        except ConfigError as exc:
            report = Reload(problems=exc.problems)
            for line in report.lines():
                logger.error("reload: {}", line)
            return report
        changes = diff(self.config.dump(), new.dump())
        applied = tuple(c for c in changes if c.section in RISK_SECTIONS)
        later = tuple(c for c in changes if c.section not in RISK_SECTIONS)
        run = self.active_run
        if applied and run is not None:
            kernel = run.kernel
            kernel.pipeline.checks = tuple(await self._compile_pipeline(new, ids))
            kernel._runtime = await self._compile_runtime(new)
            kernel.trading.resume_after_ns = parse_interval(new.trading.resume_after)
            kernel.next_due = 0  # runtime guards are evaluated at the next bar
            if kernel.journal is not None:
                kernel.journal.store.append(
                    kernel.now,
                    "config",
                    new.engine.name,
                    {"reload": True, "changes": [str(c) for c in applied]},
                )
                kernel.journal.store.commit()
        report = Reload(tuple(changes), applied if run is not None else (), later)
        for line in report.lines():
            logger.warning("reload: {}", line)
        return report

    # -- health -------------------------------------------------------------------------

    async def health(self) -> list[HealthReport]:
        """Health of this engine: the core's reports (run, trading state, metrics
        sinks), then every plugin's ``engine_health``. See :mod:`engine.health`."""
        return await gather_health(self)

    # -- runs ---------------------------------------------------------------------------

    async def backtest(
        self,
        progress: Progress | None = None,
        *,
        data: Mapping[str, BarSeries] | None = None,
    ) -> RunResult:
        """Run a backtest over the feed's history and return its result.

        Safe to ``await`` inside a running loop (Jupyter). ``progress(done, total)``
        is called after each chunk of bars. ``data`` (symbol -> bars, as
        :meth:`load_data` returns) replaces the feed's history: sweeps load it once
        per worker and run many backtests over it.
        """
        run: _Run | None = None
        try:
            run = await self._build("backtest")
            if data is None and self.config.backtest.stream:
                return await backtest_streamed(self, run, progress)
            ctx = self._feed_context("backtest")
            if data is None:
                series = {i.symbol: await self._load(run.feed, i, ctx) for i in run.instruments}
            else:
                series = self._given_data(run, data)
            active = await self._prepare(run, series)
            total = sum(len(s) for s in series.values())
            store = self._open_journal(run, durable=False)
            await self._start(run)
            started = time.perf_counter()
            done = 0
            with quiet_gc():
                for done in backtest_chunks(run.kernel, series, active=active):
                    if store is not None:
                        store.commit()
                    if run.publisher:
                        run.publisher.flush()
                    settle()
                    if progress is not None:
                        progress(done, total)
                    await asyncio.sleep(0)
            elapsed = time.perf_counter() - started
            return self._result(run, "backtest", series, done, elapsed)
        finally:
            await self._stop(run)

    async def _prepare(
        self, run: _Run, series: Mapping[str, BarSeries]
    ) -> dict[str, list[int]] | None:
        """Call every strategy's ``prepare(series)`` (indicators over whole series, up
        front). With ``[backtest] vectorised``: the active bars of each instrument all
        of whose strategies returned theirs (a boolean mask or sorted indices)."""
        marked: dict[str, list[tuple[str, Any]]] = {}
        for sid, strategy in run.strategies:
            symbol = run.instrument_of[sid]
            prepare = getattr(strategy, "prepare", None)
            got = None if prepare is None else await maybe_await(prepare(series[symbol]))
            marked.setdefault(symbol, []).append((sid, got))
        if not self.config.backtest.vectorised:
            return None
        active: dict[str, list[int]] = {}
        for symbol, masks in marked.items():
            if any(m is None for _, m in masks):
                continue
            n = len(series[symbol])
            rows: set[int] = set()
            for sid, mask in masks:
                rows.update(active_rows(mask, n, f"strategies.{sid}").tolist())
            active[symbol] = sorted(rows)
        return active

    def backtest_sync(
        self, progress: Progress | None = None, *, data: Mapping[str, BarSeries] | None = None
    ) -> RunResult:
        """:meth:`backtest` for scripts (works even under a running event loop)."""
        return run_sync(lambda: self.backtest(progress, data=data))

    async def load_data(self) -> dict[str, BarSeries]:
        """The feed's history of every instrument (symbol -> bars), without running
        anything: what :meth:`backtest` would load."""
        feed = await self._make(self.config.component("feed"))
        ctx = self._feed_context("backtest")
        return {i.symbol: await self._load(feed, i, ctx) for i in self._instruments()}

    def _given_data(self, run: _Run, data: Mapping[str, BarSeries]) -> dict[str, BarSeries]:
        missing = [i.symbol for i in run.instruments if i.symbol not in data]
        if missing:
            raise ConfigError(
                [Problem("data", f"no bars given for instrument(s) {', '.join(missing)}")]
            )
        return {i.symbol: data[i.symbol] for i in run.instruments}

    # -- research: sweeps and walk-forward (engine.research) -----------------------------

    async def sweep(
        self,
        params: Any,
        *,
        samples: int | None = None,
        seed: int = 0,
        executor: str | None = None,
        workers: int | None = None,
        metric: str | None = None,
        minimize: bool | None = None,
        output: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> Any:
        """Backtest every combination of ``params`` and gather one table
        (:class:`~engine.research.sweep.SweepResult`).

        ``params`` maps config paths to values: ``{"strategy.fast": "5..20:5",
        "strategy.slow": [20, 30, 50]}`` (or ``["strategy.fast=5..20:5", ...]``).
        With ``samples`` it draws that many random combinations with ``seed``.
        ``executor`` and ``workers`` override ``[sweep]``; with ``output`` the runs
        are recorded there as they finish (running again skips them) and the tables
        and heatmap are written. ``progress(done, total, failed)`` follows the runs.
        The sweep runs in a thread, so a notebook's event loop stays free.
        """
        from engine.research.sweep import run_sweep

        return await asyncio.to_thread(
            run_sweep,
            self,
            params,
            samples=samples,
            seed=seed,
            executor=executor,
            workers=workers,
            metric=metric,
            minimize=minimize,
            output=None if output is None else Path(output),
            progress=progress,
        )

    def sweep_sync(self, params: Any, **options: Any) -> Any:
        """:meth:`sweep` for scripts."""
        from engine.research.sweep import run_sweep

        return run_sweep(self, params, **options)

    async def walk_forward(
        self,
        params: Any,
        *,
        windows: int = 5,
        in_sample: float = 4.0,
        anchored: bool = False,
        executor: str | None = None,
        workers: int | None = None,
        metric: str | None = None,
        minimize: bool | None = None,
        output: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> Any:
        """Walk-forward optimisation over ``windows`` out-of-sample windows, each
        after an in-sample window ``in_sample`` times as long (all earlier bars when
        ``anchored``): the best of ``params`` in sample runs out of sample
        (:class:`~engine.research.walkforward.WalkForwardResult`)."""
        from engine.research.walkforward import run_walk_forward

        return await asyncio.to_thread(
            run_walk_forward,
            self,
            params,
            n_windows=windows,
            in_sample=in_sample,
            anchored=anchored,
            executor=executor,
            workers=workers,
            metric=metric,
            minimize=minimize,
            output=None if output is None else Path(output),
            progress=progress,
        )

    def walk_forward_sync(self, params: Any, **options: Any) -> Any:
        """:meth:`walk_forward` for scripts (``windows=`` is ``n_windows=`` here)."""
        from engine.research.walkforward import run_walk_forward

        if "windows" in options:
            options["n_windows"] = options.pop("windows")
        return run_walk_forward(self, params, **options)

    async def run(
        self,
        *,
        speed: float | None = None,
        duration: float | None = None,
        max_bars: int | None = None,
        stop: asyncio.Event | None = None,
    ) -> RunResult:
        """Paper-trade on the real clock until ``duration`` seconds pass, ``max_bars``
        bars are processed, the feed ends, or ``stop`` is set (Ctrl-C in the CLI).

        Bars come from the feed's ``stream()`` when it has one, else ``load()`` is
        replayed. ``speed`` (default ``[paper] speed``) scales the clock.
        """
        run: _Run | None = None
        stop = stop or asyncio.Event()
        speed = speed or self.config.paper.speed
        try:
            run = await self._build("paper")
            ctx = self._feed_context("paper")
            streams: dict[str, Iterable[BarSeries] | AsyncIterator[BarSeries]] = {}
            for inst in run.instruments:
                if hasattr(run.feed, "stream"):
                    streams[inst.symbol] = run.feed.stream(inst, ctx)
                else:
                    streams[inst.symbol] = [await self._load(run.feed, inst, ctx)]
            self._open_journal(run, durable=True)
            await self._start(run)
            if run.resumed is not None:
                await self._resume(run, streams)
            tasks: set[asyncio.Task[Any]] = set()

            def spawn(aw: Any) -> None:
                task = asyncio.ensure_future(aw)
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            run.kernel.set_spawner(spawn)
            timer = asyncio.get_running_loop().call_later(duration, stop.set) if duration else None
            venue = run.kernel.broker
            watcher = (
                asyncio.create_task(venue.watch(run.kernel), name="venue-watch")
                if isinstance(venue, GuardedVenue)
                else None
            )
            started = time.perf_counter()
            try:
                bars = await paper_loop(
                    run.kernel, streams, speed=speed, stop=stop, max_bars=max_bars
                )
            finally:
                if timer is not None:
                    timer.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                left = await venue.settle_all()
                if left:
                    logger.error("{} orders are still in doubt: the venue cannot be asked", left)
            if run.journal is not None:
                run.journal.commit()
            elapsed = time.perf_counter() - started
            series = {s: st.to_series() for s, st in run.kernel.streams.items()}
            return self._result(run, "paper", series, bars, elapsed)
        finally:
            await self._stop(run)


def _json_ready(value: Any) -> Any:
    """TOML data as JSON-ready data (dates and times as ISO strings)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _breaker_moves_trading(kernel: Kernel, registry: PolicyRegistry) -> Any:
    """An open breaker moves trading to its policy's ``on_breaker_open`` state; when
    it closes, trading goes back to active if the breaker was what moved it."""

    def moved(name: str, old: BreakerState, new: BreakerState) -> None:
        source = f"breaker:{name}"
        if new is BreakerState.OPEN:
            state = TradingState(registry.get(name).settings.on_breaker_open)
            if kernel.trading.state.severity < state.severity:
                kernel.set_trading_state(state, f"circuit breaker {name} is open", source)
        elif new is BreakerState.CLOSED:
            history = kernel.trading.history
            if history and history[-1].source == source:
                kernel.set_trading_state(
                    TradingState.ACTIVE, f"circuit breaker {name} closed", source
                )

    return moved
