"""``assert_conforms(plugin)``: does a plugin keep the engine's contract?

Checks, in this order (each problem names the plugin and the hook):

1. **Hook names and signatures.** Every ``@hookimpl`` names a hook that exists
   (with a "did you mean" for a misspelling; a misspelt hook would otherwise never
   be called); a function named like a hook but not marked ``@hookimpl`` is
   reported; an implementation's arguments are among its spec's; record hooks are
   plain functions (the core does not await them); hook wrappers are refused (the
   core calls each plugin's implementation on its own).
2. **Records.** Each record hook returns records of its hook's type (``Guard``
   from ``engine_guards``...), valid under their attrs validators, with the right
   field types (a callable ``factory``, an attrs ``config_type``...), unique names
   and satisfiable ``before``/``after`` constraints.
3. **Components and async callables.** Each component is built from its config
   (``configs[name]``, else its config class's defaults; one that needs config
   nobody gave is listed in :attr:`ConformanceReport.not_built`), awaiting an async
   factory. The built object has the shape its kind needs (a strategy's ``on_bar``,
   a check's ``(intent, ctx)``...). Callables the core calls on the per-event path
   (``on_bar``, ``on_fill``, ``on_order``, checks, runtime guards, alert sinks)
   must be synchronous: the core never awaits them. Every async callable the core
   does await (factories, coordinators' ``start``/``stop``, lifecycle hooks) is
   awaited here step by step, and a step that runs longer than ``budget`` seconds
   without yielding to the event loop is reported as a blocking call.
4. **Lifecycle.** ``engine_startup``, each coordinator's ``start(engine)``,
   ``engine_health``, each coordinator's ``stop()`` (reverse order) and
   ``engine_shutdown`` are called in that order, as the engine calls them; then
   (with ``run=True``) a short backtest runs with every component of the plugin
   configured (a probe strategy places orders when the plugin has no strategy)
   and the recorded hook calls must show startup before shutdown, once each, with
   no error.

:func:`assert_conforms` raises :class:`ConformanceError` (an ``AssertionError``)
listing every problem, or returns a :class:`ConformanceReport` of what it checked.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import time
import traceback
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from engine.hookspecs import hookimpl

if TYPE_CHECKING:
    from engine.records import Record
    from engine.results import RunResult
    from engine.testing.harness import EngineHarness

__all__ = ["ConformanceError", "ConformanceReport", "Finding", "assert_conforms"]

#: Seconds an async callable may run without yielding to the event loop.
DEFAULT_BUDGET = 0.25
#: Seconds an async callable may take in all before it is reported as hanging.
HANG_SECONDS = 30.0
PROBE_PLUGIN = "engine-testing-probe"
#: built-ins a smoke run uses when the plugin has no feed or broker of its own
_SMOKE_BUILTINS = ("synthetic", "simulated")


@attrs.frozen
class Finding:
    """One problem: which plugin, which hook, what is wrong."""

    plugin: str
    hook: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r}, hook {self.hook}: {self.message}"


class ConformanceError(AssertionError):
    """A plugin does not conform; :attr:`findings` lists every problem."""

    def __init__(self, plugin: str, findings: Iterable[Finding]) -> None:
        self.plugin = plugin
        self.findings = list(findings)
        lines = "\n".join(f"  - {f}" for f in self.findings)
        super().__init__(
            f"plugin {plugin!r} does not conform ({len(self.findings)} problem(s)):\n{lines}"
        )


@attrs.define
class ConformanceReport:
    """What :func:`assert_conforms` checked."""

    plugin: str
    #: the hooks the plugin implements
    hooks: list[str] = attrs.Factory(list)
    #: hook -> the records it returned
    records: dict[str, list[Any]] = attrs.Factory(dict)
    #: components built, as ``"<hook> <name>"``
    built: list[str] = attrs.Factory(list)
    #: components not built -> why (they need config: pass ``configs``)
    not_built: dict[str, str] = attrs.Factory(dict)
    #: the lifecycle calls made, in order
    lifecycle: list[str] = attrs.Factory(list)
    #: the result of the smoke backtest (``run=True``)
    result: RunResult | None = None


class _Steps:
    """Awaits an awaitable step by step, timing each stretch it runs without yielding."""

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable
        self.longest = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        it = self.awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                yielded = it.throw(error) if error is not None else it.send(value)
            except StopIteration as stop:
                self.longest = max(self.longest, time.perf_counter() - started)
                return stop.value
            except BaseException:
                self.longest = max(self.longest, time.perf_counter() - started)
                raise
            self.longest = max(self.longest, time.perf_counter() - started)
            try:
                value, error = (yield yielded), None
            except BaseException as exc:
                value, error = None, exc


# -- what each kind of component must look like ------------------------------------------

_PER_EVENT = {
    "engine_filters": "check(intent, ctx)",
    "engine_validation_rules": "check(intent, ctx)",
    "engine_guards": "check(intent, ctx)",
    "engine_runtime_guards": "evaluate(ctx)",
    "engine_alert_sinks": "deliver(alert)",
}
_METHODS: dict[str, tuple[str, ...]] = {
    "engine_strategies": ("on_bar",),
    "engine_feeds": ("load",),
    "engine_brokers": ("bind", "submit", "cancel"),
    "engine_coordinators": ("start", "stop"),
    "engine_journals": ("append", "commit"),
}
#: methods the core calls per event, never awaiting them
_SYNC_METHODS = ("on_bar", "on_fill", "on_order")
#: config sections the smoke backtest fills from the plugin's components
_SECTIONS = {
    "engine_strategies": "strategies",
    "engine_filters": "filters",
    "engine_validation_rules": "validation_rules",
    "engine_guards": "guards",
    "engine_runtime_guards": "runtime_guards",
    "engine_alert_sinks": "alert_sinks",
    "engine_metrics_stores": "metrics_stores",
    "engine_exporters": "exporters",
}


def _positional(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` takes at most (None: any number)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _accepts(fn: Callable[..., Any], n: int) -> bool:
    try:
        inspect.signature(fn).bind(*([None] * n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): trust it
        return True
    return True


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _field_problems(record: Any) -> list[str]:
    """Type problems of a record's fields that attrs does not check itself."""
    from engine.records import (
        Analyzer,
        Broker,
        CliCommand,
        Component,
        ConfigSection,
        ReconciliationPolicy,
        RuntimeGuard,
    )

    out = []
    try:
        attrs.validate(record)
    except (TypeError, ValueError) as exc:
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        out.append(text)
    if not isinstance(record.priority, int) or isinstance(record.priority, bool):
        out.append(f"priority must be an int, got {record.priority!r}")
    for key in ("before", "after"):
        value = getattr(record, key)
        if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
            out.append(f"{key} must be a tuple of record names, got {value!r}")
    if not isinstance(record.description, str):
        out.append(f"description must be a string, got {record.description!r}")
    if isinstance(record, Component):
        if not callable(record.factory):
            out.append(f"factory must be callable, got {record.factory!r}")
        if record.config_type is not None and not attrs.has(record.config_type):
            out.append(f"config_type must be an attrs class or None, got {record.config_type!r}")
    if isinstance(record, Broker):
        for key in ("live", "deduplicates"):
            if not isinstance(getattr(record, key), bool):
                out.append(f"{key} must be true or false, got {getattr(record, key)!r}")
    if isinstance(record, RuntimeGuard) and not (
        isinstance(record.cadence_seconds, int | float) and record.cadence_seconds > 0
    ):
        out.append(f"cadence_seconds must be > 0, got {record.cadence_seconds!r}")
    if isinstance(record, Analyzer) and not callable(record.compute):
        out.append(f"compute must be callable, got {record.compute!r}")
    if isinstance(record, ReconciliationPolicy) and not callable(record.decide):
        out.append(f"decide must be callable, got {record.decide!r}")
    if isinstance(record, ConfigSection) and not attrs.has(record.config_type):
        out.append(f"config_type must be an attrs class, got {record.config_type!r}")
    if isinstance(record, CliCommand):
        import click

        if not isinstance(record.command, click.Command):
            out.append(f"command must be a click command, got {record.command!r}")
    return out


