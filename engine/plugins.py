"""The per-engine plugin manager.

One :class:`PluginManager` per :class:`~engine.Engine` (never a module global).
Entry points of the group ``engine`` are discovered lazily, on first use, and
loaded one at a time, each in its own ``try``: a plugin that fails to import or
register is reported (``engine plugins`` shows the error) and skipped, unless
strict mode makes it fatal. Record hooks are called plugin by plugin, so a
plugin that raises loses only its own records, and every record is stamped with
the plugin that returned it.

Environment (CLI flags override):

``ENGINE_STRICT_PLUGINS=1``   any plugin failure is fatal
``ENGINE_LOAD_PLUGINS=a,b``   load only these entry points (plus the essential set)
``ENGINE_DISABLE_PLUGINS=a,b`` do not load these entry points
``ENGINE_TRACE_PLUGINS=1``    log every hook call
"""

from __future__ import annotations

import difflib
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import attrs
import pluggy
from loguru import logger

from engine import hookspecs
from engine import records as _records
from engine.errors import PluginError
from engine.ordering import order_records
from engine.records import Record

__all__ = [
    "ENTRY_POINT_GROUP",
    "ESSENTIAL_PLUGINS",
    "HookCall",
    "PluginInfo",
    "PluginManager",
    "PluginSettings",
]

ENTRY_POINT_GROUP = "engine"
CORE_DISTRIBUTION = "engine"
#: Built-in plugins that cannot be disabled: every report needs statistics, and
#: alerts must always have somewhere to go.
ESSENTIAL_PLUGINS = frozenset({"performance", "log_alerts"})