class _Probe:
    """A strategy that trades one lot in and out, so a plugin's checks see intents."""

    def __init__(self, _config: Any) -> None:
        self.ctx: Any = None

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        if bar.index % 10 == 3 and not self.ctx.position() and not self.ctx.open_order_count():
            self.ctx.buy(self.ctx.instrument.lot_size)
        elif bar.index % 10 == 8 and self.ctx.position() > 0:
            self.ctx.sell(self.ctx.position())


class _ProbePlugin:
    """Provides the probe strategy."""

    @hookimpl
    def engine_strategies(self) -> list[Any]:
        from engine.records import Strategy

        return [Strategy(name="conformance_probe", factory=_Probe)]


class _Checker:
    def __init__(
        self,
        plugin: object,
        name: str,
        configs: Mapping[str, Mapping[str, Any]],
        budget: float,
        bars: int,
    ) -> None:
        self.plugin = plugin
        self.name = name
        self.configs = configs
        self.budget = budget
        self.bars = bars
        self.findings: list[Finding] = []
        self.impls: dict[str, Callable[..., Any]] = {}
        self.report = ConformanceReport(plugin=name)
        #: (hook, record, structured config, raw config) of each component built
        self.built: list[tuple[str, Any, Any, Mapping[str, Any]]] = []
        self.objects: list[tuple[str, Any]] = []

    def fail(self, hook: str, message: str) -> None:
        self.findings.append(Finding(self.name, hook, message))

    # -- 1. hook names and signatures ---------------------------------------------------

    def static(self) -> None:
        import pluggy

        from engine import hookspecs

        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        specs = {
            n: getattr(hookspecs, n)
            for n in dir(hookspecs)
            if n.startswith("engine_") and hasattr(getattr(hookspecs, n), "engine_spec")
        }
        own_module = (
            getattr(self.plugin, "__name__", None) if inspect.ismodule(self.plugin) else None
        )
        for attr in sorted(dir(self.plugin)):
            try:
                value = getattr(self.plugin, attr)
            except Exception:
                continue
            if not callable(value):
                continue
            opts = pm.parse_hookimpl_opts(self.plugin, attr)
            if opts is None:
                self._unmarked(attr, value, specs, own_module)
                continue
            hook = opts.get("specname") or attr
            if hook not in specs:
                close = difflib.get_close_matches(hook, list(specs), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.fail(
                    hook,
                    f"no such hook{hint}: the engine would never call it; the hooks are"
                    " listed in docs/hooks.md",
                )
                continue
            self._signature(hook, value, specs[hook])
            if opts.get("wrapper") or opts.get("hookwrapper"):
                self.fail(
                    hook,
                    "hook wrappers are not supported: the engine calls each plugin's"
                    " implementation on its own",
                )
            self.impls[hook] = value
        self.report.hooks = sorted(self.impls)

    def _unmarked(
        self, attr: str, value: Any, specs: Mapping[str, Any], own_module: str | None
    ) -> None:
        if not attr.startswith("engine_"):
            return
        if own_module is not None and getattr(value, "__module__", None) != own_module:
            return  # imported into the module, not defined by the plugin
        close = difflib.get_close_matches(attr, list(specs), n=1, cutoff=0.8)
        if attr in specs:
            self.fail(attr, "is not marked @hookimpl: the engine never calls it")
        elif close:
            self.fail(
                attr,
                f"is not marked @hookimpl and no hook has this name (did you mean"
                f" {close[0]}?): the engine never calls it",
            )

    def _signature(self, hook: str, fn: Callable[..., Any], spec: Callable[..., Any]) -> None:
        from engine.hookspecs import RECORD_HOOKS

        expected = list(inspect.signature(spec).parameters)
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return
        required = [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        extra = [a for a in required if a not in expected]
        if extra:
            self.fail(
                hook,
                f"argument(s) {', '.join(map(repr, extra))} not in the hook's spec"
                f" {hook}({', '.join(expected)}): arguments are passed by name",
            )
        if hook in RECORD_HOOKS and _is_async(fn):
            self.fail(
                hook,
                "is async: record hooks must be plain functions returning records (the core"
                " never awaits them); make the record's factory async instead",
            )

    # -- 2. records ----------------------------------------------------------------------

    def records(self) -> None:
        from engine import records as records_module
        from engine.errors import PluginError
        from engine.hookspecs import RECORD_HOOKS
        from engine.ordering import order_records
        from engine.records import Record

        for hook, fn in sorted(self.impls.items()):
            if hook not in RECORD_HOOKS or _is_async(fn):
                continue
            expected: type[Record] = getattr(records_module, RECORD_HOOKS[hook])
            try:
                result = fn()
            except Exception as exc:
                self.fail(hook, f"raised {type(exc).__name__}: {exc}")
                continue
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                self.fail(hook, "returned an awaitable: record hooks must return records")
                continue
            if result is None:
                items: list[Any] = []
            elif isinstance(result, Record):
                items = [result]
            elif isinstance(result, Iterable) and not isinstance(result, str | bytes | Mapping):
                items = list(result)
            else:
                self.fail(
                    hook,
                    f"returned {type(result).__name__}: expected a list of {expected.__name__}"
                    " records (or one record, or None)",
                )
                continue
            good = []
            for item in items:
                label = f" {item.name!r}" if isinstance(getattr(item, "name", None), str) else ""
                if not isinstance(item, expected):
                    self.fail(
                        hook, f"returned {type(item).__name__}{label}, expected {expected.__name__}"
                    )
                    continue
                problems = _field_problems(item)
                for problem in problems:
                    self.fail(hook, f"{expected.__name__}{label}: {problem}")
                if not problems:
                    good.append(item)
            names = [r.name for r in good]
            for dup in sorted({n for n in names if names.count(n) > 1}):
                self.fail(hook, f"two {expected.__name__} records are named {dup!r}")
            try:
                order_records(good, kind=expected.__name__)
            except PluginError as exc:
                self.fail(hook, f"before/after constraints cannot be met: {exc.message}")
            self.report.records[hook] = good

    # -- 3. components and async callables ----------------------------------------------

    async def timed(self, hook: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn``; await its result if awaitable, under the blocking budget."""
        result = fn(*args)
        if not inspect.isawaitable(result):
            return result
        steps = _Steps(result)
        try:
            async with asyncio.timeout(HANG_SECONDS):
                value = await steps
        except TimeoutError:
            raise _Failed(hook, f"{what} did not finish within {HANG_SECONDS:.0f} s") from None
        finally:
            if steps.longest > self.budget:
                self.fail(
                    hook,
                    f"{what} blocked the event loop for {steps.longest:.2f} s without yielding"
                    f" (budget {self.budget:.2f} s): a blocking call in an async callable;"
                    " await an async API, or run the blocking call with asyncio.to_thread",
                )
        return value

    def _config_for(self, hook: str, record: Any) -> tuple[bool, Any, Mapping[str, Any]]:
        """(buildable, structured config, raw config) of a component."""
        from engine.config import structure

        raw = self.configs.get(record.name)
        if record.config_type is None:
            if raw:
                self.fail(hook, f"configs[{record.name!r}] given, but it takes no options")
            return True, None, {}
        structured, problems = structure(dict(raw or {}), record.config_type, record.name)
        if problems:
            if raw is None:
                self.report.not_built[f"{hook} {record.name}"] = "needs config: " + "; ".join(
                    str(p) for p in problems
                )
            else:
                for p in problems:
                    self.fail(hook, f"configs[{record.name!r}]: {p}")
            return False, None, {}
        return True, structured, dict(raw or {})

    async def components(self) -> None:
        from engine.records import Component

        sections = {r.name: r for r in self.report.records.get("engine_config_sections", [])}
        for hook, items in sorted(self.report.records.items()):
            for record in items:
                if not isinstance(record, Component):
                    continue
                if hook == "engine_coordinators":
                    ok, cfg, raw = self._section_config(sections.get(record.name))
                else:
                    ok, cfg, raw = self._config_for(hook, record)
                if not ok:
                    continue
                label = f"{type(record).__name__} {record.name!r}"
                try:
                    obj = await self.timed(hook, f"{label}: factory(config)", record.factory, cfg)
                except _Failed as exc:
                    self.fail(exc.hook, exc.message)
                    continue
                except Exception as exc:
                    self.fail(hook, f"{label}: factory(config) raised {type(exc).__name__}: {exc}")
                    continue
                if self._shape(hook, label, obj):
                    self.built.append((hook, record, cfg, raw))
                    self.objects.append((hook, obj))
                    self.report.built.append(f"{hook} {record.name}")

    def _section_config(self, section: Any) -> tuple[bool, Any, Mapping[str, Any]]:
        """A coordinator's config: the plugin section of the same name, as the core gives it."""
        from engine.config import structure

        if section is None:
            return True, None, {}
        structured, problems = structure(
            dict(self.configs.get(section.name) or {}), section.config_type, section.name
        )
        if problems:
            for p in problems:
                self.fail("engine_config_sections", f"section [{section.name}]: {p}")
            return False, None, {}
        return True, structured, {}

    def _shape(self, hook: str, label: str, obj: Any) -> bool:
        ok = True
        if hook in _PER_EVENT:
            shape = _PER_EVENT[hook]
            arity = shape.count(",") + 1
            if not callable(obj):
                self.fail(hook, f"{label}: factory must return a callable {shape}, got {obj!r}")
                return False
            call = obj if inspect.isroutine(obj) else type(obj).__call__
            if _is_async(call):
                self.fail(
                    hook,
                    f"{label}: {shape} is async; the core calls it on every event and never"
                    " awaits it: make it a plain function",
                )
                ok = False
            elif not _accepts(obj, arity):
                self.fail(hook, f"{label}: the callable must take {shape}")
                ok = False
            return ok
        for method in _METHODS.get(hook, ()):
            if not callable(getattr(obj, method, None)):
                self.fail(hook, f"{label}: the built object has no {method}() method")
                ok = False
        if hook == "engine_strategies":
            for method in _SYNC_METHODS:
                if _is_async(getattr(obj, method, None)):
                    self.fail(
                        hook,
                        f"{label}: {method} is async; per-event callbacks are never awaited"
                        " (events are handled one at a time): do async work in a coordinator",
                    )
                    ok = False
        return ok

    # -- 4. lifecycle -----------------------------------------------------------------------

    def harness(self) -> EngineHarness:
        from engine.plugins import PluginSettings
        from engine.testing.harness import EngineHarness

        harness = EngineHarness(PluginSettings(autoload=False, strict=True))
        harness.use(*_SMOKE_BUILTINS)
        if not self._is_loaded_builtin(self.plugin):  # a built-in checks itself
            harness.register(self.plugin, self.name)
        data: dict[str, Any] = harness.data
        strategies = [
            (record, raw) for hook, record, _c, raw in self.built if hook == "engine_strategies"
        ]
        if not strategies:
            harness.register(_ProbePlugin(), PROBE_PLUGIN)
            harness.strategy("conformance_probe")
        for hook, record, _cfg, raw in self.built:
            section = _SECTIONS.get(hook)
            if section is not None:
                data.setdefault(section, []).append({"type": record.name, **raw})
        if "alert_sinks" in data:
            data["alert_sinks"].insert(0, {"type": "log"})
        feeds = [(r, raw) for h, r, _c, raw in self.built if h == "engine_feeds"]
        if feeds:
            harness.feed(feeds[0][0].name, **feeds[0][1])
        else:
            harness.feed("synthetic", bars=self.bars)
        brokers = [
            (r, raw)
            for (h, r, _c, raw), (_h, obj) in zip(self.built, self.objects, strict=True)
            if h == "engine_brokers" and not r.live and not _is_async(getattr(obj, "submit", None))
        ]
        if brokers:
            harness.broker(brokers[0][0].name, **brokers[0][1])
        for section in self.report.records.get("engine_config_sections", []):
            if section.name in self.configs:
                harness.section(section.name, **self.configs[section.name])
        return harness

    @staticmethod
    def _is_loaded_builtin(plugin: object) -> bool:
        """True when ``plugin`` is one of the built-ins every smoke run loads."""
        from importlib.metadata import entry_points

        from engine.plugins import ENTRY_POINT_GROUP, ESSENTIAL_PLUGINS

        names = {*ESSENTIAL_PLUGINS, *_SMOKE_BUILTINS}
        return any(
            ep.load() is plugin
            for ep in entry_points(group=ENTRY_POINT_GROUP)
            if ep.name in names and ep.dist is not None and ep.dist.name == "engine"
        )

    async def lifecycle(self) -> None:
        from engine.records import HealthReport

        harness = self.harness()
        try:
            engine = harness.build()
            engine.check()
        except Exception as exc:
            self.fail(self._hook_of(exc), f"the engine could not be configured: {exc}")
            return
        coordinators = [
            (record, obj)
            for (hook, record, _c, _r), (_h, obj) in zip(self.built, self.objects, strict=True)
            if hook == "engine_coordinators"
        ]
        order = [r.name for r in self._ordered(coordinators)]
        coordinators.sort(key=lambda ro: order.index(ro[0].name))
        steps: list[tuple[str, str, Callable[[], Any]]] = []
        if "engine_startup" in self.impls:
            fn = self.impls["engine_startup"]
            steps.append(("engine_startup", "engine_startup(engine)", lambda: fn(engine)))
        for record, obj in coordinators:
            steps.append(
                (
                    "engine_coordinators",
                    f"Coordinator {record.name!r}: start(engine)",
                    functools.partial(obj.start, engine),
                )
            )
        if "engine_health" in self.impls:
            fn_health = self.impls["engine_health"]
            steps.append(("engine_health", "engine_health(engine)", lambda: fn_health(engine)))
        for record, obj in reversed(coordinators):
            steps.append(("engine_coordinators", f"Coordinator {record.name!r}: stop()", obj.stop))
        if "engine_shutdown" in self.impls:
            fn_down = self.impls["engine_shutdown"]
            steps.append(("engine_shutdown", "engine_shutdown(engine)", lambda: fn_down(engine)))
        for hook, what, call in steps:
            self.report.lifecycle.append(what)
            try:
                value = await self.timed(hook, what, call)
            except _Failed as exc:
                self.fail(exc.hook, exc.message)
                continue
            except Exception as exc:
                self.fail(hook, f"{what} raised {type(exc).__name__}: {exc}")
                continue
            if hook == "engine_health":
                for item in value or ():
                    if not isinstance(item, HealthReport):
                        self.fail(hook, f"returned {type(item).__name__}, expected HealthReport")

    def _ordered(self, pairs: list[tuple[Any, Any]]) -> list[Any]:
        from engine.ordering import order_records

        return order_records([r for r, _ in pairs], kind="Coordinator")

    async def smoke_run(self) -> None:
        from engine.testing.recorder import HookRecorder

        harness = self.harness()
        recorder = HookRecorder().attach(harness.plugins)
        try:
            self.report.result = await harness.backtest()
        except Exception as exc:
            self.fail(self._hook_of(exc), f"the backtest failed: {type(exc).__name__}: {exc}")
            return
        finally:
            recorder.detach()
            harness.close()
        mine = [c for c in recorder.calls if c.plugin == self.name]
        for call in mine:
            if call.error is not None:
                self.fail(
                    call.hook,
                    f"raised during the backtest: {type(call.error).__name__}: {call.error}",
                )
        seen = [c.hook for c in mine if c.hook in ("engine_startup", "engine_shutdown")]
        expected = [h for h in ("engine_startup", "engine_shutdown") if h in self.impls]
        if seen != expected:
            hook = expected[0] if expected else "engine_startup"
            self.fail(hook, f"lifecycle hooks ran as {seen}, expected {expected}")

    def _hook_of(self, exc: BaseException) -> str:
        """The hook a run error most likely belongs to."""
        import re

        from engine.config import COMPONENT_SECTIONS

        text = str(exc)
        named = re.search(r"\b(engine_[a-z_]+)\b", text)
        if named and named.group(1) in self.impls:
            return named.group(1)
        where = re.search(r"config\.([a-z_]+)", text)
        if where:
            for kind in COMPONENT_SECTIONS:
                if kind.section == where.group(1):
                    return kind.hook
        frames = traceback.extract_tb(exc.__traceback__)
        for frame in reversed(frames):
            for hook, obj in self.objects:
                owner = type(obj) if not inspect.isfunction(obj) else None
                if owner is not None and frame.name in vars(owner):
                    return hook
                if inspect.isfunction(obj) and obj.__code__.co_filename == frame.filename:
                    return hook
        return next(iter(self.impls), "backtest")


class _Failed(Exception):
    def __init__(self, hook: str, message: str) -> None:
        super().__init__(message)
        self.hook = hook
        self.message = message


def _plugin_name(plugin: object) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


def assert_conforms(
    plugin: object,
    *,
    name: str | None = None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    budget: float = DEFAULT_BUDGET,
    run: bool = True,
    bars: int = 300,
) -> ConformanceReport:
    """Check that ``plugin`` (a module, class or object with ``@hookimpl``
    functions) keeps the engine's contract; raises :class:`ConformanceError`
    listing every problem, each naming the plugin and the hook.

    ``name``: the plugin's name in messages (default: the module's or type's name).
    ``configs``: options by record name (``{"max_qty": {"limit": "5"}}``) for
    components whose config has required fields, and by section name for the
    plugin's config sections. ``budget``: seconds an async callable may run
    without yielding to the event loop. ``run``: also run a short backtest
    (``bars`` bars of the synthetic feed, or the plugin's own feed) with every
    component configured.
    """
    from engine.aio import run_sync

    checker = _Checker(plugin, name or _plugin_name(plugin), configs or {}, budget, bars)
    checker.static()
    checker.records()
    if not checker.findings:

        async def dynamic() -> None:
            await checker.components()
            if checker.findings:
                return
            await checker.lifecycle()
            if run and not checker.findings:
                await checker.smoke_run()

        run_sync(dynamic)
    if checker.findings:
        raise ConformanceError(checker.name, checker.findings)
    return checker.report