Status = Literal["loaded", "failed", "disabled", "registered"]


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(env: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


@attrs.frozen
class PluginSettings:
    """How a manager loads plugins. :meth:`from_env` reads the ``ENGINE_*`` variables."""

    autoload: bool = True
    strict: bool = False
    allow: frozenset[str] | None = None
    disable: frozenset[str] = frozenset()
    builtin_only: bool = False
    trace: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> PluginSettings:
        """Settings from the environment, then ``overrides`` (``None`` values ignored)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "strict": _env_flag(env, "ENGINE_STRICT_PLUGINS"),
            "allow": _env_list(env, "ENGINE_LOAD_PLUGINS"),
            "disable": _env_list(env, "ENGINE_DISABLE_PLUGINS") or frozenset(),
            "trace": _env_flag(env, "ENGINE_TRACE_PLUGINS"),
        }
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "disable":
                value = values["disable"] | frozenset(value)
            values[key] = value
        return cls(**values)


@attrs.frozen
class PluginInfo:
    """What ``engine plugins`` shows for one plugin."""

    name: str
    status: Status
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: tuple[str, ...] = ()
    error: str | None = None


@attrs.frozen
class HookCall:
    """One plugin's implementation of a hook, called once: what a hook-call monitor
    (:meth:`PluginManager.add_hookcall_monitoring`) receives after the call.

    ``result`` is what the implementation returned (awaited when it was async;
    ``None`` when it raised), ``error`` the exception it raised, ``seconds`` the
    wall time the call took.
    """

    hook: str
    plugin: str
    kwargs: Mapping[str, Any]
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


#: ``before(hook, plugin, kwargs)``: called just before one implementation runs.
BeforeCall = Callable[[str, str, Mapping[str, Any]], None]
#: ``after(call)``: called when one implementation returned or raised.
AfterCall = Callable[[HookCall], None]


def _since(started: float) -> float:
    return time.perf_counter() - started


def _format_exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


#: (name, version) of the distribution installed at a path: reading a distribution's
#: metadata parses its METADATA file, which costs more than the rest of loading
#: (every engine of a sweep loads the entry points again)
_DISTRIBUTIONS: dict[str, tuple[str | None, str | None]] = {}


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    if ep.dist is None:
        return None, None
    path = getattr(ep.dist, "_path", None)
    key = str(path) if path is not None else None
    if key is not None and key in _DISTRIBUTIONS:
        return _DISTRIBUTIONS[key]
    facts = (ep.dist.name, ep.dist.version)
    if key is not None:
        _DISTRIBUTIONS[key] = facts
    return facts


class PluginManager:
    """Loads, isolates, lists and queries the plugins of one engine."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings if settings is not None else PluginSettings.from_env()
        bad = ESSENTIAL_PLUGINS & self.settings.disable
        if bad:
            raise PluginError(f"essential plugin(s) cannot be disabled: {', '.join(sorted(bad))}")
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._loaded = False
        self._cache: dict[str, list[Any]] = {}
        self._monitors: list[tuple[BeforeCall | None, AfterCall | None]] = []
        if self.settings.trace:
            self._pm.trace.root.setwriter(lambda msg: logger.debug("pluggy: {}", msg.rstrip()))
            self._pm.enable_tracing()

    # -- loading -----------------------------------------------------------------

    def load(self) -> None:
        """Discover and load entry-point plugins, once. Called lazily by every query."""
        if self._loaded:
            return
        self._loaded = True
        if not self.settings.autoload:
            return
        eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        for ep in eps:
            self._load_entry_point(ep)

    def _load_entry_point(self, ep: EntryPoint) -> None:
        dist, version = _distribution(ep)
        builtin = dist == CORE_DISTRIBUTION
        base: dict[str, Any] = {"distribution": dist, "version": version, "builtin": builtin}
        s = self.settings
        essential = builtin and ep.name in ESSENTIAL_PLUGINS
        if ep.name in self._infos:
            other = self._infos[ep.name].distribution
            self._fail(ep.name, f"entry point name already used by distribution {other}", base)
            return
        if not essential and (
            ep.name in s.disable
            or (s.allow is not None and ep.name not in s.allow)
            or (s.builtin_only and not builtin)
        ):
            self._infos[ep.name] = PluginInfo(name=ep.name, status="disabled", **base)
            return
        try:
            obj = ep.load()
        except Exception as exc:  # an import error of one plugin must not stop the others
            self._fail(ep.name, f"import failed: {_format_exc(exc)}", base)
            return
        try:
            self._register(obj, ep.name)
        except PluginError as exc:
            self._fail(ep.name, exc.message, base)
            return
        self._infos[ep.name] = PluginInfo(
            name=ep.name, status="loaded", hooks=self._hooks_of(ep.name), **base
        )

    def load_entry_points(self, *names: str) -> None:
        """Load the named entry points of the group ``engine`` now, one at a time, as
        discovery would (also when ``autoload`` is off: a test asks for just the
        built-ins it needs). Names already loaded are skipped; an unknown name raises
        :class:`PluginError` listing the installed ones."""
        self.load()
        installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        unknown = [n for n in names if n not in installed]
        if unknown:
            raise PluginError(
                f"no installed plugin named {', '.join(map(repr, unknown))};"
                f" installed: {', '.join(sorted(installed)) or 'none'}"
            )
        for name in names:
            info = self._infos.get(name)
            if info is not None and info.status in ("loaded", "registered"):
                continue
            self._infos.pop(name, None)
            self._load_entry_point(installed[name])

    def _fail(self, name: str, error: str, base: dict[str, Any]) -> None:
        self._infos[name] = PluginInfo(name=name, status="failed", error=error, **base)
        logger.warning("plugin {} failed to load and is skipped: {}", name, error)
        if self.settings.strict:
            raise PluginError(f"plugin {name!r} failed to load: {error}", plugin=name)

    def _register(self, obj: object, name: str) -> None:
        if self._pm.get_plugin(name) is not None or self._pm.is_registered(obj):
            raise PluginError(f"a plugin named {name!r} is already registered", plugin=name)
        try:
            self._pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"invalid hook implementation: {exc}", plugin=name) from exc
        unknown = []
        for hook in self._impl_names(obj):
            caller = getattr(self._pm.hook, hook, None)
            if caller is None or not caller.has_spec():
                unknown.append(hook)
        if unknown:
            self._pm.unregister(name=name)
            specs = [n for n in dir(hookspecs) if n.startswith("engine_")]
            hints = []
            for hook in unknown:
                close = difflib.get_close_matches(hook, specs, n=1)
                hints.append(f"{hook} (did you mean {close[0]}?)" if close else hook)
            raise PluginError(f"unknown hook(s): {', '.join(hints)}", plugin=name)
        self._cache.clear()

    def _impl_names(self, obj: object) -> list[str]:
        names = []
        for attr in dir(obj):
            try:
                value = getattr(obj, attr)
            except Exception:
                continue
            opts = self._pm.parse_hookimpl_opts(obj, attr) if callable(value) else None
            if opts is not None:
                names.append(opts.get("specname") or attr)
        return names

    def _hooks_of(self, name: str) -> tuple[str, ...]:
        plugin = self._pm.get_plugin(name)
        if plugin is None:
            return ()
        return tuple(sorted(c.name for c in self._pm.get_hookcallers(plugin) or []))

    def register(self, obj: object, name: str | None = None) -> str:
        """Register an ad-hoc plugin (a notebook cell, a test); returns its name.

        Errors (unknown hook names, bad signatures) raise :class:`PluginError` at once.
        """
        self.load()
        name = name or getattr(obj, "__name__", None) or type(obj).__name__
        self._register(obj, name)
        self._infos[name] = PluginInfo(name=name, status="registered", hooks=self._hooks_of(name))
        return name

    def registered(self) -> dict[str, object]:
        """The ad-hoc plugins (:meth:`register`), by name, in registration order: what
        a sweep sends its workers, which find entry-point plugins themselves."""
        self.load()
        names = [i.name for i in self._infos.values() if i.status == "registered"]
        return {n: p for n in names if (p := self._pm.get_plugin(n)) is not None}

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self._pm.unregister(name=name)
        self._infos.pop(name, None)
        self._cache.clear()

    def infos(self) -> list[PluginInfo]:
        """Every known plugin (loaded, failed, disabled, registered), sorted by name."""
        self.load()
        return sorted(self._infos.values(), key=lambda i: i.name)

    def failed(self) -> dict[str, str]:
        """Plugins that failed to load: name -> error."""
        return {i.name: i.error or "" for i in self.infos() if i.status == "failed"}

    # -- record hooks ----------------------------------------------------------------

    def collect(self, hook: str) -> list[Any]:
        """Records from every plugin for a record hook: validated, stamped, ordered.

        A plugin whose implementation raises or returns something invalid is
        reported and skipped (fatal in strict mode). Two plugins returning records
        of the same kind with the same name is always fatal.
        """
        if hook in self._cache:
            return self._cache[hook]
        self.load()
        expected: type[Record] = getattr(_records, hookspecs.RECORD_HOOKS[hook])
        by_name: dict[str, Record] = {}
        caller = getattr(self._pm.hook, hook)
        for impl in caller.get_hookimpls():
            started = time.perf_counter()
            self._before(hook, impl.plugin_name, {})
            try:
                items = self._call_record_impl(impl, expected)
            except Exception as exc:
                self._after(HookCall(hook, impl.plugin_name, {}, None, exc, _since(started)))
                msg = f"{hook} failed: {_format_exc(exc)}"
                logger.error("plugin {}: {}", impl.plugin_name, msg)
                self._note_error(impl.plugin_name, msg)
                if self.settings.strict:
                    raise PluginError(msg, plugin=impl.plugin_name) from exc
                continue
            self._after(HookCall(hook, impl.plugin_name, {}, items, None, _since(started)))
            if self.settings.trace:
                logger.debug(
                    "hook {} plugin={} records={} in {:.1f}us",
                    hook,
                    impl.plugin_name,
                    [r.name for r in items],
                    (time.perf_counter() - started) * 1e6,
                )
            for item in items:
                stamped = attrs.evolve(item, plugin=impl.plugin_name)
                prev = by_name.get(stamped.name)
                if prev is not None:
                    raise PluginError(
                        f"{expected.__name__} {stamped.name!r} is provided by both "
                        f"plugin {prev.plugin!r} and plugin {stamped.plugin!r}",
                        plugin=stamped.plugin,
                    )
                by_name[stamped.name] = stamped
        result = order_records(list(by_name.values()), kind=expected.__name__)
        self._cache[hook] = result
        return result

    @staticmethod
    def _call_record_impl(impl: pluggy.HookImpl, expected: type[Record]) -> list[Record]:
        result: Any = impl.function()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError("record hooks must be plain functions, not async")
        if result is None:
            return []
        if isinstance(result, Record):
            result = [result]
        items: list[Record] = list(result)
        for item in items:
            if not isinstance(item, expected):
                raise TypeError(f"returned {type(item).__name__}, expected {expected.__name__}")
        return items

    def _note_error(self, name: str, error: str) -> None:
        info = self._infos.get(name)
        if info is not None:
            errors = f"{info.error}; {error}" if info.error else error
            self._infos[name] = attrs.evolve(info, error=errors)

    def records(self, hook: str) -> dict[str, Any]:
        """``collect(hook)`` keyed by record name (ordered)."""
        return {r.name: r for r in self.collect(hook)}

    # -- lifecycle hooks -------------------------------------------------------------

    async def call_each(
        self, hook: str, *, reverse: bool = False, **kwargs: Any
    ) -> AsyncIterator[tuple[str, Any, Exception | None]]:
        """Call ``hook`` plugin by plugin, awaiting async implementations; yields
        ``(plugin, value, error)`` for each, so one plugin's error never stops the
        others. Plugins run in registration order (entry points alphabetically,
        then ad-hoc registrations), or the reverse with ``reverse``."""
        self.load()
        impls = getattr(self._pm.hook, hook).get_hookimpls()  # oldest registration first
        for impl in reversed(impls) if reverse else impls:
            if self.settings.trace:
                logger.debug("hook {} plugin={}", hook, impl.plugin_name)
            started = time.perf_counter()
            self._before(hook, impl.plugin_name, kwargs)
            try:
                value = impl.function(*[kwargs[a] for a in impl.argnames])
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                self._after(HookCall(hook, impl.plugin_name, kwargs, None, exc, _since(started)))
                yield impl.plugin_name, None, exc
            else:
                self._after(HookCall(hook, impl.plugin_name, kwargs, value, None, _since(started)))
                yield impl.plugin_name, value, None

    async def call_lifecycle(
        self, hook: str, *, fail_fast: bool, reverse: bool = False, **kwargs: Any
    ) -> list[Any]:
        """Call a lifecycle hook plugin by plugin (see :meth:`call_each`). With
        ``fail_fast`` the first error raises :class:`PluginError`; otherwise errors
        are logged and the remaining plugins still run."""
        results: list[Any] = []
        async for plugin, value, exc in self.call_each(hook, reverse=reverse, **kwargs):
            if exc is not None:
                msg = f"{hook} failed: {_format_exc(exc)}"
                if fail_fast:
                    raise PluginError(msg, plugin=plugin) from exc
                logger.error("plugin {}: {}", plugin, msg)
            elif value is not None:
                results.append(value)
        return results

    # -- monitoring --------------------------------------------------------------------

    def add_hookcall_monitoring(
        self, before: BeforeCall | None = None, after: AfterCall | None = None
    ) -> Callable[[], None]:
        """Watch every hook call this manager makes, plugin by plugin (record hooks
        and lifecycle hooks alike): ``before(hook, plugin, kwargs)`` just before an
        implementation runs, ``after(call)`` with its :class:`HookCall` when it
        returned or raised. Returns a function that stops the monitoring.

        Like pluggy's ``add_hookcall_monitoring``, except that the core calls each
        plugin's implementation separately, so each call is seen on its own. A
        record hook is called once per plugin until a plugin is (un)registered
        (results are cached). A monitor that raises is logged, never propagated.
        """
        entry = (before, after)
        self._monitors.append(entry)

        def undo() -> None:
            if entry in self._monitors:
                self._monitors.remove(entry)

        return undo

    def _before(self, hook: str, plugin: str, kwargs: Mapping[str, Any]) -> None:
        for before, _after in self._monitors:
            if before is not None:
                try:
                    before(hook, plugin, kwargs)
                except Exception as exc:
                    logger.error("hook-call monitor failed: {}", _format_exc(exc))

    def _after(self, call: HookCall) -> None:
        for _before, after in self._monitors:
            if after is not None:
                try:
                    after(call)
                except Exception as exc:
                    logger.error("hook-call monitor failed: {}", _format_exc(exc))

    def hook_docs(self) -> dict[str, str]:
        """Every hook specification: name -> docstring."""
        return {
            name: inspect.getdoc(getattr(hookspecs, name)) or ""
            for name in sorted(dir(hookspecs))
            if name.startswith("engine_") and callable(getattr(hookspecs, name))
        }
